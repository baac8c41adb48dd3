"""The `dtpoc` CLI as a user runs it: the venv's console script in a subprocess, against a real
`dtpoc-api` (tests/live_api.py) on FerretDB and the kwok cluster, and for the outcome tests the real
operator (tests/services/operator's `operator_env`), which runs the services' pods on kwok."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from localdev.cluster import LocalCluster
from localdev.ferretdb import FerretDB
from tests.live_api import ApiTokens, LiveApi, api_in_own_namespace, serve_api
from tests.services.operator.conftest import OperatorEnv, operator_env  # noqa: F401 (a fixture)

TOKEN = "cli-test-token-0123456789"
READ_TOKEN = "cli-read-token-0123456789"
TOKENS = ApiTokens(TOKEN, READ_TOKEN)
MAX_UPLOAD = 16 * 1024 * 1024
DTPOC = Path(sys.executable).parent / "dtpoc"


@dataclass
class Dtpoc:
    """Runs `dtpoc ARGS` with DTPOC_URL and DTPOC_TOKEN set, no config file of the user's in reach."""

    url: str | None
    home: Path
    token: str | None = TOKEN
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DTPOC_")}
        env.update(HOME=str(self.home), XDG_CONFIG_HOME=str(self.home / ".config"))
        if self.url is not None:
            env["DTPOC_URL"] = self.url
        if self.token is not None:
            env["DTPOC_TOKEN"] = self.token
        return {**env, **self.extra_env, **overrides}

    def __call__(
        self, *args: str | Path, cwd: Path | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(DTPOC), *map(str, args)],
            capture_output=True,
            text=True,
            env=self.env(**env),
            cwd=cwd or self.home,
            timeout=300,  # a safety net against a hang, not an assertion
        )

    def ok(self, *args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
        result = self(*args, **env)
        assert result.returncode == 0, f"dtpoc {' '.join(map(str, args))}: {result.stderr}"
        assert "Traceback" not in result.stderr
        return result

    def json(self, *args: str | Path) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command (no traceback, nothing on stdout)."""
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    assert lines[0].startswith("dtpoc: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def cli_api(
    ferretdb: FerretDB, cluster: LocalCluster, analytics_crd: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    """One live API for a test module, in a namespace of its own (no operator: services stay pending)."""
    log = tmp_path_factory.mktemp("api") / "api.log"
    with api_in_own_namespace(ferretdb.url, cluster, "cli", log, TOKENS, MAX_UPLOAD) as api:
        yield api


def api_url(api: LiveApi) -> str:
    return f"{api.url}/api/orchestrator/v1beta1"


@pytest.fixture
def dtpoc(cli_api: LiveApi, tmp_path: Path) -> Dtpoc:
    return Dtpoc(api_url(cli_api), tmp_path)


@pytest.fixture
def operated_api(operator_env: OperatorEnv, tmp_path: Path) -> Iterator[LiveApi]:  # noqa: F811
    """A live API and the real operator on one namespace: launched services run on kwok."""
    operator_env.start_operator()
    with serve_api(
        operator_env.mongo_url,
        operator_env.cluster.kubeconfig,
        operator_env.namespace,
        tmp_path / "api.log",
        TOKENS,
        MAX_UPLOAD,
    ) as api:
        yield api


@pytest.fixture
def operated_dtpoc(operated_api: LiveApi, tmp_path: Path) -> Dtpoc:
    home = tmp_path / "home"
    home.mkdir()
    return Dtpoc(api_url(operated_api), home)


def api_bytes(url: str | None, file_id: str) -> bytes:
    """A file as the API serves it (GET /files/{id}), to compare the CLI's downloads with."""
    response = httpx.get(f"{url}/files/{file_id}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    response.raise_for_status()
    return response.content
