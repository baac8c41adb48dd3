"""The whole platform from one PlatformConfig: storage, databases, broker, data inputs, the orchestrator,
the UI modules and (optionally) the ingress controller."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from services.shared.solutions import SolutionPlace

from .common import IngressSettings, child_options, labels
from .config import IngressController, PlatformConfig
from .images import ImageBuildSettings, ServiceImages, ServiceImagesArgs
from .influxdb import PORT as INFLUXDB_PORT
from .influxdb import InfluxDB, InfluxDBArgs
from .ingress_nginx import IngressNginx, IngressNginxArgs
from .mongodb import MongoDB, MongoDBArgs, MongoDBEngine
from .mosquitto import Mosquitto, MosquittoArgs
from .namespace import POD_SECURITY_LABELS, NamespaceGuards, NamespaceGuardsArgs
from .network_policy import (
    MODULE_POD_LABELS,
    IngressRule,
    ModuleEgress,
    NetworkPolicies,
    NetworkPoliciesArgs,
    app_clients,
)
from .nodered import NodeRed, NodeRedArgs
from .orchestrator import API_PORT, OPERATOR_HEALTH_PORT, Orchestrator, OrchestratorArgs
from .sensor_simulator import SIMULATED_KINDS, SensorSimulator, SensorSimulatorArgs
from .solution import Solution, SolutionArgs, solution_storage
from .solution_guard import KubeAccess, SolutionRemovalGuard
from .storage import Storage, StorageArgs, StorageMode
from .telegraf import LightSensor, SensorInput, SensorInputArgs, TempSensor, load_sensor_class
from .tls import SelfSignedCertificate, SelfSignedCertificateArgs
from .ui import (
    DigitalHospFrontend,
    FrontendArgs,
    Grafana,
    GrafanaArgs,
    MongoExpress,
    MongoExpressArgs,
    UIModule,
    UIModuleArgs,
)

SEED_SENSORS: tuple[type[SensorInput], ...] = (LightSensor, TempSensor)


@dataclass(frozen=True)
class PlatformArgs:
    """`extra_ui_modules` / `extra_sensors`: subclasses of UIModule / SensorInput deployed with the seed's
    ones (each built with the platform's namespace, ingress and InfluxDB settings). `solution_type`: what
    each entry of the config's `solutions` becomes (a Solution subclass adds pieces of its own)."""

    config: PlatformConfig
    extra_ui_modules: Sequence[type[UIModule]] = field(default_factory=tuple)
    extra_sensors: Sequence[type[SensorInput]] = field(default_factory=tuple)
    solution_type: type[Solution] = Solution

    def __post_init__(self) -> None:
        if not (isinstance(self.solution_type, type) and issubclass(self.solution_type, Solution)):
            raise ValueError(f"PlatformArgs.solution_type: {self.solution_type!r} is not a Solution subclass")
        for cls in self.extra_ui_modules:
            if not (isinstance(cls, type) and issubclass(cls, UIModule)):
                raise ValueError(f"PlatformArgs.extra_ui_modules: {cls!r} is not a UIModule subclass")
            if cls.args_type is not UIModuleArgs:
                raise ValueError(
                    f"PlatformArgs.extra_ui_modules: {cls.__name__} takes {cls.args_type.__name__}; "
                    "build it yourself with Platform.ui_args()"
                )
            cls.validate_class()
        for cls in self.extra_sensors:
            if not (isinstance(cls, type) and issubclass(cls, SensorInput)):
                raise ValueError(f"PlatformArgs.extra_sensors: {cls!r} is not a SensorInput subclass")
            cls.validate_class()
        sensors = [c.sensor for c in self.sensor_types]
        if len(set(sensors)) != len(sensors):
            raise ValueError(
                f"PlatformArgs.extra_sensors / sensorClasses: sensor names must be unique, got {sensors}"
            )
        apps = [c.app() for c in (Grafana, MongoExpress, DigitalHospFrontend, *self.extra_ui_modules)]
        if len(set(apps)) != len(apps):
            raise ValueError(f"PlatformArgs.extra_ui_modules: app names must be unique, got {apps}")

    @property
    def sensor_types(self) -> tuple[type[SensorInput], ...]:
        """The sensor inputs deployed: the seed's, the stack's `sensorClasses`, then `extra_sensors`."""
        configured = tuple(load_sensor_class(ref) for ref in self.config.sensor_classes)
        return (*SEED_SENSORS, *configured, *self.extra_sensors)


class Platform(pulumi.ComponentResource):
    """Public outputs: `namespace`, `urls` (public, through the ingress), `services` (in-cluster names),
    `solutions` (the DT solutions besides the platform's namespace, by name)."""

    namespace: str
    urls: dict[str, str]
    services: dict[str, pulumi.Output[str]]
    sensors: dict[str, SensorInput]
    ui_modules: dict[str, UIModule]
    solutions: dict[str, Solution]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dtpoc:platform:Platform", name, None, opts)
        cfg = args.config
        self._cfg = cfg
        ns = cfg.namespace
        self.namespace = ns
        self._child = child_options(self, opts)

        waits: list[pulumi.Resource] = []
        if cfg.create_namespace:
            self.namespace_resource = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=ns, labels={**labels(ns, "namespace"), **POD_SECURITY_LABELS}
                ),
                opts=self._child,
            )
            waits.append(self.namespace_resource)
        in_ns = self._opts(waits)
        self.namespace_guards = NamespaceGuards(
            f"{name}-namespace-guards",
            NamespaceGuardsArgs(
                namespace=ns, pods=cfg.quota_pods, cpu_limits=cfg.quota_cpu, memory_limits=cfg.quota_memory
            ),
            in_ns,
        )

        # --- TLS ------------------------------------------------------------------------------------------
        self.tls_secret_name: pulumi.Input[str] | None = cfg.tls_secret_name or None
        if cfg.tls_self_signed:
            hosts = [cfg.ingress_host, *([cfg.module_host] if cfg.module_host else [])]
            self.certificate = SelfSignedCertificate(
                f"{name}-tls", SelfSignedCertificateArgs(namespace=ns, hosts=hosts), in_ns
            )
            self.tls_secret_name = self.certificate.secret_name

        # --- storage and data services ----------------------------------------------------------------
        def storage(piece: str, size: str) -> Storage:
            return Storage(f"{name}-{piece}-storage", self.storage_args(piece, size), in_ns)

        # Images first: the data services may run stand-ins the program builds (the local stack).
        self.images = ServiceImages(
            f"{name}-images",
            ServiceImagesArgs(
                build=cfg.build_images,
                built=cfg.built_images,
                operator_image=cfg.operator_image,
                api_image=cfg.api_image,
                settings=cfg.image_build_settings if cfg.build_images else ImageBuildSettings(),
            ),
            self._child,
        )
        self.mongodb_storage = storage("mongodb", cfg.mongodb_storage_size)
        self.influxdb_storage = storage("influxdb", cfg.influxdb_storage_size)
        self.orchestrator_storage = storage("orchestrator", cfg.orchestrator_storage_size)

        self.mongodb = MongoDB(
            f"{name}-mongodb",
            MongoDBArgs(
                namespace=ns,
                root_username=cfg.mongodb_username,
                root_password=cfg.mongodb_password,
                claim_name=self.mongodb_storage.claim_name,
                engine=cfg.mongodb_engine,
                image=self.images.refs.get("ferretdb") or cfg.mongodb_image or None,
                # FerretDB runs as uid 10001: a hostPath folder (made by the kubelet as root) is handed over.
                chown_data=cfg.mongodb_engine is MongoDBEngine.FERRETDB
                and cfg.storage_mode is StorageMode.HOST_PATH,
                placement=cfg.placement("mongodb"),
            ),
            in_ns,
        )
        self.influxdb = InfluxDB(
            f"{name}-influxdb",
            InfluxDBArgs(
                namespace=ns,
                admin_username=cfg.influxdb_username,
                admin_password=cfg.influxdb_password,
                admin_token=cfg.influxdb_token,
                org=cfg.influxdb_org,
                bucket=cfg.influxdb_bucket,
                claim_name=self.influxdb_storage.claim_name,
                image=self.images.refs.get("influxdb", cfg.influxdb_image),
                placement=cfg.placement("influxdb"),
            ),
            in_ns,
        )
        self.mosquitto = Mosquitto(
            f"{name}-mosquitto",
            MosquittoArgs(
                namespace=ns,
                publisher_password=cfg.mqtt_password,
                publisher_username=cfg.mqtt_username,
                image=self.images.refs.get("mosquitto", cfg.mosquitto_image),
                placement=cfg.placement("mosquitto"),
            ),
            in_ns,
        )
        self.nodered = NodeRed(
            f"{name}-nodered",
            NodeRedArgs(
                namespace=ns,
                admin_password=cfg.nodered_admin_password,
                image=self.images.refs.get("node-red", cfg.nodered_image),
                placement=cfg.placement("nodered"),
            ),
            in_ns,
        )

        # --- data inputs --------------------------------------------------------------------------------
        self.sensors = {}
        for sensor_cls in args.sensor_types:
            self.sensors[sensor_cls.sensor] = sensor_cls(
                f"{name}-{sensor_cls.sensor}", self.sensor_args(), in_ns
            )

        self.sensor_simulator = None
        if cfg.sensor_simulator:
            self.sensor_simulator = SensorSimulator(
                f"{name}-sensor-simulator",
                SensorSimulatorArgs(
                    namespace=ns,
                    image=self.images.refs.get("sensor-simulator", cfg.sensor_simulator_image),
                    publisher_secret_name=self.mosquitto.publisher_secret.metadata.name,
                    devices={kind: 3 for kind in self.sensors if kind in SIMULATED_KINDS},
                    broker_url=self.mosquitto.url,
                    placement=cfg.placement("sensor-simulator"),
                ),
                in_ns,
            )

        # --- ingress ------------------------------------------------------------------------------------
        self.ingress_nginx = None
        if cfg.ingress_controller is IngressController.INSTALL:
            self.ingress_nginx = IngressNginx(
                f"{name}-ingress-nginx", IngressNginxArgs(ingress_class=cfg.ingress_class), self._child
            )

        # --- DT solutions -------------------------------------------------------------------------------
        # Registered on every run, solutions or not: the engine calls a removed solution's hooks by name.
        self.removal_guard = SolutionRemovalGuard(cfg.solutions_force_removal, KubeAccess.of_provider())
        orchestrator_data = self.storage_args("orchestrator", cfg.orchestrator_storage_size)
        self.solutions = {}
        for solution in cfg.solutions:
            place = SolutionPlace(name=solution.name, namespace=solution.namespace)
            self.solutions[solution.name] = args.solution_type(
                f"{name}-solution-{solution.name}",
                SolutionArgs(
                    config=solution,
                    platform_namespace=ns,
                    storage=solution_storage(orchestrator_data, place, solution.storage_size),
                    network_policies=cfg.network_policies,
                    module_egress_cidrs=cfg.module_egress_cidrs,
                    ingress_controller_namespace=cfg.ingress_controller_namespace,
                    removal_hooks=self.removal_guard.namespace_hooks,
                ),
                in_ns,
            )

        # --- orchestrator -------------------------------------------------------------------------------
        self.orchestrator = Orchestrator(
            f"{name}-orchestrator",
            OrchestratorArgs(
                namespace=ns,
                api_token=cfg.api_token,
                api_read_token=cfg.api_read_token,
                mongodb_secret_name=self.mongodb.secret_name,
                mongodb_host=self.mongodb.host,
                mongodb_port=self.mongodb.port,
                mongodb_auth_mechanism=self.mongodb.auth_mechanism,
                data_claim_name=self.orchestrator_storage.claim_name,
                operator_image=self.images.operator_ref,
                api_image=self.images.api_ref,
                ingress=self.ingress_settings,
                module_ingress_class=cfg.ingress_class,
                # Persistent modules under a host of their own when the stack names one (moduleHost).
                module_ingress_host=cfg.module_host or cfg.ingress_host or None,
                module_tls_secret=self.tls_secret_name,
                output_max_files=cfg.output_max_files,
                output_max_bytes=cfg.output_max_bytes,
                output_max_depth=cfg.output_max_depth,
                module_image_pull_policy=cfg.module_image_pull_policy or None,
                max_upload_bytes=cfg.api_max_upload_bytes,
                cors_origins=cfg.api_cors_origins,
                chown_data=cfg.storage_mode is StorageMode.HOST_PATH,
                placement=cfg.placement("orchestrator"),
                solutions=[s.secrets for s in self.solutions.values()],
                deployment_hooks=self.removal_guard.deployment_hooks,
            ),
            # The operator and the API start once they hold their Roles in every solution's namespace.
            self._opts([*waits, *self.solutions.values()]),
        )

        # --- UI modules ---------------------------------------------------------------------------------
        base = self.ui_args()
        self.ui_modules = {
            "grafana": Grafana(
                f"{name}-grafana",
                GrafanaArgs(
                    namespace=ns,
                    ingress=base.ingress,
                    reader_secret_name=self.influxdb.reader_secret_name,
                    admin_password=cfg.grafana_admin_password,
                    influx_url=self.influxdb.url,
                    influx_bucket=self.influxdb.bucket,
                    placement=cfg.placement("grafana"),
                    anonymous=cfg.grafana_anonymous,
                    sensors=[type(sensor) for sensor in self.sensors.values()],
                ),
                in_ns,
            ),
            "mongo-express": MongoExpress(
                f"{name}-mongo-express",
                MongoExpressArgs(
                    namespace=ns,
                    ingress=base.ingress,
                    image=cfg.mongo_express_image,
                    mongodb_secret_name=self.mongodb.secret_name,
                    mongodb_auth_mechanism=self.mongodb.auth_mechanism,
                    placement=cfg.placement("mongo-express"),
                ),
                in_ns,
            ),
            "digital-hosp-frontend": DigitalHospFrontend(
                f"{name}-frontend",
                FrontendArgs(
                    namespace=ns,
                    ingress=base.ingress,
                    image=cfg.frontend_image,
                    env={"ORCHESTRATOR_URL": self.orchestrator.api_url},
                    placement=cfg.placement("frontend"),
                    api_read_token_secret_name=self.orchestrator.api_read_token_secret_name,
                ),
                in_ns,
            ),
        }
        for ui_cls in args.extra_ui_modules:
            self.ui_modules[ui_cls.app()] = ui_cls(f"{name}-{ui_cls.app()}", base, in_ns)

        # --- network policies -----------------------------------------------------------------------------
        self.network_policies = None
        if cfg.network_policies:
            self.network_policies = NetworkPolicies(
                f"{name}-network-policies",
                NetworkPoliciesArgs(
                    ns, self.network_rules(), ModuleEgress(MODULE_POD_LABELS, cfg.module_egress_cidrs)
                ),
                in_ns,
            )

        # --- outputs ------------------------------------------------------------------------------------
        public = cfg.public_base_url
        self.urls = {"frontend": f"{public}/", "api": f"{public}{self.orchestrator.api_path}/v1alpha1"}
        for key, module in self.ui_modules.items():
            if module.url_path and key != "digital-hosp-frontend":
                self.urls[key] = f"{public}{module.url_path}"
        self.services = {
            "mongodb": self.mongodb.service_name,
            "influxdb": self.influxdb.service_name,
            "mosquitto": self.mosquitto.service_name,
            "nodered": self.nodered.service_name,
            "orchestrator-api": self.orchestrator.api_service_name,
            **{key: module.service.metadata.name for key, module in self.ui_modules.items()},
        }
        self.register_outputs(
            {
                "namespace": self.namespace,
                "urls": self.urls,
                "services": self.services,
                **(
                    {"solutions": {k: v.namespace for k, v in self.solutions.items()}}
                    if self.solutions
                    else {}
                ),
            }
        )

    # --- for callers that add their own pieces ------------------------------------------------------------

    @property
    def ingress_settings(self) -> IngressSettings:
        cfg = self._cfg
        return IngressSettings(
            class_name=cfg.ingress_class,
            host=cfg.ingress_host or None,
            skip_await=cfg.ingress_controller is IngressController.NONE,
            # Ingress objects go through the controller's admission webhook: create them once it runs.
            wait_for=(self.ingress_nginx,) if self.ingress_nginx is not None else (),
            tls_secret=self.tls_secret_name,
        )

    def ui_args(self) -> UIModuleArgs:
        """Arguments for a UI module of this platform (namespace, ingress, placement)."""
        return UIModuleArgs(
            namespace=self.namespace, ingress=self.ingress_settings, placement=self._cfg.placement(None)
        )

    def sensor_args(self) -> SensorInputArgs:
        """Arguments for a sensor input of this platform (broker, InfluxDB and its token Secret)."""
        cfg = self._cfg
        return SensorInputArgs(
            namespace=self.namespace,
            influx_secret_name=self.influxdb.secret_name,
            influx_token_key=self.influxdb.token_key,
            broker_url=cfg.mqtt_broker_url,
            influx_url=self.influxdb.url,
            org=self.influxdb.org,
            bucket=self.influxdb.bucket,
            image=self.images.refs.get("telegraf", cfg.telegraf_image),
            placement=cfg.placement("telegraf"),
        )

    def network_rules(self) -> list[IngressRule]:
        """The databases admit only their clients (never a module: modules get their files, not the
        databases); the API and the operator (our own pods) only what they serve: the API's port from
        anywhere (the ingress controller's namespace varies), the operator's health port."""
        sensors = [s.deployment_name for s in self.sensors.values()]
        return [
            IngressRule(
                self.mongodb.host,
                self.mongodb.port,
                app_clients("orchestrator-api", "orchestrator-operator", MongoExpress.app()),
            ),
            IngressRule("influxdb", INFLUXDB_PORT, app_clients(*sensors, Grafana.app(), "nodered")),
            IngressRule("orchestrator-api", API_PORT, None),
            IngressRule("orchestrator-operator", OPERATOR_HEALTH_PORT, None),
        ]

    def storage_args(self, piece: str, size: str) -> StorageArgs:
        """The volume of one piece (`<piece>-data`, folder `<piece>_data` in hostPath mode)."""
        cfg = self._cfg
        return StorageArgs(
            namespace=self.namespace,
            claim_name=f"{piece}-data",
            size=size,
            mode=cfg.storage_mode,
            data_root=cfg.data_root,
            sub_dir=f"{piece}_data",
            storage_class=cfg.effective_storage_class,
            node_affinity_key=cfg.node_affinity_key or None,
            node_affinity_operator=cfg.node_affinity_operator,
            node_affinity_values=cfg.node_affinity_values,
        )

    def _opts(self, depends_on: list[pulumi.Resource]) -> pulumi.ResourceOptions:
        if not depends_on:
            return self._child
        return pulumi.ResourceOptions.merge(self._child, pulumi.ResourceOptions(depends_on=list(depends_on)))
