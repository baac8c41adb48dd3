"""InfluxDB 2: the sensor time series. Set up on first start by the image's DOCKER_INFLUXDB_INIT_* variables
(org, bucket, admin user and token); the password and the admin token come from this component's Secret.

Readers get less: the image runs the scripts in /docker-entrypoint-initdb.d once, right after its setup, and
ours makes a v1 (InfluxQL) user that may read the bucket and nothing else. Its credentials are a Secret
of their own (`grafana-influxdb-reader`), the only InfluxDB credential Grafana holds. Its password is
derived from the admin token (HMAC), so a stack needs no extra secret and the value stays the same from one
`up` to the next; it cannot be turned back into the token. The script runs on a fresh volume only: on an
InfluxDB set up before, make the user once with the command in the script (README).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .common import (
    ANYWHERE,
    ENV_SECRET_SKIP,
    MEDIUM,
    PASSWORD_KEY,
    ROOT_ENTRYPOINT_SKIPS,
    THIRD_PARTY_IMAGE_SKIPS,
    USERNAME_KEY,
    Placement,
    Resources,
    Workload,
    baseline_security_context,
    check_dns_label,
    child_options,
    claim_or_empty_dir,
    config_map_volume,
    credentials_secret,
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
TOKEN_KEY = "token"  # noqa: S105 (a key name, not a value)
READER_USERNAME = "grafana"
INIT_DIR = "/docker-entrypoint-initdb.d"

# Run once by the image after its setup, with the CLI configured as the admin: a v1 user for InfluxQL reads
# of the bucket only (the InfluxQL database of a bucket is its name: InfluxDB 2 maps it by itself).
READER_SCRIPT = """#!/bin/sh
set -eu
bucket_id=$(influx bucket list --name "$DOCKER_INFLUXDB_INIT_BUCKET" --hide-headers | cut -f1)
influx v1 auth create \\
  --username "$INFLUX_READ_USER" --password "$INFLUX_READ_PASSWORD" \\
  --read-bucket "$bucket_id" \\
  --description "read-only: bucket $DOCKER_INFLUXDB_INIT_BUCKET (Grafana)"
"""


def derived_secret(root: str, purpose: str) -> str:
    """A credential derived from `root` for one `purpose` (HMAC-SHA256, hex): stable, and useless for
    recovering `root`."""
    return hmac.new(root.encode(), f"dtpoc:{purpose}".encode(), hashlib.sha256).hexdigest()


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
    reader_secret_name: str = "grafana-influxdb-reader"  # noqa: S105 (a name, not a value)
    resources: Resources = MEDIUM
    placement: Placement = ANYWHERE

    def __post_init__(self) -> None:
        check_dns_label(self.service_name, "InfluxDBArgs.service_name")
        check_dns_label(self.secret_name, "InfluxDBArgs.secret_name")
        check_dns_label(self.reader_secret_name, "InfluxDBArgs.reader_secret_name")
        for what in ("admin_username", "org", "bucket"):
            if not getattr(self, what):
                raise ValueError(f"InfluxDBArgs.{what} must not be empty")
        for what in ("admin_password", "admin_token"):
            if isinstance(getattr(self, what), str):
                raise ValueError(f"InfluxDBArgs.{what} must be a Pulumi secret Output, not a plain string")


class InfluxDB(pulumi.ComponentResource):
    """Deployment `influxdb` + Service `influxdb:8086` + Secret (`username`, `password`, `token`) + the
    read-only user's Secret (`reader_secret_name`: `username`, `password`) and the script that makes it."""

    service_name: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    reader_secret_name: pulumi.Output[str]
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

        self.secret = credentials_secret(
            f"{name}-credentials",
            meta(args.secret_name, args.namespace, component, app=app),
            args.admin_username,
            args.admin_password,
            child,
            **{TOKEN_KEY: args.admin_token},
        )
        self.secret_name = self.secret.metadata.name
        reader_password = pulumi.Output.secret(args.admin_token).apply(
            lambda token: derived_secret(token, "influxdb-reader")
        )
        self.reader_secret = credentials_secret(
            f"{name}-reader",
            meta(args.reader_secret_name, args.namespace, component, app=app),
            READER_USERNAME,
            reader_password,
            child,
        )
        self.reader_secret_name = self.reader_secret.metadata.name
        self.init_scripts = k8s.core.v1.ConfigMap(
            f"{name}-init",
            metadata=meta("influxdb-init", args.namespace, component, app=app),
            data={"grafana-reader.sh": READER_SCRIPT},
            opts=child,
        )
        init_volume = config_map_volume("init", self.init_scripts.metadata.name, mode=0o555)

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
                    secret_env("INFLUX_READ_USER", self.reader_secret_name, USERNAME_KEY),
                    secret_env("INFLUX_READ_PASSWORD", self.reader_secret_name, PASSWORD_KEY),
                ],
                # InfluxDB 2 keeps its data in /var/lib/influxdb2 and the CLI config written by the setup in
                # /etc/influxdb2: both on the claim, or a restart would run the setup again on empty data.
                volume_mounts=[
                    mount("data", "/var/lib/influxdb2", sub_path="data"),
                    mount("data", "/etc/influxdb2", sub_path="config"),
                    mount("init", INIT_DIR, read_only=True),
                ],
                liveness_probe=http_probe("/health", PORT, initial_delay=20, period=20),
                readiness_probe=http_probe("/ready", PORT, initial_delay=5, period=10),
                resources=args.resources.args(),
                security_context=baseline_security_context(),
            ),
            volumes=[claim_or_empty_dir("data", args.claim_name), init_volume],
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
            {
                "service_name": self.service_name,
                "secret_name": self.secret_name,
                "reader_secret_name": self.reader_secret_name,
                "url": self.url,
            }
        )
