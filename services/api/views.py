"""What the endpoints find out, before any version shapes it: one implementation for every API version.

Each version (services.api.contracts) maps these to its own response bodies; none of them queries
anything itself.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pydantic import ValidationError

from services.shared.crd import JobType, Phase
from services.shared.records import OutputFile, ServiceRecord, parse_created_at, parse_output_files
from services.shared.status import AnalyticsStatus, Condition, ScenarioRuns, ServiceState
from services.shared.study import run_number

log = logging.getLogger(__name__)

# A record whose Analytics resource is missing for longer than this is reported as an error (during
# a launch the record exists a moment before the resource).
MISSING_RESOURCE_GRACE = timedelta(seconds=60)


def read_record(doc: dict[str, Any]) -> tuple[ServiceRecord, str | None]:
    """The record in `doc`, and a message when part of it is unreadable (a record written by hand, say):
    one bad document must not break a listing, and is never a 500. Records of the original platform
    are readable (see services.shared.records)."""
    if "created_at" not in doc and isinstance(doc.get("_id"), ObjectId):
        doc = {**doc, "created_at": doc["_id"].generation_time}
    try:
        return ServiceRecord.from_document(doc), None
    except ValidationError as exc:
        log.warning("services record %s is not readable: %s", doc.get("_id"), exc)
    outputs = []
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        for entry in parse_output_files(doc.get("output_files")):
            with contextlib.suppress(ValidationError, TypeError):
                outputs.append(OutputFile.model_validate(entry))
    created_at = parse_created_at(doc.get("created_at"))
    if not isinstance(created_at, datetime):
        created_at = datetime.now(UTC)
    reps = doc.get("reps") if isinstance(doc.get("reps"), int) else None
    record = ServiceRecord.model_construct(
        image=str(doc.get("image", "")),
        version=str(doc.get("version", "")),
        description=str(doc.get("description") or ""),
        mount_files={},
        reps=reps,
        env={},
        created_at=created_at,
        output_files=outputs,
    )
    return record, "the services record is not readable"


def older_than_grace(doc: dict[str, Any], now: datetime) -> bool:
    record, _ = read_record(doc)
    return now - record.created_at > MISSING_RESOURCE_GRACE


@dataclass(frozen=True)
class ScenarioGroup:
    """One scenario of a study: its runs (run numbers, replication r is runs[r]), their counts as the
    operator reports them (0 until it does), and their outputs."""

    name: str
    runs: list[int]
    active: int
    succeeded: int
    failed: int
    output_files: list[OutputFile]


@dataclass
class ServiceView:
    """A service: its record, and its runs as the operator reports them on the Analytics resource."""

    id: str
    record: ServiceRecord
    job_type: JobType | None
    state: ServiceState
    phase: Phase | None
    active: int
    succeeded: int
    failed: int
    outputs: int  # output files collected so far
    message: str | None
    conditions: list[Condition] = field(default_factory=list)
    scenario_runs: list[ScenarioRuns] = field(default_factory=list)  # the operator's, for a study

    @property
    def scenarios(self) -> list[ScenarioGroup] | None:
        """A study's runs and outputs by scenario, in the study's order; None for other services."""
        study = self.record.study
        if study is None:
            return None
        reported = {runs.name: runs for runs in self.scenario_runs}
        outputs = self.output_files
        groups = []
        for k, scenario in enumerate(study.scenarios):
            numbers = [run_number(k, r, study.reps) for r in range(study.reps)]
            counts = reported.get(scenario.name) or ScenarioRuns(name=scenario.name)
            groups.append(
                ScenarioGroup(
                    name=scenario.name,
                    runs=numbers,
                    active=counts.active,
                    succeeded=counts.succeeded,
                    failed=counts.failed,
                    output_files=[o for o in outputs if numbers[0] <= o.run <= numbers[-1]],
                )
            )
        return groups

    @property
    def runs(self) -> int:
        """Runs so far: active, succeeded and failed (the original's `total_runs`)."""
        return self.active + self.succeeded + self.failed

    @property
    def planned(self) -> int:
        """Runs planned (reps of an ondemand job), otherwise runs so far; never fewer than so far."""
        reps = self.record.reps if self.job_type is JobType.ONDEMAND and self.record.reps else 0
        return max(reps, self.runs)

    @property
    def output_files(self) -> list[OutputFile]:
        """Every output, in run order (then by name)."""
        return self.record.outputs_in_order()

    @classmethod
    def of(cls, doc: dict[str, Any], resource: dict[str, Any] | None, now: datetime) -> ServiceView:
        """The view of a services document and its Analytics resource (None: not found)."""
        record, message = read_record(doc)
        job_type: JobType | None = None
        phase = None
        if resource is None:
            status = AnalyticsStatus()
            if now - record.created_at > MISSING_RESOURCE_GRACE:
                state, message = ServiceState.ERROR, "the Analytics resource is missing"
            else:
                state = ServiceState.PENDING
        else:
            with contextlib.suppress(ValueError):
                job_type = JobType(str((resource.get("spec") or {}).get("jobType")))
            try:
                status = AnalyticsStatus.of(resource)
            except ValidationError:
                status, message = AnalyticsStatus(), "the resource's status is not readable"
            state = status.state
            phase = status.phase if "phase" in (resource.get("status") or {}) else None
            explained = [c.message for c in status.conditions if c.message]
            if state is ServiceState.ERROR and explained:
                message = explained[-1]
            elif status.pods_refused:
                message = status.pods_refused
        return cls(
            id=str(doc["_id"]),
            record=record,
            job_type=job_type,
            state=state,
            phase=phase,
            active=status.active,
            succeeded=status.succeeded,
            failed=status.failed,
            outputs=max(status.outputs, len(record.output_files)),
            message=message,
            conditions=status.conditions,
            scenario_runs=status.scenarios,
        )


@dataclass(frozen=True)
class Launched:
    id: str
    warnings: list[str]


@dataclass(frozen=True)
class Terminated:
    id: str
    resource_deleted: bool
    record_deleted: bool
