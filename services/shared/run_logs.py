"""Run logs and run pods in the services record: what the operator writes and the API reads.

The operator keeps two maps in a service's record, keyed by run number (as a string, like
`rejected_runs`):

    run_pods  {"<run>": {"pod": name, "created": creationTimestamp, "node": nodeName or ""}}
              the newest pod of each run, written as soon as the operator sees it (and again when it
              gets a node), so that the API can stream a run's log live: reading a pod's log needs its
              name, and the API may only read logs (`pods/log` get), not list pods;
    run_logs  {"<run>": {"file_id": id or null, "length": bytes stored, "log_bytes": bytes the pod
              logged, "truncated": bool, "pod": name, "note": why nothing was stored or null}}
              written with the run's collection (the same record update as its outputs): the log as
              stored in GridFS under `run_log_file_id(sid, run)`, so that it outlives the pod.
"""

from __future__ import annotations

import hashlib
from typing import Any

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, ValidationError

RUN_PODS = "run_pods"
RUN_LOGS = "run_logs"
LOG_CONTENT_TYPE = "text/plain; charset=utf-8"
LOG_KIND = "log"


class RunPod(BaseModel):
    """The newest pod of a run as the operator saw it."""

    model_config = ConfigDict(extra="ignore")

    pod: str
    created: str = ""
    node: str = ""


class RunLog(BaseModel):
    """A run's log as the operator collected it."""

    model_config = ConfigDict(extra="ignore")

    file_id: str | None = None
    length: int = 0
    log_bytes: int = 0
    truncated: bool = False
    pod: str | None = None
    note: str | None = None


def run_log_file_id(service_id: str, run: int) -> ObjectId:
    """The GridFS id of a run's log: the same on every attempt, so storing it is idempotent. The
    prefix keeps it apart from `output_file_id`'s ids (those digests start with the service id)."""
    digest = hashlib.sha256(f"log\0{service_id}\0{run}".encode()).digest()
    return ObjectId(digest[:12])


def _entry(document: dict[str, Any], field: str, run: int) -> dict[str, Any] | None:
    entries = document.get(field)
    entry = entries.get(str(run)) if isinstance(entries, dict) else None
    return entry if isinstance(entry, dict) else None


def run_pod(document: dict[str, Any], run: int) -> RunPod | None:
    """The pod the record names for run `run` (None: none yet, or unreadable)."""
    entry = _entry(document, RUN_PODS, run)
    try:
        return RunPod.model_validate(entry) if entry is not None else None
    except ValidationError:
        return None


def run_log(document: dict[str, Any], run: int) -> RunLog | None:
    """The record's note of run `run`'s log (None: not collected yet, or unreadable)."""
    entry = _entry(document, RUN_LOGS, run)
    try:
        return RunLog.model_validate(entry) if entry is not None else None
    except ValidationError:
        return None
