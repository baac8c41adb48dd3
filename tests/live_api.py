"""A real `dtpoc-api` process (uvicorn, the console entry point) on FerretDB and a cluster, for the
tests that talk to the API over a real socket (tests/services/api/test_live.py, tests/cli)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from localdev import processes
from localdev.cluster import LocalCluster


class ApiTokens(NamedTuple):
    admin: str
    read: str


class LiveApi(NamedTuple):
    url: str
    namespace: str
    log: Path


@contextmanager
def serve_api(
    mongo_url: str,
    kubeconfig: Path,
    namespace: str,
    log: Path,
    tokens: ApiTokens,
    max_upload: int,
    **settings: str,
) -> Iterator[LiveApi]:
    """`dtpoc-api` on a free loopback port, its Analytics resources in `namespace`, `settings` as more
    environment (API_EVENTS_KEEPALIVE_SECONDS="1"); stopped by pid. Its log must hold no traceback."""
    port = processes.free_port()
    env = {
        **os.environ,
        "API_TOKEN": tokens.admin,
        "API_READ_TOKEN": tokens.read,
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "API_NAMESPACE": namespace,
        "API_KUBECONFIG": str(kubeconfig),
        "API_MAX_UPLOAD_BYTES": str(max_upload),
        "MONGODB_URL": mongo_url,
        **settings,
    }
    pid = processes.start([Path(sys.executable).parent / "dtpoc-api"], log, env)
    try:
        processes.wait_until(lambda: processes.port_open(port), 30, "dtpoc-api")
        yield LiveApi(f"http://127.0.0.1:{port}", namespace, log)
    finally:
        processes.stop(pid)
    assert "Traceback" not in log.read_text(), log.read_text()


@contextmanager
def api_in_own_namespace(
    mongo_url: str, cluster: LocalCluster, prefix: str, log: Path, tokens: ApiTokens, max_upload: int
) -> Iterator[LiveApi]:
    """`serve_api` in a fresh namespace `<prefix>-<random>`, deleted afterwards."""
    namespace = f"{prefix}-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", namespace)
    try:
        with serve_api(mongo_url, cluster.kubeconfig, namespace, log, tokens, max_upload) as api:
            yield api
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
