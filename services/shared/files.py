"""GridFS access shared by the API (uploads, downloads) and the operator (inputs, outputs)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import CorruptGridFile

from .names import FILES_DATABASE

CHUNK_SIZE = 1024 * 1024  # larger than GridFS' 255 KiB default: fewer round trips per file
# Bytes of chunks fetched per round trip by `FileStore.iter_chunks`.
READ_BATCH_BYTES = 8 * 1024 * 1024


class FileStore:
    """A GridFS bucket (`fs` in a files database: a solution's own, see services.shared.solutions; the
    default solution's by default) and its two collections."""

    def __init__(self, client: Any, database: str = FILES_DATABASE) -> None:
        self.database = client[database]
        self.bucket = AsyncGridFSBucket(self.database, chunk_size_bytes=CHUNK_SIZE)
        self.files = self.database["fs.files"]
        self.chunks = self.database["fs.chunks"]

    async def not_yet_stored(self, file_ids: Sequence[ObjectId]) -> set[ObjectId]:
        """Those of `file_ids` that have no complete file yet, with any chunks of theirs removed.

        Two queries however many ids: FerretDB answers a query on `_id` or `files_id` by scanning, so one
        query per file made a run's collection quadratic. GridFS writes the chunks before the files
        document, so chunks without a files document were left by an upload that died half-way; they go
        before the retry writes them again.
        """
        if not file_ids:
            return set()
        ids = list(file_ids)
        cursor = self.files.find({"_id": {"$in": ids}}, projection={"_id": 1})
        stored = {document["_id"] async for document in cursor}
        missing = [file_id for file_id in ids if file_id not in stored]
        if missing:
            await self.chunks.delete_many({"files_id": {"$in": missing}})
        return set(missing)

    async def upload_once(
        self, file_id: ObjectId, filename: str, source: Any, metadata: dict[str, Any]
    ) -> bool:
        """One file: stored under `file_id` unless it is already; True if stored now."""
        if file_id not in await self.not_yet_stored([file_id]):
            return False
        await self.upload_with_id(file_id, filename, source, metadata)
        return True

    async def upload_with_id(
        self, file_id: ObjectId, filename: str, source: Any, metadata: dict[str, Any]
    ) -> None:
        """Store `source` under `file_id` (after `not_yet_stored` said it is missing)."""
        await self.bucket.upload_from_stream_with_id(file_id, filename, source, metadata=metadata)

    async def iter_chunks(
        self, file_doc: Mapping[str, Any], batch_bytes: int = READ_BATCH_BYTES
    ) -> AsyncGenerator[bytes, None]:
        """A stored file's content, chunk by chunk, `batch_bytes` per round trip; memory stays bounded.

        Use this rather than `bucket.open_download_stream` for files that may be large: GridFS' reader
        asks for the server's default batch (101 chunks), which with 1 MiB chunks is a reply larger than
        the 48 MB wire-protocol limit on FerretDB (pymongo raises ProtocolError past ~46 MiB) and holds
        all of it in memory. Raises CorruptGridFile when a chunk is missing or has the wrong size.
        """
        file_id = file_doc["_id"]
        length = int(file_doc["length"])
        chunk_size = int(file_doc["chunkSize"])
        count = math.ceil(length / chunk_size)
        expected = 0
        if count:
            cursor = self.chunks.find(
                {"files_id": file_id, "n": {"$lt": count}},
                sort=[("n", 1)],
                batch_size=max(1, batch_bytes // chunk_size),
            )
            async with cursor:
                async for chunk in cursor:
                    size = chunk_size if expected < count - 1 else length - chunk_size * (count - 1)
                    if chunk["n"] != expected or len(chunk["data"]) != size:
                        raise CorruptGridFile(f"file {file_id}: chunk #{expected} is missing or truncated")
                    expected += 1
                    yield bytes(chunk["data"])
        if expected != count:
            raise CorruptGridFile(f"file {file_id}: chunk #{expected} of {count} is missing")


def output_file_id(service_id: str, run: int, relative_path: str) -> ObjectId:
    """The same output of the same run always gets the same id, so that storing it is idempotent:
    a second attempt finds it already there instead of adding a copy."""
    digest = hashlib.sha256(f"{service_id}\0{run}\0{relative_path}".encode()).digest()
    return ObjectId(digest[:12])


def summary_file_id(service_id: str, name: str) -> ObjectId:
    """A study summary file's id: the same on every attempt (as output_file_id), never an output's."""
    digest = hashlib.sha256(f"{service_id}\0summary\0{name}".encode()).digest()
    return ObjectId(digest[:12])
