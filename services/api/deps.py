"""Dependencies as `Annotated` aliases: settings, the request's solution, its MongoDB collections and
Kubernetes clients, the tokens, ids, paging.

Solutions (services.api.solutions): the routes are mounted at each version's base path, which serves the
default solution, and again under `<base>/solutions/{solution}`. `Services`, `Store`, `Analytics` and
`PodLogReader` are the request's solution's, so every lookup happens in its databases and namespace: an
id of another solution is simply not found (404).

Each solution has two bearer tokens: its admin token reads and changes; its read token (the frontend's)
reads only. Every endpoint but health and readiness needs one of the path's solution's tokens (`Readers`,
applied to whole routers in main.py); a token of another solution gets 403, and so does the read token on
a change (`Authorized`).

The clients are opened by the app's lifespan (services.api.main) and kept on `app.state`; none exists
at import time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, Any

from bson import ObjectId
from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from services.shared.files import FileStore
from services.shared.solutions import DEFAULT_SOLUTION, MAX_NAME_LENGTH, NAME_PATTERN, check_solution_name

from .kube import AnalyticsClient
from .models import OBJECT_ID_PATTERN
from .pod_logs import PodLogs
from .settings import ApiSettings
from .solutions import Solution


def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


def solution_of(request: Request) -> Solution:
    """The path's solution (`/solutions/{solution}/...`), else the default one (the base paths)."""
    name = request.path_params.get("solution", DEFAULT_SOLUTION)
    solution: Solution | None = request.app.state.solutions.get(name)
    if solution is not None:
        return solution
    try:
        check_solution_name(name)
    except ValueError as exc:  # as FastAPI answers a path parameter that fails its pattern
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("path", "solution"), "msg": str(exc), "input": name}]
        ) from exc
    raise HTTPException(404, f"no solution named {name!r}")


def _document_solution(
    solution: Annotated[
        str,
        Path(
            pattern=NAME_PATTERN,
            max_length=MAX_NAME_LENGTH,
            description=f"The solution's name (`{DEFAULT_SOLUTION}`: the same as the paths without "
            "`/solutions/{solution}`).",
        ),
    ],
) -> None:
    """Only declares the path parameter, for the OpenAPI document; `solution_of` resolves it."""


def get_services(request: Request) -> Any:
    """The solution's services collection (pymongo async)."""
    return solution_of(request).services


def get_store(request: Request) -> FileStore:
    return solution_of(request).store


def get_analytics(request: Request) -> AnalyticsClient:
    return solution_of(request).analytics


def get_pod_logs(request: Request) -> PodLogs:
    return solution_of(request).pod_logs


Settings = Annotated[ApiSettings, Depends(get_settings)]
CurrentSolution = Annotated[Solution, Depends(solution_of)]
Services = Annotated[Any, Depends(get_services)]
Store = Annotated[FileStore, Depends(get_store)]
Analytics = Annotated[AnalyticsClient, Depends(get_analytics)]
PodLogReader = Annotated[PodLogs, Depends(get_pod_logs)]
# Added to the routes under `<base>/solutions/{solution}` (main.py).
SolutionPath = Depends(_document_solution)

_bearer = HTTPBearer(
    auto_error=False,
    description="The solution's admin token (reads and changes) or its read token (reads only).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class Role(IntEnum):
    """What a bearer token allows."""

    READER = 1
    ADMIN = 2


@dataclass(frozen=True)
class TokenOwner:
    """The solution a token belongs to, and what it allows there."""

    solution: str
    role: Role


def _matches(given: bytes, token: SecretStr | None) -> bool:
    """Constant-time comparison; always compares something, so timing tells nothing about which token
    is configured."""
    expected = token.get_secret_value().encode() if token is not None else b"\0no token configured"
    return hmac.compare_digest(given, expected) and token is not None


def _unauthorized(credentials: HTTPAuthorizationCredentials | None) -> HTTPException:
    detail = "a bearer token is required" if credentials is None else "the bearer token is not valid"
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def owner_of(settings: ApiSettings, credentials: HTTPAuthorizationCredentials | None) -> TokenOwner | None:
    """Whose token this is. Compared with every configured token, whichever matches: the time taken
    tells nothing about which one did (the settings refuse a token used twice)."""
    given = credentials.credentials.encode() if credentials is not None else b""
    owner = None
    for access in settings.accesses:
        for role, token in ((Role.ADMIN, access.token), (Role.READER, access.read_token)):
            if _matches(given, token) and owner is None:
                owner = TokenOwner(access.name, role)
    return owner


def _owned_here(owner: TokenOwner | None, request: Request, credentials: Any) -> TokenOwner:
    """401 without a valid token (before anything about the path is told), then the path's solution
    (404 when there is none), then 403 for a token of another solution."""
    if owner is None:
        raise _unauthorized(credentials)
    if owner.solution != solution_of(request).name:
        raise HTTPException(403, "this token belongs to another solution")
    return owner


async def require_reader(request: Request, settings: Settings, credentials: Credentials) -> Role:
    """Every endpoint but health needs `Authorization: Bearer <token>`: the read token or the admin one
    of the path's solution."""
    if not any(access.tokens() for access in settings.accesses):
        raise HTTPException(503, "the API has no token configured (API_TOKEN, API_READ_TOKEN)")
    return _owned_here(owner_of(settings, credentials), request, credentials).role


async def require_token(request: Request, settings: Settings, credentials: Credentials) -> None:
    """Changes need the solution's admin token; its read token gets 403."""
    owner = owner_of(settings, credentials)
    solution = solution_of(request).name
    access = next(access for access in settings.accesses if access.name == solution)
    if access.token is None:
        missing = (
            "the API has no token configured (API_TOKEN)"
            if solution == DEFAULT_SOLUTION
            else f"solution {solution!r} has no admin token configured"
        )
        raise HTTPException(503, f"changes are disabled: {missing}")
    if _owned_here(owner, request, credentials).role is Role.READER:
        raise HTTPException(403, "the read token cannot change anything; use the admin token")


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
