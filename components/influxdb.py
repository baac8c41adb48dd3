"""InfluxDB 2: the sensor time series. Set up on first start by the image's DOCKER_INFLUXDB_INIT_* variables
(org, bucket, admin user and token); the password and the admin token come from this component's Secret."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .common import (
    ANYWHERE,
    ENV_SECRET_SKIP,
    MEDIUM,
    ROOT_ENTRYPOINT_SKIPS,
    THIRD_PARTY_IMAGE_SKIPS,
    Placement,
    Resources,
    Workload,
    baseline_security_context,
    check_dns_label,
    child_options,
    claim_or_empty_dir,
    deployment,
    env,
    http_probe,
    meta,
    mount,
    secret_env,
    service,
    service_port,
)

PORT = 8086
USERNAME_KEY = "username"
PASSWORD_KEY = "password"  # noqa: S105 (a key name, not a value)
TOKEN_KEY = "token"  # noqa: S105 (a key name, not a value)


@dataclass(frozen=True)
class InfluxDBArgs:
    namespace: str
    admin_password: pulumi.Input[str]
    admin_token: pulumi.Input[str]
    admin_username: str = "admin"
    org: str = "camdt"
    bucket: str = "default"
    claim_name: pulumi.Input[str] | None = None
    image: str = "influxdb:2.7-alpine"
    service_name: str = "influxdb"
    secret_name: str = "influxdb-credentials"  # noqa: S105 (a key name, not a value)
    resources: Resources = MEDIUM
    placement: Placement = ANYWHERE

    def __post_init__(self) -> None:
        check_dns_label(self.service_name, "InfluxDBArgs.service_name")
        check_dns_label(self.secret_name, "InfluxDBArgs.secret_name")
        for what in ("admin_username", "org", "bucket"):
            if not getattr(self, what):
                raise ValueError(f"InfluxDBArgs.{what} must not be empty")
        for what in ("admin_password", "admin_token"):
            if isinstance(getattr(self, what), str):
                raise ValueError(f"InfluxDBArgs.{what} must be a Pulumi secret Output, not a plain string")


class InfluxDB(pulumi.ComponentResource):
    """Deployment `influxdb` + Service `influxdb:8086` + Secret (`username`, `password`, `token`)."""

    service_name: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    url: str
    org: str
    bucket: str
    token_key: str = TOKEN_KEY
    username_key: str = USERNAME_KEY
    password_key: str = PASSWORD_KEY

    def __init__(self, name: str, args: InfluxDBArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dtpoc:influxdb:InfluxDB", name, None, opts)
        child = child_options(self, opts)
        app, component = "influxdb", "database"

        self.secret = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=meta(args.secret_name, args.namespace, component, app=app),
            type="Opaque",
            string_data={
                USERNAME_KEY: args.admin_username,
                PASSWORD_KEY: pulumi.Output.secret(args.admin_password),
                TOKEN_KEY: pulumi.Output.secret(args.admin_token),
            },
            opts=child,
        )
        self.secret_name = self.secret.metadata.name

        w = Workload(
            app=app,
            component=component,
            namespace=args.namespace,
            service_name=args.service_name,
            recreate=True,
            container=k8s.core.v1.ContainerArgs(
                name="influxdb",
                image=args.image,
                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
                env=[
                    env("DOCKER_INFLUXDB_INIT_MODE", "setup"),
                    secret_env("DOCKER_INFLUXDB_INIT_USERNAME", self.secret_name, USERNAME_KEY),
                    secret_env("DOCKER_INFLUXDB_INIT_PASSWORD", self.secret_name, PASSWORD_KEY),
                    env("DOCKER_INFLUXDB_INIT_ORG", args.org),
                    env("DOCKER_INFLUXDB_INIT_BUCKET", args.bucket),
                    secret_env("DOCKER_INFLUXDB_INIT_ADMIN_TOKEN", self.secret_name, TOKEN_KEY),
                ],
                # InfluxDB 2 keeps its data in /var/lib/influxdb2 and the CLI config written by the setup in
                # /etc/influxdb2: both on the claim, or a restart would run the setup again on empty data.
                volume_mounts=[
                    mount("data", "/var/lib/influxdb2", sub_path="data"),
                    mount("data", "/etc/influxdb2", sub_path="config"),
                ],
                liveness_probe=http_probe("/health", PORT, initial_delay=20, period=20),
                readiness_probe=http_probe("/ready", PORT, initial_delay=5, period=10),
                resources=args.resources.args(),
                security_context=baseline_security_context(),
            ),
            volumes=[claim_or_empty_dir("data", args.claim_name)],
            service_ports=[service_port(PORT, PORT)],
            policy_skips={
                **THIRD_PARTY_IMAGE_SKIPS,
                **ROOT_ENTRYPOINT_SKIPS,
                "CKV_K8S_35": ENV_SECRET_SKIP,
            },
            placement=args.placement,
        )
        self.deployment = deployment(f"{name}-deployment", w, child)
        self.service = service(f"{name}-service", w, child)
        self.service_name = self.service.metadata.name
        self.url = f"http://{args.service_name}:{PORT}"
        self.org = args.org
        self.bucket = args.bucket
        self.register_outputs(
            {"service_name": self.service_name, "secret_name": self.secret_name, "url": self.url}
        )
