"""The API over HTTP (httpx): every request carries the bearer token; failures become CliErrors."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import TypeAdapter

from .errors import CliError, api_error, detail_of
from .models import FileInfo, Launched, ServiceStatus, ServiceSummary, Terminated, Uploaded
from .settings import CliSettings
from .sse import ServerEvent, parse_events

CHUNK_BYTES = 1024 * 1024
Progress = Callable[[int], None]
"""Called with the number of bytes just sent or received."""


# The events stream sends a keep-alive every 15 s: a minute of silence means the connection is dead.
EVENTS_READ_SECONDS = 60.0


def _ignore(_: int) -> None:
    return None


class EventsNotServed(Exception):
    """The API answers 404 for /service/{id}/events (an API from before the stream): poll instead."""


class LogNotStarted(Exception):
    """The run has no log yet (409): it has not started."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ApiClient:
    """One connection pool to the API for the life of a command."""

    def __init__(self, settings: CliSettings) -> None:
        self.base_url = settings.url
        self.timeout_seconds = settings.timeout_seconds
        headers = {"User-Agent": "dtpoc-cli"}
        if settings.token is not None:
            headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
        self._http = httpx.Client(
            base_url=settings.url,
            headers=headers,
            timeout=httpx.Timeout(settings.timeout_seconds, connect=min(settings.timeout_seconds, 10.0)),
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._http.close()

    # -- transport --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _talking(self) -> Iterator[None]:
        """httpx's failures to reach the API as one line naming its URL."""
        try:
            yield
        except httpx.ConnectError as exc:
            raise CliError(f"cannot reach the API at {self.base_url}: {_reason(exc)}") from None
        except httpx.TimeoutException:
            raise CliError(f"the API at {self.base_url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise CliError(f"talking to the API at {self.base_url} failed: {_reason(exc)}") from None

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        response.read()
        if response.status_code == 404 and detail_of(response) == "Not Found":
            # No such route: the URL is not the API's v1beta1 base (a wrong DTPOC_URL).
            raise CliError(f"not found: {response.url} (is {self.base_url} the API's v1beta1 URL?)")
        raise api_error(response)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._talking():
            return self._check(self._http.request(method, path, **kwargs))

    # -- files ------------------------------------------------------------------------------------
    def upload(self, path: Path, progress: Progress = _ignore) -> tuple[Uploaded, int]:
        """Stream the file as the request body (no multipart copy, a Content-Length so that the API can
        refuse an oversized file before reading it). The answer and its status (201 new, 200 duplicate)."""
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK_BYTES):
                    progress(len(chunk))
                    yield chunk

        response = self._request(
            "POST",
            "/files/upload",
            params={"filename": path.name},
            content=chunks(),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        return Uploaded.model_validate(response.json()), response.status_code

    def files(self, skip: int, limit: int) -> list[FileInfo]:
        response = self._request("GET", "/files", params={"skip": skip, "limit": limit})
        return TypeAdapter(list[FileInfo]).validate_python(response.json())

    def download(
        self,
        file_id: str,
        target: Path | None,
        started: Callable[[int | None, str], None] = lambda total, name: None,
        progress: Progress = _ignore,
    ) -> Path:
        """File `file_id` into `target` (a file path; a directory or None: the stored name inside it).
        Written to a temporary name beside it and renamed when complete: never a half file."""
        with self._talking(), self._http.stream("GET", f"/files/{file_id}") as response:
            self._check(response)
            name = _attachment_name(response.headers.get("Content-Disposition"), file_id)
            if target is None:
                target = Path(name)
            elif target.is_dir():
                target = target / name
            length = response.headers.get("Content-Length")
            started(int(length) if length is not None else None, target.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.part")
            try:
                with partial.open("wb") as handle:
                    for chunk in response.iter_bytes(CHUNK_BYTES):
                        handle.write(chunk)
                        progress(len(chunk))
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
        return target

    def delete_file(self, file_id: str) -> None:
        self._request("DELETE", f"/files/{file_id}")

    # -- services ---------------------------------------------------------------------------------
    def launch(self, body: dict[str, Any]) -> Launched:
        return Launched.model_validate(self._request("POST", "/service/launch", json=body).json())

    def services(self, skip: int, limit: int) -> list[ServiceSummary]:
        response = self._request("GET", "/service/", params={"skip": skip, "limit": limit})
        return TypeAdapter(list[ServiceSummary]).validate_python(response.json())

    def status(self, service_id: str) -> ServiceStatus:
        return ServiceStatus.model_validate(self._request("GET", f"/service/{service_id}/status").json())

    @contextlib.contextmanager
    def events(self, service_id: str, last_event_id: str | None = None) -> Iterator[Iterator[ServerEvent]]:
        """The service's status events as they come (see the API's GET /service/{id}/events). Failures
        to connect are CliErrors; a connection lost mid-stream is httpx's error (the caller resumes)."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        timeout = httpx.Timeout(self.timeout_seconds, read=max(self.timeout_seconds, EVENTS_READ_SECONDS))
        with contextlib.ExitStack() as stack:
            with self._talking():
                response = stack.enter_context(
                    self._http.stream(
                        "GET", f"/service/{service_id}/events", headers=headers, timeout=timeout
                    )
                )
            if response.status_code == 404:
                response.read()
                raise EventsNotServed(detail_of(response))
            with self._talking():
                self._check(response)
            yield parse_events(response.iter_lines())

    @contextlib.contextmanager
    def log(
        self, service_id: str, run: int, follow: bool, tail: int | None
    ) -> Iterator[tuple[httpx.Headers, Iterator[bytes]]]:
        """A run's log: its headers and its bytes as they come. LogNotStarted for a run not started."""
        params: dict[str, str | int] = {"run": run, "follow": "true" if follow else "false"}
        if tail is not None:
            params["tail"] = tail
        # A followed log may be quiet for long: no read timeout then.
        timeout = httpx.Timeout(self.timeout_seconds, read=None if follow else self.timeout_seconds)
        with (
            self._talking(),
            self._http.stream(
                "GET", f"/service/{service_id}/logs", params=params, timeout=timeout
            ) as response,
        ):
            if response.status_code == 409:
                response.read()
                raise LogNotStarted(detail_of(response))
            self._check(response)
            yield response.headers, response.iter_bytes()

    def terminate(self, service_id: str) -> Terminated:
        return Terminated.model_validate(self._request("DELETE", f"/service/{service_id}/terminate").json())


def _reason(exc: Exception) -> str:
    """The innermost cause's text: "[Errno 111] Connection refused", not httpx's wrapping."""
    text = str(exc)
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        text = str(exc) or text
    return " ".join(text.split()) or type(exc).__name__


def _attachment_name(disposition: str | None, fallback: str) -> str:
    """The file name of a Content-Disposition (RFC 6266, `filename*` first), reduced to a plain name."""
    if disposition:
        header = Message()
        header["Content-Disposition"] = disposition
        name = header.get_filename()
        if name:
            name = Path(name.replace("\\", "/")).name
            if name not in ("", ".", ".."):
                return name
    return fallback
