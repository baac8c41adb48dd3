"""Failures of the API's backends, and how each becomes a JSON response with a `detail`.

MongoDB or Kubernetes away → 503 with `Retry-After`: pymongo reconnects by itself and the Kubernetes
client opens new connections on the next call, so the API recovers without a restart.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from gridfs.errors import CorruptGridFile
from pymongo.errors import ConnectionFailure
from starlette.requests import ClientDisconnect

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"


class KubernetesUnavailable(Exception):
    """The Kubernetes API server cannot be reached (or is not configured)."""


class KubernetesError(Exception):
    """The Kubernetes API server answered with an error that retrying will not fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Kubernetes answered {status}: {message}")
        self.status = status
        self.message = message


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": RETRY_AFTER_SECONDS})


async def _mongo_unreachable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("MongoDB unreachable: %s", exc)
    return _unavailable("MongoDB is unreachable; try again shortly")


async def _kubernetes_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("Kubernetes unavailable: %s", exc)
    return _unavailable(f"Kubernetes is unreachable; try again shortly ({exc})")


async def _kubernetes_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KubernetesError)
    log.error("Kubernetes refused a request: %s", exc)
    # 422: the API server's own validation (the CRD's rules) refused what we sent; anything else is a
    # problem between the API and the cluster (RBAC, a missing CRD or namespace), not the caller's.
    status = 422 if exc.status == 422 else 502
    return JSONResponse({"detail": f"Kubernetes refused the request: {exc.message}"}, status_code=status)


async def _corrupt_file(_: Request, exc: Exception) -> JSONResponse:
    log.error("corrupt GridFS file: %s", exc)
    return JSONResponse({"detail": f"the stored file is damaged: {exc}"}, status_code=500)


async def _client_gone(request: Request, _: Exception) -> JSONResponse:
    # The caller hung up mid-request (an upload cut short); what it sent was cleaned up already.
    log.info("client went away during %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "the client closed the connection"}, status_code=400)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    # ServerSelectionTimeoutError, AutoReconnect, NetworkTimeout and WaitQueueTimeoutError all derive
    # from ConnectionFailure.
    app.add_exception_handler(ConnectionFailure, _mongo_unreachable)
    app.add_exception_handler(KubernetesUnavailable, _kubernetes_unavailable)
    app.add_exception_handler(KubernetesError, _kubernetes_error)
    app.add_exception_handler(CorruptGridFile, _corrupt_file)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
