"""The original dtpoc API's file listing, rebuilt for the benchmark (written from its documented
behaviour, not copied): FastAPI on uvicorn, GridFS `find()` with skip/limit in natural order, each
file as a dict of `file_id`, `filename`, `length`, `uploadDate`, `metadata`, encoded by FastAPI's
defaults. Default client options, as the original's (MONGODB_URL from the environment).

    uvicorn bench.api.original_listing:app --port 8001
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Query
from gridfs import AsyncGridFSBucket
from pymongo import AsyncMongoClient

from services.shared.names import FILES_DATABASE

app = FastAPI(title="the original's file listing")
_client: AsyncMongoClient | None = None


def _bucket() -> AsyncGridFSBucket:
    global _client
    if _client is None:
        _client = AsyncMongoClient(os.environ["MONGODB_URL"])
    return AsyncGridFSBucket(_client[FILES_DATABASE])


@app.get("/files")
async def list_files(skip: int = Query(0, ge=0), limit: int = Query(10, gt=0)) -> list[dict[str, Any]]:
    cursor = _bucket().find().skip(skip).limit(limit)
    return [
        {
            "file_id": str(f._id),
            "filename": f.filename,
            "length": f.length,
            "uploadDate": f.upload_date,
            "metadata": f.metadata,
        }
        async for f in cursor
    ]
