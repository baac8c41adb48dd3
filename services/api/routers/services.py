"""/service: launch, list, status, outputs and termination of analytics and simulation modules."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from bson import ObjectId
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from services.shared.crd import JobType
from services.shared.records import OutputFile, ServiceRecord
from services.shared.status import AnalyticsStatus, ServiceState

from ..deps import (
    DEFAULT_LIMIT,
    Analytics,
    Authorized,
    Limit,
    ServiceId,
    Services,
    Skip,
    Store,
    next_page_link,
)
from ..downloads import stream_file
from ..kube import MAX_SELECTED
from ..models import (
    LaunchRequest,
    LaunchResponse,
    ServiceStatus,
    ServiceSummary,
    TerminateResponse,
    errors,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/service", tags=["services"])

# A record whose Analytics resource is missing for longer than this is reported as an error (during
# a launch the record exists a moment before the resource).
MISSING_RESOURCE_GRACE = timedelta(seconds=60)
# What a list item needs from a record (env, mount_files and output_files can be large).
SUMMARY_FIELDS = {"image": 1, "version": 1, "description": 1, "reps": 1, "created_at": 1}


def read_record(doc: dict[str, Any]) -> tuple[ServiceRecord, str | None]:
    """The record in `doc`, and a message when part of it is unreadable (a record written by hand, say):
    one bad document must not break a listing, and is never a 500."""
    if "created_at" not in doc and isinstance(doc.get("_id"), ObjectId):
        doc = {**doc, "created_at": doc["_id"].generation_time}
    try:
        return ServiceRecord.from_document(doc), None
    except ValidationError as exc:
        log.warning("services record %s is not readable: %s", doc.get("_id"), exc)
    outputs = []
    for entry in doc.get("output_files") or []:
        with contextlib.suppress(ValidationError, TypeError):
            outputs.append(OutputFile.model_validate(entry))
    created_at = doc["created_at"] if isinstance(doc.get("created_at"), datetime) else datetime.now(UTC)
    reps = doc.get("reps") if isinstance(doc.get("reps"), int) else None
    record = ServiceRecord.model_construct(
        image=str(doc.get("image", "")),
        version=str(doc.get("version", "")),
        description=str(doc.get("description", "")),
        mount_files={},
        reps=reps,
        env={},
        created_at=created_at,
        output_files=outputs,
    )
    return record, "the services record is not readable"


def _summary(doc: dict[str, Any], resource: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The fields of a ServiceSummary from a services document and its Analytics resource."""
    record, message = read_record({**doc, "output_files": []})
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
    runs = status.active + status.succeeded + status.failed
    total = record.reps if job_type is JobType.ONDEMAND and record.reps else runs
    return {
        "id": str(doc["_id"]),
        "image": record.image,
        "version": record.version,
        "description": record.description,
        "job_type": job_type,
        "reps": record.reps,
        "created_at": record.created_at,
        "status": state,
        "phase": phase,
        "active": status.active,
        "succeeded": status.succeeded,
        "failed": status.failed,
        "total": max(total, runs),
        "outputs": status.outputs,
        "message": message,
        "conditions": status.conditions,
    }


async def _find_service(services: Any, service_id: ObjectId) -> dict[str, Any]:
    doc = await services.find_one({"_id": service_id})
    if doc is None:
        raise HTTPException(404, f"no service {service_id}")
    return doc


@router.get("/", response_model=list[ServiceSummary], responses=errors(422, 502, 503))
@router.get("", include_in_schema=False, response_model=list[ServiceSummary])  # the seed's path, no slash
async def list_services(
    request: Request,
    response: Response,
    services: Services,
    analytics: Analytics,
    skip: Skip = 0,
    limit: Limit = DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """Services, newest first, with their run counts and status. When there are more, the `Link`
    header names the next page (`rel="next"`).

    A page reads its records, then makes ONE Kubernetes call for the page's resources (selected by
    their service-id label), never one per service. Only when the page holds records older than a
    minute whose resource was not found that way (made by hand without the label, or gone) does it
    make a second call, listing the namespace, to match them by name.
    """
    page = services.find({}, projection=SUMMARY_FIELDS, sort=[("_id", -1)], skip=skip, limit=limit + 1)
    if limit > MAX_SELECTED:
        # A page this big lists the whole namespace anyway: no need to wait for the records first.
        docs, resources = await asyncio.gather(page.to_list(), analytics.list())
        everything = True
    else:
        docs = await page.to_list()
        resources = await analytics.list([str(doc["_id"]) for doc in docs[:limit]])
        everything = False
    if len(docs) > limit:
        docs = docs[:limit]
        response.headers["Link"] = next_page_link(request, skip + limit, limit)
    now = datetime.now(UTC)
    unmatched = [doc for doc in docs if str(doc["_id"]) not in resources and _older_than_grace(doc, now)]
    if unmatched and not everything:
        resources = await analytics.list()
    return [_summary(doc, resources.get(str(doc["_id"])), now) for doc in docs]


def _older_than_grace(doc: dict[str, Any], now: datetime) -> bool:
    record, _ = read_record(doc)
    return now - record.created_at > MISSING_RESOURCE_GRACE


@router.post(
    "/launch",
    status_code=202,
    response_model=LaunchResponse,
    dependencies=[Authorized],
    responses=errors(400, 401, 422, 502, 503),
)
async def launch(
    request: LaunchRequest, services: Services, store: Store, analytics: Analytics
) -> LaunchResponse:
    """Launch a module: write its services record, then create its Analytics resource.

    - `ana`: an analytics module; `job_type` `persistent` (a long-running Deployment, with a Service
      and an Ingress when `port` is set; no reps), `scheduled` (a CronJob: needs `reps` and a cron
      `schedule`) or `ondemand` (runs now: needs `reps`; no port, no schedule).
    - `sim`: a simulation, as in the original platform: an on-demand batch of `reps` (default 1)
      independent runs, each writing its outputs (`/service/{id}/output/{run}`); no port, no schedule.
      `{"sim": {"reps": 5}}` is the same as `{"ana": {"job_type": "ondemand", "reps": 5}}`.

    Every `mount_files` id must be a stored file; it appears in the module as `/input/<name>`.
    202: the operator makes the workload. When the resource cannot be created, the record is removed
    again (no half-made service) and the answer is 503 (Kubernetes unreachable) or 502/422 (refused).
    """
    missing = await _missing_files(store, request.mount_files)
    if missing:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "mount_files", file_id),
                    "msg": "no stored file has this id",
                }
                for file_id in missing
            ]
        )
    service_id = ObjectId()
    await services.insert_one(request.record().to_document(service_id))
    try:
        await analytics.create(str(service_id), request.analytics_spec())
    except BaseException:
        await asyncio.shield(_forget(services, analytics, service_id))
        raise
    log.info("launched %s (%s)", service_id, request.analytics_spec()["image"])
    return LaunchResponse(id=str(service_id))


async def _missing_files(store: Store, mount_files: dict[str, str]) -> list[str]:
    if not mount_files:
        return []
    wanted = [ObjectId(file_id) for file_id in mount_files]
    found = {doc["_id"] async for doc in store.files.find({"_id": {"$in": wanted}}, projection={"_id": 1})}
    return [str(file_id) for file_id in wanted if file_id not in found]


async def _forget(services: Any, analytics: Any, service_id: ObjectId) -> None:
    """Undo a launch whose resource could not be made. The resource is deleted too, in case the
    create reached the server but its answer was lost; the record goes last, as the operator needs it."""
    try:
        await analytics.delete(str(service_id))
    except Exception as exc:  # Kubernetes away: there is nothing to delete, or nothing we can do now
        log.warning("launch of %s failed; deleting its resource failed too: %s", service_id, exc)
    try:
        await services.delete_one({"_id": service_id})
    except Exception:
        log.exception("launch of %s failed and its record could not be removed", service_id)


@router.get("/{id}/status", response_model=ServiceStatus, responses=errors(404, 422, 502, 503))
async def service_status(service_id: ServiceId, services: Services, analytics: Analytics) -> dict[str, Any]:
    """A service's runs (active, succeeded, failed, total), its status (`pending` until the operator
    reports, then `running` / `ok` / `error`) and its output files in run order."""
    doc = await _find_service(services, service_id)
    resource = await analytics.get(str(service_id))
    record, _ = read_record(doc)
    summary = _summary(doc, resource, datetime.now(UTC))
    summary["output_files"] = sorted(record.output_files, key=lambda o: (o.run, o.filename))
    summary["outputs"] = max(summary["outputs"], len(record.output_files))
    return summary


@router.get(
    "/{id}/output/{idx}",
    response_class=Response,
    responses={
        200: {
            "description": "A JSON output as its JSON body; any other output as a file download.",
            "content": {
                "application/json": {},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **errors(404, 422, 503),
    },
)
async def service_output(
    service_id: ServiceId,
    idx: Annotated[int, Path(ge=0, le=1_000_000, description="Run index, from 0.")],
    services: Services,
    store: Store,
    name: Annotated[str | None, Query(max_length=1024, description="Which file of the run, by name.")] = None,
) -> Response:
    """Run `idx`'s output (runs count from 0). A `.json` output comes back as its JSON body
    (`application/json`, streamed as the module wrote it: the API never parses what a module wrote); any
    other file as a download. When a run wrote several files, `name` picks one; without it the first in
    name order is returned (the status endpoint lists them all)."""
    record, _ = read_record(await _find_service(services, service_id))
    outputs = record.outputs_of_run(idx)
    if not outputs:
        raise HTTPException(404, f"service {service_id} has no output for run {idx} (yet)")
    chosen = outputs[0] if name is None else next((o for o in outputs if o.filename == name), None)
    if chosen is None:
        raise HTTPException(404, f"run {idx} has no output named {name!r}")
    doc = await store.files.find_one({"_id": _stored_id(chosen.file_id)})
    if doc is None:
        raise HTTPException(404, f"output {chosen.filename} of run {idx} is no longer stored")
    media_type = "application/json" if chosen.filename.lower().endswith(".json") else None
    response: StreamingResponse = await stream_file(
        store, doc, filename=chosen.filename, media_type=media_type
    )
    return response


def _stored_id(file_id: str) -> Any:
    return ObjectId(file_id) if ObjectId.is_valid(file_id) else file_id


@router.delete(
    "/{id}/terminate",
    response_model=TerminateResponse,
    dependencies=[Authorized],
    responses=errors(401, 404, 422, 502, 503),
)
async def terminate(service_id: ServiceId, services: Services, analytics: Analytics) -> TerminateResponse:
    """Stop a service: delete its Analytics resource (the operator's workload goes with it), then its
    record. Its output files stay in the file store (`/files`). 404 when neither exists."""
    exists = await services.find_one({"_id": service_id}, projection={"_id": 1}) is not None
    resource_deleted = await analytics.delete(str(service_id))
    if not exists and not resource_deleted:
        raise HTTPException(404, f"no service {service_id}")
    record_deleted = (await services.delete_one({"_id": service_id})).deleted_count > 0
    return TerminateResponse(
        id=str(service_id), resource_deleted=resource_deleted, record_deleted=record_deleted
    )
