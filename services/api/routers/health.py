"""Liveness and readiness: open to everyone (the kubelet probes them)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import pymongo
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..deps import Analytics
from ..models import ErrorBody, Health, Readiness

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up (no backend is asked: a database outage must not restart the API)."""
    return Health()


# Readiness answers within the kubelet's probe timeout, whatever the backends do.
READY_TIMEOUT_SECONDS = 2.0


async def _ping_mongo(client: Any) -> None:
    with pymongo.timeout(READY_TIMEOUT_SECONDS):
        await client.admin.command("ping")


async def _check(name: str, check: Awaitable[Any]) -> str:
    """ "ok" or "unreachable": the cause goes to the log only (readiness is open to anyone, and an
    exception's text names hosts, ports and addresses)."""
    try:
        await check
    except Exception as exc:
        log.warning("readiness: %s unreachable: %s: %s", name, type(exc).__name__, exc)
        return "unreachable"
    return "ok"


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": ErrorBody, "description": "MongoDB or Kubernetes unreachable"}},
)
async def readyz(request: Request, analytics: Analytics) -> JSONResponse:
    """MongoDB answers a ping and Kubernetes lists Analytics resources; 503 otherwise."""
    mongodb, kubernetes = await asyncio.gather(
        _check("MongoDB", _ping_mongo(request.app.state.mongo)),
        _check("Kubernetes", analytics.ping(READY_TIMEOUT_SECONDS)),
    )
    body = Readiness(status="ok", mongodb=mongodb, kubernetes=kubernetes).model_dump()
    if mongodb == kubernetes == "ok":
        return JSONResponse(body)
    body["status"] = "unavailable"
    body["detail"] = (
        "not ready: "
        + ", ".join(
            name for name, state in (("MongoDB", mongodb), ("Kubernetes", kubernetes)) if state != "ok"
        )
        + " unreachable"
    )
    return JSONResponse(body, status_code=503)
