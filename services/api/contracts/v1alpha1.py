"""v1alpha1: the original dtpoc platform's contract, field for field and status for status, so that a
client written for it works unchanged. Additions only (more fields, `warnings`, `Link` paging); where
the platform knows more than the original said, it is in a field of its own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.shared.crd import JobType, Phase
from services.shared.records import OutputFile, ServiceRecord
from services.shared.status import Condition, ServiceState

from ..models import SeedLaunchRequest, jsonable
from ..uploads import StoredFile
from ..views import Launched, ServiceView, Terminated
from .base import Answer, Contract

FILE_EXISTS = "File already exists"
FILE_DELETED = "File deleted successfully"
SERVICE_TERMINATED = "Service terminated successfully"


def seed_date(value: datetime) -> str:
    """A date as the original's JSON had it: ISO 8601 in UTC without an offset (a naive datetime)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat()


class SeedFile(BaseModel):
    file_id: str
    filename: str
    length: int
    uploadDate: str = Field(description="ISO 8601, UTC, without an offset (as the original).")
    metadata: dict[str, Any] | None = Field(
        description="The GridFS file's metadata: `hash` (MD5), and from this platform also `sha256` and "
        "`content_type`; outputs carry `service_id` and `run`."
    )


class SeedUpload(BaseModel):
    file_id: str
    filename: str = Field(description="The name sent with this upload.")
    message: str | None = Field(
        default=None, description=f'"{FILE_EXISTS}" when the same content was already stored.'
    )
    # Additions.
    length: int
    sha256: str
    duplicate: bool


class SeedLaunched(BaseModel):
    id: str
    warnings: list[str] = Field(
        default_factory=list, description="Parts of the request that were ignored, or defaults used."
    )


class SeedService(BaseModel):
    id: str
    image: str
    version: str
    description: str
    reps: int | None
    mount_files: dict[str, str] = Field(description="File id → name under /input.")
    output_files: dict[str, str] = Field(description="Output file id → its name, in run order.")
    created_at: float = Field(description="Epoch seconds.")
    active_runs: int
    succeeded_runs: int
    failed_runs: int
    total_runs: int = Field(description="Runs so far: active + succeeded + failed.")
    status: ServiceState = Field(description="pending (not started yet), running, ok or error.")
    # Additions.
    job_type: JobType | None
    phase: Phase | None
    message: str | None


class SeedServiceStatus(BaseModel):
    active_runs: int
    succeeded_runs: int
    failed_runs: int
    total_runs: int = Field(description="Runs so far: active + succeeded + failed.")
    status: ServiceState = Field(description="pending (not started yet), running, ok or error.")
    output_files: list[str] = Field(description="Output file ids in run order; /output/{idx} returns idx.")
    # Additions.
    output_details: list[OutputFile] = Field(description="output_files[i]'s run and name, for each i.")
    id: str
    image: str
    version: str
    description: str
    reps: int | None
    created_at: float = Field(description="Epoch seconds.")
    job_type: JobType | None
    phase: Phase | None
    message: str | None
    conditions: list[Condition]


class SeedMessage(BaseModel):
    message: str
    file_id: str


class SeedTerminated(BaseModel):
    message: str
    # Additions.
    id: str
    resource_deleted: bool
    record_deleted: bool


class V1Alpha1(Contract):
    version = "v1alpha1"
    default_limit = 10  # the original's
    # The original had no upper bound; clients asked for "everything" with large limits. Bounded so a
    # page stays in memory, far above any page the original could answer quickly.
    max_limit = 10_000
    launch_model = SeedLaunchRequest
    file_model = SeedFile
    service_model = SeedService
    status_model = SeedServiceStatus
    launched_model = SeedLaunched
    terminated_model = SeedTerminated
    upload_answer = Answer(200, SeedUpload)
    delete_file_answer = Answer(200, SeedMessage)
    list_fields: ClassVar[dict[str, int]] = {
        "image": 1,
        "version": 1,
        "description": 1,
        "reps": 1,
        "created_at": 1,
        "mount_files": 1,
        "output_files": 1,
    }
    output_idx_description = "Index into the status's `output_files` (outputs in run order), from 0."

    def file(self, doc: dict[str, Any]) -> SeedFile:
        metadata = doc.get("metadata")
        return SeedFile(
            file_id=str(doc["_id"]),
            filename=str(doc.get("filename") or ""),
            length=int(doc["length"]),
            uploadDate=seed_date(doc["uploadDate"]),
            metadata=jsonable(metadata) if isinstance(metadata, dict) else None,
        )

    def uploaded(self, stored: StoredFile) -> tuple[int, SeedUpload]:
        body = SeedUpload(
            file_id=str(stored.id),
            filename=stored.given_filename,
            message=FILE_EXISTS if stored.duplicate else None,
            length=stored.length,
            sha256=stored.sha256,
            duplicate=stored.duplicate,
        )
        return 200, body

    def file_deleted(self, file_id: str) -> JSONResponse:
        return JSONResponse(SeedMessage(message=FILE_DELETED, file_id=file_id).model_dump())

    def _runs(self, view: ServiceView) -> dict[str, Any]:
        return {
            "active_runs": view.active,
            "succeeded_runs": view.succeeded,
            "failed_runs": view.failed,
            "total_runs": view.runs,
            "status": view.state,
        }

    def service(self, view: ServiceView) -> SeedService:
        record = view.record
        return SeedService(
            id=view.id,
            image=record.image,
            version=record.version,
            description=record.description,
            reps=record.reps,
            mount_files=record.mount_files,
            output_files={o.file_id: o.filename for o in view.output_files},
            created_at=record.created_at.timestamp(),
            **self._runs(view),
            job_type=view.job_type,
            phase=view.phase,
            message=view.message,
        )

    def status(self, view: ServiceView) -> SeedServiceStatus:
        record = view.record
        outputs = view.output_files
        return SeedServiceStatus(
            **self._runs(view),
            output_files=[o.file_id for o in outputs],
            output_details=outputs,
            id=view.id,
            image=record.image,
            version=record.version,
            description=record.description,
            reps=record.reps,
            created_at=record.created_at.timestamp(),
            job_type=view.job_type,
            phase=view.phase,
            message=view.message,
            conditions=view.conditions,
        )

    def launched(self, launched: Launched) -> SeedLaunched:
        return SeedLaunched(id=launched.id, warnings=launched.warnings)

    def terminated(self, terminated: Terminated) -> SeedTerminated:
        return SeedTerminated(
            message=SERVICE_TERMINATED,
            id=terminated.id,
            resource_deleted=terminated.resource_deleted,
            record_deleted=terminated.record_deleted,
        )

    def output(self, record: ServiceRecord, idx: int, name: str | None) -> OutputFile | None:
        """Entry idx of the status's `output_files` (only those named `name`, when given)."""
        outputs = [o for o in record.outputs_in_order() if name is None or o.filename == name]
        return outputs[idx] if idx < len(outputs) else None
