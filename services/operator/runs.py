"""Following a launched service: collect finished runs, then publish the resource's status.

Every trigger (a Job, pod, CronJob or Deployment event, the create/resume handler, the sweep) ends in
`sync`, which is level-based: under the service's lock it reads the current child objects and the
record, collects what has finished and is not collected yet, and publishes the status computed from
what it read. Events are only the reason to look now; the sweep looks anyway, so a missed event
delays a collection but never loses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.shared import crd
from services.shared.crd import JobType
from services.shared.names import SERVICE_ID_LABEL

from . import layout, status
from .context import Runtime
from .kube import collection_path, object_path
from .logs import PodRef
from .outputs import Run
from .study import FIRST_RUN_ANNOTATION, InvalidStudy, Study
from .study import job_name as scenario_job_name
from .workloads import COMPLETION_INDEX, JOB_NAME_LABEL, child_name, selector_labels


def job_type_of_job(job: dict[str, Any]) -> JobType:
    owners = job.get("metadata", {}).get("ownerReferences") or []
    return JobType.SCHEDULED if any(o.get("kind") == "CronJob" for o in owners) else JobType.ONDEMAND


def _selector(sid: str) -> str:
    return ",".join(f"{k}={v}" for k, v in selector_labels(sid).items())


async def sync(
    rt: Runtime,
    namespace: str,
    sid: str,
    job_type: JobType,
    *,
    conditions: list[dict[str, Any]] | None = None,
    finished_pod: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Collect and publish for service `sid`; returns the status written (None if nothing to do).

    A plain trigger (no conditions, no pod) is dropped when another one already waits for the lock:
    that one has not read anything yet, so it will see whatever this trigger was about.
    """
    plain = not conditions and finished_pod is None
    if plain and sid in rt.queued:
        return None
    lock = rt.collector.lock(sid)
    if plain:
        rt.queued.add(sid)
    try:
        await lock.acquire()
    finally:
        if plain:
            rt.queued.discard(sid)  # acquired (or cancelled): this trigger no longer waits
    try:
        if job_type is JobType.ONDEMAND:
            update = await _ondemand(rt, namespace, sid)
        elif job_type is JobType.SCHEDULED:
            update = await _scheduled(rt, namespace, sid, finished_pod)
        else:
            update = await _persistent(rt, namespace, sid)
        if update is None:
            if not conditions:
                return None
            update = status.Update()
        update.conditions = [*(conditions or []), *update.conditions]
        return await status.publish(rt.kube, namespace, sid, update, cache=rt.published)
    finally:
        lock.release()


def _pod_index(pod: dict[str, Any] | None) -> int | None:
    if pod is None or (pod.get("status") or {}).get("phase") != "Succeeded":
        return None
    value = (pod.get("metadata", {}).get("annotations") or {}).get(COMPLETION_INDEX)
    return int(value) if value is not None and value.isdigit() else None


async def _ondemand(rt: Runtime, namespace: str, sid: str) -> status.Update | None:
    job = await rt.kube.get(object_path("Job", namespace, child_name(sid)))
    if job is None:
        # No Job `ana-<sid>`: a study (one Job per scenario), or nothing made yet.
        study = await _study_of(rt, namespace, sid)
        return None if study is None else await _study(rt, namespace, sid, study)
    root = rt.output_root
    succeeded, failed = status.job_runs(job)
    name = child_name(sid)
    runs = [Run(i, layout.run_dir(root, sid, i), pod=PodRef(namespace, name, i)) for i in succeeded]
    runs += [
        Run(i, layout.run_dir(root, sid, i), failed=True, pod=PodRef(namespace, name, i))
        for i in failed - succeeded
    ]
    state = await rt.collector.collect(sid, runs)
    if state is None:
        return None
    update = status.ondemand_update(job, state)
    if update.fields["phase"] != crd.Phase.PENDING.value:
        update.conditions.append(status.pods_condition(None))
    elif (refusal := await _refusal(rt, namespace, name)) is not None:
        update.conditions.append(status.pods_condition(refusal))
    return update


async def _refusal(rt: Runtime, namespace: str, job_name: str) -> str | None:
    """Why the Job controller cannot create a pending Job's pods (over the solution's quota, say): the
    Job itself does not say, only its FailedCreate events do. The latest one's message, or None."""
    selector = f"involvedObject.kind=Job,involvedObject.name={job_name},reason=FailedCreate"
    events = await rt.kube.list(collection_path("Event", namespace), field_selector=selector)
    if not events:
        return None

    def when(event: dict[str, Any]) -> str:
        return str(event.get("lastTimestamp") or event.get("eventTime") or "")

    return str(max(events, key=when).get("message") or "pods refused")


async def _study_of(rt: Runtime, namespace: str, sid: str) -> Study | None:
    """The resource's study, None when it has none (or it is unreadable: launch has failed it)."""
    resource = await rt.kube.get(object_path(crd.KIND, namespace, sid))
    spec = (resource or {}).get("spec") or {}
    if spec.get("study") is None:
        return None
    try:
        return Study.parse(spec["study"], spec.get("reps"), dict(spec.get("env") or {}))
    except InvalidStudy:
        return None


async def _study(rt: Runtime, namespace: str, sid: str, study: Study) -> status.Update | None:
    """A study's Jobs collected and judged as one; once all its runs are finished and collected, its
    summary is written before the status says so (a terminal phase means the summary is there)."""
    root = rt.output_root
    parts: list[tuple[int, dict[str, Any] | None]] = []
    runs: list[Run] = []
    for k in range(len(study.scenarios)):
        name = scenario_job_name(sid, k)
        job = await rt.kube.get(object_path("Job", namespace, name))
        first = study.first_run(k)
        parts.append((first, job))
        if job is None:
            continue
        succeeded, failed = status.job_runs(job)
        runs += [
            Run(first + i, layout.run_dir(root, sid, i, name), pod=PodRef(namespace, name, i))
            for i in succeeded
        ]
        runs += [
            Run(first + i, layout.run_dir(root, sid, i, name), failed=True, pod=PodRef(namespace, name, i))
            for i in failed - succeeded
        ]
    if all(job is None for _, job in parts):
        return None
    state = await rt.collector.collect(sid, runs)
    if state is None:
        return None
    update = status.ondemand_update(status.study_job(parts, study.runs), state)
    update.fields["scenarios"] = status.scenario_runs(
        [scenario.name for scenario in study.scenarios], study.reps, parts, state
    )
    written = False
    if update.fields["phase"] in status.TERMINAL:
        async with rt.collector.write_lock(sid):  # the record is updated (see Collector.write_lock)
            written = await rt.summaries.write_once(sid, study) is not None
        if not written:
            return None  # the record is gone
    update.conditions.append(status.summary_condition(written))
    return update


async def _scheduled(
    rt: Runtime, namespace: str, sid: str, pod: dict[str, Any] | None
) -> status.Update | None:
    jobs = await rt.kube.list(collection_path("Job", namespace), _selector(sid))
    jobs = [j for j in jobs if job_type_of_job(j) is JobType.SCHEDULED]
    jobs.sort(key=lambda j: (j["metadata"].get("creationTimestamp", ""), j["metadata"]["name"]))
    root = rt.output_root
    pod_job = (pod or {}).get("metadata", {}).get("labels", {}).get(JOB_NAME_LABEL)
    pod_index = _pod_index(pod)

    runs: list[Run] = []
    finished: set[int] = set()
    for job in jobs:
        name = job["metadata"]["name"]
        completions = int(job["spec"].get("completions") or 1)
        succeeded, failed = status.job_runs(job)
        if name == pod_job and pod_index is not None:
            succeeded.add(pod_index)
        if not succeeded | failed:
            # A new Job of the CronJob: make its output directories now, before its pods need them.
            layout.prepare_runs(root, sid, range(completions), name)
            continue
        base = await rt.collector.run_base(sid, job["metadata"]["uid"], completions)
        if base is None:
            return None
        for index in sorted(succeeded | failed):
            finished.add(base + index)
            runs.append(
                Run(
                    base + index,
                    layout.run_dir(root, sid, index, name),
                    failed=index not in succeeded,
                    pod=PodRef(namespace, name, index),
                )
            )
    state = await rt.collector.collect(sid, runs) if runs else await rt.collector.state(sid)
    if state is None:
        return None
    return status.scheduled_update(jobs, finished, state)


async def _persistent(rt: Runtime, namespace: str, sid: str) -> status.Update | None:
    deployment = await rt.kube.get(object_path("Deployment", namespace, child_name(sid)))
    return None if deployment is None else status.persistent_update(deployment)


def run_succeeded(pod: Mapping[str, Any]) -> bool:
    """The run's pod succeeded, or every container of it has exited 0 already.

    The kubelet reports the exits about a second before the pod's phase: it turns the phase Succeeded
    only once it has stopped the pod's sandbox and torn down its network (measured on the real node:
    0.35-1.3 s after the module's exit vs 1.6-2.6 s). The run's outputs are complete once its process
    has exited, so collecting on the exits saves that second."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return status["phase"] == "Succeeded"
    containers = (pod.get("spec") or {}).get("containers") or []
    exits = [
        ((state.get("state") or {}).get("terminated") or {}).get("exitCode")
        for state in status.get("containerStatuses") or []
    ]
    return bool(containers) and len(exits) == len(containers) and all(code == 0 for code in exits)


async def on_finished_pod(rt: Runtime, namespace: str, pod: dict[str, Any]) -> None:
    """A run's pod succeeded (`run_succeeded`): collect that run now (a cheap no-op when it is already
    collected)."""
    labels = pod.get("metadata", {}).get("labels") or {}
    sid = labels[SERVICE_ID_LABEL]
    index = _pod_index(pod)
    owners = pod.get("metadata", {}).get("ownerReferences") or []
    job_name = next((o["name"] for o in owners if o.get("kind") == "Job"), None)
    if index is None or job_name is None:
        return
    first_run = (pod.get("metadata", {}).get("annotations") or {}).get(FIRST_RUN_ANNOTATION)
    if job_name == child_name(sid) or (first_run is not None and first_run.isdigit()):
        # Just this run, no Job read and no status: the Job's own event follows (its controller
        # records the completed index) and publishes the status once this collection is done. A study's
        # pod is run first_run + index, its output in its Job's folder of runs.
        root = rt.output_root
        pod_ref = PodRef(namespace, job_name, index)
        if first_run is None:
            run = Run(index, layout.run_dir(root, sid, index), pod=pod_ref)
        else:
            run = Run(int(first_run) + index, layout.run_dir(root, sid, index, job_name), pod=pod_ref)
        if rt.collector.known_collected(sid, run.number):
            return
        async with rt.collector.lock(sid):
            await rt.collector.collect(sid, [run])
    else:
        await sync(rt, namespace, sid, JobType.SCHEDULED, finished_pod=pod)


def is_settled(resource_status: dict[str, Any]) -> bool:
    """Nothing left to sweep: an ondemand resource that finished with all its outputs collected, or
    one that failed before its workload was made."""
    true = {c.get("type") for c in resource_status.get("conditions") or [] if c.get("status") == "True"}
    if resource_status.get("phase") not in status.TERMINAL:
        return False
    return status.OUTPUTS_COLLECTED in true or status.WORKLOAD_CREATED not in true
