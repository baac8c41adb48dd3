"""GridFS access shared by the API (uploads, downloads) and the operator (inputs, outputs)."""

from __future__ import annotations

import hashlib
from typing import Any

from bson import ObjectId
from gridfs import AsyncGridFSBucket

from .names import FILES_DATABASE

CHUNK_SIZE = 1024 * 1024  # larger than GridFS' 255 KiB default: fewer round trips per file


class FileStore:
    """The platform's GridFS bucket (`fs` in the files database) and its two collections."""

    def __init__(self, client: Any) -> None:
        self.database = client[FILES_DATABASE]
        self.bucket = AsyncGridFSBucket(self.database, chunk_size_bytes=CHUNK_SIZE)
        self.files = self.database["fs.files"]
        self.chunks = self.database["fs.chunks"]

    async def upload_once(
        self, file_id: ObjectId, filename: str, source: Any, metadata: dict[str, Any]
    ) -> bool:
        """Store `source` under `file_id` unless a complete file with that id exists; True if stored now.

        GridFS writes the chunks before the files document: chunks left by an attempt that died
        half-way have no files document, and are removed before the retry writes them again.
        """
        if await self.files.find_one({"_id": file_id}, projection={"_id": 1}) is not None:
            return False
        await self.chunks.delete_many({"files_id": file_id})
        await self.bucket.upload_from_stream_with_id(file_id, filename, source, metadata=metadata)
        return True


def output_file_id(service_id: str, run: int, relative_path: str) -> ObjectId:
    """The same output of the same run always gets the same id, so that storing it is idempotent:
    a second attempt finds it already there instead of adding a copy."""
    digest = hashlib.sha256(f"{service_id}\0{run}\0{relative_path}".encode()).digest()
    return ObjectId(digest[:12])
