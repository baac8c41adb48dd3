"""Liveness and readiness: open to everyone (the kubelet probes them)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pymongo
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..deps import Analytics
from ..models import ErrorBody, Health, Readiness

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


async def _check(check: Awaitable[Any]) -> str:
    try:
        await check
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}: {exc}"[:300]
    return "ok"


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": ErrorBody, "description": "MongoDB or Kubernetes unreachable"}},
)
async def readyz(request: Request, analytics: Analytics) -> JSONResponse:
    """MongoDB answers a ping and Kubernetes lists Analytics resources; 503 otherwise."""
    mongodb, kubernetes = await asyncio.gather(
        _check(_ping_mongo(request.app.state.mongo)), _check(analytics.ping(READY_TIMEOUT_SECONDS))
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
