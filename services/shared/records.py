"""The services record: one MongoDB document per launched service, shared by the API and the operator.

Records written by the original dtpoc API are read as well, without rewriting them: it stored
`created_at` as epoch seconds (`time.time()`), `env` and `mount_files` as null when a launch gave none,
no `reps` for persistent services, and `output_files` (written by its operator) as a `{file_id: name}`
map in upload order, or nothing at all before the first output. Each is normalised on reading; an
old map's entries become runs 0, 1, ... in its order, which is how the original numbered outputs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .names import RECORDS_DATABASE, SERVICES_COLLECTION


class OutputFile(BaseModel):
    """One file a run wrote to /output, stored in GridFS by the operator."""

    run: int = Field(ge=0)
    file_id: str
    filename: str


def parse_output_files(value: Any) -> list[dict[str, Any]]:
    """`output_files` as entries `{run, file_id, filename}`, whichever platform wrote it: our list of
    entries as it is, the original's `{file_id: name}` map as runs 0, 1, ... in its order, null as none."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [
            {"run": run, "file_id": str(file_id), "filename": str(name)}
            for run, (file_id, name) in enumerate(value.items())
        ]
    return list(value)


def parse_created_at(value: Any) -> Any:
    """The original stored epoch seconds (a float); ours is a BSON date. Naive dates are UTC."""
    if isinstance(value, bool):
        return value  # left to the model to refuse
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class ScenarioRecord(BaseModel):
    """One scenario of a study: its name, and its own inputs and env over the service's."""

    name: str
    mount_files: dict[str, str] = Field(default_factory=dict)  # GridFS file id -> file name in /input
    env: dict[str, str] = Field(default_factory=dict)

    def inputs_over(self, shared: dict[str, str]) -> dict[str, str]:
        """The scenario's /input: the service's files, then the scenario's; a scenario file replaces a
        service file of the same name."""
        own_names = set(self.mount_files.values())
        kept = {file_id: name for file_id, name in shared.items() if name not in own_names}
        return {**kept, **self.mount_files}


class StudyRecord(BaseModel):
    """A study (`sim` with `scenarios`): `reps` runs of each scenario (see services.shared.study)."""

    reps: int
    scenarios: list[ScenarioRecord]

    @property
    def runs(self) -> int:
        return self.reps * len(self.scenarios)


class SummaryFiles(BaseModel):
    """The study summary the operator stored in GridFS once every run was collected."""

    json_file_id: str
    csv_file_id: str
    created_at: datetime


class ServiceRecord(BaseModel):
    """Fields of a services document (its `_id` is the Analytics resource's name)."""

    model_config = ConfigDict(extra="ignore")

    image: str
    version: str = "latest"
    description: str = ""
    mount_files: dict[str, str] = Field(default_factory=dict)  # GridFS file id -> file name in /input
    reps: int | None = None
    env: dict[str, str] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    output_files: list[OutputFile] = Field(default_factory=list)
    # A study only (absent otherwise): its scenarios, and the summary once the operator wrote it.
    study: StudyRecord | None = None
    study_summary: SummaryFiles | None = None

    @field_validator("mount_files", "env", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("description", mode="before")
    @classmethod
    def _null_description(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("created_at", mode="before")
    @classmethod
    def _created_at(cls, value: Any) -> Any:
        return parse_created_at(value)

    @field_validator("output_files", mode="before")
    @classmethod
    def _output_files(cls, value: Any) -> Any:
        return parse_output_files(value)

    def to_document(self, service_id: ObjectId) -> dict[str, Any]:
        document = self.model_dump(mode="python")
        for optional in ("study", "study_summary"):  # not written at all where they do not apply
            if document[optional] is None:
                del document[optional]
        document["_id"] = service_id
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> ServiceRecord:
        return cls.model_validate(document)

    def outputs_in_order(self) -> list[OutputFile]:
        """Every output, by run then file name: the order of the original's `output_files` list."""
        return sorted(self.output_files, key=lambda o: (o.run, o.filename))

    def outputs_of_run(self, run: int) -> list[OutputFile]:
        return sorted((o for o in self.output_files if o.run == run), key=lambda o: o.filename)


def services_collection(client: Any, database: str = RECORDS_DATABASE) -> Any:
    """The services collection of a pymongo (sync or async) client, in `database` (a solution's own, see
    services.shared.solutions; the default solution's by default)."""
    return client[database][SERVICES_COLLECTION]
