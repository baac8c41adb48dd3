"""What can go wrong talking to the API, as one line for a person and an exit code for a script."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import httpx


class ExitCode(IntEnum):
    """The CLI's exit codes; `wait` gives 1 and 2 their meaning, usage errors are kept apart (4)."""

    OK = 0
    SERVICE_FAILED = 1
    TIMED_OUT = 2
    REQUEST_FAILED = 3
    USAGE = 4


class CliError(Exception):
    """A failure to report as one line on stderr."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.REQUEST_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


AUTH_HINT = "set DTPOC_TOKEN (or DTPOC_TOKEN_FILE, --token, or `token` in the config file) to the API token"


def _location(loc: list[Any]) -> str:
    """FastAPI's error location without its leading part (body, query, path)."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts)


def _validation_detail(detail: list[Any]) -> str:
    messages = []
    for item in detail:
        if not isinstance(item, dict):
            messages.append(str(item))
            continue
        where = _location(item.get("loc") or [])
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        messages.append(f"{where}: {message}" if where else message)
    return "; ".join(messages)


def detail_of(response: httpx.Response) -> str:
    """The API's `detail` (FastAPI's error body) as one line; the raw text if it is not JSON."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())
        return text[:200] or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):
        return _validation_detail(detail)
    return " ".join(str(detail).split())


def api_error(response: httpx.Response) -> CliError:
    """The error for a response that is not a success."""
    status = response.status_code
    detail = detail_of(response)
    if status == 401:
        return CliError(f"not authorised: {AUTH_HINT} (the API said: {detail})")
    if status == 403:
        return CliError(f"forbidden: the token may not do this (the API said: {detail})")
    if status == 404:
        return CliError(f"not found: {detail}")
    if status == 422:
        return CliError(f"invalid request: {detail}")
    if status == 503:
        return CliError(f"the API is unavailable, try again shortly: {detail}")
    return CliError(f"the API answered {status}: {detail}")
