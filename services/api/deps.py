"""Dependencies as `Annotated` aliases: settings, MongoDB, GridFS, Kubernetes, the token, ids, paging.

The clients are opened by the app's lifespan (services.api.main) and kept on `app.state`; none exists
at import time.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from bson import ObjectId
from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.shared.files import FileStore
from services.shared.records import services_collection

from .kube import AnalyticsClient
from .models import OBJECT_ID_PATTERN
from .settings import ApiSettings


def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


def get_services(request: Request) -> Any:
    """The services collection (pymongo async)."""
    return services_collection(request.app.state.mongo)


def get_store(request: Request) -> FileStore:
    return request.app.state.store


def get_analytics(request: Request) -> AnalyticsClient:
    return request.app.state.analytics


Settings = Annotated[ApiSettings, Depends(get_settings)]
Services = Annotated[Any, Depends(get_services)]
Store = Annotated[FileStore, Depends(get_store)]
Analytics = Annotated[AnalyticsClient, Depends(get_analytics)]

_bearer = HTTPBearer(auto_error=False, description="The API token (a Kubernetes Secret in the platform).")


async def require_token(
    settings: Settings, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Mutations need `Authorization: Bearer <token>`; compared in constant time."""
    if settings.token is None:
        raise HTTPException(503, "changes are disabled: the API has no token configured (API_TOKEN)")
    expected = settings.token.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials is not None else b""
    if not hmac.compare_digest(given, expected):
        detail = "a bearer token is required" if credentials is None else "the bearer token is not valid"
        raise HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


Authorized = Depends(require_token)


def _object_id(value: str) -> ObjectId:
    return ObjectId(value.lower())


def _service_id(
    id: Annotated[str, Path(pattern=OBJECT_ID_PATTERN, description="Service id (24 hex digits).")],
) -> ObjectId:
    return _object_id(id)


def _file_id(
    file_id: Annotated[str, Path(pattern=OBJECT_ID_PATTERN, description="File id (24 hex digits).")],
) -> ObjectId:
    return _object_id(file_id)


ServiceId = Annotated[ObjectId, Depends(_service_id)]
FileId = Annotated[ObjectId, Depends(_file_id)]

Skip = Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip.")]


def limit_query(max_limit: int) -> Any:
    """The `limit` query parameter of a version's lists (each version has its own bound)."""
    return Query(ge=1, le=max_limit, description=f"Items to return (at most {max_limit}).")


def next_page_link(request: Request, skip: int, limit: int) -> str:
    """An RFC 8288 `Link` to the next page, relative (correct behind the ingress too)."""
    query = request.url.include_query_params(skip=skip, limit=limit).query
    return f'<{request.url.path}?{query}>; rel="next"'
