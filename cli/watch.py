"""Following a service until it settles: from the API's status events (GET /service/{id}/events), each
change as it happens, without polling; by polling its status only when the API has no such stream
(it answers 404 for it).

The stream is read by a thread of its own, so that a timeout (`wait --timeout`) is kept to the moment
whatever the stream is doing; a connection lost mid-stream is resumed with the last event's id
(`Last-Event-ID`: the API then sends nothing twice).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import httpx

from .client import ApiClient, EventsNotServed
from .errors import CliError, ExitCode
from .models import ServiceStatus

# A batch is settled when it finished; a long-running service when it is up (its Deployment
# available, its CronJob scheduled): waiting longer would never end.
FINISHED = {"ok": ExitCode.OK, "error": ExitCode.SERVICE_FAILED}
UP_PHASES = {"Available", "Scheduled"}
RECONNECTS = 5  # connections lost in a row before giving up
RECONNECT_PAUSE_SECONDS = 1.0

Changed = Callable[[ServiceStatus], None]


class ServiceTerminated(Exception):
    """The service was terminated while it was followed."""


def settled(status: ServiceStatus) -> bool:
    return status.status in FINISHED or status.phase in UP_PHASES


def outcome(status: ServiceStatus) -> ExitCode:
    """`wait`'s exit code for a settled status: 0 finished well or up, 1 failed."""
    return FINISHED.get(status.status, ExitCode.OK)


def _state(status: ServiceStatus) -> tuple[object, ...]:
    return (
        status.status,
        status.phase,
        status.active,
        status.succeeded,
        status.failed,
        status.total,
        status.outputs,
        status.message,
    )


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def follow(
    client: ApiClient,
    service_id: str,
    interval: float,
    timeout: float | None,
    changed: Changed = lambda status: None,
) -> tuple[ServiceStatus, bool]:
    """Follow until the service settles or `timeout` seconds pass; `changed` sees every new state.
    The last status, and whether it settled. ServiceTerminated if it is terminated meanwhile."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        return _follow_events(client, service_id, deadline, changed)
    except EventsNotServed:
        return _follow_polling(client, service_id, interval, deadline, changed)


def _read_events(client: ApiClient, service_id: str, updates: queue.Queue[object]) -> None:
    """The reading thread: puts each status (then a ServiceTerminated, or the error that ended it)."""
    last_id: str | None = None
    lost = 0
    while True:
        try:
            with client.events(service_id, last_id) as events:
                for event in events:
                    lost = 0
                    last_id = event.id or last_id
                    if event.kind == "terminated":
                        updates.put(ServiceTerminated(service_id))
                        return
                    if event.kind == "status":
                        status = ServiceStatus.model_validate_json(event.data)
                        updates.put(status)
                        if settled(status):
                            return
            # The stream ended before the service settled (the API restarted): resume.
        except httpx.HTTPError as exc:
            lost += 1
            if lost > RECONNECTS:
                updates.put(CliError(f"the API's event stream keeps breaking off: {exc}"))
                return
        except BaseException as exc:  # handed to the main thread, which raises it
            updates.put(exc)
            return
        time.sleep(RECONNECT_PAUSE_SECONDS)


def _follow_events(
    client: ApiClient, service_id: str, deadline: float | None, changed: Changed
) -> tuple[ServiceStatus, bool]:
    updates: queue.Queue[object] = queue.Queue()
    reader = threading.Thread(target=_read_events, args=(client, service_id, updates), daemon=True)
    reader.start()
    current: ServiceStatus | None = None
    last: tuple[object, ...] | None = None
    while True:
        try:
            item = updates.get(timeout=_remaining(deadline))
        except queue.Empty:
            # Timed out (the reader is a daemon thread: it goes with the command).
            return current if current is not None else client.status(service_id), False
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, ServiceStatus)
        current = item
        if _state(current) != last:
            last = _state(current)
            changed(current)
        if settled(current):
            return current, True


def _follow_polling(
    client: ApiClient, service_id: str, interval: float, deadline: float | None, changed: Changed
) -> tuple[ServiceStatus, bool]:
    last: tuple[object, ...] | None = None
    while True:
        status = client.status(service_id)
        if _state(status) != last:
            last = _state(status)
            changed(status)
        if settled(status):
            return status, True
        remaining = _remaining(deadline)
        if remaining is not None and remaining <= 0:
            return status, False
        time.sleep(interval if remaining is None else min(interval, remaining))
