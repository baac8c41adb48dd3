"""/files: the GridFS file store (module inputs uploaded here, outputs collected by the operator)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pymongo import DESCENDING

from ..deps import DEFAULT_LIMIT, Authorized, FileId, Limit, Services, Settings, Skip, Store, next_page_link
from ..downloads import stream_file
from ..models import FileInfo, UploadResponse, errors
from ..uploads import FILE_FIELD, UploadError, ensure_indexes, receive_upload

log = logging.getLogger(__name__)

router = APIRouter(prefix="/files", tags=["files"])

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {FILE_FIELD: {"type": "string", "format": "binary"}},
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "parameters": [
        {
            "name": "filename",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "maxLength": 255},
            "description": "The file's name, for a raw (application/octet-stream) body.",
        }
    ],
}


@router.get("/", response_model=list[FileInfo], responses=errors(422, 503))
@router.get("", include_in_schema=False, response_model=list[FileInfo])  # the seed's path, without the slash
async def list_files(
    request: Request, response: Response, store: Store, skip: Skip = 0, limit: Limit = DEFAULT_LIMIT
) -> list[FileInfo]:
    """Stored files, newest first: id, name, length, upload date and metadata (`sha256`,
    `content_type`). When there are more, the `Link` header names the next page (`rel="next"`)."""
    order = [("uploadDate", DESCENDING), ("_id", DESCENDING)]
    docs = await store.files.find({}, sort=order, skip=skip, limit=limit + 1).to_list()
    if len(docs) > limit:
        docs = docs[:limit]
        response.headers["Link"] = next_page_link(request, skip + limit, limit)
    return [FileInfo.of(doc) for doc in docs]


@router.post(
    "/upload",
    status_code=201,
    response_model=UploadResponse,
    dependencies=[Authorized],
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {"model": UploadResponse, "description": "The same content was already stored: its id"},
        **errors(400, 401, 413, 415, 422, 503),
    },
)
async def upload_file(request: Request, store: Store, settings: Settings) -> JSONResponse:
    """Store a file: a multipart body with a `file` part (or a raw body with `?filename=`).

    The body streams into GridFS while its SHA-256 is computed; nothing is spooled to disk. 201 with
    the new id; when the same content is already stored, 200 with that file's id and
    `duplicate: true`, and no copy is kept. Empty → 422; larger than the limit (API_MAX_UPLOAD_BYTES)
    → 413. A refused or interrupted upload leaves nothing behind.
    """
    if not request.app.state.indexes_ready:
        await ensure_indexes(store)
        request.app.state.indexes_ready = True
    try:
        stored = await receive_upload(request, store, settings.max_upload_bytes)
    except UploadError as exc:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)
    body = UploadResponse(
        id=str(stored.id),
        filename=stored.filename,
        length=stored.length,
        sha256=stored.sha256,
        duplicate=stored.duplicate,
    )
    if not stored.duplicate:
        log.info("stored file %s (%s, %d bytes)", stored.id, stored.filename, stored.length)
    return JSONResponse(body.model_dump(), status_code=200 if stored.duplicate else 201)


@router.get(
    "/{file_id}",
    response_class=Response,
    responses={
        200: {
            "description": "The file's content",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
        **errors(404, 422, 503),
    },
)
async def download_file(file_id: FileId, store: Store) -> Response:
    """The file's content, streamed, with Content-Length and a Content-Disposition naming the file."""
    doc = await store.files.find_one({"_id": file_id})
    if doc is None:
        raise HTTPException(404, f"no file {file_id}")
    return await stream_file(store, doc)


@router.delete(
    "/{file_id}",
    status_code=204,
    response_class=Response,
    dependencies=[Authorized],
    responses=errors(401, 404, 409, 422, 503),
)
async def delete_file(file_id: FileId, store: Store, services: Services) -> Response:
    """Delete a file. 409 while a service mounts it as an input (terminate the service first)."""
    if await store.files.find_one({"_id": file_id}, projection={"_id": 1}) is None:
        raise HTTPException(404, f"no file {file_id}")
    user = await services.find_one({f"mount_files.{file_id}": {"$exists": True}}, projection={"_id": 1})
    if user is not None:
        raise HTTPException(409, f"service {user['_id']} mounts file {file_id}; terminate it first")
    await store.files.delete_one({"_id": file_id})
    await store.chunks.delete_many({"files_id": file_id})
    return Response(status_code=204)
