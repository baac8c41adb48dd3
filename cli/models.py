"""The API's v1beta1 answers, as far as the CLI reads them. Unknown fields are kept (`extra="allow"`),
so `--json` prints everything the API said, and dates stay the API's ISO 8601 strings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class FileInfo(ApiModel):
    id: str
    filename: str
    length: int
    upload_date: str
    sha256: str | None = None


class Uploaded(ApiModel):
    id: str
    filename: str
    length: int
    sha256: str
    duplicate: bool


class Launched(ApiModel):
    id: str


class OutputFile(ApiModel):
    run: int
    file_id: str
    filename: str


class ServiceSummary(ApiModel):
    id: str
    image: str
    version: str
    description: str = ""
    job_type: str | None = None
    reps: int | None = None
    created_at: str
    status: str
    phase: str | None = None
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    total: int = 0
    outputs: int = 0
    message: str | None = None


class StudyOutput(OutputFile):
    replication: int


class ScenarioStatus(ApiModel):
    name: str
    runs: list[int]
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    output_files: list[StudyOutput] = Field(default_factory=list)


class SummaryFiles(ApiModel):
    json_file_id: str
    csv_file_id: str


class ServiceStatus(ServiceSummary):
    output_files: list[OutputFile] = Field(default_factory=list)
    scenarios: list[ScenarioStatus] | None = None  # a study's
    summary: SummaryFiles | None = None  # a study's, once written


class Terminated(ApiModel):
    id: str
    resource_deleted: bool
    record_deleted: bool
