"""NetworkPolicies: MongoDB and InfluxDB admit only their clients; the API and operator only what they serve;
all of it switched by `networkPolicies`."""

from __future__ import annotations

import pytest

from components.network_policy import IngressRule
from services.operator import workloads
from services.operator.settings import OperatorSettings

from .harness import Run

NAME, PART_OF = "app.kubernetes.io/name", "app.kubernetes.io/part-of"
PLATFORM_APP = "platform.dtpoc.eng.cam.ac.uk/app"


def policy(run: Run, name: str) -> dict:
    return run.one("NetworkPolicy", name).inputs["spec"]


def client_labels(spec: dict) -> list[dict[str, str]]:
    (rule,) = spec["ingress"]
    return [peer["podSelector"]["matchLabels"] for peer in rule.get("from") or []]


def admits(spec: dict, pod_labels: dict[str, str]) -> bool:
    """Whether a pod with these labels (same namespace) may connect under the policy."""
    (rule,) = spec["ingress"]
    if not rule.get("from"):
        return True
    return any(all(pod_labels.get(k) == v for k, v in peer.items()) for peer in client_labels(spec))


def pod_labels(run: Run, deployment: str) -> dict[str, str]:
    return run.one("Deployment", deployment).inputs["spec"]["template"]["metadata"]["labels"]


def test_one_policy_per_protected_app(platform: Run) -> None:
    assert platform.names("NetworkPolicy") == {
        "mongodb-ingress",
        "influxdb-ingress",
        "orchestrator-api-ingress",
        "orchestrator-operator-ingress",
        "modules-egress",
    }
    for name, app, port in [
        ("mongodb-ingress", "mongodb", 27017),
        ("influxdb-ingress", "influxdb", 8086),
        ("orchestrator-api-ingress", "orchestrator-api", 8000),
        ("orchestrator-operator-ingress", "orchestrator-operator", 8080),
    ]:
        spec = policy(platform, name)
        assert spec["podSelector"]["matchLabels"] == {NAME: app, PART_OF: "dtpoc", PLATFORM_APP: app}
        assert spec["policyTypes"] == ["Ingress"]
        assert spec["ingress"][0]["ports"] == [{"port": port, "protocol": "TCP"}]
        assert admits(spec, pod_labels(platform, app)) is (name.startswith("orchestrator"))


def test_mongodb_admits_its_clients_and_no_module_pod(platform: Run, tmp_path) -> None:
    spec = policy(platform, "mongodb-ingress")
    clients = {"orchestrator-api", "orchestrator-operator", "mongo-express"}
    for dep in platform.names("Deployment"):
        assert admits(spec, pod_labels(platform, dep)) is (dep in clients), dep
    # The pods of Analytics modules, labelled by the operator's own builder, even one named like a client.
    settings = OperatorSettings(output_root=tmp_path, data_pvc="data")
    for image in ("example.org/m:1", "evil.example/orchestrator-api:1"):
        module = workloads.AnalyticsSpec.parse({"image": image, "jobType": "ondemand", "reps": 1})
        template = workloads.pod_template("669a52d1364a1b751c550d56", module, settings)
        assert not admits(spec, template["metadata"]["labels"]), image
    assert not admits(spec, {PART_OF: "dtpoc", NAME: "orchestrator-api"})


def test_influxdb_admits_telegraf_grafana_and_nodered_only(platform: Run) -> None:
    spec = policy(platform, "influxdb-ingress")
    clients = {"di-light", "di-temp", "grafana", "nodered"}
    for dep in platform.names("Deployment"):
        assert admits(spec, pod_labels(platform, dep)) is (dep in clients), dep


def test_extra_sensors_are_influxdb_clients(build) -> None:
    from .test_telegraf import Co2Sensor

    run = build({"ingressController": "none"}, extra_sensors=[Co2Sensor])
    assert admits(policy(run, "influxdb-ingress"), pod_labels(run, "di-co2"))


def test_switched_off_in_config(build) -> None:
    run = build({"ingressController": "none", "networkPolicies": "false"})
    assert run.kinds("NetworkPolicy") == []


def test_rules_refuse_what_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="non-empty label sets"):
        IngressRule("mongodb", 27017, [])
    with pytest.raises(ValueError, match="port number"):
        IngressRule("mongodb", 0, None)
