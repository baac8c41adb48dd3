"""Outputs: what a finished run wrote to /output goes to GridFS and the services record, exactly once.

For one run (run number `n`, its output directory on the data volume):

0. the directory is listed off the event loop (`list_outputs` in a thread), within the limits of
   `OutputLimits`: files, bytes and folder depth per run. A run beyond a limit is recorded as
   collected and failed, with the reason in `rejected_runs`, and nothing of it is stored. A file whose
   name is not UTF-8, or a folder that cannot be read, is skipped and noted in `skipped_outputs`: one
   bad name never stalls a collection;
1. every regular file under the directory (symlinks are never followed: the directory is written by
   the module, not by us) is uploaded under the id `output_file_id(sid, n, relative path)`. The id is
   the same on every attempt, so a file stored by an earlier attempt is found and not stored again, and
   chunks left by an upload that died half-way are removed before it is written again; one query for
   the whole run finds both (`FileStore.not_yet_stored`);
2. the run's container log is stored too (services.operator.logs: capped, idempotent like the
   outputs, and never failing the collection: a log that cannot be read leaves a note instead);
3. then ONE update of the record adds the run's `{run, file_id, filename}` entries to `output_files`
   (kept sorted by run, then file name), its log's entry to `run_logs`, and the run number to
   `collected_runs` (and to `failed_runs` for a run that failed). The update is guarded by "run not
   yet in collected_runs" and by the list's current length, so it applies at most once and never
   overwrites a concurrent change. The entries live in the record (the API reads them there), so
   the record is kept below a cap (`OutputLimits.max_record_bytes`, far below MongoDB's 16 MiB): a
   run whose entries would pass it is rejected like a run beyond the other limits.

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
from typing import TYPE_CHECKING, Any

import bson
from bson import ObjectId

from services.shared.files import FileStore, output_file_id
from services.shared.names import RECORDS_DATABASE
from services.shared.records import parse_output_files, services_collection
from services.shared.run_logs import RUN_LOGS

if TYPE_CHECKING:  # logs imports the workloads, whose settings import this module
    from .logs import PodRef, RunLogStore

log = logging.getLogger(__name__)

COLLECTED = "collected_runs"
FAILED = "failed_runs"
OUTPUT_FILES = "output_files"
RUN_BASES = "run_bases"
NEXT_RUN = "next_run"
REJECTED = "rejected_runs"  # {"<run>": reason}: runs whose outputs were refused (beyond a limit)
SKIPPED = "skipped_outputs"  # {"<run>": [note, ...]}: files of a run that could not be collected
_ATTEMPTS = 10
_MAX_NOTES = 20  # skipped-file notes kept per run


@dataclass(frozen=True)
class OutputLimits:
    """What one run may leave in /output to be collected (OPERATOR_OUTPUT_MAX_*)."""

    max_files: int = 1000
    max_bytes: int = 1024**3
    max_depth: int = 16  # folders below /output
    max_record_bytes: int = 8 * 1024 * 1024  # the record's output_files list, all runs together

    def __post_init__(self) -> None:
        for name in ("max_files", "max_bytes", "max_depth", "max_record_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"OutputLimits.{name} must be at least 1")


@dataclass
class Listing:
    """A run's output folder as collection sees it: the files to store (relative paths with `/`,
    sorted), what was skipped and why, and the reason it was refused as a whole (None: within limits)."""

    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    exceeded: str | None = None


@dataclass(frozen=True)
class Run:
    """One finished run to collect."""

    number: int
    directory: Path
    failed: bool = False
    pod: PodRef | None = None  # where its log is read from (None: no log is collected)


@dataclass
class RecordState:
    """What the record says about collection so far."""

    collected: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    outputs: int = 0
    rejected: dict[int, str] = field(default_factory=dict)

    @classmethod
    def of(cls, document: dict[str, Any]) -> RecordState:
        return cls(
            collected=set(document.get(COLLECTED) or ()),
            failed=set(document.get(FAILED) or ()),
            outputs=len(document.get(OUTPUT_FILES) or ()),
            rejected={int(k): str(v) for k, v in (document.get(REJECTED) or {}).items() if k.isdigit()},
        )


def _printable(name: str) -> str:
    """A file name from the module's folder, safe to log and store (undecodable bytes as \\xNN)."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


def list_outputs(directory: Path, limits: OutputLimits = OutputLimits()) -> Listing:
    """The regular files under `directory` (symlinks are never followed), within `limits`.

    Blocking (call it in a thread). Iterative and stopping at the first limit passed, so a million files
    or a thousand nested folders cost no more than the limit to find out.
    """
    listing = Listing()
    if not directory.is_dir() or directory.is_symlink():
        return listing
    total = 0
    pending: list[tuple[Path, str, int]] = [(directory, "", 0)]  # (folder, its relative path, depth)
    while pending:
        folder, prefix, depth = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            listing.skipped.append(f"folder {_printable(prefix) or '.'!r} could not be read: {exc.strerror}")
            continue
        for entry in entries:
            try:
                entry.name.encode("utf-8")
            except UnicodeEncodeError:
                listing.skipped.append(f"name not UTF-8, skipped: {_printable(prefix + entry.name)!r}")
                continue
            relative = prefix + entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError as exc:
                listing.skipped.append(f"{relative!r} could not be read: {exc.strerror}")
                continue
            if stat.S_ISDIR(info.st_mode):
                if depth + 1 > limits.max_depth:
                    listing.exceeded = f"the output is nested deeper than {limits.max_depth} folders"
                    return listing
                pending.append((Path(entry.path), relative + "/", depth + 1))
            elif stat.S_ISREG(info.st_mode):
                listing.files.append(relative)
                total += info.st_size
                if len(listing.files) > limits.max_files:
                    listing.exceeded = f"the run wrote more than {limits.max_files} files"
                    return listing
                if total > limits.max_bytes:
                    listing.exceeded = f"the run wrote more than {limits.max_bytes} bytes"
                    return listing
    listing.files.sort()
    return listing


def output_files(directory: Path) -> list[str]:
    """Relative paths (with `/`) of the regular files under `directory`, sorted; symlinks skipped."""
    return list_outputs(directory).files


def _entries_size(entries: list[dict[str, Any]]) -> int:
    """What `entries` take in the record (BSON)."""
    return len(bson.encode({OUTPUT_FILES: entries}))


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
    def __init__(
        self,
        client: Any,
        store: FileStore,
        pause_after_uploads: int | None = None,
        limits: OutputLimits = OutputLimits(),
        logs: RunLogStore | None = None,
        records_database: str = RECORDS_DATABASE,
    ) -> None:
        self.records = services_collection(client, records_database)
        self.store = store
        self.limits = limits
        self.logs = logs
        self._locks: dict[str, asyncio.Lock] = {}
        self._write_locks: dict[str, asyncio.Lock] = {}
        self._collected: dict[str, set[int]] = {}  # what this process last saw in each record
        self._uploads = 0
        self._pause_after = pause_after_uploads

    def lock(self, sid: str) -> asyncio.Lock:
        """The lock that serialises collection for service `sid` in this process."""
        return self._locks.setdefault(sid, asyncio.Lock())

    def write_lock(self, sid: str) -> asyncio.Lock:
        """Held around every update of service `sid`'s record by this process (collection here, run pods
        in services.operator.pods). FerretDB, the local MongoDB, applies an update as read, change,
        write: of two updates of one document at once, one can be lost (whatever their guards)."""
        return self._write_locks.setdefault(sid, asyncio.Lock())

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
            listing = await asyncio.to_thread(list_outputs, run.directory, self.limits)
            for note in listing.skipped[:_MAX_NOTES]:
                log.warning("service %s run %d: %s", sid, run.number, note)
            if listing.exceeded is not None:
                log.warning("service %s run %d: outputs refused: %s", sid, run.number, listing.exceeded)
                entries: list[dict[str, Any]] = []
                rejected: str | None = listing.exceeded
            else:
                entries, rejected = await self._upload_run(sid, run, listing), None
            # The log even of a refused run: it may say why the run wrote too much.
            run_log = await self.logs.collect(sid, run.number, run.pod) if self.logs and run.pod else None
            outcome = await self._record_run(sid, run, entries, listing, rejected=rejected, run_log=run_log)
            if outcome is None:
                return None
            recorded, rejected = outcome
            state.collected.add(run.number)
            if run.failed or rejected is not None:
                state.failed.add(run.number)
            if rejected is not None:
                state.rejected[run.number] = rejected
            state.outputs = recorded
            self._collected.setdefault(sid, set()).add(run.number)
        return state

    async def _upload_run(self, sid: str, run: Run, listing: Listing) -> list[dict[str, Any]]:
        ids = {relative: output_file_id(sid, run.number, relative) for relative in listing.files}
        missing = await self.store.not_yet_stored(list(ids.values()))
        entries = []
        for relative, file_id in ids.items():
            if file_id in missing:
                try:
                    reader = await asyncio.to_thread(_Reader, run.directory / relative)
                except OSError as exc:  # gone or replaced by a symlink since the listing: skip this file
                    listing.skipped.append(f"{relative!r} could not be opened: {exc.strerror}")
                    continue
                try:
                    await self.store.upload_with_id(
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
                self._uploads += 1
                await self._maybe_pause()
            entries.append({"run": run.number, "file_id": str(file_id), "filename": relative})
        return entries

    async def _maybe_pause(self) -> None:
        if self._pause_after is not None and self._uploads >= self._pause_after:
            log.warning("fault injection: collection paused after %d uploads", self._uploads)
            await asyncio.Event().wait()  # until the test kills the process

    async def _record_run(
        self,
        sid: str,
        run: Run,
        entries: list[dict[str, Any]],
        listing: Listing,
        rejected: str | None = None,
        run_log: dict[str, Any] | None = None,
    ) -> tuple[int, str | None] | None:
        """Add the run's entries and mark it collected, at most once. Returns the number of entries in
        the record's output_files now and the reason the run was refused (None: it was not); None if
        the record is gone."""
        oid = ObjectId(sid)
        projection = {COLLECTED: 1, OUTPUT_FILES: 1, REJECTED: 1}
        for _ in range(_ATTEMPTS):
            document = await self.records.find_one({"_id": oid}, projection=projection)
            if document is None:
                return None
            stored = document.get(OUTPUT_FILES)
            # A record of the original platform keeps a {file_id: name} map (or null): read as entries,
            # and written back as our list the first time a run is recorded.
            existing = parse_output_files(stored)
            if run.number in (document.get(COLLECTED) or ()):
                return len(existing), (document.get(REJECTED) or {}).get(str(run.number))
            known = {entry.get("file_id") for entry in existing}
            merged = existing + [entry for entry in entries if entry["file_id"] not in known]
            reason = rejected
            if reason is None and _entries_size(merged) > self.limits.max_record_bytes:
                reason = (
                    f"the service's output list is full ({self.limits.max_record_bytes} bytes); "
                    "launch a new service for more runs"
                )
                await self._forget_uploads(entries)
            if reason is not None:
                merged = existing
            merged.sort(key=lambda entry: (entry.get("run", 0), entry.get("filename", "")))
            guard: dict[str, Any] = {"_id": oid, COLLECTED: {"$ne": run.number}}
            guard[OUTPUT_FILES] = _unchanged(stored, OUTPUT_FILES in document)
            marks: dict[str, Any] = {COLLECTED: run.number}
            if run.failed or reason is not None:
                marks[FAILED] = run.number
            fields: dict[str, Any] = {OUTPUT_FILES: merged}
            if reason is not None:
                fields[f"{REJECTED}.{run.number}"] = reason
            if listing.skipped:
                fields[f"{SKIPPED}.{run.number}"] = listing.skipped[:_MAX_NOTES]
            if run_log is not None:
                fields[f"{RUN_LOGS}.{run.number}"] = run_log
            async with self.write_lock(sid):
                result = await self.records.update_one(guard, {"$set": fields, "$addToSet": marks})
            if result.matched_count:
                added = len(merged) - len(existing)
                log.info("service %s: run %d collected (%d files)", sid, run.number, added)
                return len(merged), reason
        raise RuntimeError(f"service {sid}: the record kept changing while run {run.number} was recorded")

    async def _forget_uploads(self, entries: list[dict[str, Any]]) -> None:
        """Remove the stored files of a run that is refused after its upload (nothing of it is kept)."""
        ids = [ObjectId(entry["file_id"]) for entry in entries]
        if ids:
            await self.store.files.delete_many({"_id": {"$in": ids}})
            await self.store.chunks.delete_many({"files_id": {"$in": ids}})

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
            async with self.write_lock(sid):
                matched = (await self.records.update_one(guard, update)).matched_count
            if matched:
                return base
        raise RuntimeError(f"service {sid}: could not allocate run numbers for Job {job_uid}")
