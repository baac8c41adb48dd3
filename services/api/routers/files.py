"""/files: the GridFS file store (module inputs uploaded here, outputs collected by the operator).

Written once, mounted per API version (`router(contract)`); the version shapes the answers.
"""

# No `from __future__ import annotations`: the endpoints are made per version inside `router()`, and
# FastAPI must see their parameter types (local to it) as objects, not as names to look up.
import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter

from ..contracts import Contract
from ..deps import (
    Authorized,
    CurrentSolution,
    FileId,
    Services,
    Settings,
    Skip,
    Store,
    limit_query,
    next_page_link,
)
from ..downloads import stream_file
from ..models import errors
from ..uploads import FILE_FIELD, UploadError, receive_upload

log = logging.getLogger(__name__)

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

LIST_ORDER = """Files in the order they were stored (oldest first, MongoDB's natural order, as the
original platform listed them): a page is read without sorting, so that appending files never shifts
the pages already read, and FerretDB answers it without reading the whole collection."""


def router(contract: Contract) -> APIRouter:
    api = APIRouter(prefix="/files", tags=["files"])
    file_model: Any = contract.file_model
    limit_bound = limit_query(contract.max_limit)

    page_json = TypeAdapter(list[file_model])

    @api.get("/", response_model=list[file_model], responses=errors(422, 503), description=LIST_ORDER)
    @api.get("", include_in_schema=False, response_model=list[file_model])  # no slash: the original's path
    async def list_files(
        request: Request,
        store: Store,
        skip: Skip = 0,
        limit: Annotated[int, limit_bound] = contract.default_limit,
    ) -> Response:
        """Stored files: id, name, length, upload date and metadata. A full page has a `Link` header
        naming the next one (`rel="next"`; it is empty when the files ended exactly there)."""
        # Exactly the page, whole documents: on FerretDB one more document or a projection costs more
        # than the few small fields it would save (measured by bench/api against the original's listing).
        docs = await store.files.find({}, skip=skip, limit=limit).to_list()
        headers = {}
        if len(docs) == limit:
            headers["Link"] = next_page_link(request, skip + limit, limit)
        # Serialised here, once: the items are typed already (FastAPI would validate them again).
        body = page_json.dump_json([contract.file(doc) for doc in docs])
        return Response(body, media_type="application/json", headers=headers)

    upload = contract.upload_answer

    @api.post(
        "/upload",
        status_code=upload.status_code,
        response_model=upload.model,
        dependencies=[Authorized],
        openapi_extra=_UPLOAD_BODY,
        responses={**upload.also, **errors(400, 401, 413, 415, 422, 503)},
    )
    async def upload_file(
        request: Request, solution: CurrentSolution, store: Store, settings: Settings
    ) -> JSONResponse:
        """Store a file: a multipart body with a `file` part (or a raw body with `?filename=`).

        The body streams into GridFS while its SHA-256 (and MD5, the original's `metadata.hash`) is
        computed; nothing is spooled to disk. When the same content is already stored, the answer
        names that file (`duplicate: true`) and no copy is kept; this includes files the original
        platform stored. Empty → 422; larger than the limit (API_MAX_UPLOAD_BYTES) → 413. A refused or
        interrupted upload leaves nothing behind.
        """
        await solution.ensure_indexes()
        try:
            stored = await receive_upload(request, store, settings.max_upload_bytes)
        except UploadError as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status)
        if not stored.duplicate:
            log.info("stored file %s (%s, %d bytes)", stored.id, stored.filename, stored.length)
        status, body = contract.uploaded(stored)
        return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status)

    @api.get(
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

    deleted = contract.delete_file_answer

    @api.delete(
        "/{file_id}",
        status_code=deleted.status_code,
        response_model=deleted.model,
        response_class=Response if deleted.model is None else JSONResponse,
        dependencies=[Authorized],
        responses=errors(401, 404, 409, 422, 503),
    )
    async def delete_file(file_id: FileId, store: Store, services: Services) -> Response:
        """Delete a file. 409 while a service mounts it as an input (terminate the service first)."""
        if await store.files.find_one({"_id": file_id}, projection={"_id": 1}) is None:
            raise HTTPException(404, f"no file {file_id}")
        mounted = {"$exists": True}
        user = await services.find_one(
            {
                "$or": [
                    {f"mount_files.{file_id}": mounted},
                    {f"study.scenarios.mount_files.{file_id}": mounted},
                ]
            },
            projection={"_id": 1},
        )
        if user is not None:
            raise HTTPException(409, f"service {user['_id']} mounts file {file_id}; terminate it first")
        await store.files.delete_one({"_id": file_id})
        await store.chunks.delete_many({"files_id": file_id})
        return contract.file_deleted(str(file_id))

    return api
