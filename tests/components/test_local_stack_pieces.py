"""The local stack's pieces: what it can build runs on the real node (the database as FerretDB from its own
image), the rest stays on kwok's simulated nodes (Pulumi.local.yaml)."""

from __future__ import annotations

from components.common import KWOK_NODE, Placement
from components.mongodb import MongoDBEngine

from .conftest import build_platform
from .k8s import container
from .test_config import load, stack_config
from .test_placement import by_piece


def test_the_local_stack_runs_what_it_can_build_on_the_real_node() -> None:
    cfg = load(stack_config("local"))
    assert set(cfg.simulated_pieces) == {"grafana", "frontend", "mongo-express"}
    assert cfg.placement("mongodb") == Placement({"dtpoc.io/node": "real"})
    assert cfg.placement("grafana") == KWOK_NODE
    placements = by_piece(build_platform(stack_config("local")))
    assert {p for p, (selector, _) in placements.items() if selector == {"type": "kwok"}} == set(
        cfg.simulated_pieces
    )
    assert {p for p, (selector, _) in placements.items() if selector == {"dtpoc.io/node": "real"}} == {
        "mongodb",
        "mosquitto",
        "orchestrator",
        # The sensor data path (issue: it runs for real), with the simulator publishing to it.
        "influxdb",
        "telegraf",
        "nodered",
        "sensor-simulator",
    }


def test_the_local_stack_runs_ferretdb_from_its_own_images() -> None:
    cfg = load(stack_config("local"))
    assert cfg.mongodb_engine is MongoDBEngine.FERRETDB
    run = build_platform(stack_config("local"))
    images = {d.k8s_name: container(d)["image"] for d in run.kinds("Deployment")}
    assert images["mongodb"] == "localhost:5000/dtpoc-ferretdb:1.24.2"
    assert images["mosquitto"] == "localhost:5000/dtpoc-mosquitto:2.0.11"
    assert images["influxdb"] == "localhost:5000/dtpoc-influxdb:2.7.12"
    assert {images[f"di-{sensor}"] for sensor in ("light", "temp", "co2")} == {
        "localhost:5000/dtpoc-telegraf:1.37.2"
    }
    assert images["sensor-simulator"] == "localhost:5000/dtpoc-sensor-simulator:local"
    assert images["nodered"] == "localhost:5000/dtpoc-node-red:4.1.15"
    assert images["mongo-express"] == "localhost:5000/dtpoc-mongo-express:1.0.0"
