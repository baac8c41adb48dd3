"""Digital-twin solutions: where each one lives, as the platform program, the operator and the API agree.

A solution is one team's space: its Kubernetes namespace (its Analytics resources, Jobs, pods and data
volume), its own MongoDB databases (services records and GridFS files) and its own API tokens. The
platform's own namespace is the default solution: it keeps the databases and the data folder the platform
always had, so a platform without solutions behaves as before and the original's clients see no change.

Nothing is shared between solutions but the operator and API processes: no collection, bucket, folder or
namespace holds two solutions' data, so one solution's listing never reads another's documents.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from .names import FILES_DATABASE, RECORDS_DATABASE

DEFAULT_SOLUTION = "default"
# Label on a solution's namespace (its value: the solution's name) and on what the program makes for it.
SOLUTION_LABEL = "dtpoc.io/solution"
# Under the data volume's root (the operator's mount): the folder of a non-default solution's runs. A
# solution's own volume is this folder, so its modules see nothing above it.
SOLUTIONS_DATA_DIR = "solutions"
# MongoDB database names are at most 63 bytes; the longest we make is `orchestrator_files--<name>`.
MAX_NAME_LENGTH = 40
# A DNS label starting with a letter (also the API's OpenAPI pattern of `{solution}`).
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
_NAME = re.compile(NAME_PATTERN)


def check_solution_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH or not _NAME.match(name):
        raise ValueError(
            f"solution name {name!r}: lowercase letters, digits and '-', starting with a letter, "
            f"at most {MAX_NAME_LENGTH} characters"
        )
    return name


SolutionName = Annotated[str, AfterValidator(check_solution_name)]


class SolutionPlace(BaseModel):
    """One solution as both services see it: its name and its namespace. Everything else is derived."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: SolutionName
    namespace: str

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_SOLUTION

    @property
    def records_database(self) -> str:
        """Its services records (the default solution keeps the platform's database)."""
        return RECORDS_DATABASE if self.is_default else f"{RECORDS_DATABASE}--{self.name}"

    @property
    def files_database(self) -> str:
        """Its GridFS bucket `fs` (the default solution keeps the platform's)."""
        return FILES_DATABASE if self.is_default else f"{FILES_DATABASE}--{self.name}"

    @property
    def data_dir(self) -> PurePosixPath:
        """Its runs' folder relative to the data volume's root (where the operator mounts it)."""
        return PurePosixPath(".") if self.is_default else PurePosixPath(SOLUTIONS_DATA_DIR, self.name)


def default_place(namespace: str) -> SolutionPlace:
    return SolutionPlace(name=DEFAULT_SOLUTION, namespace=namespace)


def all_places(default_namespace: str, others: list[SolutionPlace]) -> list[SolutionPlace]:
    """The default solution first, then the others; names and namespaces must be unique."""
    places = [default_place(default_namespace), *others]
    for attribute in ("name", "namespace"):
        values = [getattr(place, attribute) for place in places]
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            raise ValueError(f"solutions: the {attribute} {', '.join(repeated)} is used twice")
    return places
