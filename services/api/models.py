"""Launch requests and the bodies every version shares (health, errors): typed, so that validation and
the OpenAPI document are exact. Each version's responses are in services.api.contracts.

Everything a caller sends is checked here before anything is written (FastAPI answers 422 with the
failing field); the rules mirror the Analytics CRD's (services.shared.crd), so Kubernetes never
refuses what the API accepted. One request model per version: v1alpha1 (SeedLaunchRequest) accepts
what the original platform accepted and ignored, with warnings; v1beta1 (LaunchRequest) refuses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.shared.crd import ENV_NAME_PATTERN, MAX_REPS, JobType
from services.shared.records import ScenarioRecord, ServiceRecord, StudyRecord
from services.shared.study import MAX_SCENARIO_NAME, SCENARIO_ENV, SCENARIO_NAME_PATTERN, is_scenario_name
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


ENV_SCHEMA: dict[str, Any] = {
    "propertyNames": {"pattern": ENV_NAME_PATTERN},
    "additionalProperties": {"type": "string", "maxLength": MAX_ENV_VALUE},
    "maxProperties": MAX_ENV,
}
MOUNT_FILES_SCHEMA: dict[str, Any] = {
    "propertyNames": {"pattern": OBJECT_ID_PATTERN},
    "additionalProperties": {"type": "string", "pattern": SAFE_FILENAME_PATTERN},
    "maxProperties": MAX_MOUNT_FILES,
}


def check_env(value: dict[str, str] | None, reserved: frozenset[str] = RESERVED_ENV_NAMES) -> dict[str, str]:
    """Environment variables a launch may set: valid names, none the platform sets, values bounded."""
    value = value or {}
    if len(value) > MAX_ENV:
        raise ValueError(f"at most {MAX_ENV} environment variables")
    for name, text in value.items():
        if not is_env_name(name):
            raise ValueError(f"{name!r} is not a valid environment variable name")
        if name in reserved:
            raise ValueError(f"{name} is set by the platform in every run and cannot be overridden")
        if len(text) > MAX_ENV_VALUE:
            raise ValueError(f"the value of {name} is longer than {MAX_ENV_VALUE} characters")
    return value


def check_mount_files(value: dict[str, str] | None) -> dict[str, str]:
    """Stored file id -> plain file name under /input; ids in lower case."""
    value = value or {}
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


class SeedAnaSpec(BaseModel):
    """An analytics module: a long-running service, a schedule, or runs on demand."""

    model_config = ConfigDict(extra="allow")

    job_type: JobType
    reps: int | None = Field(
        default=None, ge=1, le=MAX_REPS, description="Runs (scheduled and ondemand; not for persistent)."
    )
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
        # Refused by every version (the original's CRD refused them too); what the original let through
        # harmlessly is judged by the launch request (SeedLaunchRequest.ignored).
        if self.job_type is JobType.PERSISTENT and self.reps is not None:
            raise ValueError("a persistent job takes no reps")
        if self.job_type is JobType.SCHEDULED and self.reps is None:
            raise ValueError("a scheduled job needs reps")
        if self.job_type is JobType.SCHEDULED and self.schedule is None:
            raise ValueError("a scheduled job needs a schedule")
        return self


class ScenarioSpec(BaseModel):
    """One scenario of a study: a name, and its own inputs and env over the service's."""

    model_config = ConfigDict(extra="forbid")  # new with studies: strict in every API version

    name: str = Field(
        min_length=1,
        max_length=MAX_SCENARIO_NAME,
        description="Unique in the study; a DNS label (a-z, 0-9, '-'). Each run gets it as SCENARIO.",
        json_schema_extra={"pattern": SCENARIO_NAME_PATTERN},
    )
    mount_files: dict[str, str] | None = Field(
        default=None,
        description="The scenario's own inputs (file id → name under /input), over the service's "
        "`mount_files` (a scenario file replaces a service file of the same name).",
        json_schema_extra=MOUNT_FILES_SCHEMA,
    )
    env: dict[str, str] | None = Field(
        default=None,
        description="The scenario's env, merged over the service's `env`.",
        json_schema_extra=ENV_SCHEMA,
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not is_scenario_name(value):
            raise ValueError(
                f"{value!r} is not a scenario name (lower-case letters, digits and '-', starting and "
                f"ending with a letter or digit; at most {MAX_SCENARIO_NAME})"
            )
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str] | None) -> dict[str, str]:
        return check_env(value, RESERVED_ENV_NAMES | {SCENARIO_ENV})

    @field_validator("mount_files")
    @classmethod
    def _mount_files(cls, value: dict[str, str] | None) -> dict[str, str]:
        return check_mount_files(value)

    def record(self) -> ScenarioRecord:
        return ScenarioRecord(name=self.name, mount_files=self.mount_files or {}, env=self.env or {})


class SeedSimSpec(BaseModel):
    """A simulation, started now (an ondemand job): a batch of `reps` independent runs, or with
    `scenarios` a study: `reps` runs of each scenario."""

    model_config = ConfigDict(extra="allow")

    reps: int = Field(
        default=1,
        ge=1,
        le=MAX_REPS,
        description=f"Independent runs (1..{MAX_REPS}); of each scenario in a study.",
    )
    scenarios: list[ScenarioSpec] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_REPS,
        description=f"A study: every scenario is run `reps` times (at most {MAX_REPS} runs in all). "
        "Run k*reps + r is replication r of scenario k; each run gets SCENARIO (the name) and RUN_INDEX "
        "(r). When every run is done the operator writes the study summary (/service/{id}/summary).",
    )

    @field_validator("scenarios")
    @classmethod
    def _unique_names(cls, value: list[ScenarioSpec] | None) -> list[ScenarioSpec] | None:
        names = [scenario.name for scenario in value or ()]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"scenario names must be unique; repeated: {', '.join(repeated)}")
        return value

    @model_validator(mode="after")
    def _runs_capped(self) -> Self:
        if self.scenarios is not None and len(self.scenarios) * self.reps > MAX_REPS:
            raise ValueError(
                f"{len(self.scenarios)} scenarios * {self.reps} reps = {len(self.scenarios) * self.reps} "
                f"runs; a study runs at most {MAX_REPS}"
            )
        return self


@dataclass(frozen=True)
class Unused:
    """Part of a launch request that would not be used (or a default that fills a gap)."""

    field: str
    problem: str
    outcome: str

    @property
    def warning(self) -> str:
        return f"{self.field}: {self.problem}; {self.outcome}"


def _is_empty(kind: BaseModel | None) -> bool:
    """`{}`: the original counted only non-empty `ana`/`sim` objects (its own OpenAPI example sends
    `"sim": {}` next to `ana`)."""
    return kind is not None and not kind.model_fields_set and not kind.model_extra


def _extras(prefix: str, model: BaseModel | None) -> list[str]:
    return [f"{prefix}{name}" for name in (model.model_extra or {})] if model is not None else []


class SeedLaunchRequest(BaseModel):
    """What to run, as the original platform's clients send it (v1alpha1). Give one of `ana` or `sim`.

    What the original accepted and ignored is accepted and ignored here too, each named in the
    response's `warnings`: unknown fields, `port` on an ondemand job or a simulation, `schedule` on a
    job that is not scheduled, an empty `sim: {}` next to `ana`; an ondemand job without `reps` runs
    once (a Kubernetes Job's default). Everything that could harm is refused as in v1beta1.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "image": "ghcr.io/cam-digital-hospitals/ana-hpath-sim",
                    "version": "latest",
                    "description": "An analytics module that uses the Histopathology BIM runner times "
                    "to simulate sample flow and reports KPIs",
                    "port": 8000,
                    "env": {"INPUT_EXCEL_FILE": "/input/hpath_sim_input.xlsx", "OUTPUT_FOLDER": "/output"},
                    "mount_files": {"668481b1af010b6fdc495b6c": "hpath_sim_input.xlsx"},
                    "ana": {"job_type": "ondemand"},
                }
            ]
        },
    )
    STRICT: ClassVar[bool] = False

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
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Port a persistent module serves (Service and Ingress)."
    )
    env: dict[str, str] | None = Field(
        default=None,
        description="Environment variables of the module (null: none).",
        json_schema_extra=ENV_SCHEMA,
    )
    mount_files: dict[str, str] | None = Field(
        default=None,
        description="Uploaded file id → file name under /input in the module (null: none).",
        json_schema_extra=MOUNT_FILES_SCHEMA,
    )
    ana: SeedAnaSpec | None = None
    sim: SeedSimSpec | None = None

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
    def _env(cls, value: dict[str, str] | None) -> dict[str, str]:
        return check_env(value)

    @field_validator("mount_files")
    @classmethod
    def _mount_files(cls, value: dict[str, str] | None) -> dict[str, str]:
        return check_mount_files(value)

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        given = [kind for kind in (self.ana, self.sim) if kind is not None]
        if len(given) == 2 and not self.STRICT and (_is_empty(self.ana) or _is_empty(self.sim)):
            given = [kind for kind in given if not _is_empty(kind)] or given[:1]
        if len(given) != 1:
            raise ValueError("give exactly one of `ana` or `sim`")
        self._check_study()
        ignored = self.ignored()
        if self.STRICT and ignored:
            raise ValueError("; ".join(f"{note.field}: {note.problem}" for note in ignored))
        return self

    def _check_study(self) -> None:
        """What a study's parts only break together: SCENARIO is the platform's, and each scenario's
        merged env and inputs stay within the limits of one run's."""
        study = self.study
        if study is None:
            return
        if SCENARIO_ENV in (self.env or {}):
            raise ValueError(f"env: {SCENARIO_ENV} is set by the platform in every run of a study")
        for index, scenario in enumerate(study.scenarios or ()):
            where = f"sim.scenarios[{index}] ({scenario.name})"
            if len({**(self.env or {}), **(scenario.env or {})}) > MAX_ENV:
                raise ValueError(f"{where}: env and the service's env give more than {MAX_ENV} variables")
            if len(scenario.record().inputs_over(self.mount_files or {})) > MAX_MOUNT_FILES:
                raise ValueError(
                    f"{where}: its and the service's mount_files give more than {MAX_MOUNT_FILES}"
                )

    @property
    def study(self) -> SeedSimSpec | None:
        """The `sim` of a study (one with `scenarios`), else None."""
        kind = self.kind if (self.ana is not None or self.sim is not None) else None
        return kind if isinstance(kind, SeedSimSpec) and kind.scenarios is not None else None

    def scenario_mount_files(self) -> list[tuple[tuple[str | int, ...], dict[str, str]]]:
        """Every `mount_files` of the request with where it is (for the check that each file exists)."""
        found: list[tuple[tuple[str | int, ...], dict[str, str]]] = [
            (("mount_files",), self.mount_files or {})
        ]
        study = self.study
        for index, scenario in enumerate(study.scenarios or () if study is not None else ()):
            found.append((("sim", "scenarios", index, "mount_files"), scenario.mount_files or {}))
        return found

    @property
    def kind(self) -> SeedAnaSpec | SeedSimSpec:
        """The one kind given (an empty `sim: {}` next to `ana` does not count, as in the original)."""
        if self.ana is not None and (self.sim is None or _is_empty(self.sim)):
            return self.ana
        assert self.sim is not None  # _one_kind made sure
        return self.sim

    @property
    def job_type(self) -> JobType:
        kind = self.kind
        return kind.job_type if isinstance(kind, SeedAnaSpec) else JobType.ONDEMAND

    @property
    def reps(self) -> int | None:
        kind = self.kind
        if isinstance(kind, SeedSimSpec):
            return kind.reps * len(kind.scenarios) if kind.scenarios is not None else kind.reps
        if kind.reps is None and kind.job_type is JobType.ONDEMAND:
            return 1  # what a Kubernetes Job without `completions` runs, as the original's did
        return kind.reps

    @property
    def schedule(self) -> str | None:
        kind = self.kind
        return kind.schedule if isinstance(kind, SeedAnaSpec) and kind.job_type is JobType.SCHEDULED else None

    @property
    def effective_port(self) -> int | None:
        return None if self.job_type is JobType.ONDEMAND else self.port

    def ignored(self) -> list[Unused]:
        """What this request gives that would not be used, or leaves out where a default serves. v1alpha1
        answers each as a warning; v1beta1 (LaunchRequest) refuses the request instead."""
        unused = [
            Unused(name, "unknown field", "ignored, as the original platform did")
            for name in _extras("", self) + _extras("ana.", self.ana) + _extras("sim.", self.sim)
        ]
        if self.ana is not None and self.sim is not None:
            empty = "sim" if _is_empty(self.sim) else "ana"
            unused.append(
                Unused(
                    empty,
                    "give exactly one of `ana` or `sim`",
                    "the empty one is ignored, as the original platform did",
                )
            )
        if self.port is not None and self.job_type is JobType.ONDEMAND:
            unused.append(
                Unused(
                    "port",
                    "an ondemand job (and a simulation) takes no port",
                    f"{self.port} is ignored, as the original platform did for modules it does not expose",
                )
            )
        kind = self.kind
        if isinstance(kind, SeedAnaSpec):
            if kind.schedule is not None and kind.job_type is not JobType.SCHEDULED:
                unused.append(
                    Unused(
                        "ana.schedule",
                        "only a scheduled job takes a schedule",
                        "ignored, as the original platform did",
                    )
                )
            if kind.reps is None and kind.job_type is JobType.ONDEMAND:
                unused.append(
                    Unused(
                        "ana.reps",
                        "an ondemand job needs reps",
                        "it runs once (reps 1), as a Kubernetes Job without completions",
                    )
                )
        return unused

    def warnings(self) -> list[str]:
        return [note.warning for note in self.ignored()]

    def record(self) -> ServiceRecord:
        study = self.study
        return ServiceRecord(
            image=self.image,
            version=self.version,
            description=self.description,
            mount_files=self.mount_files or {},
            reps=self.reps,
            env=self.env or {},
            study=(
                StudyRecord(reps=study.reps, scenarios=[s.record() for s in study.scenarios or ()])
                if study is not None
                else None
            ),
        )

    def analytics_spec(self) -> dict[str, Any]:
        """The Analytics resource's `spec`."""
        spec: dict[str, Any] = {
            "image": f"{self.image}:{self.version}",
            "description": self.description,
            "jobType": self.job_type.value,
            "env": dict(self.env or {}),
        }
        if self.reps is not None:
            spec["reps"] = self.reps
        if self.schedule is not None:
            spec["schedule"] = self.schedule
        if self.effective_port is not None:
            spec["port"] = self.effective_port
        study = self.study
        if study is not None:
            # Inputs stay in the record (the operator stages them from there, as the service's).
            spec["study"] = {
                "reps": study.reps,
                "scenarios": [{"name": s.name, "env": dict(s.env or {})} for s in study.scenarios or ()],
            }
        return spec


class AnaSpec(SeedAnaSpec):
    model_config = ConfigDict(extra="forbid")


class SimSpec(SeedSimSpec):
    model_config = ConfigDict(extra="forbid")


class LaunchRequest(SeedLaunchRequest):
    """What to run (v1beta1). Give exactly one of `ana` or `sim`. Strict: a field that would not be
    used (unknown, `port` on an ondemand job, `schedule` on one that is not scheduled) is a 422, so a
    typo never passes unnoticed; an ondemand job needs `reps`."""

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
                },
                {
                    "image": "ghcr.io/cam-digital-hospitals/hospital-lab",
                    "version": "1.0.0",
                    "description": "Staffing study: two scenarios, four replications each",
                    "env": {"INPUT_EXCEL_FILE": "/input/lab.xlsx", "SIM_HOURS": "720"},
                    "sim": {
                        "reps": 4,
                        "scenarios": [
                            {"name": "baseline", "mount_files": {"669a4eee364a1b751c550b02": "lab.xlsx"}},
                            {
                                "name": "more-staff",
                                "mount_files": {"669a4eee364a1b751c550b03": "lab.xlsx"},
                                "env": {"SIM_HOURS": "720"},
                            },
                        ],
                    },
                },
            ]
        },
    )
    STRICT: ClassVar[bool] = True

    ana: AnaSpec | None = None  # type: ignore[assignment]
    sim: SimSpec | None = None  # type: ignore[assignment]


class Health(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    status: str
    mongodb: str
    kubernetes: str


class ErrorBody(BaseModel):
    detail: str | list[dict[str, Any]]


def jsonable(value: Any) -> Any:
    """BSON values that JSON lacks (ObjectId) as strings."""
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


_ERROR_DESCRIPTIONS = {
    400: "Malformed request body",
    401: "Missing or wrong bearer token",
    403: "A token of another solution, or the read token on a change",
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
