"""GET /service/{id}/logs: a run's log, from GridFS once the operator stored it, else live from its pod.

Which one (services.shared.run_logs says where the operator notes both):
1. the run was collected with its log (`run_logs.<run>.file_id`): the stored copy, whatever `follow`
   says (the run is over); `tail` applies to it too;
2. else the record names the run's pod (`run_pods.<run>`): its log, live from the API server, followed
   until the container ends if `follow`;
3. else: 404 for a run the service will never have, 409 for one that has not started yet.
Answers are `text/plain` (the log's bytes as the module printed them); `X-Log-Source` says `stored`
or `live`, `X-Log-Truncated` whether the stored copy was cut to the operator's cap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from bson import ObjectId
from fastapi import HTTPException
from fastapi.responses import Response, StreamingResponse

from services.shared.crd import JobType
from services.shared.files import FileStore
from services.shared.run_logs import LOG_CONTENT_TYPE, RunLog, run_log, run_pod

from .kube import AnalyticsClient
from .pod_logs import LogUnavailable, PodLogs

_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
# Tells a proxy in front (ingress-nginx) to pass a followed log on as it comes, not in buffered blocks.
_STREAMING = {**_HEADERS, "X-Accel-Buffering": "no"}


def last_lines(content: bytes, count: int) -> bytes:
    """The last `count` lines of `content` (a last line without its newline counts as one)."""
    return b"".join(content.splitlines(keepends=True)[-count:])


async def _stored(store: FileStore, entry: RunLog, tail: int | None) -> Response | None:
    """The stored copy (None when it is no longer in the file store)."""
    if entry.file_id is None:
        return None
    doc = await store.files.find_one({"_id": ObjectId(entry.file_id)})
    if doc is None:
        return None
    headers = {**_HEADERS, "X-Log-Source": "stored", "X-Log-Truncated": str(entry.truncated).lower()}
    chunks = store.iter_chunks(doc)
    if tail is not None:  # the stored copy is capped by the operator: it fits in memory
        content = b"".join([chunk async for chunk in chunks])
        return Response(last_lines(content, tail), media_type=LOG_CONTENT_TYPE, headers=headers)
    first = await anext(chunks, b"")  # read before answering: MongoDB away is still a clean 503

    async def body() -> AsyncIterator[bytes]:
        try:
            if first:
                yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()

    headers["Content-Length"] = str(int(doc["length"]))
    return StreamingResponse(body(), media_type=LOG_CONTENT_TYPE, headers=headers)


async def _no_pod(
    analytics: AnalyticsClient, sid: str, run: int, reps: int | None, entry: RunLog | None
) -> HTTPException:
    """Why there is no log of run `run` to read: a run the service does not have (404), one collected
    without a log (404, with the operator's note), or one not started yet (409)."""
    if entry is not None:
        note = entry.note or "its stored copy was deleted from the file store"
        return HTTPException(404, f"run {run} of service {sid} has no stored log: {note}")
    resource = await analytics.get(sid)
    job_type = str(((resource or {}).get("spec") or {}).get("jobType", ""))
    if job_type == JobType.PERSISTENT and run != 0:
        return HTTPException(404, f"service {sid} is persistent: it has one run, 0")
    if job_type == JobType.ONDEMAND and reps is not None and run >= reps:
        return HTTPException(404, f"service {sid} has {reps} runs (0 to {reps - 1}); there is no run {run}")
    if job_type == JobType.SCHEDULED:
        return HTTPException(
            404,
            f"service {sid} has no run {run} yet (a scheduled service's run logs are served once the "
            "run is collected)",
        )
    return HTTPException(409, f"run {run} of service {sid} has not started yet")


async def run_log_response(
    doc: dict[str, Any],
    reps: int | None,
    run: int,
    follow: bool,
    tail: int | None,
    store: FileStore,
    pod_logs: PodLogs,
    analytics: AnalyticsClient,
) -> Response:
    """The answer to GET /service/{id}/logs for the services document `doc`."""
    sid = str(doc["_id"])
    entry = run_log(doc, run)
    if entry is not None:
        stored = await _stored(store, entry, tail)
        if stored is not None:
            return stored
    pod = run_pod(doc, run)
    if pod is None:
        raise await _no_pod(analytics, sid, run, reps, entry)
    if not pod.node:
        raise HTTPException(409, f"run {run} of service {sid} is waiting for a node (pod {pod.pod})")
    try:
        opened = await pod_logs.open(pod.pod, follow=follow, tail=tail)
    except LogUnavailable as exc:
        detail = f"run {run} of service {sid}: {exc.detail}"
        if entry is not None:
            detail += f"; no log was stored: {entry.note or 'its stored copy was deleted'}"
        raise HTTPException(exc.status, detail) from None
    headers = {**_STREAMING, "X-Log-Source": "live", "X-Log-Pod": pod.pod}
    return StreamingResponse(opened.chunks(), media_type=LOG_CONTENT_TYPE, headers=headers)
