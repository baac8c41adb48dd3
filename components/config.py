"""The platform's configuration: read once from the stack (`pulumi config`), typed and validated up front.

Every key is declared in Pulumi.yaml with its type, default and description; this module holds the same
defaults so that a key left out of a stack file behaves the same under `pulumi up` and under unit tests.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import pulumi
import yaml

from services.shared.solutions import DEFAULT_SOLUTION, check_solution_name

from .common import KWOK_NODE, Placement, check_dns_label
from .images import (
    DEFAULT_API_IMAGE,
    DEFAULT_OPERATOR_IMAGE,
    IMAGES,
    ImageBuildSettings,
    check_image_ref,
)
from .influxdb import InfluxDBArgs
from .mongodb import MongoDBEngine
from .mosquitto import MosquittoArgs
from .nodered import NodeRedArgs
from .storage import StorageMode
from .telegraf import IN_CLUSTER_BROKER, SensorInputArgs, check_broker_url, load_sensor_class
from .ui import DigitalHospFrontend, MongoExpress

PROJECT = "dtpoc"
DEFAULT_HOSTPATH_CLASS = "dtpoc-hostpath"
_HOST = re.compile(r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(Ki|Mi|Gi|Ti)$")
_NETWORK = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")

# Secret keys: (config key, minimum length, what it is). InfluxDB's setup refuses passwords under 8 chars.
REQUIRED_SECRETS: tuple[tuple[str, int, str], ...] = (
    ("mongodbPassword", 8, "MongoDB root password"),
    ("influxdbPassword", 8, "InfluxDB admin password"),
    ("influxdbToken", 16, "InfluxDB admin token (Telegraf writes with it)"),
    ("apiToken", 16, "admin bearer token of the orchestrator API (reads and changes)"),
    ("apiReadToken", 16, "read-only bearer token of the orchestrator API (the frontend's)"),
    ("grafanaAdminPassword", 8, "Grafana's admin password (user admin)"),
    ("noderedAdminPassword", 8, "Node-RED editor's admin password (user admin)"),
    ("mqttPassword", 8, "password of the MQTT user that may publish (mqttUsername)"),
)
_MQTT_USER = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_CPU = re.compile(r"^[0-9]+(\.[0-9]+)?m?$")


# The platform's pieces as `simulatedPieces` names them ("telegraf": every sensor input; "orchestrator": the
# operator and the API).
PIECES = (
    "mongodb",
    "influxdb",
    "mosquitto",
    "nodered",
    "telegraf",
    "grafana",
    "mongo-express",
    "frontend",
    "orchestrator",
    "sensor-simulator",
)

# Kubernetes' imagePullPolicy values (config moduleImagePullPolicy).
PULL_POLICIES = ("Always", "IfNotPresent", "Never")


class IngressController(StrEnum):
    INSTALL = "install"  # the program installs ingress-nginx
    EXTERNAL = "external"  # the cluster has a controller for `ingressClass` already
    NONE = "none"  # no controller: Ingress objects are made but nothing serves them (local kwok cluster)


class ConfigError(ValueError, pulumi.RunError):
    """A configuration value is missing or wrong; the message says which key and how to fix it (a RunError:
    the CLI shows the message without a Python traceback)."""


class MissingSecretError(ConfigError):
    pass


def set_secret_hint(key: str) -> str:
    return f"pulumi config set --secret {key} <value>"


@dataclass(frozen=True)
class SolutionQuota:
    """What all of one solution's pods may take together (ResourceQuota: requests and limits alike)."""

    cpu: str
    memory: str
    pods: int

    def check(self, where: str) -> None:
        if self.pods < 1 or not _CPU.match(self.cpu) or not _QUANTITY.match(self.memory):
            raise ConfigError(
                f"{where}.quota: pods must be >= 1, cpu a CPU quantity (4, 500m), memory a size (8Gi); "
                f"got pods={self.pods!r}, cpu={self.cpu!r}, memory={self.memory!r}"
            )


@dataclass(frozen=True)
class ContainerDefaults:
    """LimitRange defaults for a container that names no resources (a module image launched without any):
    without them a quota on requests and limits would refuse such a pod."""

    cpu: str = "500m"
    memory: str = "512Mi"
    cpu_request: str = "50m"
    memory_request: str = "64Mi"

    def check(self, where: str) -> None:
        for key, value, pattern in (
            ("cpu", self.cpu, _CPU),
            ("cpuRequest", self.cpu_request, _CPU),
            ("memory", self.memory, _QUANTITY),
            ("memoryRequest", self.memory_request, _QUANTITY),
        ):
            if not pattern.match(value):
                raise ConfigError(f"{where}.defaults.{key}: a quantity such as 500m or 512Mi, got {value!r}")


@dataclass(frozen=True)
class SolutionConfig:
    """One entry of `solutions`: a DT solution's namespace (`<platform namespace>-<name>`), its quota and
    container defaults, its data volume's size, and its admin and read API tokens (secret config
    `solutionTokens.<name>.admin` / `.read`)."""

    name: str
    namespace: str
    quota: SolutionQuota
    admin_token: pulumi.Output[str]
    read_token: pulumi.Output[str]
    defaults: ContainerDefaults = ContainerDefaults()
    storage_size: str = "10Gi"


def solution_namespace(platform_namespace: str, name: str) -> str:
    """Where solution `name` lives: the platform's namespace with the solution's name appended."""
    return f"{platform_namespace}-{name}"


def solution_token_hint(name: str, which: str) -> str:
    return f"pulumi config set --secret --path 'solutionTokens.{name}.{which}' <value>"


@dataclass(frozen=True)
class PlatformConfig:
    """One stack's settings. Secrets are Pulumi secret Outputs and never plain strings."""

    mongodb_password: pulumi.Output[str]
    influxdb_password: pulumi.Output[str]
    influxdb_token: pulumi.Output[str]
    api_token: pulumi.Output[str]
    api_read_token: pulumi.Output[str]
    grafana_admin_password: pulumi.Output[str]
    nodered_admin_password: pulumi.Output[str]
    mqtt_password: pulumi.Output[str]
    namespace: str = "dtpoc"
    create_namespace: bool = True
    storage_mode: StorageMode = StorageMode.HOST_PATH
    data_root: str = "/var/lib/dtpoc"
    storage_class: str = ""
    node_affinity_key: str = ""
    node_affinity_operator: str = "In"
    node_affinity_values: tuple[str, ...] = ()
    mongodb_storage_size: str = "10Gi"
    influxdb_storage_size: str = "10Gi"
    orchestrator_storage_size: str = "10Gi"
    ingress_controller: IngressController = IngressController.INSTALL
    ingress_class: str = "nginx"
    ingress_host: str = ""
    mqtt_broker_url: str = IN_CLUSTER_BROKER
    build_images: bool = False
    built_images: tuple[str, ...] = ("operator", "api")
    image_registry: str = ""
    image_tag: str = ""
    push_images: bool = False
    docker_host: str = ""
    docker_cli: str = "docker"
    image_build_network: str = ""
    image_containerd_address: str = ""
    python_base_image: str = ""
    node_base_image: str = ""
    image_contexts: tuple[
        tuple[str, str], ...
    ] = ()  # (image key, folder): builds whose context is no repo folder
    registry_username: str = ""
    registry_password: pulumi.Output[str] | None = None
    operator_image: str = DEFAULT_OPERATOR_IMAGE
    api_image: str = DEFAULT_API_IMAGE
    frontend_image: str = DigitalHospFrontend.image
    mongodb_username: str = "root"
    influxdb_username: str = "admin"
    influxdb_org: str = "camdt"
    influxdb_bucket: str = "default"
    api_max_upload_bytes: int = 100 * 1024 * 1024
    api_cors_origins: tuple[str, ...] = field(default_factory=tuple)
    network_policies: bool = True
    mongodb_engine: MongoDBEngine = MongoDBEngine.MONGODB
    mongodb_image: str = ""
    mosquitto_image: str = MosquittoArgs.image
    influxdb_image: str = InfluxDBArgs.image
    telegraf_image: str = SensorInputArgs.image
    nodered_image: str = NodeRedArgs.image
    mongo_express_image: str = MongoExpress.image
    simulated_pieces: tuple[str, ...] = ()
    real_node_selector: str = ""
    tls_secret_name: str = ""
    tls_self_signed: bool = False
    module_host: str = ""
    module_egress_cidrs: tuple[str, ...] = field(default_factory=tuple)
    grafana_anonymous: bool = False
    # Sensor inputs besides the seed's, as `package.module:ClassName` of SensorInput subclasses.
    sensor_classes: tuple[str, ...] = ()
    # A Deployment publishing simulated readings of the sensors it knows (light, temp, co2).
    sensor_simulator: bool = False
    sensor_simulator_image: str = ""  # there is no public image: the program builds it (simulators/sensors)
    mqtt_username: str = "publisher"
    quota_pods: int = 100
    quota_cpu: str = "64"
    quota_memory: str = "128Gi"
    output_max_files: int = 1000
    output_max_bytes: int = 1024**3
    output_max_depth: int = 16
    module_image_pull_policy: str = ""
    # DT solutions besides the platform's own namespace (the default solution), and the removed ones whose
    # namespace `pulumi up` may delete although services still run there.
    solutions: tuple[SolutionConfig, ...] = ()
    solutions_force_removal: tuple[str, ...] = ()
    # Persistent modules of a solution admit connections from this namespace's pods only.
    ingress_controller_namespace: str = "ingress-nginx"

    def __post_init__(self) -> None:
        _check(lambda: check_dns_label(self.namespace, "namespace"))
        if self.create_namespace and self.namespace in (
            "default",
            "kube-system",
            "kube-public",
            "kube-node-lease",
        ):
            raise ConfigError(
                f"namespace {self.namespace!r} exists in every cluster: set `createNamespace` to false "
                f"(pulumi config set createNamespace false) or choose another namespace"
            )
        object.__setattr__(self, "storage_mode", _enum(StorageMode, self.storage_mode, "storageMode"))
        object.__setattr__(
            self, "ingress_controller", _enum(IngressController, self.ingress_controller, "ingressController")
        )
        object.__setattr__(self, "mongodb_engine", _enum(MongoDBEngine, self.mongodb_engine, "mongodbEngine"))
        if self.storage_mode is StorageMode.HOST_PATH and not self.data_root.startswith("/"):
            raise ConfigError(f"dataRoot must be an absolute path on the node, got {self.data_root!r}")
        if self.node_affinity_key and self.storage_mode is not StorageMode.HOST_PATH:
            raise ConfigError(
                "nodeAffinityKey only applies to storageMode hostPath (a dynamic volume's class places it)"
            )
        if (
            self.node_affinity_key
            and self.node_affinity_operator in ("In", "NotIn")
            and not self.node_affinity_values
        ):
            raise ConfigError(
                f"nodeAffinityValues: operator {self.node_affinity_operator} needs at least one value"
            )
        for key, size in (
            ("mongodbStorageSize", self.mongodb_storage_size),
            ("influxdbStorageSize", self.influxdb_storage_size),
            ("orchestratorStorageSize", self.orchestrator_storage_size),
        ):
            if not _QUANTITY.match(size):
                raise ConfigError(f"{key} must be a size such as 10Gi, got {size!r}")
        _check(lambda: check_dns_label(self.ingress_class, "ingressClass"))
        if self.ingress_host and not _HOST.match(self.ingress_host):
            raise ConfigError(
                f"ingressHost must be a DNS host name such as dtpoc.example.org, got {self.ingress_host!r}"
            )
        _check(lambda: check_broker_url(self.mqtt_broker_url, "mqttBrokerUrl"))
        if self.build_images and self.push_images and not self.image_registry:
            raise ConfigError(
                "pushImages needs imageRegistry (e.g. pulumi config set imageRegistry ghcr.io/my-org)"
            )
        unknown = sorted(set(self.built_images) - IMAGES.keys())
        if unknown:
            raise ConfigError(f"builtImages: unknown images {unknown}; the program builds {sorted(IMAGES)}")
        if self.build_images and self.push_images and self.image_containerd_address:
            raise ConfigError(
                "pushImages and imageContainerdAddress exclude each other: push to a registry or import "
                "into a node's containerd"
            )
        if self.image_build_network and not _NETWORK.match(self.image_build_network):
            raise ConfigError(
                "imageBuildNetwork must be a Docker network name such as host, "
                f"got {self.image_build_network!r}"
            )
        if self.docker_host and not self.docker_host.startswith(("unix://", "tcp://", "ssh://", "npipe://")):
            raise ConfigError(
                "dockerHost must be a Docker address such as unix:///var/run/docker.sock, "
                f"got {self.docker_host!r}"
            )
        if self.registry_username and self.registry_password is None:
            raise ConfigError(
                f"registryUsername is set but its password is not: {set_secret_hint('registryPassword')}"
            )
        for key, ref in (
            ("operatorImage", self.operator_image),
            ("apiImage", self.api_image),
            ("frontendImage", self.frontend_image),
            ("mosquittoImage", self.mosquitto_image),
            ("influxdbImage", self.influxdb_image),
            ("telegrafImage", self.telegraf_image),
            ("noderedImage", self.nodered_image),
            ("mongoExpressImage", self.mongo_express_image),
            *((("mongodbImage", self.mongodb_image),) if self.mongodb_image else ()),
            *((k, v) for k, v in (("pythonBaseImage", self.python_base_image),
                                  ("nodeBaseImage", self.node_base_image)) if v),
        ):  # fmt: skip
            _check(lambda ref=ref, key=key: check_image_ref(ref, key))
        if self.build_images:
            _check(lambda: self.image_build_settings)  # registry, tag and base image references
        if self.sensor_simulator and not self.sensor_simulator_image:
            raise ConfigError(
                "sensorSimulator needs its image: set sensorSimulatorImage, or build it (buildImages: true "
                "and sensor-simulator in builtImages: the build's reference replaces sensorSimulatorImage)"
            )
        if self.sensor_simulator_image:
            _check(lambda: check_image_ref(self.sensor_simulator_image, "sensorSimulatorImage"))
        for ref in self.sensor_classes:
            _check(lambda ref=ref: load_sensor_class(ref))
        if not self.mongodb_username or not self.influxdb_username:
            raise ConfigError("mongodbUsername and influxdbUsername must not be empty")
        if not 1 <= self.api_max_upload_bytes <= 64 * 1024**3:
            raise ConfigError(
                f"apiMaxUploadBytes must be between 1 and 64 GiB, got {self.api_max_upload_bytes}"
            )
        for origin in self.api_cors_origins:
            if origin == "*" or not origin.startswith(("http://", "https://")) or "*" in origin:
                raise ConfigError(
                    f"apiCorsOrigins: {origin!r} is not an http(s) origin such as https://dtpoc.example.org "
                    "(a wildcard would let any web page read with a visitor's credentials)"
                )
        unknown = [p for p in self.simulated_pieces if p not in PIECES]
        if unknown:
            raise ConfigError(
                f"simulatedPieces: unknown piece(s) {', '.join(unknown)}; the pieces are {', '.join(PIECES)}"
            )
        _check(lambda: Placement.from_selector(self.real_node_selector))
        if self.image_tag == "latest":
            raise ConfigError(
                "imageTag must be a version (latest moves), e.g. pulumi config set imageTag 1.0.0"
            )
        if self.tls_secret_name and self.tls_self_signed:
            raise ConfigError(
                "TLS: set either tlsSecretName (a Secret you provide) or tlsSelfSigned, not both"
            )
        if self.tls_secret_name:
            _check(lambda: check_dns_label(self.tls_secret_name, "tlsSecretName"))
        if self.tls_enabled and not self.ingress_host:
            raise ConfigError(
                "TLS needs ingressHost (the certificate's host): pulumi config set ingressHost ..."
            )
        if self.module_host:
            if not _HOST.match(self.module_host):
                raise ConfigError(f"moduleHost must be a DNS host name, got {self.module_host!r}")
            if self.module_host == self.ingress_host:
                raise ConfigError(
                    "moduleHost must differ from ingressHost: "
                    "modules' pages must not run in the platform's origin"
                )
        for cidr in self.module_egress_cidrs:
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                raise ConfigError(
                    f"moduleEgressCidrs: {cidr!r} is not a network such as 203.0.113.0/24"
                ) from None
        if not _MQTT_USER.match(self.mqtt_username):
            raise ConfigError(f"mqttUsername: letters, digits and '_.-' only, got {self.mqtt_username!r}")
        if self.quota_pods < 1 or not _CPU.match(self.quota_cpu) or not _QUANTITY.match(self.quota_memory):
            raise ConfigError(
                "quotaPods must be >= 1, quotaCpu a CPU quantity (64, 500m), quotaMemory a size (128Gi)"
            )
        for key, value in (
            ("outputMaxFiles", self.output_max_files),
            ("outputMaxBytes", self.output_max_bytes),
            ("outputMaxDepth", self.output_max_depth),
        ):
            if value < 1:
                raise ConfigError(f"{key} must be at least 1, got {value}")
        if self.module_image_pull_policy not in ("", *PULL_POLICIES):
            raise ConfigError(
                f"moduleImagePullPolicy must be one of {', '.join(PULL_POLICIES)} (or empty for Kubernetes' "
                f"default), got {self.module_image_pull_policy!r}"
            )
        self._check_solutions()

    def _check_solutions(self) -> None:
        _check(lambda: check_dns_label(self.ingress_controller_namespace, "ingressControllerNamespace"))
        for name in self.solutions_force_removal:
            _check(lambda name=name: check_solution_name(name))
        if not self.solutions:
            return
        if self.storage_mode is not StorageMode.HOST_PATH:
            raise ConfigError(
                "solutions need storageMode hostPath: each solution's runs are a folder of the platform's "
                "data volume, which the operator reads, and a dynamically provisioned claim cannot be "
                "shared across namespaces"
            )
        names = [s.name for s in self.solutions]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(f"solutions: the name {', '.join(repeated)} is used twice")
        for solution in self.solutions:
            where = f"solutions[{names.index(solution.name)}]"
            if solution.name == DEFAULT_SOLUTION:
                raise ConfigError(
                    f"{where}: {DEFAULT_SOLUTION!r} is the platform's own namespace ({self.namespace}); "
                    "choose another name"
                )
            _check(lambda s=solution: check_solution_name(s.name))
            _check(lambda s=solution, w=where: check_dns_label(s.namespace, f"{w} {s.name!r}: its namespace"))
            if solution.namespace in (self.namespace, self.ingress_controller_namespace):
                raise ConfigError(
                    f"{where}: namespace {solution.namespace} is the platform's or the ingress controller's"
                )
            solution.quota.check(where)
            solution.defaults.check(where)
            if not _QUANTITY.match(solution.storage_size):
                raise ConfigError(
                    f"{where}.storageSize must be a size such as 10Gi, got {solution.storage_size!r}"
                )

    # --- derived settings ----------------------------------------------------------------------------

    @property
    def effective_storage_class(self) -> str:
        if self.storage_class:
            return self.storage_class
        return DEFAULT_HOSTPATH_CLASS if self.storage_mode is StorageMode.HOST_PATH else ""

    def placement(self, piece: str | None) -> Placement:
        """Where `piece` runs: on kwok's simulated nodes if it is one of `simulated_pieces`, else on the nodes
        `real_node_selector` picks (anywhere when it is empty, as in every real cluster). `None`: a piece
        added by the caller (extra UI modules), placed as the real pieces are."""
        if piece in self.simulated_pieces:
            return KWOK_NODE
        return Placement.from_selector(self.real_node_selector)

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_secret_name) or self.tls_self_signed

    @property
    def public_base_url(self) -> str:
        scheme = "https" if self.tls_enabled else "http"
        return f"{scheme}://{self.ingress_host or 'localhost'}"

    @property
    def image_build_settings(self) -> ImageBuildSettings:
        """How the program builds its images (used with buildImages)."""
        return ImageBuildSettings(
            registry=self.image_registry,
            extra_tag=self.image_tag,
            push=self.push_images,
            registry_username=self.registry_username or None,
            registry_password=self.registry_password if self.registry_username else None,
            docker_host=self.docker_host,
            docker_cli=self.docker_cli,
            network=self.image_build_network,
            containerd_address=self.image_containerd_address,
            python_base=self.python_base_image,
            node_base=self.node_base_image,
            contexts=dict(self.image_contexts),
        )

    # --- loading -------------------------------------------------------------------------------------

    @classmethod
    def load(cls, config: pulumi.Config | None = None) -> PlatformConfig:
        """Read and validate the stack's configuration (raises ConfigError naming the key and the fix)."""
        cfg = config or pulumi.Config(PROJECT)
        secrets = {key: _require_secret(cfg, key, min_len) for key, min_len, _ in REQUIRED_SECRETS}
        registry_password = cfg.get_secret("registryPassword")
        namespace = _str(cfg, "namespace", cls.namespace)
        return cls(
            mongodb_password=secrets["mongodbPassword"],
            influxdb_password=secrets["influxdbPassword"],
            influxdb_token=secrets["influxdbToken"],
            api_token=secrets["apiToken"],
            api_read_token=secrets["apiReadToken"],
            grafana_admin_password=secrets["grafanaAdminPassword"],
            nodered_admin_password=secrets["noderedAdminPassword"],
            mqtt_password=secrets["mqttPassword"],
            namespace=namespace,
            create_namespace=_bool(cfg, "createNamespace", cls.create_namespace),
            storage_mode=_str(cfg, "storageMode", cls.storage_mode),
            data_root=_str(cfg, "dataRoot", cls.data_root),
            storage_class=_str(cfg, "storageClass", cls.storage_class),
            node_affinity_key=_str(cfg, "nodeAffinityKey", cls.node_affinity_key),
            node_affinity_operator=_str(cfg, "nodeAffinityOperator", cls.node_affinity_operator),
            node_affinity_values=_str_list(cfg, "nodeAffinityValues"),
            mongodb_storage_size=_str(cfg, "mongodbStorageSize", cls.mongodb_storage_size),
            influxdb_storage_size=_str(cfg, "influxdbStorageSize", cls.influxdb_storage_size),
            orchestrator_storage_size=_str(cfg, "orchestratorStorageSize", cls.orchestrator_storage_size),
            ingress_controller=_str(cfg, "ingressController", cls.ingress_controller),
            ingress_class=_str(cfg, "ingressClass", cls.ingress_class),
            ingress_host=_str(cfg, "ingressHost", cls.ingress_host),
            mqtt_broker_url=_str(cfg, "mqttBrokerUrl", cls.mqtt_broker_url),
            build_images=_bool(cfg, "buildImages", cls.build_images),
            built_images=_str_list(cfg, "builtImages", cls.built_images),
            image_registry=_str(cfg, "imageRegistry", cls.image_registry),
            image_tag=_str(cfg, "imageTag", cls.image_tag),
            push_images=_bool(cfg, "pushImages", cls.push_images),
            docker_host=_str(cfg, "dockerHost", cls.docker_host),
            docker_cli=_str(cfg, "dockerCli", cls.docker_cli),
            image_build_network=_str(cfg, "imageBuildNetwork", cls.image_build_network),
            image_containerd_address=_str(cfg, "imageContainerdAddress", cls.image_containerd_address),
            python_base_image=_str(cfg, "pythonBaseImage", cls.python_base_image),
            node_base_image=_str(cfg, "nodeBaseImage", cls.node_base_image),
            image_contexts=_image_contexts(_str_list(cfg, "imageContexts")),
            registry_username=_str(cfg, "registryUsername", cls.registry_username),
            registry_password=registry_password,
            operator_image=_str(cfg, "operatorImage", cls.operator_image),
            api_image=_str(cfg, "apiImage", cls.api_image),
            frontend_image=_str(cfg, "frontendImage", cls.frontend_image),
            mongodb_username=_str(cfg, "mongodbUsername", cls.mongodb_username),
            influxdb_username=_str(cfg, "influxdbUsername", cls.influxdb_username),
            influxdb_org=_str(cfg, "influxdbOrg", cls.influxdb_org),
            influxdb_bucket=_str(cfg, "influxdbBucket", cls.influxdb_bucket),
            api_max_upload_bytes=_int(cfg, "apiMaxUploadBytes", cls.api_max_upload_bytes),
            api_cors_origins=_str_list(cfg, "apiCorsOrigins"),
            network_policies=_bool(cfg, "networkPolicies", cls.network_policies),
            mongodb_engine=_str(cfg, "mongodbEngine", cls.mongodb_engine),
            mongodb_image=_str(cfg, "mongodbImage", cls.mongodb_image),
            mosquitto_image=_str(cfg, "mosquittoImage", cls.mosquitto_image),
            influxdb_image=_str(cfg, "influxdbImage", cls.influxdb_image),
            telegraf_image=_str(cfg, "telegrafImage", cls.telegraf_image),
            nodered_image=_str(cfg, "noderedImage", cls.nodered_image),
            mongo_express_image=_str(cfg, "mongoExpressImage", cls.mongo_express_image),
            simulated_pieces=_str_list(cfg, "simulatedPieces"),
            real_node_selector=_str(cfg, "realNodeSelector", cls.real_node_selector),
            tls_secret_name=_str(cfg, "tlsSecretName", cls.tls_secret_name),
            tls_self_signed=_bool(cfg, "tlsSelfSigned", cls.tls_self_signed),
            module_host=_str(cfg, "moduleHost", cls.module_host),
            module_egress_cidrs=_str_list(cfg, "moduleEgressCidrs"),
            grafana_anonymous=_bool(cfg, "grafanaAnonymous", cls.grafana_anonymous),
            sensor_classes=_str_list(cfg, "sensorClasses"),
            sensor_simulator=_bool(cfg, "sensorSimulator", cls.sensor_simulator),
            sensor_simulator_image=_str(cfg, "sensorSimulatorImage", cls.sensor_simulator_image),
            mqtt_username=_str(cfg, "mqttUsername", cls.mqtt_username),
            quota_pods=_int(cfg, "quotaPods", cls.quota_pods),
            quota_cpu=_str(cfg, "quotaCpu", cls.quota_cpu),
            quota_memory=_str(cfg, "quotaMemory", cls.quota_memory),
            output_max_files=_int(cfg, "outputMaxFiles", cls.output_max_files),
            output_max_bytes=_int(cfg, "outputMaxBytes", cls.output_max_bytes),
            output_max_depth=_int(cfg, "outputMaxDepth", cls.output_max_depth),
            module_image_pull_policy=_str(cfg, "moduleImagePullPolicy", cls.module_image_pull_policy),
            solutions=_solutions(
                cfg, namespace, _str(cfg, "orchestratorStorageSize", cls.orchestrator_storage_size)
            ),
            solutions_force_removal=_str_list(cfg, "solutionsForceRemoval"),
            ingress_controller_namespace=_str(
                cfg, "ingressControllerNamespace", cls.ingress_controller_namespace
            ),
        )


def _check(fn: Any) -> None:
    try:
        fn()
    except ValueError as e:
        raise ConfigError(str(e)) from e


def _enum(enum: type[StrEnum], value: Any, key: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise ConfigError(f"{key} must be one of {allowed}; got {value!r}") from None


def _require_secret(cfg: pulumi.Config, key: str, min_len: int) -> pulumi.Output[str]:
    try:
        value = cfg.require_secret(key)
    except pulumi.ConfigMissingError:
        raise MissingSecretError(
            f"missing secret config {PROJECT}:{key}; set it with: {set_secret_hint(key)}"
        ) from None

    def check(v: str) -> str:
        if len(v) < min_len:
            raise ConfigError(
                f"secret {key} is shorter than {min_len} characters; set a longer one: {set_secret_hint(key)}"
            )
        return v

    return value.apply(check)


def _str(cfg: pulumi.Config, key: str, default: str) -> str:
    value = cfg.get(key)
    return str(default) if value is None else value


def _bool(cfg: pulumi.Config, key: str, default: bool) -> bool:
    value = cfg.get(key)
    if value is None:
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"{key} must be true or false, got {value!r} (pulumi config set {key} true)")


def _int(cfg: pulumi.Config, key: str, default: int) -> int:
    value = cfg.get(key)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{key} must be an integer, got {value!r}") from None


def _image_contexts(entries: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """`imageContexts` entries `<image key>=<absolute folder>`."""
    pairs = []
    for entry in entries:
        key, _, folder = entry.partition("=")
        if key not in IMAGES or not folder.startswith("/"):
            raise ConfigError(
                f"imageContexts: {entry!r} must be <image key>=<absolute folder>, keys: {sorted(IMAGES)}"
            )
        pairs.append((key, folder))
    return tuple(pairs)


def _str_list(cfg: pulumi.Config, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    value = cfg.get(key)
    if value is None:
        return default
    if value == "":
        return ()
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        raise ConfigError(
            f"{key} must be a list of strings, e.g. pulumi config set --path '{key}[0]' value"
        ) from None
    if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
        raise ConfigError(f"{key} must be a list of strings, got {value!r}")
    return tuple(parsed)


# `solutions` entries: their keys, and those of `quota` and `defaults`.
_SOLUTION_KEYS = {"name", "quota", "defaults", "storageSize"}
_QUOTA_KEYS = {"cpu", "memory", "pods"}
_DEFAULTS_KEYS = {"cpu", "memory", "cpuRequest", "memoryRequest"}
_TOKEN_KEYS = ("admin", "read")
SOLUTION_TOKEN_MIN_LENGTH = 16
SOLUTIONS_EXAMPLE = (
    "pulumi config set --path 'solutions[0].name' lab (and solutions[0].quota.cpu, .memory, .pods)"
)


def _json_config(cfg: pulumi.Config, key: str) -> Any:
    value = cfg.get(key)
    if value is None or value == "":
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise ConfigError(f"{key} must be structured config (YAML in the stack file, or --path)") from None


def _object(value: Any, where: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be an object with {', '.join(sorted(allowed))}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    missing = sorted(required - set(value))
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)} ({SOLUTIONS_EXAMPLE})")
    return value


def _quantity(value: Any, where: str) -> str:
    """A quantity given as a YAML number (cpu: 2) or string (cpu: 500m)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{where} must be a quantity such as 2, 500m or 4Gi, got {value!r}")
    return str(value)


def _pods(value: Any, where: str) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be an integer, got {value!r}") from None


def _solution_tokens(
    cfg: pulumi.Config, names: list[str]
) -> dict[str, tuple[pulumi.Output[str], pulumi.Output[str]]]:
    """Each solution's (admin, read) tokens from the secret object `solutionTokens`: present, long enough,
    and all different from each other and from apiToken / apiReadToken (a token names one solution and one
    role). Values are read here to be checked and leave only as secret Outputs; messages never hold them."""
    raw = _json_config(cfg, "solutionTokens") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"solutionTokens must be an object: {solution_token_hint('<name>', 'admin')}")
    plain: dict[tuple[str, str], str] = {}
    for name in names:
        entry = raw.get(name)
        for which in _TOKEN_KEYS:
            value = entry.get(which) if isinstance(entry, dict) else None
            if not isinstance(value, str) or not value:
                raise MissingSecretError(
                    f"missing secret config {PROJECT}:solutionTokens.{name}.{which} (the {which} API token "
                    f"of solution {name!r}); set it with: {solution_token_hint(name, which)}"
                )
            if len(value) < SOLUTION_TOKEN_MIN_LENGTH:
                raise ConfigError(
                    f"secret solutionTokens.{name}.{which} is shorter than {SOLUTION_TOKEN_MIN_LENGTH} "
                    f"characters; set a longer one: {solution_token_hint(name, which)}"
                )
            plain[(name, which)] = value
    seen = {value: key for key in ("apiToken", "apiReadToken") if (value := cfg.get(key))}
    for (name, which), value in plain.items():
        what = f"solutionTokens.{name}.{which}"
        if value in seen:
            raise ConfigError(f"secret {what} equals {seen[value]}: every API token must differ")
        seen[value] = what
    return {
        name: (pulumi.Output.secret(plain[(name, "admin")]), pulumi.Output.secret(plain[(name, "read")]))
        for name in names
    }


def _solutions(cfg: pulumi.Config, namespace: str, default_size: str) -> tuple[SolutionConfig, ...]:
    raw = _json_config(cfg, "solutions")
    if raw is None or raw == []:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"solutions must be a list: {SOLUTIONS_EXAMPLE}")
    entries = [
        _object(entry, f"solutions[{i}]", _SOLUTION_KEYS, {"name", "quota"}) for i, entry in enumerate(raw)
    ]
    names = []
    for i, entry in enumerate(entries):
        if not isinstance(entry["name"], str):
            raise ConfigError(f"solutions[{i}].name must be a string, got {entry['name']!r}")
        _check(lambda name=entry["name"]: check_solution_name(name))
        if entry["name"] == DEFAULT_SOLUTION:
            raise ConfigError(
                f"solutions[{i}]: {DEFAULT_SOLUTION!r} is the platform's own namespace ({namespace}); "
                "choose another name"
            )
        names.append(entry["name"])
    tokens = _solution_tokens(cfg, list(dict.fromkeys(names)))
    solutions = []
    for i, entry in enumerate(entries):
        where = f"solutions[{i}]"
        quota = _object(entry["quota"], f"{where}.quota", _QUOTA_KEYS, _QUOTA_KEYS)
        defaults = _object(entry.get("defaults", {}), f"{where}.defaults", _DEFAULTS_KEYS, set())
        base = ContainerDefaults()
        solutions.append(
            SolutionConfig(
                name=entry["name"],
                namespace=solution_namespace(namespace, entry["name"]),
                quota=SolutionQuota(
                    cpu=_quantity(quota["cpu"], f"{where}.quota.cpu"),
                    memory=_quantity(quota["memory"], f"{where}.quota.memory"),
                    pods=_pods(quota["pods"], f"{where}.quota.pods"),
                ),
                defaults=ContainerDefaults(
                    cpu=_quantity(defaults.get("cpu", base.cpu), f"{where}.defaults.cpu"),
                    memory=_quantity(defaults.get("memory", base.memory), f"{where}.defaults.memory"),
                    cpu_request=_quantity(
                        defaults.get("cpuRequest", base.cpu_request), f"{where}.defaults.cpuRequest"
                    ),
                    memory_request=_quantity(
                        defaults.get("memoryRequest", base.memory_request), f"{where}.defaults.memoryRequest"
                    ),
                ),
                storage_size=_quantity(entry.get("storageSize", default_size), f"{where}.storageSize"),
                admin_token=tokens[entry["name"]][0],
                read_token=tokens[entry["name"]][1],
            )
        )
    return tuple(solutions)


def solution_token_keys(names: Iterable[str]) -> list[str]:
    """The secret config paths of the solutions' tokens (`pulumi config set --secret --path <key>`)."""
    return [f"solutionTokens.{name}.{which}" for name in names for which in _TOKEN_KEYS]


def stack_solution_names(stack_file: Path) -> list[str]:
    """The names in a stack file's `solutions` (whose tokens whoever runs the stack sets)."""
    document = yaml.safe_load(stack_file.read_text()) or {}
    entries = (document.get("config") or {}).get(f"{PROJECT}:solutions") or []
    return [
        entry["name"] for entry in entries if isinstance(entry, dict) and isinstance(entry.get("name"), str)
    ]


def secret_keys() -> Sequence[str]:
    return [key for key, _, _ in REQUIRED_SECRETS]
