"""The orchestrator operator: kopf handlers, each delegating to a small module.

Run it as `dtpoc-operator` (this module's `run`) or `kopf run -m services.operator.main --standalone
--namespace <ns> ...` (every solution's namespace); it reads a kubeconfig like kubectl does, or the
ServiceAccount inside the cluster.

Each DT solution (services.shared.solutions) has its own namespace and its own `Runtime` (context.py):
every handler acts through the runtime of its object's namespace, so a solution's resources read and
write that solution's databases and data folder only.

- Analytics create/resume -> `launch.launch`; spec update -> `launch.apply_update`.
- Job, pod, CronJob and Deployment events of our children -> `runs.sync`: collect finished runs
  (`outputs`, with their logs: `logs`) and publish the status (`status`). A timer on every Analytics
  resource sweeps at OPERATOR_SWEEP_SECONDS as a fallback for missed events.
- Pods of our runs, as they appear and get a node -> `pods.RunPods.note`: the record says which pod
  runs each run, so that the API can stream its log.

Choices (see `startup`):
- progress in annotations (`orchestrator.eng.cam.ac.uk/...`), not in status: the status belongs to the
  platform (the API reads it; several writers publish it with optimistic concurrency), kopf's own
  bookkeeping stays out of it, and annotations survive operator restarts like status would;
- standalone, no peering: one replica (the platform's Deployment uses the Recreate strategy), so the
  peering CRDs are not needed;
- a finalizer only because kopf needs one to stop a resource's sweep timer cleanly; no deletion
  handler: children go by garbage collection (owner references) and collected outputs stay in GridFS
  and in the record. While the operator is down, a deleted resource waits in Terminating until it
  returns;
- Kubernetes events are posted for warnings and errors only (record missing, input missing, retries):
  a burst of launches does not double the API traffic with info events.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from services.shared import crd
from services.shared.crd import JobType
from services.shared.names import MANAGED_BY_OPERATOR, SERVICE_ID_LABEL

from . import launch as launching
from . import runs
from .context import Runtime, Solutions
from .settings import get_settings
from .workloads import JOB_NAME_LABEL, MANAGED_BY_LABEL

PREFIX = "orchestrator.eng.cam.ac.uk"
ANALYTICS = (crd.GROUP, crd.VERSION, crd.PLURAL)
OURS: dict[str, Any] = {MANAGED_BY_LABEL: MANAGED_BY_OPERATOR, SERVICE_ID_LABEL: kopf.PRESENT}
Logger = logging.Logger | logging.LoggerAdapter[Any]
SETTINGS = get_settings()


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    settings.watching.server_timeout = SETTINGS.watch_server_timeout
    settings.watching.client_timeout = SETTINGS.watch_client_timeout
    settings.watching.connect_timeout = SETTINGS.watch_connect_timeout
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{PREFIX}/operator"
    settings.posting.level = logging.WARNING
    # The operator's Role is namespaced: no scanning of cluster-wide CRDs and namespaces (403 in a pod, and
    # kopf then stops watching); it serves the solutions' namespaces it is told, and the Analytics resource.
    settings.scanning.disabled = True
    memo.solutions = await Solutions.start(SETTINGS)
    for rt in memo.solutions:
        logger.info(
            "solution %s: namespace %s, runs at %s", rt.place.name, rt.place.namespace, rt.output_root
        )


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    if getattr(memo, "solutions", None) is not None:
        await memo.solutions.close()


def _runtime(memo: kopf.Memo, body: kopf.Body, logger: Logger) -> Runtime | None:
    """The runtime of the solution whose namespace `body` is in. Only solutions' namespaces are watched,
    so no other can come; one that did would be left alone, with a warning (posted as an event)."""
    rt: Runtime | None = memo.solutions.for_namespace(body.metadata.namespace)
    if rt is None:
        logger.warning("namespace %s is not a DT solution's: ignored", body.metadata.namespace)
    return rt


@kopf.on.resume(*ANALYTICS, backoff=SETTINGS.error_retry_seconds)
@kopf.on.create(*ANALYTICS, backoff=SETTINGS.error_retry_seconds)
async def launch(body: kopf.Body, reason: str, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    """Read the record, stage the inputs, make the workload."""
    if (rt := _runtime(memo, body, logger)) is not None:
        await launching.launch(rt, body, resumed=reason == kopf.Reason.RESUME, logger=logger)


@kopf.on.update(*ANALYTICS, field="spec", backoff=SETTINGS.error_retry_seconds)
async def update(body: kopf.Body, old: Any, new: Any, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    """Apply a spec change where it can be applied (see `launch.apply_update`)."""
    if (rt := _runtime(memo, body, logger)) is not None:
        await launching.apply_update(rt, body, dict(old or {}), dict(new or {}), logger)


@kopf.timer(*ANALYTICS, interval=SETTINGS.sweep_seconds, initial_delay=SETTINGS.sweep_seconds)
async def sweep(body: kopf.Body, spec: kopf.Spec, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    """Fallback: collect and publish even if an event was missed."""
    if runs.is_settled(dict(body.status or {})) or (rt := _runtime(memo, body, logger)) is None:
        return
    try:
        job_type = JobType(str(spec.get("jobType")))
    except ValueError:
        return
    with launching.transient_errors(rt):
        await runs.sync(rt, _namespace(body), body.metadata.name, job_type)


def _namespace(body: kopf.Body) -> str:
    return str(body.metadata.namespace)


def _sid(body: kopf.Body) -> str:
    return body.metadata.labels[SERVICE_ID_LABEL]


@kopf.on.event("batch", "v1", "jobs", labels=OURS)
async def job_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    """A Job of ours changed: collect its finished runs, update the status."""
    if event.get("type") == "DELETED" or (rt := _runtime(memo, body, logger)) is None:
        return
    with launching.transient_errors(rt):
        await runs.sync(rt, _namespace(body), _sid(body), runs.job_type_of_job(dict(body)))


def _news(body: kopf.Body, memo: kopf.Memo, **_: Any) -> bool:
    solutions: Solutions | None = getattr(memo, "solutions", None)
    rt = solutions.for_namespace(body.metadata.namespace) if solutions is not None else None
    return rt is not None and bool(rt.pods.is_news(dict(body)))


@kopf.on.event("v1", "pods", labels=OURS, when=_news)
async def run_pod_event(
    event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, logger: Logger, **_: Any
) -> None:
    """A run's pod appeared or got its node: note it in the record (the API streams its log). Registered
    before `pod_event`, so that it runs first on a batch of a pod's events (it is quick)."""
    if event.get("type") == "DELETED" or (rt := _runtime(memo, body, logger)) is None:
        return
    with launching.transient_errors(rt):
        await rt.pods.note(dict(body))


def _succeeded(body: kopf.Body, **_: Any) -> bool:
    return runs.run_succeeded(body)


@kopf.on.event("v1", "pods", labels={**OURS, JOB_NAME_LABEL: kopf.PRESENT}, when=_succeeded)
async def pod_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    """A run's containers all exited 0: collect that run at once, before the pod's phase and the Job's
    status catch up."""
    if event.get("type") == "DELETED" or (rt := _runtime(memo, body, logger)) is None:
        return
    with launching.transient_errors(rt):
        await runs.on_finished_pod(rt, _namespace(body), dict(body))


@kopf.on.event("batch", "v1", "cronjobs", labels=OURS)
async def cronjob_event(
    event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, logger: Logger, **_: Any
) -> None:
    if event.get("type") == "DELETED" or (rt := _runtime(memo, body, logger)) is None:
        return
    with launching.transient_errors(rt):
        await runs.sync(rt, _namespace(body), _sid(body), JobType.SCHEDULED)


@kopf.on.event("apps", "v1", "deployments", labels=OURS)
async def deployment_event(
    event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, logger: Logger, **_: Any
) -> None:
    if event.get("type") == "DELETED" or (rt := _runtime(memo, body, logger)) is None:
        return
    with launching.transient_errors(rt):
        await runs.sync(rt, _namespace(body), _sid(body), JobType.PERSISTENT)


def run() -> None:
    """Console entry point `dtpoc-operator`."""
    # log_prefix: each handler's lines name their object ("[namespace/name] Handler ... succeeded."),
    # as `kopf run` does by default; without it the log cannot say which resource a line is about.
    kopf.configure(verbose=False, log_prefix=True)
    logging.getLogger("kopf.objects").setLevel(logging.INFO)
    kopf.run(
        standalone=True,
        clusterwide=False,
        namespaces=[place.namespace for place in SETTINGS.places],
        liveness_endpoint=SETTINGS.liveness_endpoint,
        memo=kopf.Memo(),
    )


if __name__ == "__main__":
    run()
