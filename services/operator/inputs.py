"""Inputs: each `mount_files` entry of the record, from GridFS to `<root>/<sid>/input/<filename>`.

Every name is checked (`is_safe_filename`) and every file looked up before anything is written, so a
bad or missing input fails the service with a clear reason and nothing half-staged. A file already
staged with the right length is not downloaded again (GridFS files never change under their id), and
each download goes to a temporary name first and is renamed into place, so a restart mid-download
leaves no truncated input behind.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from services.shared.files import FileStore
from services.shared.validation import is_safe_filename

from . import layout


class InputError(Exception):
    """An input that cannot be staged; `reason` becomes the condition's reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class StagedInput:
    file_id: ObjectId
    filename: str
    length: int
    document: dict[str, Any]  # its GridFS files document


async def check_inputs(store: FileStore, mount_files: dict[str, str]) -> list[StagedInput]:
    """Validate names and ids and find each file in GridFS; raise InputError on the first problem."""
    found: list[StagedInput] = []
    seen: set[str] = set()
    for file_id, filename in sorted(mount_files.items(), key=lambda item: item[1]):
        if not isinstance(filename, str) or not is_safe_filename(filename):
            raise InputError("InvalidInput", f"input name {filename!r} is not a plain file name")
        if filename in seen:
            raise InputError("InvalidInput", f"two inputs are both named {filename!r}")
        seen.add(filename)
        try:
            oid = ObjectId(file_id)
        except (InvalidId, TypeError):
            raise InputError(
                "InvalidInput", f"input {filename!r} has an invalid file id {file_id!r}"
            ) from None
        document = await store.files.find_one({"_id": oid}, projection={"length": 1, "chunkSize": 1})
        if document is None:
            raise InputError("InputMissing", f"input {filename!r}: file {file_id} is not in GridFS")
        found.append(StagedInput(oid, filename, int(document.get("length", 0)), document))
    return found


async def _download(store: FileStore, item: StagedInput, target: Path) -> None:
    partial = target.with_name(f".{target.name}.partial")
    with partial.open("wb") as out:
        # iter_chunks, not the bucket's reader: bounded batches (FerretDB caps a reply at 48 MB).
        async for chunk in store.iter_chunks(item.document):
            await asyncio.to_thread(out.write, chunk)
    os.chmod(partial, layout.INPUT_FILE_MODE)
    os.replace(partial, target)


async def stage_inputs(store: FileStore, directory: Path, mount_files: dict[str, str]) -> list[StagedInput]:
    """Place every input under `directory` (readable by the group run pods share)."""
    items = await check_inputs(store, mount_files)
    await asyncio.to_thread(_make_readable_dir, directory)
    for item in items:
        target = directory / item.filename
        if not await asyncio.to_thread(_is_staged, target, item.length):
            await _download(store, item, target)
    return items


def _make_readable_dir(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, layout.INPUT_DIR_MODE)


def _is_staged(target: Path, length: int) -> bool:
    return target.is_file() and not target.is_symlink() and target.stat().st_size == length
