"""Launching a service (create / resume) and applying spec updates.

Launch, idempotent at every step (a retry or a restart repeats it safely):
1. the resource's name must be an ObjectId: the `_id` of its services record;
2. the spec is checked again (env names, reserved names, cron, reps, port);
3. the record is read; while it is missing the resource stays Pending with RecordFound=False
   (RecordMissing) and the handler retries every OPERATOR_RECORD_WAIT_SECONDS;
4. inputs are staged from GridFS; a missing or badly named one fails the resource (Failed,
   InputsReady=False with reason InputMissing / InvalidInput) and no workload is made. A study's are
   staged per scenario (the service's files and the scenario's own, `ServiceRecord.study`);
5. output directories are made and the children created, each owned by the resource (kopf.adopt);
   AlreadyExists counts as success;
6. the status is published from the children's current state (`runs.sync`).
An ondemand resource that already finished is never launched again (e.g. on resume after its Job was
removed by hand): its runs happened, and their outputs are in GridFS.

Spec updates (`apply_update`):
- ondemand: while no run has started (no pod ready, none finished), the Job is deleted and made again
  from the new spec; once a run has started the Job is left alone, and SpecApplied=False
  (RunsStarted) says that a changed module needs a new launch: the runs of one service all run the
  same spec, so that run idx's output means one thing. A study's Jobs are one workload: all of them
  are deleted and made again, or none;
- scheduled: the CronJob's schedule and run template are patched; Jobs already started finish as they
  were, later ones use the new spec;
- persistent: the Deployment's template is patched (a rollout); a port added, changed or removed
  makes, patches or deletes the Service and Ingress;
- a jobType change is not applied (SpecApplied=False, JobTypeChanged): it is a different service.
Deletion needs no handler: children go by garbage collection (owner references); collected outputs
stay in GridFS and in the record, which the API removes when it terminates a service.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import kopf
from bson import ObjectId
from bson.errors import InvalidId
from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from services.shared.crd import JobType, Phase
from services.shared.records import ServiceRecord

from . import inputs, layout, runs, status, workloads
from . import study as studies
from .context import Runtime
from .kube import collection_path, object_path
from .status import condition

GENERATION_ANNOTATION = "orchestrator.eng.cam.ac.uk/generation"


def where(body: kopf.Body) -> tuple[str, str]:
    """(namespace, name) of a namespaced resource."""
    return str(body.metadata.namespace), str(body.metadata.name)


@contextlib.contextmanager
def transient_errors(rt: Runtime) -> Iterator[None]:
    """MongoDB or the API server away for a moment: retry soon, with the cause in the log."""
    try:
        yield
    except PyMongoError as e:
        raise kopf.TemporaryError(f"MongoDB: {e}", delay=rt.settings.error_retry_seconds) from e
    except aiohttp.ClientError as e:
        raise kopf.TemporaryError(f"Kubernetes API: {e}", delay=rt.settings.error_retry_seconds) from e
    except ApiException as e:
        if e.status in (409, 429) or e.status >= 500:
            raise kopf.TemporaryError(
                f"Kubernetes API: {e.status} {e.reason}", delay=rt.settings.error_retry_seconds
            ) from e
        raise


async def _fail(rt: Runtime, body: kopf.Body, cond: dict[str, Any]) -> kopf.PermanentError:
    await status.publish(
        rt.kube,
        *where(body),
        status.Update({"phase": Phase.FAILED.value}, [cond]),
        cache=rt.published,
    )
    return kopf.PermanentError(f"{cond['reason']}: {cond['message']}")


async def _parse(rt: Runtime, body: kopf.Body) -> workloads.AnalyticsSpec:
    try:
        ObjectId(body.metadata.name)
    except (InvalidId, TypeError):
        msg = f"the name {body.metadata.name!r} is not the id (24 hex digits) of a services record"
        raise await _fail(rt, body, condition(status.RECORD_FOUND, False, "InvalidName", msg)) from None
    try:
        return workloads.AnalyticsSpec.parse(dict(body.spec))
    except workloads.InvalidSpec as e:
        raise await _fail(
            rt, body, condition(status.WORKLOAD_CREATED, False, "InvalidSpec", str(e))
        ) from None


async def _record(rt: Runtime, body: kopf.Body) -> ServiceRecord:
    sid = body.metadata.name
    document = await rt.records.find_one({"_id": ObjectId(sid)})
    if document is None:
        cond = condition(
            status.RECORD_FOUND, False, "RecordMissing", f"no services record with _id {sid} yet"
        )
        await status.publish(
            rt.kube,
            *where(body),
            status.Update(conditions=[cond]),
            defaults={"phase": Phase.PENDING.value},
            cache=rt.published,
        )
        raise kopf.TemporaryError(
            f"services record {sid} not found yet", delay=rt.settings.record_wait_seconds
        )
    try:
        return ServiceRecord.from_document(document)
    except ValidationError as e:
        msg = f"the services record is malformed: {e.errors()[0]['loc']} {e.errors()[0]['msg']}"
        raise await _fail(rt, body, condition(status.RECORD_FOUND, False, "InvalidRecord", msg)) from None


def manifests(rt: Runtime, body: kopf.Body, spec: workloads.AnalyticsSpec) -> list[dict[str, Any]]:
    """The resource's children, adopted (owner reference, namespace) and marked with its generation."""
    made = workloads.children(body.metadata.name, spec, rt.settings)
    for manifest in made:
        manifest["metadata"].setdefault("annotations", {})[GENERATION_ANNOTATION] = str(
            body.metadata.get("generation", 1)
        )
        kopf.adopt(manifest, owner=body)
    return made


def _prepare_dirs(rt: Runtime, sid: str, spec: workloads.AnalyticsSpec) -> None:
    root = rt.output_root
    if spec.study is not None:
        for k in range(len(spec.study.scenarios)):
            layout.prepare_runs(root, sid, range(spec.study.reps), studies.job_name(sid, k))
    elif spec.job_type is JobType.ONDEMAND:
        layout.prepare_runs(root, sid, range(spec.reps or 1))
    elif spec.job_type is JobType.PERSISTENT:
        layout.prepare_runs(root, sid, range(layout.PERSISTENT_RUN, layout.PERSISTENT_RUN + 1))
    else:
        layout.service_dir(root, sid).mkdir(parents=True, exist_ok=True)


async def launch(
    rt: Runtime, body: kopf.Body, *, resumed: bool, logger: logging.Logger | logging.LoggerAdapter[Any]
) -> None:
    namespace, sid = where(body)
    current = dict(body.status or {})
    rt.published.pop((namespace, sid), None)  # a new resource may have the name of a deleted one
    with transient_errors(rt):
        if resumed and current.get("phase") == Phase.FAILED.value and not _workload_made(current):
            return  # it failed before it could start; a restart does not change that
        spec = await _parse(rt, body)
        record = await _record(rt, body)
        found = condition(status.RECORD_FOUND, True, "Found", "services record found")

        if (
            spec.job_type is JobType.ONDEMAND
            and current.get("phase") in status.TERMINAL
            and _workload_made(current)
        ):
            await runs.sync(rt, namespace, sid, spec.job_type, conditions=[found])
            return

        try:
            ready = await _stage(rt, sid, spec, record)
        except inputs.InputError as e:
            raise await _fail(rt, body, condition(status.INPUTS_READY, False, e.reason, e.message)) from None

        _prepare_dirs(rt, sid, spec)
        children = manifests(rt, body, spec)
        made = [f"{m['kind']} {m['metadata']['name']}" for m in children if await rt.kube.create(m)]
        if made:
            logger.info("created %s", ", ".join(made))
        workload = children[0]
        made_what = f"{workload['kind']} {workload['metadata']['name']}"
        if spec.study is not None:
            made_what = f"{len(children)} Jobs, one per scenario: " + ", ".join(
                m["metadata"]["name"] for m in children
            )
        created = condition(status.WORKLOAD_CREATED, True, "Created", made_what)
        await runs.sync(rt, namespace, sid, spec.job_type, conditions=[found, ready, created])


async def _stage(
    rt: Runtime, sid: str, spec: workloads.AnalyticsSpec, record: ServiceRecord
) -> dict[str, Any]:
    """Stage the inputs (a study's per scenario); the InputsReady condition to report."""
    root = rt.output_root
    if spec.study is None:
        staged = await inputs.stage_inputs(rt.store, layout.input_dir(root, sid), record.mount_files)
        return condition(status.INPUTS_READY, True, "Staged", f"{len(staged)} input files in /input")
    recorded = {s.name: s for s in record.study.scenarios} if record.study is not None else {}
    counts = []
    for scenario in spec.study.scenarios:
        own = recorded.get(scenario.name)
        mount_files = own.inputs_over(record.mount_files) if own is not None else record.mount_files
        try:
            staged = await inputs.stage_inputs(
                rt.store, layout.scenario_input_dir(root, sid, scenario.name), mount_files
            )
        except inputs.InputError as e:
            raise inputs.InputError(e.reason, f"scenario {scenario.name}: {e.message}") from None
        counts.append(f"{scenario.name} {len(staged)}")
    return condition(
        status.INPUTS_READY, True, "Staged", f"input files in /input per scenario: {', '.join(counts)}"
    )


def _workload_made(resource_status: dict[str, Any]) -> bool:
    return any(
        c.get("type") == status.WORKLOAD_CREATED and c.get("status") == "True"
        for c in resource_status.get("conditions") or []
    )


def _started(job: dict[str, Any]) -> bool:
    job_status = job.get("status") or {}
    keys = ("ready", "succeeded", "failed", "completedIndexes", "failedIndexes")
    return any(job_status.get(key) for key in keys)


def _generation(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata", {}).get("annotations") or {}).get(GENERATION_ANNOTATION)


async def apply_update(
    rt: Runtime,
    body: kopf.Body,
    old: dict[str, Any],
    new: dict[str, Any],
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    namespace, sid = where(body)
    with transient_errors(rt):
        if (old or {}).get("jobType") != (new or {}).get("jobType"):
            msg = "jobType cannot change; launch a new service instead"
            await _publish(rt, body, condition(status.SPEC_APPLIED, False, "JobTypeChanged", msg))
            return
        spec = await _parse(rt, body)
        children = manifests(rt, body, spec)
        workload = children[0]
        if spec.job_type is JobType.ONDEMAND:
            jobs = await _ondemand_jobs(rt, namespace, sid)
            missing = not jobs
        else:
            path = object_path(workload["kind"], namespace, workload["metadata"]["name"])
            missing = await rt.kube.get(path) is None
        if missing:
            # Not made yet (an earlier launch failed), removed by hand, or an unstarted Job just deleted
            # to be made again: a full launch from the new spec, inputs and all.
            current = dict(body.status or {})
            if (
                spec.job_type is JobType.ONDEMAND
                and current.get("phase") in status.TERMINAL
                and _workload_made(current)
            ):
                msg = "the runs of this service have finished; launch a new one"
                await _publish(rt, body, condition(status.SPEC_APPLIED, False, "RunsFinished", msg))
                return
            await launch(rt, body, resumed=False, logger=logger)
            msg = f"{workload['kind']} made from generation {_generation(workload)}"
            await _publish(rt, body, condition(status.SPEC_APPLIED, True, "Applied", msg))
            return
        if spec.job_type is JobType.ONDEMAND:
            await _update_ondemand(rt, body, jobs, workload, logger)
            return
        for manifest in children:
            path = object_path(manifest["kind"], namespace, manifest["metadata"]["name"])
            patch = {
                "metadata": {
                    "labels": manifest["metadata"]["labels"],
                    "annotations": manifest["metadata"]["annotations"],
                },
                "spec": manifest["spec"],
            }
            if await rt.kube.merge_patch(path, patch) is None:
                await rt.kube.create(manifest)
        if spec.job_type is JobType.PERSISTENT and spec.port is None:
            for kind in ("Ingress", "Service"):
                await rt.kube.delete(object_path(kind, namespace, workloads.child_name(sid)))
        logger.info("spec update applied to the %s", children[0]["kind"])
        applied = condition(
            status.SPEC_APPLIED, True, "Applied", f"generation {_generation(children[0])} applied"
        )
        await runs.sync(rt, namespace, sid, spec.job_type, conditions=[applied])


async def _ondemand_jobs(rt: Runtime, namespace: str, sid: str) -> list[dict[str, Any]]:
    """The service's Jobs that are not a CronJob's: `ana-<sid>`, or a study's `ana-<sid>-<k>`."""
    selector = ",".join(f"{k}={v}" for k, v in workloads.selector_labels(sid).items())
    jobs = await rt.kube.list(collection_path("Job", namespace), selector)
    return [job for job in jobs if runs.job_type_of_job(job) is JobType.ONDEMAND]


async def _update_ondemand(
    rt: Runtime,
    body: kopf.Body,
    jobs: list[dict[str, Any]],
    desired: dict[str, Any],
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> None:
    """`jobs`: the service's Jobs now (a study's are one workload: remade all together, or none)."""
    namespace, _ = where(body)
    if all(_generation(job) == _generation(desired) for job in jobs):
        return
    if any(_started(job) for job in jobs):
        msg = "runs have started: an ondemand service keeps the spec it started with; launch a new one"
        await _publish(rt, body, condition(status.SPEC_APPLIED, False, "RunsStarted", msg))
        return
    for job in jobs:
        if not job["metadata"].get("deletionTimestamp"):
            path = object_path("Job", namespace, job["metadata"]["name"])
            await rt.kube.delete(path)
            logger.info("Job %s deleted before any run started, to make it again from the new spec", path)
    # On the retry the Jobs are gone, and `apply_update` launches again from the new spec.
    raise kopf.TemporaryError("waiting for the old Jobs to go", delay=1)


async def _publish(rt: Runtime, body: kopf.Body, cond: dict[str, Any]) -> None:
    await status.publish(
        rt.kube,
        *where(body),
        status.Update(conditions=[cond]),
        cache=rt.published,
    )
