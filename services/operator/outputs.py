"""Outputs: what a finished run wrote to /output goes to GridFS and the services record, exactly once.

For one run (run number `n`, its output directory on the data volume):

1. every regular file under the directory (symlinks are never followed: the directory is written by
   the module, not by us) is uploaded with `FileStore.upload_once` under the id
   `output_file_id(sid, n, relative path)`. The id is the same on every attempt, so a file stored by
   an earlier attempt is found and not stored again, and chunks left by an upload that died half-way
   are removed before it is written again;
2. then ONE update of the record adds the run's `{run, file_id, filename}` entries to `output_files`
   (kept sorted by run, then file name) and the run number to `collected_runs` (and to `failed_runs`
   for a run that failed). The update is guarded by "run not yet in collected_runs" and by the list's
   current length, so it applies at most once and never overwrites a concurrent change.

If the operator dies anywhere in between, the run is not in `collected_runs`, so after the restart it
is collected again: files already in GridFS are skipped, the others uploaded, and the record written
once. Nothing is lost, nothing stored twice. Within the process one lock per service serialises its
collections (pod events, Job events and the sweep can all ask for the same run).

The record also keeps the operator's bookkeeping for scheduled services: `run_bases` (the first run
number of each Job the CronJob started, by Job uid) and `next_run`.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bson import ObjectId

from services.shared.files import FileStore, output_file_id
from services.shared.records import parse_output_files, services_collection

log = logging.getLogger(__name__)

COLLECTED = "collected_runs"
FAILED = "failed_runs"
OUTPUT_FILES = "output_files"
RUN_BASES = "run_bases"
NEXT_RUN = "next_run"
_ATTEMPTS = 10


@dataclass(frozen=True)
class Run:
    """One finished run to collect."""

    number: int
    directory: Path
    failed: bool = False


@dataclass
class RecordState:
    """What the record says about collection so far."""

    collected: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    outputs: int = 0

    @classmethod
    def of(cls, document: dict[str, Any]) -> RecordState:
        return cls(
            collected=set(document.get(COLLECTED) or ()),
            failed=set(document.get(FAILED) or ()),
            outputs=len(document.get(OUTPUT_FILES) or ()),
        )


def output_files(directory: Path) -> list[str]:
    """Relative paths (with `/`) of the regular files under `directory`, sorted; symlinks skipped."""
    if not directory.is_dir() or directory.is_symlink():
        return []
    found: list[str] = []
    for parent, dirs, files in os.walk(directory, followlinks=False):
        dirs[:] = [d for d in dirs if not (Path(parent) / d).is_symlink()]
        for name in files:
            path = Path(parent) / name
            if stat.S_ISREG(path.lstat().st_mode):
                found.append(path.relative_to(directory).as_posix())
    return sorted(found)


def _unchanged(stored: Any, present: bool) -> dict[str, Any]:
    """A filter on `output_files` that still matches only while nobody else has changed it."""
    if not present:
        return {"$exists": False}
    if isinstance(stored, list):
        return {"$size": len(stored)}
    # The original's map or null: converted once; a concurrent conversion turns it into an array.
    return {"$type": "object"} if isinstance(stored, dict) else {"$type": "null"}


class _Reader:
    """An async file reader for GridFS (disk reads off the event loop), never through a symlink."""

    def __init__(self, path: Path) -> None:
        self._file = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb")

    async def read(self, size: int = -1) -> bytes:
        return await asyncio.to_thread(self._file.read, size)

    def close(self) -> None:
        self._file.close()


class Collector:
    def __init__(self, client: Any, store: FileStore, pause_after_uploads: int | None = None) -> None:
        self.records = services_collection(client)
        self.store = store
        self._locks: dict[str, asyncio.Lock] = {}
        self._collected: dict[str, set[int]] = {}  # what this process last saw in each record
        self._uploads = 0
        self._pause_after = pause_after_uploads

    def lock(self, sid: str) -> asyncio.Lock:
        """The lock that serialises collection for service `sid` in this process."""
        return self._locks.setdefault(sid, asyncio.Lock())

    def known_collected(self, sid: str, run: int) -> bool:
        """True if this process has seen run `run` collected (a cheap check before any I/O)."""
        return run in self._collected.get(sid, ())

    async def state(self, sid: str) -> RecordState | None:
        """The record's collection state; None when there is no record (yet, or any more)."""
        document = await self.records.find_one(
            {"_id": ObjectId(sid)}, projection={COLLECTED: 1, FAILED: 1, OUTPUT_FILES: 1}
        )
        if document is None:
            self._collected.pop(sid, None)
            return None
        state = RecordState.of(document)
        self._collected[sid] = set(state.collected)
        return state

    async def collect(self, sid: str, runs: Iterable[Run]) -> RecordState | None:
        """Collect each run not yet collected (call with `lock(sid)` held). None if no record."""
        state = await self.state(sid)
        for run in sorted(runs, key=lambda r: r.number):
            if state is None:
                return None
            if run.number in state.collected:
                continue
            entries = await self._upload_run(sid, run)
            recorded = await self._record_run(sid, run, entries)
            if recorded is None:
                return None
            state.collected.add(run.number)
            if run.failed:
                state.failed.add(run.number)
            state.outputs = recorded
            self._collected.setdefault(sid, set()).add(run.number)
        return state

    async def _upload_run(self, sid: str, run: Run) -> list[dict[str, Any]]:
        entries = []
        for relative in output_files(run.directory):
            file_id = output_file_id(sid, run.number, relative)
            reader = _Reader(run.directory / relative)
            try:
                stored = await self.store.upload_once(
                    file_id,
                    relative,
                    reader,
                    metadata={
                        "service_id": sid,
                        "run": run.number,
                        "kind": "output",
                        # as the API stores it for uploads, so downloads get a content type
                        "content_type": mimetypes.guess_type(relative)[0] or "application/octet-stream",
                    },
                )
            finally:
                reader.close()
            entries.append({"run": run.number, "file_id": str(file_id), "filename": relative})
            if stored:
                self._uploads += 1
                await self._maybe_pause()
        return entries

    async def _maybe_pause(self) -> None:
        if self._pause_after is not None and self._uploads >= self._pause_after:
            log.warning("fault injection: collection paused after %d uploads", self._uploads)
            await asyncio.Event().wait()  # until the test kills the process

    async def _record_run(self, sid: str, run: Run, entries: list[dict[str, Any]]) -> int | None:
        """Add the run's entries and mark it collected, at most once. Returns the number of entries
        in the record's output_files now; None if the record is gone."""
        oid = ObjectId(sid)
        for _ in range(_ATTEMPTS):
            document = await self.records.find_one({"_id": oid}, projection={COLLECTED: 1, OUTPUT_FILES: 1})
            if document is None:
                return None
            if run.number in (document.get(COLLECTED) or ()):
                return len(document.get(OUTPUT_FILES) or ())
            stored = document.get(OUTPUT_FILES)
            # A record of the original platform keeps a {file_id: name} map (or null): read as entries,
            # and written back as our list the first time a run is recorded.
            existing = parse_output_files(stored)
            known = {entry.get("file_id") for entry in existing}
            merged = existing + [entry for entry in entries if entry["file_id"] not in known]
            merged.sort(key=lambda entry: (entry.get("run", 0), entry.get("filename", "")))
            guard: dict[str, Any] = {"_id": oid, COLLECTED: {"$ne": run.number}}
            guard[OUTPUT_FILES] = _unchanged(stored, OUTPUT_FILES in document)
            marks: dict[str, Any] = {COLLECTED: run.number}
            if run.failed:
                marks[FAILED] = run.number
            result = await self.records.update_one(
                guard, {"$set": {OUTPUT_FILES: merged}, "$addToSet": marks}
            )
            if result.matched_count:
                log.info("service %s: run %d collected (%d files)", sid, run.number, len(entries))
                return len(merged)
        raise RuntimeError(f"service {sid}: the record kept changing while run {run.number} was recorded")

    async def run_base(self, sid: str, job_uid: str, completions: int) -> int | None:
        """The first run number of a Job (by uid: names may hold dots, which MongoDB reads as paths)
        of a scheduled service, allocated once (None if no record). Jobs get consecutive blocks of
        `completions` numbers in the order they ask."""
        oid = ObjectId(sid)
        for _ in range(_ATTEMPTS):
            document = await self.records.find_one({"_id": oid}, projection={RUN_BASES: 1, NEXT_RUN: 1})
            if document is None:
                return None
            bases = document.get(RUN_BASES) or {}
            if job_uid in bases:
                return int(bases[job_uid])
            base = int(document.get(NEXT_RUN) or 0)
            guard = {
                "_id": oid,
                f"{RUN_BASES}.{job_uid}": {"$exists": False},
                NEXT_RUN: document.get(NEXT_RUN),
            }
            update = {"$set": {f"{RUN_BASES}.{job_uid}": base, NEXT_RUN: base + completions}}
            if (await self.records.update_one(guard, update)).matched_count:
                return base
        raise RuntimeError(f"service {sid}: could not allocate run numbers for Job {job_uid}")
