"""Following a service until it settles (polling its status; issue 14 moves this to the API's events)."""

from __future__ import annotations

import time
from collections.abc import Callable

from .client import ApiClient
from .errors import ExitCode
from .models import ServiceStatus

# A batch is settled when it finished; a long-running service when it is up (its Deployment
# available, its CronJob scheduled): waiting longer would never end.
FINISHED = {"ok": ExitCode.OK, "error": ExitCode.SERVICE_FAILED}
UP_PHASES = {"Available", "Scheduled"}


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


def follow(
    client: ApiClient,
    service_id: str,
    interval: float,
    timeout: float | None,
    changed: Callable[[ServiceStatus], None] = lambda status: None,
) -> tuple[ServiceStatus, bool]:
    """Poll until the service settles or `timeout` seconds pass; `changed` sees every new state.
    The last status, and whether it settled."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last: tuple[object, ...] | None = None
    while True:
        status = client.status(service_id)
        if _state(status) != last:
            last = _state(status)
            changed(status)
        if settled(status):
            return status, True
        if deadline is not None and time.monotonic() >= deadline:
            return status, False
        pause = interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic()))
        time.sleep(pause)
