"""Two platform instances side by side (`make up` while `make test` runs, a second checkout): each has its
own network namespace, cluster, node, Docker engine, sockets, data and ports, and stopping one leaves the
other as it was."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from localdev.tools import Tools
from tests.e2e.conftest import Platform, start_platform, stop_platform
from tests.e2e.test_platform_e2e import image_and_version, launch, status_of, terminate
from tests.polling import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.pulumi, pytest.mark.node, pytest.mark.slow]


def listening_sockets() -> str:
    return subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout


def probe_run(platform: Platform) -> dict:
    image, version = image_and_version(platform.outputs["images"]["probe"])
    sid = launch(
        platform,
        {"image": image, "version": version, "description": "instance check", "env": {"PROBE_MODE": "write"},
         "ana": {"job_type": "ondemand", "reps": 1}},
    )  # fmt: skip
    eventually(lambda: status_of(platform, sid)["status"] == "ok", 180, "the run")
    output = platform.api.get(f"/service/{sid}/output/0", headers=platform.auth).json()
    terminate(platform, sid)
    return dict(output)


def test_two_instances_side_by_side(
    platform: Platform, tools: Tools, tmp_path_factory: pytest.TempPathFactory
) -> None:
    second = start_platform(tmp_path_factory.mktemp("second-platform"), tools)
    try:
        first_state, second_state = platform.state, second.state
        assert first_state["instance"] != second_state["instance"]
        assert first_state["api_port"] != second_state["api_port"]
        for each in (platform, second):
            namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
            assert f"dtpoc-{each.state['instance']}" in namespaces

        # A launch on each, at the same time: each run lands in its own instance.
        first_output, second_output = probe_run(platform), probe_run(second)
        assert first_output["run_id"] != second_output["run_id"]
        for each in (platform, second):
            assert not json.loads(each.kubectl("get", "analytics", "-o", "json").stdout)["items"]

        # Host processes listen on loopback only.
        for line in listening_sockets().splitlines():
            local = line.split()[3]
            for port in (first_state["api_port"], second_state["api_port"]):
                if local.endswith(f":{port}"):
                    assert local.startswith("127.0.0.1:"), line
    finally:
        stop_platform(second)

    # The second's `down` stopped only what it started: the first still serves, its node still runs.
    assert not Path(f"/var/run/netns/dtpoc-{second_state['instance']}").exists()
    assert platform.api.get("/healthz").status_code == 200
    assert probe_run(platform)["env"]["PROBE_MODE"] == "write"
