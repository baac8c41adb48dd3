"""GET /service/{id}/events: a service's status as Server-Sent Events, one event per change.

Source: a watch on the service's Analytics resource. The operator publishes every change of a service
(phase, run counts, collected outputs, conditions) to the resource's status, and the API server
pushes each write to a watch at once; the services record changes only together with such a write
(collection), and FerretDB, our MongoDB stand-in, has no change streams to watch it by. So each watch
event is a cue to read both (the resource and the record) and answer what GET /status would answer;
an event goes out only when that answer changed.

The stream (text/event-stream):
- `retry: 3000`, then the current status as the first event (`event: status`, `data:` the status
  answer of the API version asked, as one line of JSON);
- an event each time the answer changes; its `id:` is a digest of the answer, so that a client that
  reconnects with `Last-Event-ID` gets the current status only if it differs from the last one it
  saw (no duplicates), then the changes that follow;
- a `: keep-alive` comment every `keepalive` seconds while nothing changes (proxies and clients
  keep a silent connection open); the status is read again then too, as a fallback for a missed
  watch event;
- it ends after the status settles (`ok`, `error`), or with `event: terminated` when the service
  is terminated (its record gone, its resource gone or being deleted).
A backend away mid-stream does not end it: the status is read again at the next keep-alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from bson import ObjectId
from pydantic import BaseModel
from pymongo.errors import PyMongoError

from services.shared.status import ServiceState

from .errors import KubernetesError, KubernetesUnavailable
from .kube import AnalyticsClient
from .views import ServiceView

log = logging.getLogger(__name__)

RETRY_MILLISECONDS = 3000  # what a client waits before reconnecting
WATCH_SECONDS = 240  # one watch request; then the next one carries on from its last version
WATCH_RETRY_SECONDS = 2.0
SETTLED = frozenset({ServiceState.OK, ServiceState.ERROR})
TERMINATED = "terminated"
_BACKEND_ERRORS = (PyMongoError, KubernetesUnavailable, KubernetesError)
# A watch cut off (the API server restarted), or an event that is not what it should be: start over.
_WATCH_ERRORS = (*_BACKEND_ERRORS, aiohttp.ClientError, ValueError, KeyError, TimeoutError, OSError)


@dataclass(frozen=True)
class Event:
    kind: str
    data: str  # one line of JSON

    @property
    def id(self) -> str:
        return hashlib.sha256(f"{self.kind}\0{self.data}".encode()).hexdigest()[:20]

    def text(self) -> str:
        return f"id: {self.id}\nevent: {self.kind}\ndata: {self.data}\n\n"


@dataclass(frozen=True)
class Snapshot:
    """The service as read once: the event to show for it, and whether the stream ends with it."""

    event: Event
    ends: bool
    resource_version: str
    record_found: bool = True


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class StatusEvents:
    """One client's stream of one service's status."""

    def __init__(
        self,
        services: Any,
        analytics: AnalyticsClient,
        service_id: ObjectId,
        answer: Callable[[ServiceView], BaseModel],
        keepalive_seconds: float,
        last_event_id: str | None,
    ) -> None:
        self._services = services
        self._analytics = analytics
        self._id = service_id
        self._answer = answer
        self._keepalive = keepalive_seconds
        self._last_id = last_event_id
        self._changed = asyncio.Event()
        self._resource_seen = False

    async def read(self) -> Snapshot:
        """The service now; `terminated` once its record is gone (for the first read: no such service),
        or its resource is being deleted, or gone after it was seen."""
        doc = await self._services.find_one({"_id": self._id})
        if doc is None:  # first the record: an unknown service is a 404 even with Kubernetes away
            return self._terminated("", record_found=False)
        resource, version = await self._analytics.read(str(self._id))
        if self._resource_seen and resource is None:
            return self._terminated(version)
        if resource is not None and resource.get("metadata", {}).get("deletionTimestamp"):
            return self._terminated(version)
        self._resource_seen = self._resource_seen or resource is not None
        view = ServiceView.of(doc, resource, datetime.now(UTC))
        event = Event("status", _json(self._answer(view).model_dump(mode="json")))
        return Snapshot(event, view.state in SETTLED, version)

    def _terminated(self, version: str, record_found: bool = True) -> Snapshot:
        data = _json({"id": str(self._id), "status": TERMINATED})
        return Snapshot(Event(TERMINATED, data), True, version, record_found)

    async def stream(self, first: Snapshot) -> AsyncIterator[str]:
        """The event stream, starting from `first` (read before the response began)."""
        yield f"retry: {RETRY_MILLISECONDS}\n\n"
        watcher = asyncio.create_task(self._watch(first.resource_version))
        snapshot: Snapshot | None = first
        try:
            while True:
                if snapshot is not None:
                    if snapshot.event.id != self._last_id:
                        self._last_id = snapshot.event.id
                        yield snapshot.event.text()
                    if snapshot.ends:
                        return
                try:
                    await asyncio.wait_for(self._changed.wait(), self._keepalive)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                self._changed.clear()  # before reading: a change during the read is seen next round
                snapshot = await self._read_softly()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _read_softly(self) -> Snapshot | None:
        try:
            return await self.read()
        except _BACKEND_ERRORS as exc:
            log.warning("events of %s: reading the status failed (tried again shortly): %s", self._id, exc)
            return None

    async def _watch(self, version: str | None) -> None:
        """Sets `_changed` on every change of the resource, watching from `version` on."""
        name = str(self._id)
        while True:
            try:
                if version is None:  # the watch had to start over: read where from, and look again
                    _, version = await self._analytics.read(name)
                    self._changed.set()
                async for event in self._analytics.watch(name, version, WATCH_SECONDS):
                    if event.get("type") == "ERROR":
                        version = None
                        break
                    version = str(event["object"]["metadata"]["resourceVersion"])
                    if event.get("type") != "BOOKMARK":
                        self._changed.set()
            except (
                *_BACKEND_ERRORS,
                aiohttp.ClientError,
                ValueError,
                KeyError,
                TimeoutError,
                OSError,
            ) as exc:
                log.warning("events of %s: the watch failed (started again shortly): %s", name, exc)
                version = None
                await asyncio.sleep(WATCH_RETRY_SECONDS)
