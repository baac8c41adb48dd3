"""The Orchestrator REST API: app factory, lifespan and the `dtpoc-api` entry point.

Two versions, one implementation: /api/orchestrator/v1alpha1 keeps the original dtpoc platform's
contract, /api/orchestrator/v1beta1 has the platform's own shapes (services.api.contracts). Routes
carry the full base path: the ingress forwards paths unchanged, so the same URLs work in the cluster,
behind the ingress and in tests. Each version has its OpenAPI document and docs page under its prefix.

Solutions (services.api.solutions): each version's base path serves the default solution, and
`<base>/solutions/{solution}` any configured one, with the same routers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from services.shared.mongo import connect

from .contracts import CONTRACTS, Contract
from .deps import Readers, SolutionPath
from .errors import install_error_handlers
from .kube import open_api_client
from .models import errors
from .routers import files, health, services
from .settings import ApiSettings, get_settings
from .solutions import open_solutions, prepare

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the MongoDB client and the Kubernetes ApiClient for the app's life, and each solution's
    handles on them; close them after.

    Neither needs its server up at start: pymongo connects lazily and reconnects by itself, and
    requests answer 503 while a backend is away.
    """
    settings: ApiSettings = app.state.settings
    mongo = connect(settings.mongo)
    api_client, problem = await open_api_client(settings.kubeconfig)
    app.state.mongo = mongo
    app.state.solutions = open_solutions(
        settings.accesses, mongo, api_client, settings.kube_timeout_seconds, problem
    )
    await prepare(app.state.solutions)
    for access in settings.accesses:
        if access.token is None:
            log.warning("solution %s has no admin token: every POST and DELETE will be refused", access.name)
        if access.token is None and access.read_token is None:
            log.warning("solution %s has no token at all: every read will be refused too", access.name)
    try:
        yield
    finally:
        if api_client is not None:
            await api_client.close()
        await mongo.close()


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class RefuseControlCharacterPaths:
    """Starlette matches routes with `$`, which also matches before a trailing newline: `/files/%0A` would
    reach the file listing. No route has control characters, so such a path is a JSON 404 right here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _CONTROL_CHARACTERS.search(scope["path"]):
            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


TITLE = "DT platform orchestrator API"
SUMMARY = "Launch analytics and simulation modules, follow their runs, fetch outputs, manage files."
DESCRIPTIONS = {
    "v1alpha1": "The original dtpoc platform's contract, kept for its clients (file_id, active_runs, "
    "created_at in epoch seconds, 200 on upload, a message on deletion). The platform's own shapes "
    "are in v1beta1.",
    "v1beta1": "The platform's own shapes: `id` everywhere, run counts `active`/`succeeded`/`failed`/"
    "`total`, ISO 8601 dates, 201 for a new file, 204 for a deletion, outputs by run, strict launch "
    "requests. The original's contract is kept in v1alpha1.",
}


def _references(value: Any) -> set[str]:
    """Names of the component schemas `value` refers to (`#/components/schemas/<name>`)."""
    if isinstance(value, dict):
        found = {value["$ref"].rsplit("/", 1)[-1]} if isinstance(value.get("$ref"), str) else set()
        return found.union(*(_references(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value))
    return set()


def version_document(whole: dict[str, Any], contract: Contract) -> dict[str, Any]:
    """The OpenAPI document of one version: its paths, and the schemas they need (transitively)."""
    prefix = f"{contract.base_path}/"
    paths = {path: item for path, item in whole["paths"].items() if path.startswith(prefix)}
    components = whole.get("components", {})
    schemas = components.get("schemas", {})
    needed, todo = set(), _references(paths)
    while todo:
        name = todo.pop()
        if name not in needed and name in schemas:
            needed.add(name)
            todo |= _references(schemas[name])
    kept = {**components, "schemas": {name: schemas[name] for name in sorted(needed)}}
    info = {**whole["info"], "version": contract.version, "description": DESCRIPTIONS[contract.version]}
    return {**whole, "info": info, "paths": paths, "components": kept}


def _add_version_docs(app: FastAPI, contract: Contract) -> None:
    """`<base>/openapi.json` with this version's operations only, and `<base>/docs` showing it."""
    prefix = contract.base_path

    async def openapi() -> JSONResponse:
        return JSONResponse(version_document(app.openapi(), contract))

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=f"{prefix}/openapi.json", title=f"{TITLE} {contract.version}")

    app.add_api_route(f"{prefix}/openapi.json", openapi, include_in_schema=False)
    app.add_api_route(f"{prefix}/docs", docs, include_in_schema=False)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The API for `settings` (by default the environment's, see services.api.settings)."""
    settings = settings or get_settings()
    app = FastAPI(
        title=TITLE,
        version=", ".join(contract.version for contract in CONTRACTS),
        summary=SUMMARY,
        lifespan=lifespan,
        openapi_url=None,  # one document per version, see _add_version_docs
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        expose_headers=["Content-Disposition", "Content-Length", "Link"],
    )
    app.add_middleware(RefuseControlCharacterPaths)
    install_error_handlers(app)
    for contract in CONTRACTS:
        app.include_router(health.router, prefix=contract.base_path)
        # Everything else is read with one of the solution's tokens (the read token or the admin one);
        # changes need its admin token. The versions' documents (docs, openapi.json) stay open: they hold
        # no data. The same routers serve the default solution at the base path and any solution below.
        routers = (services.router(contract), files.router(contract))
        for router in routers:
            app.include_router(
                router, prefix=contract.base_path, dependencies=[Readers], responses=errors(401, 403)
            )
        for router in routers:
            app.include_router(
                router,
                prefix=f"{contract.base_path}/solutions/{{solution}}",
                dependencies=[SolutionPath, Readers],
                responses=errors(401, 403, 404, 422),
            )
        _add_version_docs(app, contract)
    return app


def run() -> None:
    """`dtpoc-api`: serve the app with uvicorn on API_HOST:API_PORT."""
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        "services.api.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        timeout_graceful_shutdown=10,
    )
