"""The Analytics resource's status: computed from its children and the record, written safely.

Fields (see `services.shared.status.AnalyticsStatus`): phase, active, succeeded, failed, outputs,
conditions. Phases: ondemand Pending -> Running -> Succeeded | Failed (terminal only once every
finished run's outputs are collected, so "Succeeded" means the outputs can be fetched); scheduled
Scheduled; persistent Progressing | Available; Failed also for a resource that cannot be launched.

Conditions (type: reasons):
    RecordFound       Found | RecordMissing | InvalidName
    InputsReady       Staged | InputMissing | InvalidInput
    WorkloadCreated   Created | InvalidSpec | WorkloadDeleted
    SpecApplied       Applied | RunsStarted
    RunsFinished      Succeeded | Failed | Running | Pending   (ondemand)
    OutputsCollected  Collected | Collecting                   (ondemand, scheduled)
    OutputsAccepted   WithinLimits | LimitExceeded             (ondemand, scheduled; a run whose
                                                                outputs pass a limit counts as failed)
    SummaryWritten    Written | Waiting                        (a study: its summary is stored; a
                                                                study is terminal only once it is)
    PodsCreated       Created | FailedCreate                   (ondemand, persistent: Kubernetes
                                                                refuses the pods, e.g. over a quota;
                                                                the message is its refusal)

A study (ondemand with `study`) is judged as one Job made of its scenarios' Jobs (`study_job`), and
its status also lists each scenario's runs (`scenarios`: name, first run, runs, active, succeeded,
failed).

Several writers (kopf handlers, the Job/pod/Deployment watches, the sweep) publish to one status, so
`publish` reads the resource, merges conditions by type (a condition's lastTransitionTime moves only
when its status does), and writes with the resourceVersion it read: a concurrent write makes the
patch fail with 409 and it is redone on fresh data, so no writer drops another's conditions. Nothing
is written when nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from services.shared import crd
from services.shared.crd import Phase
from services.shared.status import PODS_CREATED, PODS_REFUSED

from .kube import Kube, object_path
from .outputs import RecordState

RECORD_FOUND = "RecordFound"
INPUTS_READY = "InputsReady"
WORKLOAD_CREATED = "WorkloadCreated"
SPEC_APPLIED = "SpecApplied"
RUNS_FINISHED = "RunsFinished"
OUTPUTS_COLLECTED = "OutputsCollected"
OUTPUTS_ACCEPTED = "OutputsAccepted"
SUMMARY_WRITTEN = "SummaryWritten"

TERMINAL = frozenset({Phase.SUCCEEDED.value, Phase.FAILED.value})
_ATTEMPTS = 10


def condition(type_: str, ok: bool, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": "True" if ok else "False", "reason": reason, "message": message}


@dataclass
class Update:
    """Status fields and conditions to publish."""

    fields: dict[str, Any] = field(default_factory=dict)
    conditions: list[dict[str, Any]] = field(default_factory=list)


def parse_indexes(text: str | None) -> set[int]:
    """A Job's `completedIndexes` / `failedIndexes` ("0-2,5") as a set of ints."""
    found: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        found.update(range(int(low), int(high or low) + 1))
    return found


def job_runs(job: dict[str, Any]) -> tuple[set[int], set[int]]:
    """(succeeded, failed) run indexes of an Indexed Job, each final."""
    status = job.get("status") or {}
    return parse_indexes(status.get("completedIndexes")), parse_indexes(status.get("failedIndexes"))


def format_indexes(indexes: set[int]) -> str:
    """The inverse of parse_indexes (without ranges: "0,1,5")."""
    return ",".join(str(index) for index in sorted(indexes))


def study_job(parts: list[tuple[int, dict[str, Any] | None]], completions: int) -> dict[str, Any]:
    """A study's Jobs, each given with the run number of its index 0 (None: not made yet), as one Job
    whose indexes are run numbers: finished once every Job has, Complete only if every Job is."""
    completed: set[int] = set()
    failed: set[int] = set()
    counts = {"active": 0, "ready": 0, "succeeded": 0, "failed": 0}
    uncounted = False
    outcomes: list[tuple[str, str, str] | None] = []
    for first_run, job in parts:
        if job is None:
            outcomes.append(None)
            continue
        done, broken = job_runs(job)
        completed |= {first_run + index for index in done}
        failed |= {first_run + index for index in broken}
        job_status = job.get("status") or {}
        for key in counts:
            counts[key] += int(job_status.get(key) or 0)
        uncounted = uncounted or any((job_status.get("uncountedTerminatedPods") or {}).values())
        outcomes.append(job_outcome(job))
    conditions = []
    if outcomes and all(outcome is not None for outcome in outcomes):
        failing = [o for o in outcomes if o is not None and o[0] == "Failed"]
        kind, reason, message = failing[0] if failing else ("Complete", "Completed", "")
        conditions = [{"type": kind, "status": "True", "reason": reason, "message": message}]
    combined: dict[str, Any] = {
        **counts,
        "completedIndexes": format_indexes(completed),
        "failedIndexes": format_indexes(failed),
        "conditions": conditions,
    }
    if uncounted:
        combined["uncountedTerminatedPods"] = {"succeeded": ["(a scenario's pod)"]}
    return {"spec": {"completions": completions}, "status": combined}


def scenario_runs(
    names: list[str], reps: int, parts: list[tuple[int, dict[str, Any] | None]], state: RecordState
) -> list[dict[str, Any]]:
    """Each scenario's runs for `status.scenarios`; a run whose outputs were refused counts as failed."""
    listed = []
    for name, (first_run, job) in zip(names, parts, strict=True):
        done, broken = job_runs(job) if job is not None else (set(), set())
        numbers = {first_run + index for index in done}
        refused = numbers & set(state.rejected)
        listed.append(
            {
                "name": name,
                "firstRun": first_run,
                "runs": reps,
                "active": int(((job or {}).get("status") or {}).get("active") or 0),
                "succeeded": len(numbers - refused),
                "failed": len({first_run + index for index in broken} | refused),
            }
        )
    return listed


def summary_condition(written: bool) -> dict[str, Any]:
    if written:
        return condition(SUMMARY_WRITTEN, True, "Written", "the study summary is stored with the outputs")
    return condition(SUMMARY_WRITTEN, False, "Waiting", "written once every run is finished and collected")


def job_outcome(job: dict[str, Any]) -> tuple[str, str, str] | None:
    """("Complete" | "Failed", reason, message) once the Job has finished, else None."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return cond["type"], cond.get("reason") or cond["type"], cond.get("message") or ""
    return None


def _collected(finished: set[int], state: RecordState) -> dict[str, Any]:
    missing = finished - state.collected
    if missing:
        return condition(
            OUTPUTS_COLLECTED, False, "Collecting", f"collecting the outputs of runs {sorted(missing)}"
        )
    return condition(
        OUTPUTS_COLLECTED,
        True,
        "Collected",
        f"{state.outputs} files from {len(state.collected)} finished runs",
    )


def _accepted(state: RecordState) -> dict[str, Any]:
    if not state.rejected:
        return condition(OUTPUTS_ACCEPTED, True, "WithinLimits", "every run's outputs were within the limits")
    shown = sorted(state.rejected.items())[:5]
    detail = "; ".join(f"run {run}: {reason}" for run, reason in shown)
    more = f" (and {len(state.rejected) - len(shown)} more)" if len(state.rejected) > len(shown) else ""
    return condition(OUTPUTS_ACCEPTED, False, "LimitExceeded", f"outputs refused: {detail}{more}")


def ondemand_update(job: dict[str, Any], state: RecordState) -> Update:
    succeeded, failed = job_runs(job)
    # A run whose outputs were refused (beyond a limit) failed, whatever its pod's exit code.
    rejected = set(state.rejected) & succeeded
    succeeded, failed = succeeded - rejected, failed | rejected
    finished = succeeded | failed
    status = job.get("status") or {}
    outcome = job_outcome(job)
    collected = not (finished - state.collected)

    if outcome and collected:
        phase = Phase.SUCCEEDED if outcome[0] == "Complete" and not rejected else Phase.FAILED
    elif (
        outcome
        or finished
        or status.get("ready")
        or status.get("succeeded")
        or status.get("failed")
        # Pods that ended but the Job controller has not counted yet (seen on the real node: without
        # this the status went running -> pending -> ok between a run's exit and the Job's count).
        or any((status.get("uncountedTerminatedPods") or {}).values())
    ):
        phase = Phase.RUNNING
    else:
        phase = Phase.PENDING

    if outcome is None:
        runs = condition(
            RUNS_FINISHED,
            False,
            phase.value,
            f"{len(finished)} of {job['spec']['completions']} runs finished",
        )
    elif outcome[0] == "Complete" and not rejected:
        runs = condition(RUNS_FINISHED, True, "Succeeded", f"all {len(succeeded)} runs succeeded")
    else:
        detail = f"failed runs {sorted(failed)}" if failed else outcome[2]
        cause = "OutputsRefused" if outcome[0] == "Complete" else outcome[1]
        runs = condition(RUNS_FINISHED, True, "Failed", f"{cause}: {detail}")

    return Update(
        fields={
            "phase": phase.value,
            "active": int(status.get("active") or 0),
            "succeeded": len(succeeded),
            "failed": len(failed),
            "outputs": state.outputs,
        },
        conditions=[runs, _collected(finished, state), _accepted(state)],
    )


def scheduled_update(jobs: list[dict[str, Any]], finished: set[int], state: RecordState) -> Update:
    """`finished` = run numbers of the finished runs of the Jobs still there."""
    return Update(
        fields={
            "phase": Phase.SCHEDULED.value,
            "active": sum(int((j.get("status") or {}).get("active") or 0) for j in jobs),
            "succeeded": len(state.collected - state.failed),
            "failed": len(state.failed),
            "outputs": state.outputs,
        },
        conditions=[_collected(finished, state), _accepted(state)],
    )


def pods_condition(refusal: str | None) -> dict[str, Any]:
    """Whether Kubernetes creates the runs' pods; `refusal` is its latest refusal, if any."""
    if refusal is not None:
        return condition(PODS_CREATED, False, PODS_REFUSED, refusal)
    return condition(PODS_CREATED, True, "Created", "the pods were created")


def persistent_update(deployment: dict[str, Any]) -> Update:
    status = deployment.get("status") or {}
    ready = int(status.get("readyReplicas") or 0)
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    available = (conditions.get("Available") or {}).get("status") == "True"
    # The ReplicaSet's refusal (pods over a quota, say) is surfaced by the Deployment as ReplicaFailure.
    failure = conditions.get("ReplicaFailure") or {}
    refusal = (failure.get("message") or "pods refused") if failure.get("status") == "True" else None
    if available and ready > 0:
        phase = Phase.AVAILABLE
    else:
        phase = Phase.PENDING if refusal is not None and ready == 0 else Phase.PROGRESSING
    return Update(
        fields={"phase": phase.value, "active": ready, "succeeded": 0, "failed": 0},
        conditions=[pods_condition(refusal)],
    )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(current: list[dict[str, Any]], updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged = [dict(c) for c in current]
    by_type = {c.get("type"): c for c in merged}
    for update in updates:
        existing = by_type.get(update["type"])
        if existing is None:
            new = {**update, "lastTransitionTime": _now()}
            merged.append(new)
            by_type[update["type"]] = new
            continue
        if existing.get("status") != update["status"]:
            existing["lastTransitionTime"] = _now()
        existing.update(update)
    return merged


def changes(
    current: dict[str, Any], update: Update, defaults: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The part of `update` that differs from `current` (a resource's status)."""
    patch = {key: value for key, value in update.fields.items() if current.get(key) != value}
    for key, value in (defaults or {}).items():
        if key not in current and key not in patch:
            patch[key] = value
    conditions = merge_conditions(current.get("conditions") or [], update.conditions)
    if conditions != (current.get("conditions") or []):
        patch["conditions"] = conditions
    return patch


def _forward_only(current: dict[str, Any], update: Update) -> Update:
    """A service that was Running never shows Pending again: between a run's exit and the Job's count
    of it, the Job can look like nothing ever started (seen on the real node: running -> pending -> ok)."""
    if update.fields.get("phase") == Phase.PENDING.value and current.get("phase") == Phase.RUNNING.value:
        fields = {k: v for k, v in update.fields.items() if k != "phase"}
        return Update(fields, update.conditions)
    return update


async def publish(
    kube: Kube,
    namespace: str,
    name: str,
    update: Update,
    *,
    defaults: dict[str, Any] | None = None,
    cache: dict[tuple[str, str], dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """Write `update` to the resource's status (and `defaults` for fields it does not have yet).
    Returns the resource's status as written (None if the resource is gone).

    `cache` holds the status this process last read or wrote per resource: when `update` changes
    nothing in it, nothing is read or written (most events change nothing). The operator is the only
    writer of the status; a resource made again under the same name is dropped from the cache first.
    """
    key = (namespace, name)
    if cache is not None and key in cache:
        update = _forward_only(cache[key], update)
    if cache is not None and key in cache and not changes(cache[key], update, defaults):
        return cache[key]
    path = object_path(crd.KIND, namespace, name)
    for _ in range(_ATTEMPTS):
        resource = await kube.get(path)
        if resource is None:
            if cache is not None:
                cache.pop(key, None)
            return None
        current = resource.get("status") or {}
        patch = changes(current, _forward_only(current, update), defaults)
        if patch:
            body = {"metadata": {"resourceVersion": resource["metadata"]["resourceVersion"]}, "status": patch}
            try:
                await kube.merge_patch(object_path(crd.KIND, namespace, name, "status"), body)
            except ApiException as e:
                if e.status == 409:
                    continue
                raise
        written = {**current, **patch}
        if cache is not None:
            cache[key] = written
        return written
    raise RuntimeError(f"status of {namespace}/{name} kept changing; giving up this round")
