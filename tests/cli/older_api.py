"""An API from before the events stream, for the CLI's fallback: a plain HTTP proxy in front of the live
API that answers /service/{id}/events with FastAPI's 404 for an unknown route and passes everything else
through, noting the paths asked."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

NO_ROUTE = b'{"detail":"Not Found"}'
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class _Proxy(BaseHTTPRequestHandler):
    upstream: str
    asked: list[str]

    def _forward(self) -> None:
        self.asked.append(self.path)
        if self.path.split("?", 1)[0].endswith("/events"):
            self._answer(404, {"content-type": "application/json"}, NO_ROUTE)
            return
        length = int(self.headers.get("Content-Length") or 0)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
        with httpx.Client(timeout=60) as http:
            answer = http.request(
                self.command, self.upstream + self.path, headers=headers, content=self.rfile.read(length)
            )
        self._answer(answer.status_code, dict(answer.headers), answer.content)

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _forward

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return


@contextmanager
def api_without_events(upstream: str) -> Iterator[tuple[str, list[str]]]:
    """(the proxy's URL, the paths it was asked) for the API at `upstream` (scheme and host)."""
    asked: list[str] = []
    handler = type("Proxy", (_Proxy,), {"upstream": upstream, "asked": asked})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()
