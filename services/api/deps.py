"""Dependencies as `Annotated` aliases: settings, MongoDB, GridFS, Kubernetes, the tokens, ids, paging.

Two bearer tokens: the admin token (`API_TOKEN`) reads and changes; the read token (`API_READ_TOKEN`, the
frontend's) reads only. Every endpoint but health and readiness needs one of them (`Readers`, applied to
whole routers in main.py); changes need the admin token (`Authorized`), and the read token gets 403 there.

The clients are opened by the app's lifespan (services.api.main) and kept on `app.state`; none exists
at import time.
"""

from __future__ import annotations

import hmac
from enum import IntEnum
from typing import Annotated, Any

from bson import ObjectId
from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from services.shared.files import FileStore
from services.shared.records import services_collection

from .kube import AnalyticsClient
from .models import OBJECT_ID_PATTERN
from .pod_logs import PodLogs
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


def get_pod_logs(request: Request) -> PodLogs:
    return request.app.state.pod_logs


Settings = Annotated[ApiSettings, Depends(get_settings)]
Services = Annotated[Any, Depends(get_services)]
Store = Annotated[FileStore, Depends(get_store)]
Analytics = Annotated[AnalyticsClient, Depends(get_analytics)]
PodLogReader = Annotated[PodLogs, Depends(get_pod_logs)]

_bearer = HTTPBearer(
    auto_error=False,
    description="The admin token (reads and changes) or the read token (reads only).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class Role(IntEnum):
    """What a bearer token allows."""

    READER = 1
    ADMIN = 2


def _matches(given: bytes, token: SecretStr | None) -> bool:
    """Constant-time comparison; always compares something, so timing tells nothing about which token
    is configured."""
    expected = token.get_secret_value().encode() if token is not None else b"\0no token configured"
    return hmac.compare_digest(given, expected) and token is not None


def _unauthorized(credentials: HTTPAuthorizationCredentials | None) -> HTTPException:
    detail = "a bearer token is required" if credentials is None else "the bearer token is not valid"
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def role_of(settings: ApiSettings, credentials: HTTPAuthorizationCredentials | None) -> Role | None:
    given = credentials.credentials.encode() if credentials is not None else b""
    admin = _matches(given, settings.token)
    reader = _matches(given, settings.read_token)
    if admin:
        return Role.ADMIN
    return Role.READER if reader else None


async def require_reader(settings: Settings, credentials: Credentials) -> Role:
    """Every endpoint but health needs `Authorization: Bearer <token>`: the read token or the admin one."""
    if settings.token is None and settings.read_token is None:
        raise HTTPException(503, "the API has no token configured (API_TOKEN, API_READ_TOKEN)")
    role = role_of(settings, credentials)
    if role is None:
        raise _unauthorized(credentials)
    return role


async def require_token(settings: Settings, credentials: Credentials) -> None:
    """Changes need the admin token; the read token gets 403."""
    if settings.token is None:
        raise HTTPException(503, "changes are disabled: the API has no token configured (API_TOKEN)")
    role = role_of(settings, credentials)
    if role is Role.READER:
        raise HTTPException(403, "the read token cannot change anything; use the admin token")
    if role is not Role.ADMIN:
        raise _unauthorized(credentials)


Authorized = Depends(require_token)
Readers = Depends(require_reader)


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
