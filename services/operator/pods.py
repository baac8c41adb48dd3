"""Which pod runs each run: noted in the services record (`run_pods`, see services.shared.run_logs) as
soon as the operator sees the pod, so that the API can stream a running run's log. Reading a pod's log
needs the pod's name; the operator finds pods by the labels it puts on them (it lists and watches
pods), the API only reads logs (`pods/log` get) and learns the name here.

Runs of an ondemand service (completion index = run number; in a study's scenario Job, the Job's first
run + index) and the one run of a persistent service (run 0) are noted; a scheduled service's runs are
numbered only once their Job finishes (services.operator.runs), so they are not: their logs are served
once collected.

An entry is rewritten only for a newer pod of the run (a retry, a rollout) or when the pod gets its
node; an older pod's late events never replace it (the update is guarded by creation time). What this
process last noted is kept in memory, so that a pod's other events cost nothing.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from services.shared.names import SERVICE_ID_LABEL
from services.shared.run_logs import RUN_PODS, RunPod

from . import layout
from .study import FIRST_RUN_ANNOTATION
from .workloads import COMPLETION_INDEX, JOB_NAME_LABEL, child_name

# Runs remembered by this process; an entry forgotten only costs one guarded update that changes nothing.
_REMEMBERED = 50_000


def identify(pod: dict[str, Any]) -> tuple[str, int, RunPod] | None:
    """(service id, run number, entry) of one of our run pods; None for a pod that is not noted."""
    metadata = pod.get("metadata") or {}
    labels = metadata.get("labels") or {}
    sid = labels.get(SERVICE_ID_LABEL)
    if not sid:
        return None
    job = labels.get(JOB_NAME_LABEL)
    if job is None:
        owners = metadata.get("ownerReferences") or []
        if not any(owner.get("kind") == "ReplicaSet" for owner in owners):
            return None
        run = layout.PERSISTENT_RUN
    else:
        annotations = metadata.get("annotations") or {}
        index = str(annotations.get(COMPLETION_INDEX, ""))
        # A study's scenario Job: its pods are runs first_run + index.
        first_run = str(annotations.get(FIRST_RUN_ANNOTATION, "0" if job == child_name(sid) else ""))
        if not index.isdigit() or not first_run.isdigit():
            return None  # (no first run: a scheduled service's Job, numbered when it finishes)
        run = int(first_run) + int(index)
    entry = RunPod(
        pod=str(metadata.get("name", "")),
        created=str(metadata.get("creationTimestamp") or ""),
        node=str((pod.get("spec") or {}).get("nodeName") or ""),
    )
    return sid, run, entry


class RunPods:
    def __init__(self, records: Any, write_lock: Callable[[str], asyncio.Lock]) -> None:
        self.records = records
        self._write_lock = write_lock  # the collector's: one update of a record at a time (FerretDB)
        self._noted: OrderedDict[tuple[str, int], RunPod] = OrderedDict()

    def is_news(self, pod: dict[str, Any]) -> bool:
        """True if `pod` says something this process has not noted yet (cheap: no I/O)."""
        found = identify(pod)
        return found is not None and self._noted.get(found[:2]) != found[2]

    async def note(self, pod: dict[str, Any]) -> None:
        found = identify(pod)
        if found is None:
            return
        sid, run, entry = found
        try:
            oid = ObjectId(sid)
        except (InvalidId, TypeError):
            return
        key = f"{RUN_PODS}.{run}"
        newer = [
            {key: {"$exists": False}},
            {f"{key}.pod": entry.pod},
            {f"{key}.created": {"$lt": entry.created}},
        ]
        async with self._write_lock(sid):
            await self.records.update_one({"_id": oid, "$or": newer}, {"$set": {key: entry.model_dump()}})
        self._noted[(sid, run)] = entry
        self._noted.move_to_end((sid, run))
        while len(self._noted) > _REMEMBERED:
            self._noted.popitem(last=False)
