"""The whole platform under mocks: every piece, the seed's Service names, labels, namespaces, secrets by
reference only, the ingress controller options, extra modules, and the program's stack outputs."""

from __future__ import annotations

import json
import runpy
from collections import Counter
from pathlib import Path

import pulumi
import pytest

from components.platform import PlatformArgs

from .harness import DOCKER_IMAGE, SECRETS, pushed_ref, run_program
from .k8s import container, env_of, pod_spec, probe, selects, service_ports, volumes_of
from .test_config import load
from .test_telegraf import Co2Sensor
from .test_ui import Whoami

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "CustomResourceDefinition"}

# The seed's Service DNS names and ports (port -> targetPort).
SEED_SERVICES = {
    "mongodb": [(27017, 27017)],
    "influxdb": [(8086, 8086)],
    "mosquitto": [(1883, 1883)],
    "nodered": [(80, 1880)],
    "grafana": [(80, 3000)],
    "mongo-express": [(8081, 8081)],
    "orchestrator-api-svc": [(80, 8000)],
    "digital-hosp-frontend-svc": [(8000, 8000)],
}
DEPLOYMENTS = {
    "mongodb", "influxdb", "mosquitto", "nodered", "di-light", "di-temp", "orchestrator-operator",
    "orchestrator-api", "grafana", "mongo-express", "digital-hosp-frontend",
}  # fmt: skip


def test_every_piece_is_a_component_of_its_own(platform) -> None:
    components = Counter(r.typ for r in platform.resources if not r.custom)
    assert components == {
        "dtpoc:platform:Platform": 1,
        "dtpoc:storage:Storage": 3,
        "dtpoc:mongodb:MongoDB": 1,
        "dtpoc:influxdb:InfluxDB": 1,
        "dtpoc:mosquitto:Mosquitto": 1,
        "dtpoc:nodered:NodeRed": 1,
        "dtpoc:telegraf:LightSensor": 1,
        "dtpoc:telegraf:TempSensor": 1,
        "dtpoc:images:ServiceImages": 1,
        "dtpoc:orchestrator:Orchestrator": 1,
        "dtpoc:orchestrator:AnalyticsCrd": 1,
        "dtpoc:rbac:ServiceAccountRbac": 2,
        "dtpoc:ui:Grafana": 1,
        "dtpoc:ui:MongoExpress": 1,
        "dtpoc:ui:DigitalHospFrontend": 1,
        "dtpoc:network_policy:NetworkPolicies": 1,
        "dtpoc:namespace:NamespaceGuards": 1,
    }
    assert platform.names("Deployment") == DEPLOYMENTS
    assert platform.names("PersistentVolumeClaim") == {"mongodb-data", "influxdb-data", "orchestrator-data"}
    assert platform.names("Secret") == {
        "mongodb-credentials",
        "influxdb-credentials",
        "grafana-influxdb-reader",
        "grafana-admin",
        "nodered-admin",
        "mosquitto-publisher",
        "orchestrator-api-token",
        "orchestrator-api-read-token",
    }
    assert platform.names("Namespace") == {"dtpoc"}


def test_seed_service_names_and_ports(platform) -> None:
    assert platform.names("Service") == set(SEED_SERVICES)
    deployments = platform.kinds("Deployment")
    for name, ports in SEED_SERVICES.items():
        svc = platform.one("Service", name)
        assert service_ports(svc) == ports, name
        assert [d.k8s_name for d in deployments if selects(svc, d)] != [], f"{name} selects no Deployment"
        assert len([d for d in deployments if selects(svc, d)]) == 1, f"{name} selects several Deployments"


def test_recommended_labels_and_namespaces_everywhere(platform) -> None:
    objects = [r for r in platform.k8s_objects() if "metadata" in r.inputs]
    assert len(objects) > 40
    for r in objects:
        labels = r.metadata.get("labels") or {}
        assert labels.get("app.kubernetes.io/part-of") == "dtpoc", r.name
        assert labels.get("app.kubernetes.io/managed-by") == "pulumi", r.name
        assert labels.get("app.kubernetes.io/name"), r.name
        assert labels.get("app.kubernetes.io/component"), r.name
        assert r.k8s_name, f"{r.name} has no explicit metadata.name"
        if r.kind in CLUSTER_SCOPED:
            assert "namespace" not in r.metadata, r.name
        else:
            assert r.metadata.get("namespace") == "dtpoc", r.name
    for dep in platform.kinds("Deployment"):
        template_labels = dep.inputs["spec"]["template"]["metadata"]["labels"]
        assert template_labels == dep.metadata["labels"], dep.k8s_name


def test_every_workload_has_resources_probes_and_a_safe_context(platform) -> None:
    for dep in platform.kinds("Deployment"):
        spec = pod_spec(dep)
        for c in [*spec["containers"], *(spec.get("initContainers") or [])]:
            assert set(c["resources"]["requests"]) == set(c["resources"]["limits"]) == {"cpu", "memory"}
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, dep.k8s_name
            assert c["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert probe(container(dep), "livenessProbe") is not None, dep.k8s_name
        served = any(selects(svc, dep) for svc in platform.kinds("Service"))
        if served:
            assert probe(container(dep), "readinessProbe") is not None, dep.k8s_name
        # No pod gets a service account token by default; the two that call the Kubernetes API name it.
        assert spec["automountServiceAccountToken"] is False, dep.k8s_name
        needs_token = dep.k8s_name in ("orchestrator-operator", "orchestrator-api")
        assert ("kube-api-access" in volumes_of(dep)) is needs_token, dep.k8s_name


def test_secrets_reach_pods_only_by_reference(platform) -> None:
    secrets = {s.k8s_name: s for s in platform.kinds("Secret")}
    for value in SECRETS.values():
        holders = [r for r in platform.resources if value in r.dumps()]
        assert holders, "the secret value should be in its Secret"
        assert {r.kind for r in holders} == {"Secret"}, [r.name for r in holders]
        assert all(r.has_secret for r in holders)  # and marked secret there
    refs = 0
    for dep in platform.kinds("Deployment"):
        for c in [*pod_spec(dep)["containers"], *(pod_spec(dep).get("initContainers") or [])]:
            for value in env_of(c).values():
                if isinstance(value, tuple) and value[0] == "secret":
                    _, name, key = value
                    assert key in secrets[name].inputs["stringData"], (dep.k8s_name, name, key)
                    refs += 1
        for volume in volumes_of(dep).values():
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets, (dep.k8s_name, volume)
                refs += 1
    # env: mongodb 2, influxdb 5, telegraf 2, grafana 4, mongo-express 4, nodered 2, mosquitto's init 2,
    # frontend 1; files: operator 1, api 3
    assert refs == 26


def test_host_path_storage_like_the_seed(platform) -> None:
    pvs = {pv.k8s_name: pv.inputs["spec"] for pv in platform.kinds("PersistentVolume")}
    assert {name: spec["hostPath"]["path"] for name, spec in pvs.items()} == {
        "dtpoc-mongodb-data": "/var/lib/dtpoc/mongodb_data",
        "dtpoc-influxdb-data": "/var/lib/dtpoc/influxdb_data",
        "dtpoc-orchestrator-data": "/var/lib/dtpoc/orchestrator_data",
    }
    assert (
        pod_spec(platform.one("Deployment", "orchestrator-operator"))["initContainers"][0]["name"]
        == "data-owner"
    )


def test_dynamic_storage(build) -> None:
    run = build({"storageMode": "dynamic", "storageClass": "standard-rwo", "ingressController": "external"})
    assert run.kinds("PersistentVolume") == []
    for pvc in run.kinds("PersistentVolumeClaim"):
        assert pvc.inputs["spec"]["storageClassName"] == "standard-rwo"
    assert "initContainers" not in pod_spec(run.one("Deployment", "orchestrator-operator"))


def ingress_annotations(run) -> dict[str, dict]:
    return {i.k8s_name: i.metadata.get("annotations") or {} for i in run.kinds("Ingress")}


def test_no_ingress_controller_means_no_await_on_ingresses(platform) -> None:
    annotations = ingress_annotations(platform)
    assert set(annotations) == {
        "grafana-ingress",
        "digital-hosp-frontend-ingress",
        "orchestrator-api-ingress",
    }
    assert all(a.get("pulumi.com/skipAwait") == "true" for a in annotations.values())
    assert platform.of_type("kubernetes:helm.sh/v3:Release") == []


def test_installed_ingress_nginx(build) -> None:
    run = build({"ingressController": "install", "ingressHost": "dtpoc.example.org"})
    (release,) = run.of_type("kubernetes:helm.sh/v3:Release")
    inputs = release.inputs
    assert (inputs["chart"], inputs["version"]) == ("ingress-nginx", "4.12.1")  # CVE-2025-1974 fixed
    assert inputs["repositoryOpts"] == {"repo": "https://kubernetes.github.io/ingress-nginx"}
    assert inputs["values"]["controller"]["replicaCount"] == 1
    assert inputs["namespace"] == "ingress-nginx" and inputs["createNamespace"] is True
    assert all("pulumi.com/skipAwait" not in a for a in ingress_annotations(run).values())
    hosts = {i.inputs["spec"]["rules"][0]["host"] for i in run.kinds("Ingress")}
    assert hosts == {"dtpoc.example.org"}


def test_external_ingress_controller(build) -> None:
    run = build({"ingressController": "external", "ingressClass": "traefik"})
    assert run.of_type("kubernetes:helm.sh/v3:Release") == []
    assert {i.inputs["spec"]["ingressClassName"] for i in run.kinds("Ingress")} == {"traefik"}
    assert (
        env_of(container(run.one("Deployment", "orchestrator-operator")))["OPERATOR_INGRESS_CLASS"]
        == "traefik"
    )


def test_public_broker_option(build) -> None:
    run = build({"ingressController": "none", "mqttBrokerUrl": "tcp://test.mosquitto.org:1883"})
    for sensor in ("light", "temp"):
        conf = run.one("ConfigMap", f"di-{sensor}-config").inputs["data"]["telegraf.conf"]
        assert 'servers = ["tcp://test.mosquitto.org:1883"]' in conf


def test_image_build_through_config(build) -> None:
    """The Deployments run what the builds answer: each container's image is its DockerImage's `ref`."""
    run = build(
        {
            "ingressController": "none",
            "buildImages": "true",
            "imageRegistry": "ghcr.io/org",
            "imageTag": "7",
            "pushImages": "true",
        }
    )
    images = {r.name: r for r in run.of_type(DOCKER_IMAGE)}
    assert set(images) == {"dtpoc-images-operator", "dtpoc-images-api"}
    for service in ("operator", "api"):
        image = images[f"dtpoc-images-{service}"]
        assert image.inputs["tag"].startswith(f"ghcr.io/org/dtpoc-{service}:")
        deployment = run.one("Deployment", f"orchestrator-{service}")
        # Each Deployment runs what the images component answered, and that is the build's output.
        assert container(deployment)["image"] == run.outputs["images"][service]
        assert container(deployment)["image"] == pushed_ref(image.inputs["tag"])
        assert run.waits_for(deployment, DOCKER_IMAGE)  # the image's output is an input of the Deployment


def test_local_builds_through_config(build) -> None:
    run = build(
        {
            "ingressController": "none",
            "buildImages": "true",
            "builtImages": ["api"],
            "imageRegistry": "localhost",
            "dockerHost": "unix:///tmp/dtpoc-ab/docker.sock",
            "imageContainerdAddress": "/tmp/dtpoc-cd/containerd.sock",
            "pythonBaseImage": "localhost/dtpoc-base:bookworm-py311-0123",
            "operatorImage": "ghcr.io/org/op:1",
        }
    )
    (api,) = run.of_type(DOCKER_IMAGE)
    assert api.inputs["containerdAddress"] == "/tmp/dtpoc-cd/containerd.sock"
    assert api.inputs["buildArgs"] == {"BASE": "localhost/dtpoc-base:bookworm-py311-0123"}
    assert container(run.one("Deployment", "orchestrator-api"))["image"] == api.inputs["tag"]
    assert container(run.one("Deployment", "orchestrator-operator"))["image"] == "ghcr.io/org/op:1"


def test_extra_modules_by_subclassing(build) -> None:
    run = build({"ingressController": "none"}, extra_ui_modules=(Whoami,), extra_sensors=(Co2Sensor,))
    assert {"whoami", "di-co2"} <= run.names("Deployment")
    assert "whoami-ingress" in run.names("Ingress")
    env = env_of(container(run.one("Deployment", "di-co2")))
    assert env == {"INFLUX_TOKEN": ("secret", "influxdb-credentials", "token")}


def test_platform_args_refuse_what_cannot_be_built() -> None:
    config = load()
    with pytest.raises(ValueError, match="not a UIModule subclass"):
        PlatformArgs(config=config, extra_ui_modules=(object,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unique"):
        PlatformArgs(config=config, extra_sensors=(Co2Sensor, Co2Sensor))
    # The same sensor from the stack's sensorClasses and from the program is one too many.
    with_co2 = load({"sensorClasses": json.dumps(["examples.co2_sensor:Co2Sensor"])})
    with pytest.raises(ValueError, match="unique"):
        PlatformArgs(config=with_co2, extra_sensors=(Co2Sensor,))


def test_the_program_exports_urls_namespace_and_service_names() -> None:
    def program():
        runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
        return pulumi.runtime.settings.get_root_resource()

    run = run_program(
        program,
        {"ingressController": "none", "ingressHost": "dt.example.org"},
        resolve_result=lambda stack: stack.outputs,
    )
    out = json.loads(json.dumps(run.outputs))
    assert out["namespace"] == "dtpoc"
    assert out["urls"] == {
        "frontend": "http://dt.example.org/",
        "api": "http://dt.example.org/api/orchestrator/v1alpha1",
        "grafana": "http://dt.example.org/grafana",
    }
    assert out["services"] == {
        "mongodb": "mongodb",
        "influxdb": "influxdb",
        "mosquitto": "mosquitto",
        "nodered": "nodered",
        "orchestrator-api": "orchestrator-api-svc",
        "grafana": "grafana",
        "mongo-express": "mongo-express",
        "digital-hosp-frontend": "digital-hosp-frontend-svc",
    }
    assert out["crd"] == "analytics.eng.cam.ac.uk"
    assert out["apiTokenSecret"] == "orchestrator-api-token"
    assert out["apiReadTokenSecret"] == "orchestrator-api-read-token"
    assert out["images"] == {
        "operator": "ghcr.io/cam-digital-hospitals/dtpoc-operator:0.1.0",
        "api": "ghcr.io/cam-digital-hospitals/dtpoc-api:0.1.0",
    }


def test_creation_order(build) -> None:
    """Namespaced objects wait for the namespace, the control plane for the CRD, Ingresses for the
    controller the program installs (its admission webhook checks them)."""
    run = build({"ingressController": "install"})
    for r in run.k8s_objects():
        if r.kind not in CLUSTER_SCOPED and r.typ != "kubernetes:helm.sh/v3:Release":
            assert run.waits_for(r, "kubernetes:core/v1:Namespace"), r.name
    for name in ("orchestrator-operator", "orchestrator-api"):
        dep = run.one("Deployment", name)
        assert run.waits_for(dep, "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"), name
    for ing in run.kinds("Ingress"):
        assert run.waits_for(ing, "kubernetes:helm.sh/v3:Release"), ing.name
    # ... but only the Ingresses: the rest does not wait for the controller's Helm release.
    assert not run.waits_for(run.one("Deployment", "mongodb"), "kubernetes:helm.sh/v3:Release")
    assert not run.waits_for(run.one("Deployment", "orchestrator-api"), "kubernetes:helm.sh/v3:Release")
