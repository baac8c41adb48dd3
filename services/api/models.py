"""Request and response bodies: typed, so that validation and the OpenAPI document are exact.

Everything a caller sends is checked here before anything is written (FastAPI answers 422 with the
failing field); the rules mirror the Analytics CRD's (services.shared.crd), so Kubernetes never
refuses what the API accepted.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Self

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.shared.crd import ENV_NAME_PATTERN, MAX_REPS, JobType, Phase
from services.shared.records import OutputFile, ServiceRecord
from services.shared.status import Condition, ServiceState
from services.shared.validation import RESERVED_ENV_NAMES, is_cron, is_env_name, is_safe_filename

# A repository name as Docker's distribution/reference grammar has it: optional registry host (with
# port), then lower-case path components. No tag and no digest: the tag goes in `version`.
_HOST = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?"
)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_PATTERN = re.compile(rf"^(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
OBJECT_ID_PATTERN = r"^[0-9a-fA-F]{24}$"
# What services.shared.validation.is_safe_filename accepts (it also refuses "..").
SAFE_FILENAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,254}$"

MAX_ENV = 256
MAX_ENV_VALUE = 32768
MAX_MOUNT_FILES = 100
MAX_DESCRIPTION = 4096


class AnaSpec(BaseModel):
    """An analytics module: a long-running service, a schedule, or runs on demand."""

    model_config = ConfigDict(extra="forbid")

    job_type: JobType
    reps: int | None = Field(default=None, ge=1, le=MAX_REPS, description="Runs (not for persistent).")
    schedule: str | None = Field(default=None, description="Cron schedule, only for scheduled jobs.")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and not is_cron(value):
            raise ValueError(
                f"{value!r} is not a valid cron schedule (five fields, or a macro such as @daily)"
            )
        return value

    @model_validator(mode="after")
    def _job_type_rules(self) -> Self:
        if self.job_type is JobType.PERSISTENT and self.reps is not None:
            raise ValueError("a persistent job takes no reps")
        if self.job_type in (JobType.SCHEDULED, JobType.ONDEMAND) and self.reps is None:
            raise ValueError(f"a {self.job_type} job needs reps")
        if self.job_type is JobType.SCHEDULED and self.schedule is None:
            raise ValueError("a scheduled job needs a schedule")
        if self.job_type is not JobType.SCHEDULED and self.schedule is not None:
            raise ValueError("only a scheduled job takes a schedule")
        return self


class SimSpec(BaseModel):
    """A simulation: a batch of `reps` independent runs, started now (an ondemand job)."""

    model_config = ConfigDict(extra="forbid")

    reps: int = Field(default=1, ge=1, le=MAX_REPS, description=f"Independent runs (1..{MAX_REPS}).")


class LaunchRequest(BaseModel):
    """What to run. Give exactly one of `ana` or `sim`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "image": "ghcr.io/cam-digital-hospitals/digital-hosp-des",
                    "version": "latest",
                    "description": "Histopathology sample flow simulation",
                    "mount_files": {"669a4eee364a1b751c550b02": "input.xlsx"},
                    "env": {"INPUT_EXCEL_FILE": "/input/input.xlsx", "OUTPUT_FOLDER": "/output"},
                    "sim": {"reps": 2},
                }
            ]
        },
    )

    image: str = Field(
        min_length=1,
        max_length=255,
        description="Image repository, without tag.",
        json_schema_extra={"pattern": IMAGE_PATTERN.pattern},
    )
    version: str = Field(
        default="latest", description="Image tag.", json_schema_extra={"pattern": TAG_PATTERN.pattern}
    )
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    port: int | None = Field(default=None, ge=1, le=65535, description="Port a persistent module serves.")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables of the module.",
        json_schema_extra={
            "propertyNames": {"pattern": ENV_NAME_PATTERN},
            "additionalProperties": {"type": "string", "maxLength": MAX_ENV_VALUE},
            "maxProperties": MAX_ENV,
        },
    )
    mount_files: dict[str, str] = Field(
        default_factory=dict,
        description="Uploaded file id → file name under /input in the module.",
        json_schema_extra={
            "propertyNames": {"pattern": OBJECT_ID_PATTERN},
            "additionalProperties": {"type": "string", "pattern": SAFE_FILENAME_PATTERN},
            "maxProperties": MAX_MOUNT_FILES,
        },
    )
    ana: AnaSpec | None = None
    sim: SimSpec | None = None

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        if not IMAGE_PATTERN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not an image repository name (such as ghcr.io/org/module); "
                "give the tag in `version`"
            )
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not TAG_PATTERN.fullmatch(value):
            raise ValueError(f"{value!r} is not an image tag (letters, digits, '_', '.', '-'; at most 128)")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_ENV:
            raise ValueError(f"at most {MAX_ENV} environment variables")
        for name, text in value.items():
            if not is_env_name(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
            if name in RESERVED_ENV_NAMES:
                raise ValueError(f"{name} is set by the platform in every run and cannot be overridden")
            if len(text) > MAX_ENV_VALUE:
                raise ValueError(f"the value of {name} is longer than {MAX_ENV_VALUE} characters")
        return value

    @field_validator("mount_files")
    @classmethod
    def _mount_files(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_MOUNT_FILES:
            raise ValueError(f"at most {MAX_MOUNT_FILES} mount_files")
        for file_id, name in value.items():
            if not re.fullmatch(OBJECT_ID_PATTERN, file_id):
                raise ValueError(f"{file_id!r} is not a file id (24 hexadecimal digits)")
            if not is_safe_filename(name):
                raise ValueError(
                    f"{name!r} is not a safe file name (letters, digits, '_', '.', '+', '-'; "
                    "no '/', '..', spaces or shell metacharacters)"
                )
        if len(set(value.values())) != len(value):
            raise ValueError("two mount_files have the same file name")
        return {file_id.lower(): name for file_id, name in value.items()}

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.ana is None) == (self.sim is None):
            raise ValueError("give exactly one of `ana` or `sim`")
        if self.port is not None and self.job_type is JobType.ONDEMAND:
            raise ValueError("an ondemand job (and a simulation) takes no port")
        return self

    @property
    def job_type(self) -> JobType:
        return self.ana.job_type if self.ana is not None else JobType.ONDEMAND

    @property
    def reps(self) -> int | None:
        return self.ana.reps if self.ana is not None else self.sim.reps if self.sim is not None else None

    def record(self) -> ServiceRecord:
        return ServiceRecord(
            image=self.image,
            version=self.version,
            description=self.description,
            mount_files=self.mount_files,
            reps=self.reps,
            env=self.env,
        )

    def analytics_spec(self) -> dict[str, Any]:
        """The Analytics resource's `spec`."""
        spec: dict[str, Any] = {
            "image": f"{self.image}:{self.version}",
            "description": self.description,
            "jobType": self.job_type.value,
            "env": dict(self.env),
        }
        if self.reps is not None:
            spec["reps"] = self.reps
        if self.ana is not None and self.ana.schedule is not None:
            spec["schedule"] = self.ana.schedule
        if self.port is not None:
            spec["port"] = self.port
        return spec


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


class ServiceStatus(ServiceSummary):
    output_files: list[OutputFile] = Field(description="Collected outputs, in run order.")
    conditions: list[Condition]


class TerminateResponse(BaseModel):
    id: str
    resource_deleted: bool = Field(description="An Analytics resource existed and is being deleted.")
    record_deleted: bool = Field(description="A services record existed and was deleted.")


class FileInfo(BaseModel):
    id: str
    filename: str
    length: int
    chunk_size: int
    upload_date: datetime
    sha256: str | None = Field(description="SHA-256 of the content (files uploaded through the API).")
    content_type: str | None
    metadata: dict[str, Any] = Field(description="The GridFS file's metadata.")

    @classmethod
    def of(cls, doc: dict[str, Any]) -> FileInfo:
        metadata = doc.get("metadata") or {}
        return cls(
            id=str(doc["_id"]),
            filename=str(doc.get("filename") or ""),
            length=int(doc["length"]),
            chunk_size=int(doc["chunkSize"]),
            upload_date=doc["uploadDate"],
            sha256=metadata.get("sha256"),
            content_type=metadata.get("content_type") or doc.get("contentType"),
            metadata=_jsonable(metadata),
        )


class UploadResponse(BaseModel):
    id: str
    filename: str
    length: int
    sha256: str
    duplicate: bool = Field(description="True: the same content was already stored; this is its id.")


class Health(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    status: str
    mongodb: str
    kubernetes: str


class ErrorBody(BaseModel):
    detail: str | list[dict[str, Any]]


def _jsonable(value: Any) -> Any:
    """BSON values that JSON lacks (ObjectId) as strings."""
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


_ERROR_DESCRIPTIONS = {
    400: "Malformed request body",
    401: "Missing or wrong bearer token",
    403: "The read token cannot change anything",
    404: "Not found",
    409: "In use",
    413: "Larger than the configured limit",
    415: "Unsupported body type",
    422: "Invalid input",
    502: "Kubernetes refused the request",
    503: "MongoDB or Kubernetes unreachable (or no API token configured)",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses an endpoint can answer, all `{"detail": ...}`."""
    return {code: {"model": ErrorBody, "description": _ERROR_DESCRIPTIONS[code]} for code in codes}
