"""The main job as a user runs it: `python -m localdev up` in a state folder of the test's own (a platform
instance beside any other, `make up`'s included), then public interfaces only — HTTP to the API through
its loopback relay, the Kubernetes API through the apiserver's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from localdev.tools import REPO, Tools
from tests.kubectl import get_object

BASE = "/api/orchestrator/v1beta1"  # the platform's own shapes (the seed's are tested in tests/compat)


@dataclass
class Platform:
    state_dir: Path
    api: httpx.Client
    token: str  # the admin token (reads and changes)
    read_token: str  # the read-only token, as the frontend has it
    kubeconfig: Path
    namespace: str
    outputs: dict[str, Any]
    tools: Tools

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def reader(self) -> dict[str, str]:
        """Every read needs a token: this is the read-only one (changes with it are 403)."""
        return {"Authorization": f"Bearer {self.read_token}"}

    @property
    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.state_dir / "state.json").read_text()))

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, namespace: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """kubectl in the platform's namespace (the default solution's), or in `namespace`."""
        scope = namespace or self.namespace
        return subprocess.run(
            [str(self.tools.kubectl), f"--kubeconfig={self.kubeconfig}", "-n", scope, *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object, None when Kubernetes says NotFound; any other kubectl failure raises."""
        return get_object(self.kubectl, kind, name)

    def ctr(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        address = Path("/run/dtpoc") / self.state["instance"] / "containerd.sock"
        return subprocess.run(
            ["ctr", f"--address={address}", "--namespace=k8s.io", *args],
            input=input, capture_output=True, check=True, timeout=300,
        )  # fmt: skip


def localdev(command: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localdev", command],
        cwd=REPO,
        env={**os.environ, "DTPOC_STATE_DIR": str(state_dir)},
        capture_output=True,
        text=True,
        timeout=1800,
    )


def start_platform(state_dir: Path, tools: Tools) -> Platform:
    started = time.monotonic()
    up = localdev("up", state_dir)
    print(f"main job (python -m localdev up) took {time.monotonic() - started:.1f} s")
    assert up.returncode == 0, up.stdout[-6000:] + up.stderr[-6000:]
    assert "The platform is up" in up.stdout
    return attach_platform(state_dir, tools)


def stop_platform(platform: Platform) -> None:
    platform.api.close()
    down = localdev("down", platform.state_dir)
    assert down.returncode == 0, down.stdout[-4000:] + down.stderr[-4000:]


def attach_platform(state_dir: Path, tools: Tools) -> Platform:
    """An instance that is already up (its state folder), for a quick rerun while developing."""
    state = json.loads((state_dir / "state.json").read_text())
    tokens = json.loads((state_dir / "secrets.json").read_text())
    kubeconfig = state_dir / "kwok" / "clusters" / state["cluster_name"] / "host-kubeconfig.yaml"
    outputs = json.loads((state_dir / "outputs.json").read_text())
    api = httpx.Client(base_url=f"http://127.0.0.1:{state['api_port']}{BASE}", timeout=60)
    return Platform(
        state_dir,
        api,
        tokens["apiToken"],
        tokens["apiReadToken"],
        kubeconfig,
        state["namespace"],
        outputs,
        tools,
    )


@pytest.fixture(scope="session")
def platform(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    if existing := os.environ.get("DTPOC_E2E_ATTACH"):  # a state folder of `localdev up`, left running
        yield attach_platform(Path(existing), tools)
        return
    state_dir = tmp_path_factory.mktemp("platform")
    try:
        running = start_platform(state_dir, tools)
    except BaseException:
        localdev("down", state_dir)
        raise
    yield running
    stop_platform(running)
