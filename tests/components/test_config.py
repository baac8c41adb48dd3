"""PlatformConfig: every key declared in Pulumi.yaml with the same default, the stack files load and build,
and wrong or missing values fail with a message that names the key and the fix."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.config import (
    REQUIRED_SECRETS,
    ConfigError,
    MissingSecretError,
    PlatformConfig,
    stack_solution_names,
)

from .conftest import build_platform
from .harness import DOCKER_IMAGE, SECRETS, pushed_ref, run_program
from .k8s import container, env_of, volumes_of

REPO = Path(__file__).resolve().parents[2]
PROJECT_CONFIG = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["config"]


class SpyConfig(pulumi.Config):
    """Records which keys the program reads, and how."""

    def __init__(self) -> None:
        super().__init__("dtpoc")
        self.plain: list[str] = []
        self.secret: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.plain.append(key)
        return super().get(key, default)

    def get_secret(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.secret.append(key)
        return super().get_secret(key, default)

    def require_secret(self, key: str) -> Any:  # type: ignore[override]
        self.secret.append(key)
        return super().require_secret(key)


def plain(cfg: PlatformConfig) -> dict[str, Any]:
    """The settings without the secret Outputs (which never compare equal)."""
    return {
        f.name: getattr(cfg, f.name)
        for f in fields(cfg)
        if not isinstance(getattr(cfg, f.name), pulumi.Output)
    }


def load(config: dict[str, Any] | None = None, secrets: dict[str, str] | None = None) -> PlatformConfig:
    return run_program(PlatformConfig.load, config, secrets=secrets).result


def test_every_key_is_declared_in_pulumi_yaml_with_the_programs_default() -> None:
    spy = SpyConfig()
    cfg = run_program(lambda: PlatformConfig.load(spy)).result
    assert set(spy.plain) == set(PROJECT_CONFIG)
    secret_fields = {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.default is MISSING}
    defaults = PlatformConfig(**secret_fields)
    assert cfg == defaults  # nothing set: every value is the dataclass's default
    types = {"string": str, "boolean": bool, "integer": int, "array": list}
    for key, declaration in PROJECT_CONFIG.items():
        assert declaration.get("description"), key
        assert isinstance(declaration["default"], types[declaration["type"]]), key
    # The defaults in Pulumi.yaml are the program's defaults.
    declared = load({k: d["default"] for k, d in PROJECT_CONFIG.items()})
    assert plain(declared) == plain(cfg)
    # Secrets are documented (not declared: a declared key without default is required by the CLI).
    assert set(spy.secret) == {k for k, _, _ in REQUIRED_SECRETS} | {"registryPassword"}
    text = (REPO / "Pulumi.yaml").read_text()
    for key in spy.secret:
        assert f"pulumi config set --secret {key} <value>" in text


@pytest.mark.parametrize("key", [k for k, _, _ in REQUIRED_SECRETS])
def test_a_missing_secret_names_the_command_that_sets_it(key: str) -> None:
    secrets = {k: v for k, v in SECRETS.items() if k != key}
    with pytest.raises(MissingSecretError, match=f"pulumi config set --secret {key} <value>"):
        load(secrets=secrets)


def test_a_short_secret_is_refused_with_the_command() -> None:
    with pytest.raises(
        ConfigError, match=r"apiToken is shorter than 16.*pulumi config set --secret apiToken"
    ):
        load(secrets={**SECRETS, "apiToken": "short"})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"storageMode": "nfs"}, "storageMode must be one of hostPath, dynamic"),
        ({"ingressController": "traefik"}, "ingressController must be one of install, external, none"),
        ({"namespace": "Dt_Poc"}, "namespace must be a DNS label"),
        ({"namespace": "default"}, "createNamespace"),
        ({"createNamespace": "yes"}, "createNamespace must be true or false"),
        ({"apiMaxUploadBytes": "lots"}, "apiMaxUploadBytes must be an integer"),
        ({"apiMaxUploadBytes": 0}, "apiMaxUploadBytes must be between"),
        ({"apiCorsOrigins": "https://a.example"}, "apiCorsOrigins must be a list"),
        ({"apiCorsOrigins": ["a.example"]}, "not an http"),
        ({"mqttBrokerUrl": "mosquitto:1883"}, "mqttBrokerUrl must look like tcp://"),
        ({"dataRoot": "data"}, "dataRoot must be an absolute path"),
        ({"mongodbStorageSize": "10GB"}, "mongodbStorageSize must be a size"),
        (
            {"storageMode": "dynamic", "nodeAffinityKey": "kubernetes.io/hostname"},
            "only applies to storageMode",
        ),
        ({"nodeAffinityKey": "kubernetes.io/hostname"}, "nodeAffinityValues"),
        ({"ingressHost": "https://dt.example.org"}, "ingressHost must be a DNS host name"),
        ({"moduleImagePullPolicy": "never"}, "moduleImagePullPolicy must be one of Always, IfNotPresent"),
        ({"buildImages": True, "pushImages": True}, "pushImages needs imageRegistry"),
        ({"registryUsername": "bot"}, "pulumi config set --secret registryPassword"),
        ({"apiImage": "Not An Image"}, "apiImage must be an image reference"),
        (
            {"buildImages": True, "builtImages": ["api", "grafana"]},
            r"builtImages: unknown images \['grafana'\]",
        ),
        (
            {
                "buildImages": True,
                "pushImages": True,
                "imageRegistry": "r.example/o",
                "imageContainerdAddress": "/run/c.sock",
            },
            "exclude each other",
        ),
        ({"buildImages": True, "imageBuildNetwork": "host net"}, "imageBuildNetwork"),
        ({"buildImages": True, "dockerHost": "/var/run/docker.sock"}, "dockerHost must be a Docker address"),
        ({"buildImages": True, "pythonBaseImage": "Debian 12"}, "pythonBaseImage must be an image reference"),
        ({"buildImages": True, "imageTag": "1.0 final"}, "not a valid image tag"),
        ({"buildImages": True, "imageTag": "latest"}, "latest moves"),
        ({"ingressClass": "Nginx!"}, "ingressClass"),
    ],
)
def test_wrong_values_fail_with_a_clear_message(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(config)


def test_existing_namespace_without_creating_it() -> None:
    run = build_platform({"namespace": "default", "createNamespace": False, "ingressController": "none"})
    assert run.kinds("Namespace") == []
    assert {r.metadata.get("namespace") for r in run.kinds("Deployment")} == {"default"}


def stack_config(stack: str) -> dict[str, Any]:
    raw = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert all(k.startswith("dtpoc:") for k in raw), stack
    return {k.removeprefix("dtpoc:"): v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def test_local_stack() -> None:
    run = build_platform(stack_config("local"))
    assert run.of_type("kubernetes:helm.sh/v3:Release") == []
    assert run.of_type(DOCKER_IMAGE) == []
    assert all(i.metadata["annotations"]["pulumi.com/skipAwait"] == "true" for i in run.kinds("Ingress"))
    assert {pv.inputs["spec"]["capacity"]["storage"] for pv in run.kinds("PersistentVolume")} == {"1Gi"}
    assert all("nodeAffinity" not in pv.inputs["spec"] for pv in run.kinds("PersistentVolume"))
    assert container(run.one("Deployment", "orchestrator-api"))["image"] == "localhost:5000/dtpoc-api:local"


def test_dev_stack_is_like_the_seed() -> None:
    run = build_platform(stack_config("dev"))
    assert len(run.of_type("kubernetes:helm.sh/v3:Release")) == 1
    for pv in run.kinds("PersistentVolume"):
        term = pv.inputs["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
        assert term == {"key": "kubernetes.io/hostname", "operator": "In", "values": ["docker-desktop"]}
    images = {i.inputs["repository"]: i.inputs for i in run.of_type(DOCKER_IMAGE)}
    assert set(images) == {"dtpoc-operator", "dtpoc-api"}  # left in Docker Desktop's engine
    for image in images.values():
        assert image["extraTags"] == ["dev"]
        assert image["push"] is False and image["containerdAddress"] == ""
        assert "BASE" not in image["buildArgs"]  # the Dockerfiles' public python:3.11-slim
    api = container(run.one("Deployment", "orchestrator-api"))["image"]
    assert api == images["dtpoc-api"]["tag"]
    assert {i.inputs["spec"]["rules"][0]["host"] for i in run.kinds("Ingress")} == {"localhost"}


def test_prod_stack_uses_a_storage_class_and_a_registry() -> None:
    run = build_platform(stack_config("prod"))
    assert run.kinds("PersistentVolume") == []
    assert {p.inputs["spec"]["storageClassName"] for p in run.kinds("PersistentVolumeClaim")} == {
        "standard-rwo"
    }
    assert run.of_type("kubernetes:helm.sh/v3:Release") == []  # the cluster's own controller
    images = {i.inputs["repository"]: i.inputs for i in run.of_type(DOCKER_IMAGE)}
    assert all(i["push"] is True and i["extraTags"] == ["1.0.0"] for i in images.values())
    api = container(run.one("Deployment", "orchestrator-api"))
    # The Deployment runs what the images component answered, and that is the pushed build's output.
    assert api["image"] == run.outputs["images"]["api"]
    assert api["image"] == pushed_ref(images["ghcr.io/cam-digital-hospitals/dtpoc-api"]["tag"])
    assert env_of(api)["API_MAX_UPLOAD_BYTES"] == "1073741824"
    assert "claimName" in volumes_of(run.one("Deployment", "mongodb"))["data"]["persistentVolumeClaim"]


STACK_SECRETS = {
    "mongodbPassword": "stack-mongo-Pa55word",
    "influxdbPassword": "stack-influx-Pa55word",
    "influxdbToken": "stack-influx-token-0123456789abcdef",
    "apiToken": "stack-api-token-0123456789abcdef",
    "apiReadToken": "stack-api-read-token-0123456789abcdef",
    "grafanaAdminPassword": "stack-grafana-Pa55word",
    "noderedAdminPassword": "stack-nodered-Pa55word",
    "mqttPassword": "stack-mqtt-Pa55word",
    "registryPassword": "stack-registry-Pa55word",
}
STACK_SOLUTION_TOKENS = {
    "lab": {"admin": "stack-lab-admin-token-0123456789", "read": "stack-lab-read-token-012345"}
}


@pytest.mark.parametrize("stack", ["local", "dev", "prod"])
def test_no_configured_secret_outside_secret_objects(stack: str) -> None:
    # prod pushes its images: log in to the registry with a password, so that one is covered too.
    config = {**stack_config(stack), **({"registryUsername": "ci-bot"} if stack == "prod" else {})}
    run = build_platform(
        config, secrets={**STACK_SECRETS, "solutionTokens": json.dumps(STACK_SOLUTION_TOKENS)}
    )
    tokens = {
        f"solutionTokens.{name}.{which}": value
        for name in stack_solution_names(REPO / f"Pulumi.{stack}.yaml")
        for which, value in STACK_SOLUTION_TOKENS[name].items()
    }
    for key, value in {**STACK_SECRETS, **tokens}.items():
        holders = [r for r in run.resources if value in r.dumps()]
        kubernetes = [r for r in holders if r.typ.startswith("kubernetes:")]
        assert {r.kind for r in kubernetes} <= {"Secret"}, (stack, key, [r.name for r in kubernetes])
        assert all(r.has_secret for r in holders), (stack, key)  # marked secret wherever it goes
        if key != "registryPassword":
            assert kubernetes, (stack, key)  # the value does reach its Secret
    registry_holders = [r.typ for r in run.resources if STACK_SECRETS["registryPassword"] in r.dumps()]
    assert registry_holders == ([DOCKER_IMAGE] * 2 if stack == "prod" else [])
