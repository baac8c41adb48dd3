"""Run logs: a finished run's container log goes to GridFS with its outputs, so that it outlives the pod.

When a run is collected (services.operator.outputs), `RunLogStore.collect` finds the run's pod by the
labels the platform puts on it (its Job's name and its completion index), reads the log of its module
container through the API server (`pods/log`), keeps at most `max_bytes` of it (`LogCap`: the first
and the last half, cut at line ends, with a line saying what was left out between them), and stores
it under `run_log_file_id(sid, run)` (the same id on every attempt: a retry finds it stored). The
record's entry for the run (`run_logs.<run>`, see services.shared.run_logs) is written by the same
update that marks the run collected.

Reading the log fails soft: a pod that is gone, a node that cannot be reached, a container that never
started (or a simulated node without logs) leave no log and a note in the entry saying why; the run's
collection and status never wait on its log.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from services.shared.files import FileStore
from services.shared.run_logs import LOG_CONTENT_TYPE, LOG_KIND, RunLog, run_log_file_id

from .kube import Kube, collection_path, object_path
from .workloads import COMPLETION_INDEX, CONTAINER, JOB_NAME_LABEL, selector_labels

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 1024 * 1024
READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class PodRef:
    """How to find the pod of a run: its Job and its completion index, in a namespace."""

    namespace: str
    job_name: str
    index: int


class LogCap:
    """Keeps at most `max_bytes` of a log fed in chunks: the first half and the last half (memory stays
    bounded whatever the log's size). Past the cap, both halves are cut back to whole lines and a line
    between them says how much was left out."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 2:
            raise ValueError("LogCap.max_bytes must be at least 2")
        self.max_bytes = max_bytes
        self._head_limit = max_bytes // 2
        self._tail_limit = max_bytes - self._head_limit
        self._head = bytearray()
        self._tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        self._tail += chunk
        if len(self._tail) > self._tail_limit:
            del self._tail[: len(self._tail) - self._tail_limit]

    @property
    def truncated(self) -> bool:
        return self.total > self.max_bytes

    def content(self) -> bytes:
        if not self.truncated:
            return bytes(self._head + self._tail)
        head, tail = bytes(self._head), bytes(self._tail)
        if b"\n" in head:
            head = head[: head.rindex(b"\n") + 1]
        if b"\n" in tail[:-1]:
            tail = tail[tail.index(b"\n") + 1 :]
        left_out = self.total - len(head) - len(tail)
        marker = (
            f"[dtpoc: {left_out} bytes of this log were left out here: it has {self.total} bytes, and the "
            f"platform keeps the first and last {self.max_bytes} at most]\n"
        )
        separator = b"" if head.endswith(b"\n") or not head else b"\n"
        return head + separator + marker.encode() + tail


def _reason(exc: Exception) -> str:
    """Why a call failed, in one line: the API server's Status message when there is one."""
    if isinstance(exc, ApiException):
        try:
            message = str(json.loads(exc.body or "")["message"])
        except (TypeError, ValueError, KeyError):
            message = str(exc.body or exc.reason or "").strip()
        return f"{exc.status}: {' '.join(message.split())[:500]}"
    return f"{type(exc).__name__}: {exc}".strip()


class RunLogStore:
    """Reads a finished run's log from its pod and stores it (see the module's docstring)."""

    def __init__(
        self, kube: Kube, store: FileStore, max_bytes: int = DEFAULT_MAX_BYTES, timeout_seconds: float = 60
    ) -> None:
        self.kube = kube
        self.store = store
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def find_pod(self, sid: str, ref: PodRef) -> dict[str, Any] | None:
        """The newest pod of the run (a run retried has one pod per attempt), None if there is none."""
        labels = {**selector_labels(sid), JOB_NAME_LABEL: ref.job_name}
        path = collection_path("Pod", ref.namespace)
        selector = ",".join(f"{key}={value}" for key, value in labels.items())
        # The run's pods alone, by their index label (Kubernetes 1.28 on); else the Job's, by annotation.
        pods = await self.kube.list(path, f"{selector},{COMPLETION_INDEX}={ref.index}")
        if not pods:
            pods = await self.kube.list(path, selector)
        mine = [
            pod
            for pod in pods
            if (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX) == str(ref.index)
        ]
        mine.sort(key=lambda pod: (pod["metadata"].get("creationTimestamp", ""), pod["metadata"]["name"]))
        return mine[-1] if mine else None

    async def read(self, namespace: str, pod: str) -> LogCap:
        """The module container's log of `pod`, capped."""
        cap = LogCap(self.max_bytes)
        path = object_path("Pod", namespace, pod, "log")
        async with self.kube.stream(path, [("container", CONTAINER)], self.timeout_seconds) as response:
            async for chunk in response.content.iter_chunked(READ_CHUNK):
                cap.feed(chunk)
        return cap

    async def collect(self, sid: str, run: int, ref: PodRef) -> dict[str, Any]:
        """Store run `run`'s log; the record's entry for it (`run_logs.<run>`), a note when none."""
        try:
            pod = await self.find_pod(sid, ref)
        except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
            return self._note(sid, run, None, f"the run's pod could not be listed ({_reason(exc)})")
        if pod is None:
            return self._note(sid, run, None, "the run's pod is gone, so its log could not be read")
        name = str(pod["metadata"]["name"])
        try:
            cap = await self.read(ref.namespace, name)
        except (ApiException, aiohttp.ClientError, TimeoutError) as exc:
            return self._note(sid, run, name, f"the log of pod {name} could not be read ({_reason(exc)})")
        content = cap.content()
        file_id = run_log_file_id(sid, run)
        await self.store.upload_once(
            file_id,
            f"run-{run}.log",
            content,
            metadata={
                "service_id": sid,
                "run": run,
                "kind": LOG_KIND,
                "content_type": LOG_CONTENT_TYPE,
                "pod": name,
                "log_bytes": cap.total,
                "truncated": cap.truncated,
            },
        )
        if cap.truncated:
            log.info("service %s run %d: log of %d bytes kept to %d", sid, run, cap.total, len(content))
        entry = RunLog(
            file_id=str(file_id),
            length=len(content),
            log_bytes=cap.total,
            truncated=cap.truncated,
            pod=name,
        )
        return entry.model_dump()

    @staticmethod
    def _note(sid: str, run: int, pod: str | None, note: str) -> dict[str, Any]:
        log.warning("service %s run %d: no log stored: %s", sid, run, note)
        return RunLog(pod=pod, note=note).model_dump()
