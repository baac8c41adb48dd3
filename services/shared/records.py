"""The services record: one MongoDB document per launched service, shared by the API and the operator."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field

from .names import RECORDS_DATABASE, SERVICES_COLLECTION


class OutputFile(BaseModel):
    """One file a run wrote to /output, stored in GridFS by the operator."""

    run: int = Field(ge=0)
    file_id: str
    filename: str


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

    def to_document(self, service_id: ObjectId) -> dict[str, Any]:
        document = self.model_dump(mode="python")
        document["_id"] = service_id
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> ServiceRecord:
        return cls.model_validate(document)

    def outputs_of_run(self, run: int) -> list[OutputFile]:
        return sorted((o for o in self.output_files if o.run == run), key=lambda o: o.filename)


def services_collection(client: Any) -> Any:
    """The services collection of a pymongo (sync or async) client."""
    return client[RECORDS_DATABASE][SERVICES_COLLECTION]
