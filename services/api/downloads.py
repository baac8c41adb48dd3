"""Streaming a stored file to the caller: chunk by chunk, with its length and a safe file name."""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from fastapi.responses import StreamingResponse

from services.shared.files import FileStore

# Chunks read ahead of what the caller has taken: MongoDB fetches the next batch while the last one is
# being sent, instead of waiting idle (bounded: PREFETCH_CHUNKS plus one cursor batch in memory).
PREFETCH_CHUNKS = 8
_END = object()


async def read_ahead(chunks: AsyncIterator[bytes], depth: int = PREFETCH_CHUNKS) -> AsyncIterator[bytes]:
    """`chunks`, read by a task of their own up to `depth` chunks ahead of the consumer."""
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=depth)

    async def produce() -> None:
        try:
            async for chunk in chunks:
                await queue.put(chunk)
        except Exception as exc:
            await queue.put(exc)
        else:
            await queue.put(_END)

    producer = asyncio.create_task(produce())
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, Exception):
                raise item
            yield item  # type: ignore[misc]
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact name in RFC 5987 form (RFC 6266 §4.3)."""
    fallback = (
        "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%;/' else "_" for c in filename) or "download"
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def stream_file(
    store: FileStore, doc: dict[str, Any], filename: str | None = None, media_type: str | None = None
) -> StreamingResponse:
    """A response that streams the file `doc` (an `fs.files` document), as `media_type` if given.

    The first chunk is read before answering, so that MongoDB being away is still a clean 503 rather
    than a download cut short after its headers.
    """
    chunks = store.iter_chunks(doc)
    first = await anext(chunks, b"")

    async def body() -> AsyncIterator[bytes]:
        try:
            if first:
                yield first
            async for chunk in read_ahead(chunks):
                yield chunk
        finally:
            await chunks.aclose()

    metadata = doc.get("metadata") or {}
    name = filename or str(doc.get("filename") or "download")
    headers = {
        "Content-Length": str(int(doc["length"])),
        "Content-Disposition": content_disposition(name),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-cache",
    }
    if metadata.get("sha256"):
        headers["ETag"] = f'"{metadata["sha256"]}"'
    # Outputs stored by the operator carry no content type: guess it from the name (the download is an
    # attachment with nosniff, so the browser never renders it in our origin).
    media_type = (
        media_type
        or metadata.get("content_type")
        or doc.get("contentType")
        or mimetypes.guess_type(name)[0]
        or "application/octet-stream"
    )
    return StreamingResponse(body(), media_type=media_type, headers=headers)
