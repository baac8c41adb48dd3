"""When a run counts as succeeded (pure logic): the pod's phase, or every container exited 0 before it."""

from __future__ import annotations

from typing import Any

import pytest

from services.operator.runs import run_succeeded


def pod(phase: str, *exits: int | None, containers: int = 1) -> dict[str, Any]:
    """A run's pod: its phase and, per container, its exit code (None: still running)."""
    states = [
        {"state": {"running": {}} if code is None else {"terminated": {"exitCode": code}}} for code in exits
    ]
    return {
        "spec": {"containers": [{"name": f"c{i}"} for i in range(containers)]},
        "status": {"phase": phase, "containerStatuses": states},
    }


@pytest.mark.parametrize(
    ("body", "succeeded"),
    [
        (pod("Succeeded", 0), True),
        (pod("Running", 0), True),  # exited, the kubelet still tearing the sandbox down
        (pod("Running", None), False),
        (pod("Running", 1), False),
        (pod("Failed", 0), False),  # the kubelet's verdict wins once given
        (pod("Running", 0, 0, containers=2), True),
        (pod("Running", 0, None, containers=2), False),
        (pod("Running", 0, containers=2), False),  # a container not reported yet
        (pod("Pending"), False),
        ({"spec": {"containers": []}, "status": {"phase": "Running"}}, False),
    ],
)
def test_a_run_succeeded_when_its_pod_did_or_all_its_containers_exited_0(
    body: dict[str, Any], succeeded: bool
) -> None:
    assert run_succeeded(body) is succeeded
