"""The Orchestrator REST API: app factory, lifespan and the `dtpoc-api` entry point.

Routes carry the full base path (/api/orchestrator/v1alpha1): the ingress forwards paths unchanged, so
the same URLs work in the cluster, behind the ingress and in tests. The OpenAPI document and the docs
page live under the same prefix.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from services.shared.files import FileStore
from services.shared.mongo import connect

from .deps import Readers
from .errors import install_error_handlers
from .kube import AnalyticsClient, open_api_client
from .models import errors
from .routers import files, health, services
from .settings import BASE_PATH, ApiSettings, get_settings
from .uploads import ensure_indexes

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the MongoDB client and the Kubernetes ApiClient for the app's life; close them after.

    Neither needs its server up at start: pymongo connects lazily and reconnects by itself, and
    requests answer 503 while a backend is away.
    """
    settings: ApiSettings = app.state.settings
    mongo = connect(settings.mongo)
    api_client, problem = await open_api_client(settings.kubeconfig)
    app.state.mongo = mongo
    app.state.store = FileStore(mongo)
    app.state.analytics = AnalyticsClient(
        api_client, settings.namespace, settings.kube_timeout_seconds, problem
    )
    app.state.indexes_ready = False
    try:
        await ensure_indexes(app.state.store)
        app.state.indexes_ready = True
    except Exception as exc:  # MongoDB away at start: the first upload creates them
        log.warning("could not create the GridFS indexes yet: %s", exc)
    if settings.token is None:
        log.warning("API_TOKEN is not set: every POST and DELETE will be refused")
    if settings.token is None and settings.read_token is None:
        log.warning("neither API_TOKEN nor API_READ_TOKEN is set: every read will be refused too")
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


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The API for `settings` (by default the environment's, see services.api.settings)."""
    settings = settings or get_settings()
    app = FastAPI(
        title="DT platform orchestrator API",
        version="v1alpha1",
        summary="Launch analytics and simulation modules, follow their runs, fetch outputs, manage files.",
        lifespan=lifespan,
        openapi_url=f"{BASE_PATH}/openapi.json",
        docs_url=f"{BASE_PATH}/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Content-Disposition", "Content-Length", "Link"],
    )
    app.add_middleware(RefuseControlCharacterPaths)
    install_error_handlers(app)
    app.include_router(health.router, prefix=BASE_PATH)
    # Everything else is read with a token (the read token or the admin one); changes need the admin token.
    for router in (services.router, files.router):
        app.include_router(router, prefix=BASE_PATH, dependencies=[Readers], responses=errors(401, 403))
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
