"""A pod's container log, read through the API server as it is written (`pods/log` get: the one right
the API has on pods; the operator tells it which pod runs a run, see services.shared.run_logs).

`PodLogs.open` answers once the API server has: a pod that is gone is `LogUnavailable(404)`, a
container that has no log yet (waiting to start, or not there) `LogUnavailable(409)`, refusals and
outages the API's usual `KubernetesError` (502) and `KubernetesUnavailable` (503). Only then does the
caller start its response, and the body streams from there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import aiohttp

from services.shared.kube_stream import open_stream, pod_log_path

from .errors import KubernetesError, KubernetesUnavailable
from .kube import NamespacedClient

log = logging.getLogger(__name__)

CONTAINER = "module"  # the module's container in every run pod (services.operator.workloads)
CHUNK_BYTES = 64 * 1024
_UNAVAILABLE_STATUSES = {429, 500, 502, 503, 504}


class LogUnavailable(Exception):
    """There is no log to read now: 404 the pod is gone, 409 its container has none yet."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _message(status: int, body: bytes) -> str:
    try:
        return str(json.loads(body)["message"])
    except (TypeError, ValueError, KeyError):
        return " ".join(body.decode(errors="replace").split())[:500] or str(status)


class OpenLog:
    """A log being read: iterate `chunks()`, then `close()` (also when the caller stops early)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The API server or the node went away mid-stream: the caller's body just ends here.
            log.warning("a pod log stream ended early: %s", exc)
        finally:
            self.close()

    def close(self) -> None:
        self._response.release()


class PodLogs(NamespacedClient):
    async def open(self, pod: str, *, follow: bool, tail: int | None) -> OpenLog:
        """Start reading `pod`'s module container log (following it while it runs if `follow`, only
        its last `tail` lines if given)."""
        api = self.api_client()
        query = [("container", CONTAINER), ("follow", "true" if follow else "false")]
        if tail is not None:
            query.append(("tailLines", str(tail)))
        path = pod_log_path(self.namespace, pod)
        # Connecting and the first answer are bounded; a followed log may then stay quiet for long.
        timeout = aiohttp.ClientTimeout(
            total=None if follow else self._timeout * 6,
            sock_connect=self._timeout,
            sock_read=None if follow else self._timeout,
        )
        try:
            response = await open_stream(api, path, query, timeout)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise KubernetesUnavailable(f"read the log of pod {pod}: {type(exc).__name__} {exc}") from exc
        if 200 <= response.status < 300:
            return OpenLog(response)
        try:
            message = _message(response.status, await response.read())
        finally:
            response.release()
        if response.status == 404:
            raise LogUnavailable(404, f"pod {pod} is gone ({message})")
        if response.status == 400:
            raise LogUnavailable(409, f"pod {pod} has no log to read now ({message})")
        if response.status in _UNAVAILABLE_STATUSES:
            raise KubernetesUnavailable(f"read the log of pod {pod}: {response.status} {message}")
        raise KubernetesError(response.status, message)
