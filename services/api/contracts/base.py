"""What an API version decides: its path, its paging, its request model and how it shapes each answer.

The routers (services.api.routers) are written once against this interface and mounted once per
version; a version only maps the version-neutral results (services.api.views) to its bodies.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fastapi import Response
from pydantic import BaseModel

from services.shared.records import OutputFile, ServiceRecord

from ..models import SeedLaunchRequest
from ..uploads import StoredFile
from ..views import Launched, ServiceView, Terminated

API_ROOT = "/api/orchestrator"


@dataclass(frozen=True)
class Answer:
    """How a route answers when it succeeds: status code, body model (None: no body) and the other
    successful answers it may give (for the OpenAPI document)."""

    status_code: int
    model: type[BaseModel] | None
    also: dict[int | str, dict[str, Any]] = field(default_factory=dict)


class Contract(ABC):
    """One API version."""

    version: ClassVar[str]
    default_limit: ClassVar[int]
    max_limit: ClassVar[int]
    launch_model: ClassVar[type[SeedLaunchRequest]]
    file_model: ClassVar[type[BaseModel]]
    service_model: ClassVar[type[BaseModel]]
    status_model: ClassVar[type[BaseModel]]
    launched_model: ClassVar[type[BaseModel]]
    terminated_model: ClassVar[type[BaseModel]]
    upload_answer: ClassVar[Answer]
    delete_file_answer: ClassVar[Answer]
    # Fields of a services record that a list item shows (env and the like can be large).
    list_fields: ClassVar[dict[str, int]]

    @property
    def base_path(self) -> str:
        return f"{API_ROOT}/{self.version}"

    @abstractmethod
    def file(self, doc: dict[str, Any]) -> BaseModel:
        """A GridFS `fs.files` document as a list item."""

    @abstractmethod
    def uploaded(self, stored: StoredFile) -> tuple[int, BaseModel]:
        """The status and body of an upload's answer."""

    @abstractmethod
    def file_deleted(self, file_id: str) -> Response:
        """The answer to a file's deletion."""

    @abstractmethod
    def service(self, view: ServiceView) -> BaseModel:
        """A list item of GET /service/."""

    @abstractmethod
    def status(self, view: ServiceView) -> BaseModel:
        """GET /service/{id}/status."""

    @abstractmethod
    def launched(self, launched: Launched) -> BaseModel:
        """POST /service/launch (202)."""

    @abstractmethod
    def terminated(self, terminated: Terminated) -> BaseModel:
        """DELETE /service/{id}/terminate (200)."""

    @abstractmethod
    def output(self, record: ServiceRecord, idx: int, name: str | None) -> OutputFile | None:
        """Which output GET /service/{id}/output/{idx} returns (None: there is none)."""

    output_idx_description: ClassVar[str]
