"""Placement of the pieces (simulatedPieces, realNodeSelector): the local stack pins the pieces it can run to
its real node and the others to kwok's simulated nodes; with neither set, no pod spec names a node."""

from __future__ import annotations

from typing import Any

import pytest

from components.config import PIECES, ConfigError
from components.ui import UIModule

from .conftest import build_platform
from .harness import Recorded, Run
from .k8s import pod_spec
from .test_config import load, stack_config

# The Deployments of each piece, as the platform names them.
DEPLOYMENTS = {
    "mongodb": {"mongodb"},
    "influxdb": {"influxdb"},
    "mosquitto": {"mosquitto"},
    "nodered": {"nodered"},
    "telegraf": {"di-light", "di-temp"},
    "grafana": {"grafana"},
    "mongo-express": {"mongo-express"},
    "frontend": {"digital-hosp-frontend"},
    "orchestrator": {"orchestrator-operator", "orchestrator-api"},
    "sensor-simulator": {"sensor-simulator"},
}
# The simulator runs only when a stack asks for it; these tests always do, so every piece is there.
WITH_SIMULATOR = {"sensorSimulator": True, "sensorSimulatorImage": "registry.local/sensor-simulator:1"}
KWOK_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Equal", "value": "fake", "effect": "NoSchedule"}
SIMULATED = ["grafana", "influxdb", "telegraf", "frontend"]


def placement_of(deployment: Recorded) -> tuple[Any, Any]:
    spec = pod_spec(deployment)
    return spec.get("nodeSelector"), spec.get("tolerations")


def by_piece(run: Run) -> dict[str, tuple[Any, Any]]:
    placements: dict[str, tuple[Any, Any]] = {}
    for piece, names in DEPLOYMENTS.items():
        seen = {str(placement_of(run.one("Deployment", n))) for n in names}
        assert len(seen) == 1, piece  # every Deployment of a piece is placed alike
        placements[piece] = placement_of(run.one("Deployment", min(names)))
    return placements


def test_the_table_covers_every_piece_and_every_deployment() -> None:
    assert set(DEPLOYMENTS) == set(PIECES)
    run = build_platform({"ingressController": "none", **WITH_SIMULATOR})
    assert {n for names in DEPLOYMENTS.values() for n in names} == run.names("Deployment")


def test_simulated_pieces_go_to_kwok_nodes_and_the_rest_to_the_real_node() -> None:
    run = build_platform(
        {
            "ingressController": "none",
            "simulatedPieces": SIMULATED,
            "realNodeSelector": "dtpoc.io/node=real",
            **WITH_SIMULATOR,
        }
    )
    for piece, (selector, tolerations) in by_piece(run).items():
        if piece in SIMULATED:
            assert (selector, tolerations) == ({"type": "kwok"}, [KWOK_TOLERATION]), piece
        else:
            assert (selector, tolerations) == ({"dtpoc.io/node": "real"}, None), piece


def test_without_placement_config_no_pod_names_a_node() -> None:
    # What every real cluster gets (dev, prod): the scheduler places the pods, as before.
    for config in ({"ingressController": "none"}, stack_config("dev"), stack_config("prod")):
        run = build_platform(config)
        for deployment in run.kinds("Deployment"):
            spec = pod_spec(deployment)
            assert "nodeSelector" not in spec and "tolerations" not in spec, deployment.k8s_name


def test_simulated_pieces_alone_leave_the_others_to_the_scheduler() -> None:
    run = build_platform({"ingressController": "none", "simulatedPieces": ["grafana"], **WITH_SIMULATOR})
    placements = by_piece(run)
    assert placements.pop("grafana") == ({"type": "kwok"}, [KWOK_TOLERATION])
    assert set(placements.values()) == {(None, None)}


def test_extra_ui_modules_are_placed_as_the_real_pieces() -> None:
    class Whoami(UIModule):
        image = "traefik/whoami:v1.10"
        port = 80

    run = build_platform(
        {"ingressController": "none", "simulatedPieces": SIMULATED, "realNodeSelector": "dtpoc.io/node=real"},
        extra_ui_modules=[Whoami],
    )
    assert placement_of(run.one("Deployment", "whoami")) == ({"dtpoc.io/node": "real"}, None)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"simulatedPieces": ["grafana", "kafka"]},
            "simulatedPieces: unknown piece.*kafka.*the pieces are mongodb",
        ),
        ({"simulatedPieces": "grafana"}, "simulatedPieces must be a list"),
        ({"realNodeSelector": "dtpoc.io/node"}, "a node selector is key=value"),
        ({"realNodeSelector": "dtpoc.io/node=real node"}, "is not a node label selector"),
        ({"realNodeSelector": "-bad-/node=real"}, "is not a node label selector"),
    ],
)
def test_wrong_placement_config_fails_with_a_clear_message(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(config)
