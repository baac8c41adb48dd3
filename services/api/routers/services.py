"""/service: launch, list, status, outputs and termination of analytics and simulation modules.

Written once, mounted per API version (`router(contract)`); the version picks the launch request model
and shapes the answers.
"""

# No `from __future__ import annotations`: the endpoints are made per version inside `router()`, and
# FastAPI must see their parameter types (local to it) as objects, not as names to look up.
import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from bson import ObjectId
from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from ..contracts import Contract
from ..deps import (
    Analytics,
    Authorized,
    PodLogReader,
    ServiceId,
    Services,
    Settings,
    Skip,
    Store,
    limit_query,
    next_page_link,
)
from ..downloads import stream_file
from ..events import StatusEvents
from ..kube import MAX_SELECTED
from ..models import SeedLaunchRequest, errors
from ..run_logs import run_log_response
from ..views import Launched, ServiceView, Terminated, older_than_grace, read_record

log = logging.getLogger(__name__)

LIST_ORDER = """Services in the order they were launched (oldest first, MongoDB's natural order, as the
original platform listed them): a page is read without sorting, so that new launches never shift the
pages already read, and FerretDB answers it without reading the whole collection."""


async def _find_service(services: Any, service_id: ObjectId) -> dict[str, Any]:
    doc = await services.find_one({"_id": service_id})
    if doc is None:
        raise HTTPException(404, f"no service {service_id}")
    return doc


async def list_views(
    services: Any, analytics: Any, skip: int, limit: int, fields: dict[str, int]
) -> tuple[list[ServiceView], bool]:
    """A page of services and whether more follow.

    A page reads its records, then makes ONE Kubernetes call for the page's resources (selected by
    their service-id label), never one per service. Only when the page holds records older than a
    minute whose resource was not found that way (made by hand without the label, or gone) does it
    make a second call, listing the namespace, to match them by name.
    """
    page = services.find({}, projection=fields, skip=skip, limit=limit + 1)
    if limit > MAX_SELECTED:
        # A page this big lists the whole namespace anyway: no need to wait for the records first.
        docs, resources = await asyncio.gather(page.to_list(), analytics.list())
        everything = True
    else:
        docs = await page.to_list()
        resources = await analytics.list([str(doc["_id"]) for doc in docs[:limit]])
        everything = False
    more = len(docs) > limit
    docs = docs[:limit]
    now = datetime.now(UTC)
    unmatched = [doc for doc in docs if str(doc["_id"]) not in resources and older_than_grace(doc, now)]
    if unmatched and not everything:
        resources = await analytics.list()
    return [ServiceView.of(doc, resources.get(str(doc["_id"])), now) for doc in docs], more


async def _missing_files(store: Any, request: SeedLaunchRequest) -> list[tuple[str | int, ...]]:
    """Where the request names a file that is not stored: (field path..., file id), in request order.
    One query for all of them (a study's scenarios included)."""
    named = [(where, file_id) for where, files in request.scenario_mount_files() for file_id in files]
    if not named:
        return []
    wanted = list({ObjectId(file_id) for _, file_id in named})
    found = {
        str(doc["_id"]) async for doc in store.files.find({"_id": {"$in": wanted}}, projection={"_id": 1})
    }
    return [(*where, file_id) for where, file_id in named if file_id not in found]


async def launch_service(request: SeedLaunchRequest, services: Any, store: Any, analytics: Any) -> Launched:
    """Write the services record, then create the Analytics resource; undo the record if that fails."""
    missing = await _missing_files(store, request)
    if missing:
        raise RequestValidationError(
            [
                {"type": "value_error", "loc": ("body", *where), "msg": "no stored file has this id"}
                for where in missing
            ]
        )
    service_id = ObjectId()
    await services.insert_one(request.record().to_document(service_id))
    try:
        await analytics.create(str(service_id), request.analytics_spec())
    except BaseException:
        await asyncio.shield(_forget(services, analytics, service_id))
        raise
    warnings = request.warnings()
    log.info("launched %s (%s)", service_id, request.analytics_spec()["image"])
    for warning in warnings:
        log.warning("launch of %s: %s", service_id, warning)
    return Launched(str(service_id), warnings)


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


def _stored_id(file_id: str) -> Any:
    return ObjectId(file_id) if ObjectId.is_valid(file_id) else file_id


def router(contract: Contract) -> APIRouter:
    api = APIRouter(prefix="/service", tags=["services"])
    service_model: Any = contract.service_model
    LaunchBody: Any = contract.launch_model
    limit_bound = limit_query(contract.max_limit)

    @api.get("/", response_model=list[service_model], responses=errors(422, 502, 503), description=LIST_ORDER)
    @api.get("", include_in_schema=False, response_model=list[service_model])  # no slash: as the original
    async def list_services(
        request: Request,
        response: Response,
        services: Services,
        analytics: Analytics,
        skip: Skip = 0,
        limit: Annotated[int, limit_bound] = contract.default_limit,
    ) -> list[BaseModel]:
        """Services with their run counts and status. When there are more, the `Link` header names the
        next page (`rel="next"`). One Kubernetes call per page, whatever its size."""
        views, more = await list_views(services, analytics, skip, limit, contract.list_fields)
        if more:
            response.headers["Link"] = next_page_link(request, skip + limit, limit)
        return [contract.service(view) for view in views]

    @api.post(
        "/launch",
        status_code=202,
        response_model=contract.launched_model,
        dependencies=[Authorized],
        responses=errors(400, 401, 422, 502, 503),
    )
    async def launch(
        request: LaunchBody, services: Services, store: Store, analytics: Analytics
    ) -> BaseModel:
        """Launch a module: write its services record, then create its Analytics resource.

        - `ana`: an analytics module; `job_type` `persistent` (a long-running Deployment, with a Service
          and an Ingress when `port` is set; no reps), `scheduled` (a CronJob: needs `reps` and a cron
          `schedule`) or `ondemand` (runs now: needs `reps`; no port, no schedule).
        - `sim`: a simulation, as in the original platform: an on-demand batch of `reps` (default 1)
          independent runs, each writing its outputs (`/service/{id}/output/{run}`); no port, no schedule.
          `{"sim": {"reps": 5}}` is the same as `{"ana": {"job_type": "ondemand", "reps": 5}}`.
        - `sim` with `scenarios`: a study, `reps` runs of every scenario (at most 100 runs in all). Each
          scenario has a unique `name` (a DNS label), its own `mount_files` (over the service's, at
          /input) and `env` (over the service's); run k*reps + r is replication r of scenario k and
          gets SCENARIO=<name> and RUN_INDEX=r. The status groups runs and outputs by scenario; once
          every run is done the operator writes the summary (`/service/{id}/summary`).

        Every `mount_files` id must be a stored file; it appears in the module as `/input/<name>`.
        202: the operator makes the workload. When the resource cannot be created, the record is removed
        again (no half-made service) and the answer is 503 (Kubernetes unreachable) or 502/422 (refused).
        """
        return contract.launched(await launch_service(request, services, store, analytics))

    @api.get("/{id}/status", response_model=contract.status_model, responses=errors(404, 422, 502, 503))
    async def service_status(service_id: ServiceId, services: Services, analytics: Analytics) -> BaseModel:
        """A service's runs (active, succeeded, failed, total), its status (`pending` until the operator
        reports, then `running` / `ok` / `error`) and its output files in run order."""
        doc = await _find_service(services, service_id)
        resource = await analytics.get(str(service_id))
        return contract.status(ServiceView.of(doc, resource, datetime.now(UTC)))

    @api.get(
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
        idx: Annotated[int, Path(ge=0, le=1_000_000, description=contract.output_idx_description)],
        services: Services,
        store: Store,
        name: Annotated[str | None, Query(max_length=1024, description="Which file, by name.")] = None,
    ) -> Response:
        """Output `idx`. A `.json` output comes back as its JSON body (`application/json`, streamed as the
        module wrote it: the API never parses what a module wrote); any other file as a download."""
        record, _ = read_record(await _find_service(services, service_id))
        chosen = contract.output(record, idx, name)
        if chosen is None:
            named = f" named {name!r}" if name is not None else ""
            raise HTTPException(404, f"service {service_id} has no output {idx}{named} (yet)")
        doc = await store.files.find_one({"_id": _stored_id(chosen.file_id)})
        if doc is None:
            raise HTTPException(404, f"output {chosen.filename} of run {chosen.run} is no longer stored")
        # A JSON output is streamed as the module wrote it, never parsed here (a crafted file would cost
        # the API many times its size in Python objects).
        media_type = "application/json" if chosen.filename.lower().endswith(".json") else None
        response: StreamingResponse = await stream_file(
            store, doc, filename=chosen.filename, media_type=media_type
        )
        return response

    @api.get(
        "/{id}/summary",
        response_class=Response,
        responses={
            200: {
                "description": "The study summary: JSON (`format=json`, the default) or CSV (`format=csv`).",
                "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
            },
            **errors(404, 422, 503),
        },
    )
    async def study_summary(
        service_id: ServiceId,
        services: Services,
        store: Store,
        format: Annotated[
            Literal["json", "csv"], Query(description="`json`: the whole summary; `csv`: its table.")
        ] = "json",
    ) -> Response:
        """A study's summary (a `sim` launched with `scenarios`), written by the operator once every run
        has finished and been collected: every run's KPIs in one table by scenario and replication, and
        for each numeric KPI per scenario n, mean, standard deviation and the 95% interval of the mean
        (Student t). 404 while it is not written yet, and for a service that is not a study."""
        record, _ = read_record(await _find_service(services, service_id))
        if record.study is None:
            raise HTTPException(404, f"service {service_id} is not a study (a `sim` with `scenarios`)")
        if record.study_summary is None:
            raise HTTPException(
                404, f"the summary of study {service_id} is not written yet: its runs have not all finished"
            )
        summary = record.study_summary
        file_id = summary.csv_file_id if format == "csv" else summary.json_file_id
        doc = await store.files.find_one({"_id": _stored_id(file_id)})
        if doc is None:
            raise HTTPException(404, f"the summary of study {service_id} is no longer stored")
        media_type = "text/csv; charset=utf-8" if format == "csv" else "application/json"
        response: StreamingResponse = await stream_file(
            store, doc, filename=f"summary-{service_id}.{format}", media_type=media_type
        )
        return response

    @api.get(
        "/{id}/logs",
        response_class=Response,
        responses={
            200: {
                "description": "The run's log as its module printed it (streamed; followed while the run "
                "runs when `follow` is true). `X-Log-Source`: `stored` (collected with the run's outputs, "
                "kept after its pod is gone) or `live` (from the run's pod); `X-Log-Truncated`: whether "
                "the stored copy was cut to the operator's cap (the cut is marked in it).",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **errors(404, 409, 422, 502, 503),
        },
    )
    async def service_logs(
        service_id: ServiceId,
        services: Services,
        store: Store,
        analytics: Analytics,
        pod_logs: PodLogReader,
        run: Annotated[int, Query(ge=0, le=1_000_000, description="Run index, from 0.")] = 0,
        follow: Annotated[
            bool, Query(description="Keep streaming while the run runs (a finished run's log just ends).")
        ] = False,
        tail: Annotated[
            int | None, Query(ge=1, le=1_000_000, description="Only the last `tail` lines.")
        ] = None,
    ) -> Response:
        """A run's container log: live from its pod while it has one, and once the run is collected the
        copy the operator stored with its outputs (so it outlives the pod). 404: no such service or run
        (or its pod is gone and no log was stored); 409: the run has not started yet."""
        doc = await _find_service(services, service_id)
        record, _ = read_record(doc)
        return await run_log_response(doc, record.reps, run, follow, tail, store, pod_logs, analytics)

    @api.get(
        "/{id}/events",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "Server-Sent Events: `event: status` with the status answer (as GET "
                "/status gives it) as `data`, first the current one, then one per change; `event: "
                "terminated` when the service is terminated. Ends once the status is ok or error.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **errors(404, 422, 502, 503),
        },
    )
    async def service_events(
        service_id: ServiceId,
        services: Services,
        analytics: Analytics,
        settings: Settings,
        last_event_id: Annotated[
            str | None,
            Header(
                alias="Last-Event-ID",
                max_length=128,
                description="The `id` of the last event received: resume without repeating it.",
            ),
        ] = None,
    ) -> StreamingResponse:
        """A service's status as it changes, without polling (text/event-stream). Each event has an
        `id`; reconnecting with `Last-Event-ID` resumes without a duplicate. A `: keep-alive` comment
        comes every 15 s while nothing changes."""
        events = StatusEvents(
            services, analytics, service_id, contract.status, settings.events_keepalive_seconds, last_event_id
        )
        first = await events.read()  # before answering: no such service is a 404, backends away a 503
        if not first.record_found:
            raise HTTPException(404, f"no service {service_id}")
        return StreamingResponse(
            events.stream(first),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @api.delete(
        "/{id}/terminate",
        response_model=contract.terminated_model,
        dependencies=[Authorized],
        responses=errors(401, 404, 422, 502, 503),
    )
    async def terminate(service_id: ServiceId, services: Services, analytics: Analytics) -> BaseModel:
        """Stop a service: delete its Analytics resource (the operator's workload goes with it), then its
        record. Its output files stay in the file store (`/files`). 404 when neither exists."""
        exists = await services.find_one({"_id": service_id}, projection={"_id": 1}) is not None
        resource_deleted = await analytics.delete(str(service_id))
        if not exists and not resource_deleted:
            raise HTTPException(404, f"no service {service_id}")
        record_deleted = (await services.delete_one({"_id": service_id})).deleted_count > 0
        return contract.terminated(Terminated(str(service_id), resource_deleted, record_deleted))

    return api
