"""v1beta1: the platform's own shapes. Ids are `id`, run counts `active`/`succeeded`/`failed`/`total`
(total: runs planned), dates ISO 8601 with their zone, 201 for a new file and 204 for a deletion,
outputs indexed by run, and a strict launch request (LaunchRequest)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from fastapi import Response
from pydantic import BaseModel, Field

from services.shared.crd import JobType, Phase
from services.shared.records import OutputFile, ServiceRecord
from services.shared.status import Condition, ServiceState

from ..models import LaunchRequest, jsonable
from ..uploads import StoredFile
from ..views import Launched, ServiceView, Terminated
from .base import Answer, Contract


class FileInfo(BaseModel):
    id: str
    filename: str
    length: int
    chunk_size: int
    upload_date: datetime
    sha256: str | None = Field(
        description="SHA-256 of the content (files uploaded through the API; for files the original "
        "platform stored, once the same content has been uploaded again)."
    )
    content_type: str | None
    metadata: dict[str, Any] = Field(description="The GridFS file's metadata.")


class UploadResponse(BaseModel):
    id: str
    filename: str
    length: int
    sha256: str
    duplicate: bool = Field(description="True: the same content was already stored; this is its id.")


class LaunchResponse(BaseModel):
    id: str = Field(description="The service id (also the Analytics resource's name).")


class ServiceSummary(BaseModel):
    """A service: its record, and its runs as the operator reports them on the Analytics resource."""

    id: str
    image: str
    version: str
    description: str
    job_type: JobType | None = Field(description="From the Analytics resource; null when it is missing.")
    reps: int | None
    created_at: datetime
    status: ServiceState
    phase: Phase | None = Field(description="The operator's phase; null while it has not written one.")
    active: int = Field(description="Runs running now.")
    succeeded: int
    failed: int
    total: int = Field(description="Runs planned (reps of an ondemand job), otherwise runs so far.")
    outputs: int = Field(description="Output files collected so far.")
    message: str | None = Field(default=None, description="Why the status is what it is, when known.")


class StudyOutput(OutputFile):
    replication: int = Field(ge=0, description="The run's replication within its scenario (its RUN_INDEX).")


class ScenarioStatus(BaseModel):
    """One scenario of a study."""

    name: str
    runs: list[int] = Field(description="Its run numbers (/output/{run}); replication r is runs[r].")
    active: int
    succeeded: int
    failed: int
    output_files: list[StudyOutput] = Field(description="Its collected outputs, in run order.")


class StudySummaryFiles(BaseModel):
    """The study summary (GET /service/{id}/summary, `?format=csv`), stored with the outputs."""

    json_file_id: str
    csv_file_id: str
    created_at: datetime


class ServiceStatus(ServiceSummary):
    output_files: list[OutputFile] = Field(description="Collected outputs, in run order.")
    conditions: list[Condition]
    scenarios: list[ScenarioStatus] | None = Field(
        default=None, description="A study's runs and outputs by scenario; null for other services."
    )
    summary: StudySummaryFiles | None = Field(
        default=None,
        description="A study's summary once every run is finished and collected (null until then, and "
        "for other services).",
    )


class TerminateResponse(BaseModel):
    id: str
    resource_deleted: bool = Field(description="An Analytics resource existed and is being deleted.")
    record_deleted: bool = Field(description="A services record existed and was deleted.")


class V1Beta1(Contract):
    version = "v1beta1"
    default_limit = 100
    max_limit = 1000
    launch_model = LaunchRequest
    file_model = FileInfo
    service_model = ServiceSummary
    status_model = ServiceStatus
    launched_model = LaunchResponse
    terminated_model = TerminateResponse
    upload_answer = Answer(
        201,
        UploadResponse,
        {200: {"model": UploadResponse, "description": "The same content was already stored: its id"}},
    )
    delete_file_answer = Answer(204, None)
    list_fields: ClassVar[dict[str, int]] = {
        "image": 1,
        "version": 1,
        "description": 1,
        "reps": 1,
        "created_at": 1,
    }
    output_idx_description = "Run index, from 0."

    def file(self, doc: dict[str, Any]) -> FileInfo:
        metadata = doc.get("metadata") or {}
        return FileInfo(
            id=str(doc["_id"]),
            filename=str(doc.get("filename") or ""),
            length=int(doc["length"]),
            chunk_size=int(doc["chunkSize"]),
            upload_date=doc["uploadDate"],
            sha256=metadata.get("sha256"),
            content_type=metadata.get("content_type") or doc.get("contentType"),
            metadata=jsonable(metadata),
        )

    def uploaded(self, stored: StoredFile) -> tuple[int, UploadResponse]:
        body = UploadResponse(
            id=str(stored.id),
            filename=stored.filename,
            length=stored.length,
            sha256=stored.sha256,
            duplicate=stored.duplicate,
        )
        return (200 if stored.duplicate else 201), body

    def file_deleted(self, file_id: str) -> Response:
        return Response(status_code=204)

    def _summary(self, view: ServiceView) -> dict[str, Any]:
        record = view.record
        return {
            "id": view.id,
            "image": record.image,
            "version": record.version,
            "description": record.description,
            "job_type": view.job_type,
            "reps": record.reps,
            "created_at": record.created_at,
            "status": view.state,
            "phase": view.phase,
            "active": view.active,
            "succeeded": view.succeeded,
            "failed": view.failed,
            "total": view.planned,
            "outputs": view.outputs,
            "message": view.message,
        }

    def service(self, view: ServiceView) -> ServiceSummary:
        return ServiceSummary(**self._summary(view))

    def status(self, view: ServiceView) -> ServiceStatus:
        groups = view.scenarios
        summary = view.record.study_summary
        return ServiceStatus(
            **self._summary(view),
            output_files=view.output_files,
            conditions=view.conditions,
            scenarios=(
                [
                    ScenarioStatus(
                        name=group.name,
                        runs=group.runs,
                        active=group.active,
                        succeeded=group.succeeded,
                        failed=group.failed,
                        output_files=[
                            StudyOutput(**o.model_dump(), replication=group.runs.index(o.run))
                            for o in group.output_files
                        ],
                    )
                    for group in groups
                ]
                if groups is not None
                else None
            ),
            summary=StudySummaryFiles(**summary.model_dump()) if summary is not None else None,
        )

    def launched(self, launched: Launched) -> LaunchResponse:
        return LaunchResponse(id=launched.id)

    def terminated(self, terminated: Terminated) -> TerminateResponse:
        return TerminateResponse(
            id=terminated.id,
            resource_deleted=terminated.resource_deleted,
            record_deleted=terminated.record_deleted,
        )

    def output(self, record: ServiceRecord, idx: int, name: str | None) -> OutputFile | None:
        """Run idx's output: the file named `name`, or the first of the run by name."""
        outputs = record.outputs_of_run(idx)
        if name is None:
            return outputs[0] if outputs else None
        return next((o for o in outputs if o.filename == name), None)
