"""The real `dtpoc-api` process over a real socket: what only a real server shows (a caller that hangs
up mid-upload, refusals before the body is read, streaming both ways)."""

from __future__ import annotations

import hashlib
import os
import socket
import time

import httpx
import pytest

from services.shared.names import FILES_DATABASE

from .conftest import AUTH, BASE_PATH, LIVE_MAX_UPLOAD, READ_AUTH, LiveApi

pytestmark = [pytest.mark.cluster, pytest.mark.mongo]


def raw_request(live_api: LiveApi, head: str, body: bytes = b"", read: bool = True) -> bytes:
    """Send `head` (and `body`) on a plain socket; the answer's first bytes, if asked for."""
    host, port = live_api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        return sock.recv(4096) if read else b""


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def upload_head(live_api: LiveApi, length: int, token: bool = True) -> str:
    lines = [
        f"POST {BASE_PATH}/files/upload?filename=cut.bin HTTP/1.1",
        f"Host: {live_api.url.removeprefix('http://')}",
        "Content-Type: application/octet-stream",
        f"Content-Length: {length}",
    ]
    if token:
        lines.append(f"Authorization: {AUTH['Authorization']}")
    return "\r\n".join(lines)


def test_a_caller_hanging_up_mid_upload_leaves_nothing(live_api, mongo) -> None:
    files = mongo[FILES_DATABASE]
    files["fs.chunks"].delete_many({})
    files["fs.files"].delete_many({})
    cut_before = live_api.log.read_text().count("client went away")
    raw_request(live_api, upload_head(live_api, 12 * 1024 * 1024), os.urandom(6 * 1024 * 1024), read=False)
    wait_for(lambda: live_api.log.read_text().count("client went away") > cut_before)
    assert files["fs.chunks"].count_documents({}) == 0
    assert files["fs.files"].count_documents({}) == 0


def test_refusals_come_before_the_body_is_read(live_api) -> None:
    # No body is sent at all: the answer comes from the headers alone.
    unauthorised = raw_request(live_api, upload_head(live_api, 10 * 1024 * 1024, token=False))
    assert unauthorised.startswith(b"HTTP/1.1 401")
    too_big = raw_request(live_api, upload_head(live_api, LIVE_MAX_UPLOAD + 2 * 1024 * 1024))
    assert too_big.startswith(b"HTTP/1.1 413")


def test_streamed_upload_and_download_through_uvicorn(live_api, mongo_url) -> None:
    content = os.urandom(LIVE_MAX_UPLOAD - 1)

    def pieces():
        for start in range(0, len(content), 100_000):
            yield content[start : start + 100_000]

    with httpx.Client(base_url=live_api.url + BASE_PATH, timeout=120, headers=READ_AUTH) as client:
        stored = client.post(
            "/files/upload",
            params={"filename": "streamed.bin"},
            content=pieces(),  # chunked transfer encoding: no Content-Length
            headers={**AUTH, "Content-Type": "application/octet-stream"},
        )
        assert stored.status_code == 201, stored.text
        assert stored.json()["sha256"] == hashlib.sha256(content).hexdigest()
        with client.stream("GET", f"/files/{stored.json()['id']}") as response:
            assert response.headers["Content-Length"] == str(len(content))
            assert "chunked" not in response.headers.get("Transfer-Encoding", "")
            received = b"".join(response.iter_bytes())
        assert received == content
        too_big = client.post(
            "/files/upload",
            content=iter([content, b"xx"]),
            headers={**AUTH, "Content-Type": "application/octet-stream"},
        )
        assert too_big.status_code == 413
