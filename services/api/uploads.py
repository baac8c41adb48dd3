"""Uploads stream from the request straight into GridFS, hashing as they go.

Starlette's form parser (behind FastAPI's `UploadFile`) first spools the whole file to a temporary file
and only then calls the endpoint, after reading the body even for a caller without a token. Here the
body is parsed as it arrives (python-multipart's push parser), each piece is hashed and appended to
1 MiB GridFS chunks, and chunks are inserted in small batches while the next ones are received. Memory
stays at a few MiB whatever the file's size; nothing touches the local disk.

A file becomes visible (its `fs.files` document) only once it is complete and not a duplicate: an
upload that fails, is too large, is empty or repeats stored content leaves no chunk behind.

Content is identified by SHA-256 (`metadata.sha256`). The original platform identified it by MD5 alone
(`metadata.hash`); both are stored, so its clients find the `hash` they know. Files the original stored
have only the MD5: when an upload's MD5 and length match one of them, that file's SHA-256 is computed
from its stored chunks (once: it is then saved) and it counts as the same content only if it matches
too — an MD5 collision never passes for a duplicate.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import unicodedata
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import Int64, ObjectId
from fastapi import Request
from gridfs.errors import CorruptGridFile
from pymongo import ASCENDING
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from services.shared.files import CHUNK_SIZE, FileStore

log = logging.getLogger(__name__)

FILE_FIELD = "file"
BATCH_CHUNKS = 4  # chunks per insert: 4 MiB in flight while the next 4 MiB arrive
# Room for the multipart envelope when a Content-Length announces a body larger than the limit.
ENVELOPE_ALLOWANCE = 1024 * 1024
# The headers of one multipart part, all together (a browser sends a few hundred bytes).
MAX_PART_HEADER_BYTES = 16 * 1024
_MIME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")


class UploadError(Exception):
    """A bad upload; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class StoredFile:
    id: ObjectId
    filename: str  # as stored (a duplicate's: the name it was first stored under)
    given_filename: str  # as sent with this upload
    length: int
    sha256: str
    duplicate: bool


def clean_filename(raw: str | None) -> str:
    """A display name for a stored file: the last path segment, printable, at most 255 characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:255] or "upload"


def clean_content_type(raw: str | None) -> str:
    media_type = (raw or "").split(";", 1)[0].strip().lower()
    return media_type if _MIME.fullmatch(media_type) else "application/octet-stream"


@dataclass(frozen=True)
class Digests:
    sha256: str
    md5: str


class ChunkWriter:
    """Appends bytes to the chunks of a GridFS file that has no `fs.files` document yet."""

    def __init__(self, store: FileStore, file_id: ObjectId, max_bytes: int) -> None:
        self._chunks = store.chunks
        self._files = store.files
        self.file_id = file_id
        self._max_bytes = max_bytes
        self._buffer = bytearray()
        self._batch: list[dict[str, Any]] = []
        self._next_n = 0
        self._pending: asyncio.Task[Any] | None = None
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5()  # noqa: S324 - the original's content key, never trusted alone
        self.length = 0

    async def write(self, data: bytes) -> None:
        self.length += len(data)
        if self.length > self._max_bytes:
            raise UploadError(413, f"the file is larger than the limit of {self._max_bytes} bytes")
        self._sha256.update(data)
        self._md5.update(data)
        self._buffer += data
        while len(self._buffer) >= CHUNK_SIZE:
            self._add_chunk(bytes(memoryview(self._buffer)[:CHUNK_SIZE]))
            del self._buffer[:CHUNK_SIZE]
            if len(self._batch) >= BATCH_CHUNKS:
                await self._flush()

    def _add_chunk(self, data: bytes) -> None:
        self._batch.append({"files_id": self.file_id, "n": self._next_n, "data": data})
        self._next_n += 1

    async def _flush(self) -> None:
        """Start inserting the batch; at most one insert is in flight (its error surfaces here)."""
        if self._pending is not None:
            await self._pending
        batch, self._batch = self._batch, []
        self._pending = asyncio.ensure_future(self._chunks.insert_many(batch, ordered=True))

    async def finish(self) -> Digests:
        """Write what is left; returns the content's digests."""
        if self._buffer:
            self._add_chunk(bytes(self._buffer))
            self._buffer.clear()
        if self._batch:
            await self._flush()
        if self._pending is not None:
            await self._pending
            self._pending = None
        return Digests(self._sha256.hexdigest(), self._md5.hexdigest())

    async def abort(self) -> None:
        """Remove the file: its `fs.files` document if one was written, and every chunk written so far
        (also after a failed or cancelled insert)."""
        if self._pending is not None:
            if not self._pending.done():
                await asyncio.wait([self._pending])
            if not self._pending.cancelled():
                self._pending.exception()  # retrieved, so asyncio does not log it as unhandled
        await self._files.delete_one({"_id": self.file_id})
        await self._chunks.delete_many({"files_id": self.file_id})


async def _multipart_file(request: Request, boundary: bytes) -> AsyncGenerator[bytes | tuple[str, str], None]:
    """Parse a multipart body as it arrives. Yields ("filename", "content type") when the `file` part
    begins, then its data as bytes; other parts are ignored."""
    events: list[Any] = []
    state: dict[str, Any] = {
        "header": bytearray(),
        "value": bytearray(),
        "header_bytes": 0,  # of the current part's headers so far
        "headers": {},
        "in_file": False,
        "files": 0,
        "ended": False,
    }

    def count_header_bytes(size: int) -> None:
        state["header_bytes"] += size
        if state["header_bytes"] > MAX_PART_HEADER_BYTES:
            raise UploadError(
                400, f"the multipart part headers are larger than {MAX_PART_HEADER_BYTES} bytes"
            )

    def on_part_begin() -> None:
        state["headers"] = {}
        state["in_file"] = False
        state["header_bytes"] = 0

    def on_header_field(data: bytes, start: int, end: int) -> None:
        count_header_bytes(end - start)
        state["header"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        count_header_bytes(end - start)
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][bytes(state["header"]).strip().lower()] = bytes(state["value"]).strip()
        state["header"], state["value"] = bytearray(), bytearray()

    def on_headers_finished() -> None:
        _, options = parse_options_header(state["headers"].get(b"content-disposition", b""))
        if options.get(b"name") == FILE_FIELD.encode():
            state["files"] += 1
            if state["files"] > 1:
                raise UploadError(422, f"send one `{FILE_FIELD}` part per request")
            state["in_file"] = True
            filename = options.get(b"filename", b"").decode("utf-8", errors="replace")
            content_type = state["headers"].get(b"content-type", b"").decode("latin-1")
            events.append((filename, content_type))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["in_file"]:
            events.append(data[start:end])

    def on_part_end() -> None:
        state["in_file"] = False

    def on_end() -> None:
        state["ended"] = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        },
    )
    try:
        async for received in request.stream():
            parser.write(received)
            for event in events:
                yield event
            events.clear()
        parser.finalize()
    except FormParserError as exc:
        raise UploadError(400, f"the multipart body is malformed: {exc}") from exc
    if not state["ended"]:
        raise UploadError(400, "the multipart body is malformed: it ends before its closing boundary")
    for event in events:
        yield event


async def _raw_file(request: Request) -> AsyncGenerator[bytes | tuple[str, str], None]:
    yield (request.query_params.get("filename", ""), request.headers.get("content-type", ""))
    async for received in request.stream():
        if received:
            yield received


async def ensure_indexes(store: FileStore) -> None:
    """The indexes GridFS expects (chunk order, unique per file), plus one to find content by hash."""
    await store.chunks.create_index([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)
    await store.files.create_index([("filename", ASCENDING), ("uploadDate", ASCENDING)])
    await store.files.create_index([("metadata.sha256", ASCENDING)])
    await store.files.create_index([("metadata.hash", ASCENDING)])  # the original's files: MD5 only


async def receive_upload(request: Request, store: FileStore, max_bytes: int) -> StoredFile:
    """Store the request's file (a multipart `file` part, or the raw body with `?filename=`).

    The same content (SHA-256 and length; see `_same_content`) already stored → that file's id,
    `duplicate=True`, and nothing new is kept.
    """
    length_header = request.headers.get("content-length")
    if length_header and length_header.isdigit() and int(length_header) > max_bytes + ENVELOPE_ALLOWANCE:
        raise UploadError(413, f"the file is larger than the limit of {max_bytes} bytes")
    media_type, options = parse_options_header(request.headers.get("content-type", ""))
    if media_type == b"multipart/form-data":
        if not options.get(b"boundary"):
            raise UploadError(400, "the multipart body has no boundary")
        events = _multipart_file(request, options[b"boundary"])
    elif media_type == b"application/x-www-form-urlencoded":
        raise UploadError(
            415, "send the file as multipart/form-data (or a raw application/octet-stream body)"
        )
    else:
        events = _raw_file(request)

    writer = ChunkWriter(store, ObjectId(), max_bytes)
    filename: str | None = None
    content_type = ""
    try:
        async for event in events:
            if isinstance(event, tuple):
                filename, content_type = event
            else:
                await writer.write(event)
        if filename is None:
            raise UploadError(422, f"no `{FILE_FIELD}` part in the multipart body")
        if writer.length == 0:
            raise UploadError(422, "the file is empty")
        digests = await writer.finish()
        name = clean_filename(filename)
        return await _commit(store, writer, name, clean_content_type(content_type), digests)
    except BaseException:
        await asyncio.shield(writer.abort())
        raise
    finally:
        await events.aclose()


async def _sha256_of_stored(store: FileStore, doc: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    async for chunk in store.iter_chunks(doc):
        digest.update(chunk)
    return digest.hexdigest()


async def _same_content(store: FileStore, length: int, digests: Digests) -> dict[str, Any] | None:
    """The oldest stored file with this content: by SHA-256, or one of the original's files (MD5 only)
    whose SHA-256, computed now and saved, matches."""
    query = {
        "length": length,
        "$or": [
            {"metadata.sha256": digests.sha256},
            {"metadata.hash": digests.md5, "metadata.sha256": {"$exists": False}},
        ],
    }
    candidates = await store.files.find(query, sort=[("_id", ASCENDING)]).to_list()
    for doc in candidates:
        metadata = doc.get("metadata") or {}
        if metadata.get("sha256") == digests.sha256:
            return doc
        if "sha256" in metadata:
            continue
        try:
            sha256 = await _sha256_of_stored(store, doc)
        except CorruptGridFile:
            log.warning("stored file %s is damaged; not taken as a duplicate", doc["_id"])
            continue
        await store.files.update_one(
            {"_id": doc["_id"], "metadata.sha256": {"$exists": False}}, {"$set": {"metadata.sha256": sha256}}
        )
        if sha256 == digests.sha256:
            return doc
    return None


async def _commit(
    store: FileStore, writer: ChunkWriter, filename: str, content_type: str, digests: Digests
) -> StoredFile:
    existing = await _same_content(store, writer.length, digests)
    if existing is not None:
        await writer.abort()
        return StoredFile(
            existing["_id"], existing.get("filename", ""), filename, writer.length, digests.sha256, True
        )
    await store.files.insert_one(
        {
            "_id": writer.file_id,
            "length": Int64(writer.length),
            "chunkSize": CHUNK_SIZE,
            "uploadDate": datetime.now(UTC),
            "filename": filename,
            "metadata": {"sha256": digests.sha256, "hash": digests.md5, "content_type": content_type},
        }
    )
    # Two identical uploads finishing together: the oldest id wins, the other removes itself.
    same = {"metadata.sha256": digests.sha256, "length": writer.length}
    first = await store.files.find_one(same, projection={"filename": 1}, sort=[("_id", ASCENDING)])
    if first is not None and first["_id"] != writer.file_id:
        await writer.abort()
        return StoredFile(
            first["_id"], first.get("filename", ""), filename, writer.length, digests.sha256, True
        )
    return StoredFile(writer.file_id, filename, filename, writer.length, digests.sha256, False)
