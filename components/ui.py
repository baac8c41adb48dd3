"""UI modules: a web app as Deployment + Service (+ an Ingress path). A UI module is a subclass that names its
image, port and path; Grafana, Mongo Express and the digital-hospital frontend are three of them.

    class Whoami(UIModule):
        image = "traefik/whoami:v1.10"
        port = 80
        path = "/whoami"
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import pulumi
import pulumi_kubernetes as k8s

from .common import (
    ANYWHERE,
    ENV_SECRET_SKIP,
    FIXED_UID_SKIPS,
    OPEN_SERVER_SKIP,
    SMALL,
    THIRD_PARTY_IMAGE_SKIPS,
    IngressSettings,
    Placement,
    Resources,
    Workload,
    baseline_security_context,
    check_dns_label,
    check_path,
    check_port,
    child_options,
    config_map_volume,
    credentials_secret,
    deployment,
    empty_dir,
    env,
    http_probe,
    ingress,
    kebab,
    meta,
    mount,
    secret_env,
    service,
    service_port,
    tcp_probe,
)
from .dashboards import (
    DASHBOARD_FILE,
    DASHBOARDS_PATH,
    PROVIDERS_PATH,
    dashboard_providers,
    sensors_dashboard,
)
from .telegraf import SensorInput


@dataclass(frozen=True)
class UIModuleArgs:
    """Per-deployment settings of a UI module. `ingress` None: no Ingress even if the class has a path.
    `image` overrides the class's image; `env` is merged over the class's env."""

    namespace: str
    ingress: IngressSettings | None = None
    image: str | None = None
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    replicas: int = 1
    resources: Resources = SMALL
    placement: Placement = ANYWHERE

    def __post_init__(self) -> None:
        check_dns_label(self.namespace, "UIModuleArgs.namespace")
        if not 0 <= self.replicas <= 20:
            raise ValueError(f"UIModuleArgs.replicas must be 0..20, got {self.replicas}")


class UIModule(pulumi.ComponentResource):
    """Base class. Subclasses set `image` and `port`, usually `path`; optionally `app_name` (default: the
    class name in kebab case), `service_name` (default: app_name), `service_port` (default: port), `env`,
    `probe_path` (HTTP probes; None: TCP probes), `ingress_annotations`, `run_as_user`. Override
    `extra_env` / `extra_volumes` for Secret references and config files. Type: `dtpoc:ui:<ClassName>`."""

    image: ClassVar[str]
    port: ClassVar[int]
    path: ClassVar[str | None] = None
    app_name: ClassVar[str | None] = None
    service_name: ClassVar[str | None] = None
    service_port: ClassVar[int | None] = None
    env: ClassVar[Mapping[str, str]] = {}
    probe_path: ClassVar[str | None] = None
    ingress_annotations: ClassVar[Mapping[str, str]] = {}
    run_as_user: ClassVar[int | None] = None
    # Policy-scan checks the image cannot pass, with the reason (components/common.py has the shared ones).
    policy_skips: ClassVar[Mapping[str, str]] = {
        **THIRD_PARTY_IMAGE_SKIPS,
        "CKV_K8S_23": "the image runs as root (it has no user of its own)",
        "CKV_K8S_40": "the image runs as root (it has no user of its own)",
        "CKV_K8S_37": "the image runs as root and may need its default capabilities",
        "CKV2_K8S_6": OPEN_SERVER_SKIP,
    }
    component: ClassVar[str] = "ui"
    args_type: ClassVar[type[UIModuleArgs]] = UIModuleArgs

    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service
    ingress: k8s.networking.v1.Ingress | None
    endpoint: str
    url_path: str | None

    @classmethod
    def app(cls) -> str:
        return cls.app_name or kebab(cls.__name__)

    @classmethod
    def validate_class(cls) -> None:
        if not getattr(cls, "image", None):
            raise ValueError(f"{cls.__name__} must set the class attribute `image`")
        if not hasattr(cls, "port"):
            raise ValueError(f"{cls.__name__} must set the class attribute `port`")
        check_port(cls.port, f"{cls.__name__}.port")
        if cls.service_port is not None:
            check_port(cls.service_port, f"{cls.__name__}.service_port")
        check_dns_label(cls.app(), f"{cls.__name__}.app_name")
        check_dns_label(cls.service_name or cls.app(), f"{cls.__name__}.service_name")
        if cls.path is not None:
            check_path(cls.path, f"{cls.__name__}.path")
        if cls.probe_path is not None:
            check_path(cls.probe_path, f"{cls.__name__}.probe_path")

    def __init__(self, name: str, args: UIModuleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        cls = type(self)
        cls.validate_class()
        if not isinstance(args, cls.args_type):
            raise TypeError(f"{cls.__name__} takes {cls.args_type.__name__}, got {type(args).__name__}")
        super().__init__(f"dtpoc:ui:{cls.__name__}", name, None, opts)
        child = child_options(self, opts)
        app = cls.app()
        svc_name = cls.service_name or app
        svc_port = cls.service_port or cls.port

        merged_env: dict[str, pulumi.Input[str]] = {**cls.env, **args.env}
        volumes, mounts = self.extra_volumes(name, args, child)
        container = k8s.core.v1.ContainerArgs(
            name=app,
            image=args.image or cls.image,
            ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=cls.port)],
            env=[env(k, v) for k, v in merged_env.items()] + self.extra_env(args) or None,
            volume_mounts=mounts or None,
            liveness_probe=self._probe(initial_delay=30, period=30),
            readiness_probe=self._probe(initial_delay=5, period=10),
            resources=args.resources.args(),
            security_context=baseline_security_context(run_as_user=cls.run_as_user),
        )
        w = Workload(
            app=app,
            component=cls.component,
            namespace=args.namespace,
            service_name=svc_name,
            replicas=args.replicas,
            fs_group=cls.run_as_user,
            container=container,
            policy_skips=cls.policy_skips,
            volumes=volumes,
            service_ports=[service_port(svc_port, cls.port)],
            placement=args.placement,
        )
        self.deployment = deployment(f"{name}-deployment", w, child)
        self.service = service(f"{name}-service", w, child)
        self.endpoint = f"http://{svc_name}:{svc_port}"
        self.url_path = cls.path if args.ingress is not None else None
        self.ingress = None
        if cls.path is not None and args.ingress is not None:
            self.ingress = ingress(
                f"{name}-ingress",
                name=f"{app}-ingress",
                app=app,
                component=cls.component,
                namespace=args.namespace,
                path=cls.path,
                service_name=self.service.metadata.name,
                service_port_number=svc_port,
                settings=args.ingress,
                annotations=cls.ingress_annotations,
                opts=child,
            )
        self.register_outputs({"endpoint": self.endpoint, "url_path": self.url_path})

    def _probe(self, initial_delay: int, period: int) -> k8s.core.v1.ProbeArgs:
        cls = type(self)
        if cls.probe_path is None:
            return tcp_probe(cls.port, initial_delay=initial_delay, period=period)
        return http_probe(cls.probe_path, cls.port, initial_delay=initial_delay, period=period)

    def extra_env(self, args: UIModuleArgs) -> list[k8s.core.v1.EnvVarArgs]:
        """Env vars beyond plain values (e.g. `secret_env`); none by default."""
        return []

    def extra_volumes(
        self, name: str, args: UIModuleArgs, child: pulumi.ResourceOptions
    ) -> tuple[list[k8s.core.v1.VolumeArgs], list[k8s.core.v1.VolumeMountArgs]]:
        """Volumes and their mounts; may create ConfigMaps (with `child` options). None by default."""
        return [], []


# --- the platform's UI modules ----------------------------------------------------------------------


@dataclass(frozen=True)
class GrafanaArgs(UIModuleArgs):
    """Grafana reads InfluxDB as a read-only user of its bucket (`reader_secret_name`, keys `username` /
    `password`: InfluxDB makes that user at setup, see components/influxdb.py), never with InfluxDB's admin
    token or password. Its own admin is `admin` with `admin_password` (a Pulumi secret; a Secret
    `grafana-admin` of this component). `anonymous`: let anyone who reaches /grafana view dashboards (the
    seed's setting; off by default). `sensors`: the sensor inputs the provisioned "Sensors" dashboard plots
    (components/dashboards.py); none: no dashboard."""

    reader_secret_name: pulumi.Input[str] | None = None
    admin_password: pulumi.Input[str] | None = None
    influx_url: str = "http://influxdb:8086"
    influx_bucket: str = "default"
    anonymous: bool = False
    sensors: Sequence[type[SensorInput]] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reader_secret_name is None or self.admin_password is None:
            raise ValueError(
                "GrafanaArgs.reader_secret_name (InfluxDB's read-only user) and admin_password are required"
            )
        if isinstance(self.admin_password, str):
            raise ValueError("GrafanaArgs.admin_password must be a Pulumi secret Output, not a plain string")


def grafana_datasources(url: str, bucket: str) -> str:
    """Grafana's datasource provisioning file: InfluxQL over InfluxDB 2's v1 API, as the bucket's read-only
    user. `$INFLUX_READ_USER` / `$INFLUX_READ_PASSWORD` are expanded by Grafana from its env."""
    return "\n".join(
        [
            "apiVersion: 1",
            "datasources:",
            "  - name: InfluxDB",
            "    uid: influxdb",
            "    type: influxdb",
            "    access: proxy",
            f"    url: {url}",
            "    isDefault: true",
            "    user: $INFLUX_READ_USER",
            "    jsonData:",
            f"      dbName: {bucket}",
            "      httpMode: POST",
            "    secureJsonData:",
            "      password: $INFLUX_READ_PASSWORD",
            "",
        ]
    )


class Grafana(UIModule):
    """Dashboards at /grafana: logins (anonymous viewers only with `anonymous`), embeddable, the InfluxDB
    datasource provisioned with a read-only user of the bucket."""

    args_type = GrafanaArgs
    image = "grafana/grafana:11.2.0"
    port = 3000
    path = "/grafana"
    app_name = "grafana"
    service_port = 80
    run_as_user = 472  # the image's grafana user
    policy_skips: ClassVar[Mapping[str, str]] = {
        **THIRD_PARTY_IMAGE_SKIPS,
        **FIXED_UID_SKIPS,
        "CKV_K8S_35": ENV_SECRET_SKIP,
        "CKV2_K8S_6": OPEN_SERVER_SKIP,
    }
    env: ClassVar[Mapping[str, str]] = {
        "GF_SERVER_ROOT_URL": "%(protocol)s://%(domain)s:%(http_port)s/grafana/",
        # The ingress passes /grafana/... unchanged, so Grafana itself serves below the sub path.
        "GF_SERVER_SERVE_FROM_SUB_PATH": "true",
        "GF_AUTH_ANONYMOUS_HIDE_VERSION": "true",
        "GF_SECURITY_ALLOW_EMBEDDING": "true",
        "GF_USERS_ALLOW_SIGN_UP": "false",
        "GF_LOG_MODE": "console",
    }
    # The "Sensors" dashboard and its provider file, when GrafanaArgs names sensors.
    dashboards: k8s.core.v1.ConfigMap | None = None
    dashboard_providers: k8s.core.v1.ConfigMap | None = None

    def extra_env(self, args: UIModuleArgs) -> list[k8s.core.v1.EnvVarArgs]:
        assert isinstance(args, GrafanaArgs)  # checked in UIModule.__init__ (args_type)
        anonymous = [env("GF_AUTH_ANONYMOUS_ENABLED", "true" if args.anonymous else "false")]
        if args.anonymous:
            anonymous.append(env("GF_AUTH_ANONYMOUS_ORG_ROLE", "Viewer"))
        return [
            *anonymous,
            secret_env("INFLUX_READ_USER", args.reader_secret_name, "username"),
            secret_env("INFLUX_READ_PASSWORD", args.reader_secret_name, "password"),
            secret_env("GF_SECURITY_ADMIN_USER", self.admin_secret.metadata.name, "username"),
            secret_env("GF_SECURITY_ADMIN_PASSWORD", self.admin_secret.metadata.name, "password"),
        ]

    def extra_volumes(self, name, args, child):  # type: ignore[override]
        assert isinstance(args, GrafanaArgs)
        self.admin_secret = credentials_secret(
            f"{name}-admin",
            meta("grafana-admin", args.namespace, self.component, app=self.app()),
            "admin",
            args.admin_password,
            child,
        )
        self.datasources = k8s.core.v1.ConfigMap(
            f"{name}-datasources",
            metadata=meta("grafana-datasources", args.namespace, self.component, app=self.app()),
            data={"influxdb.yaml": grafana_datasources(args.influx_url, args.influx_bucket)},
            opts=child,
        )
        volumes = [config_map_volume("datasources", self.datasources.metadata.name), empty_dir("data")]
        mounts = [
            mount("datasources", "/etc/grafana/provisioning/datasources", read_only=True),
            mount("data", "/var/lib/grafana"),
        ]
        if args.sensors:
            self.dashboards = dashboards = k8s.core.v1.ConfigMap(
                f"{name}-dashboards",
                metadata=meta("grafana-dashboards", args.namespace, self.component, app=self.app()),
                data={DASHBOARD_FILE: json.dumps(sensors_dashboard(args.sensors), indent=2)},
                opts=child,
            )
            self.dashboard_providers = providers = k8s.core.v1.ConfigMap(
                f"{name}-dashboard-providers",
                metadata=meta("grafana-dashboard-providers", args.namespace, self.component, app=self.app()),
                data={"dtpoc.yaml": dashboard_providers()},
                opts=child,
            )
            # Folders, not subPath mounts: the kubelet updates them in place and the provider rereads them.
            volumes += [
                config_map_volume("dashboards", dashboards.metadata.name),
                config_map_volume("dashboard-providers", providers.metadata.name),
            ]
            mounts += [
                mount("dashboards", DASHBOARDS_PATH, read_only=True),
                mount("dashboard-providers", PROVIDERS_PATH, read_only=True),
            ]
        return volumes, mounts


@dataclass(frozen=True)
class MongoExpressArgs(UIModuleArgs):
    """Mongo Express logs into MongoDB as root and asks its users for the same credentials (basic auth),
    both read from `mongodb_secret_name` (keys `username`, `password`)."""

    mongodb_secret_name: pulumi.Input[str] | None = None
    mongodb_host: str = "mongodb"
    mongodb_port: int = 27017
    mongodb_auth_mechanism: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mongodb_secret_name is None:
            raise ValueError("MongoExpressArgs.mongodb_secret_name is required (the MongoDB Secret)")
        check_port(self.mongodb_port, "MongoExpressArgs.mongodb_port")


class MongoExpress(UIModule):
    """Mongo Express on `mongo-express:8081` (no Ingress path by default: an admin tool, port-forward it)."""

    args_type = MongoExpressArgs
    image = "mongo-express:1.0.2"
    port = 8081
    app_name = "mongo-express"
    policy_skips: ClassVar[Mapping[str, str]] = {
        **UIModule.policy_skips,
        "CKV_K8S_35": ENV_SECRET_SKIP,
        "CKV2_K8S_6": "an admin tool reached by port-forward; MongoDB's own policy admits it",
    }

    def extra_env(self, args: UIModuleArgs) -> list[k8s.core.v1.EnvVarArgs]:
        assert isinstance(args, MongoExpressArgs)  # checked in UIModule.__init__ (args_type)
        secret = args.mongodb_secret_name
        if args.mongodb_auth_mechanism:
            # A mechanism can only be named in a connection URL, which then replaces SERVER/PORT; the kubelet
            # fills in the credentials from the two variables above it.
            user, password = "ME_CONFIG_MONGODB_ADMINUSERNAME", "ME_CONFIG_MONGODB_ADMINPASSWORD"
            database = [
                secret_env(user, secret, "username"),
                secret_env(password, secret, "password"),
                env(
                    "ME_CONFIG_MONGODB_URL",
                    f"mongodb://$({user}):$({password})@{args.mongodb_host}:{args.mongodb_port}/"
                    f"?authMechanism={args.mongodb_auth_mechanism}",
                ),
                env("ME_CONFIG_MONGODB_ENABLE_ADMIN", "true"),
            ]
        else:
            database = [
                env("ME_CONFIG_MONGODB_SERVER", args.mongodb_host),
                env("ME_CONFIG_MONGODB_PORT", str(args.mongodb_port)),
                env("ME_CONFIG_MONGODB_ENABLE_ADMIN", "true"),
                secret_env("ME_CONFIG_MONGODB_ADMINUSERNAME", secret, "username"),
                secret_env("ME_CONFIG_MONGODB_ADMINPASSWORD", secret, "password"),
            ]
        return [
            *database,
            env("ME_CONFIG_BASICAUTH", "true"),
            secret_env("ME_CONFIG_BASICAUTH_USERNAME", secret, "username"),
            secret_env("ME_CONFIG_BASICAUTH_PASSWORD", secret, "password"),
        ]


@dataclass(frozen=True)
class FrontendArgs(UIModuleArgs):
    """`api_read_token_secret_name`: the orchestrator API's read-only token (key `token`), which the
    frontend's server sends with its reads (`ORCHESTRATOR_TOKEN`); it can change nothing."""

    api_read_token_secret_name: pulumi.Input[str] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.api_read_token_secret_name is None:
            raise ValueError("FrontendArgs.api_read_token_secret_name is required (the API's read token)")


class DigitalHospFrontend(UIModule):
    """The digital-hospital frontend at /, reading from the orchestrator API (`ORCHESTRATOR_URL`) with its
    read-only token (`ORCHESTRATOR_TOKEN`)."""

    args_type = FrontendArgs
    # No version of the frontend is published but `latest`; set frontendImage to the build you reviewed.
    image = "ghcr.io/cam-digital-hospitals/digital-hosp-frontend:0.1.0"
    port = 8000
    path = "/"
    app_name = "digital-hosp-frontend"
    service_name = "digital-hosp-frontend-svc"
    policy_skips: ClassVar[Mapping[str, str]] = {
        **UIModule.policy_skips,
        "CKV_K8S_35": ENV_SECRET_SKIP,
    }
    probe_path = "/"
    env: ClassVar[Mapping[str, str]] = {
        "ORCHESTRATOR_URL": "http://orchestrator-api-svc/api/orchestrator/v1alpha1"
    }

    def extra_env(self, args: UIModuleArgs) -> list[k8s.core.v1.EnvVarArgs]:
        assert isinstance(args, FrontendArgs)  # checked in UIModule.__init__ (args_type)
        return [secret_env("ORCHESTRATOR_TOKEN", args.api_read_token_secret_name, "token")]
