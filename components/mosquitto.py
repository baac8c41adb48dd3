"""Mosquitto: the in-cluster MQTT broker the sensors publish to and Telegraf / Node-RED read from.

Reading is open to the cluster's clients (Telegraf subscribes without credentials, as in the seed);
publishing needs the publisher's login (`mqttUsername` / the secret `mqttPassword`): the ACL lets anonymous
clients read only. The password file is made at start by an init container (`mosquitto_passwd`, from the
Secret `mosquitto-publisher`) into a memory volume, so no password hash sits in a ConfigMap."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .common import (
    ANYWHERE,
    ENV_SECRET_SKIP,
    FIXED_UID_SKIPS,
    SMALL,
    THIRD_PARTY_IMAGE_SKIPS,
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
    meta,
    mount,
    secret_env,
    service,
    service_port,
    tcp_probe,
)

PORT = 1883
# The image's own user (eclipse-mosquitto); running as it from the start needs no privilege switch.
MOSQUITTO_UID = 1883
PASSWORD_FILE = "/mosquitto/auth/passwd"  # noqa: S105 (a path, not a value)
ACL_FILE = "/mosquitto/config/acl"
MAX_QUEUED_MESSAGES = 100_000


def mosquitto_conf(port: int = PORT) -> str:
    return "\n".join(
        [
            f"listener {port}",
            # Anonymous clients may connect; the ACL lets them read only.
            "allow_anonymous true",
            f"password_file {PASSWORD_FILE}",
            f"acl_file {ACL_FILE}",
            # Per client, what waits beyond the messages in flight: a subscriber's persistent session
            # (Telegraf's) holds this many readings through a burst or while it restarts; Mosquitto's
            # default of 1,000 would drop the rest of a burst it has already acknowledged to the publisher.
            f"max_queued_messages {MAX_QUEUED_MESSAGES}",
            "persistence true",
            "persistence_location /mosquitto/data/",
            "log_dest stdout",
            "",
        ]
    )


def mosquitto_acl(publisher: str) -> str:
    """Lines before the first `user` apply to anonymous clients."""
    return "\n".join(
        [
            "# anonymous clients (Telegraf, Node-RED): subscribe only",
            "topic read #",
            "",
            f"user {publisher}",
            "topic readwrite #",
            "",
        ]
    )


@dataclass(frozen=True)
class MosquittoArgs:
    """`claim_name`: where retained messages and persistent sessions survive a restart (None: emptyDir).
    `publisher_password`: a Pulumi secret, the login (with `publisher_username`) that may publish."""

    namespace: str
    publisher_password: pulumi.Input[str]
    publisher_username: str = "publisher"
    claim_name: pulumi.Input[str] | None = None
    image: str = "eclipse-mosquitto:2.0"
    service_name: str = "mosquitto"
    resources: Resources = SMALL
    placement: Placement = ANYWHERE

    def __post_init__(self) -> None:
        check_dns_label(self.service_name, "MosquittoArgs.service_name")
        if isinstance(self.publisher_password, str):
            raise ValueError("MosquittoArgs.publisher_password must be a Pulumi secret Output, not a string")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.publisher_username):
            raise ValueError(
                "MosquittoArgs.publisher_username: letters, digits, '_.-' only, "
                f"got {self.publisher_username!r}"
            )


class Mosquitto(pulumi.ComponentResource):
    """ConfigMap `mosquitto-config` (mosquitto.conf, acl), Secret `mosquitto-publisher`, Deployment, Service
    `mosquitto:1883`."""

    service_name: pulumi.Output[str]
    url: str

    def __init__(self, name: str, args: MosquittoArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dtpoc:mosquitto:Mosquitto", name, None, opts)
        child = child_options(self, opts)
        app, component = "mosquitto", "broker"

        self.config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=meta("mosquitto-config", args.namespace, component, app=app),
            data={"mosquitto.conf": mosquitto_conf(PORT), "acl": mosquitto_acl(args.publisher_username)},
            opts=child,
        )
        self.publisher_secret = credentials_secret(
            f"{name}-publisher",
            meta("mosquitto-publisher", args.namespace, component, app=app),
            args.publisher_username,
            args.publisher_password,
            child,
        )
        secret_name = self.publisher_secret.metadata.name
        password_file = k8s.core.v1.ContainerArgs(
            name="password-file",
            image=args.image,
            command=[
                "sh",
                "-c",
                f'mosquitto_passwd -c -b {PASSWORD_FILE} "$MQTT_USERNAME" "$MQTT_PASSWORD"',
            ],
            env=[
                secret_env("MQTT_USERNAME", secret_name, "username"),
                secret_env("MQTT_PASSWORD", secret_name, "password"),
            ],
            volume_mounts=[mount("auth", "/mosquitto/auth")],
            resources=Resources("10m", "16Mi", "100m", "32Mi").args(),
            security_context=baseline_security_context(run_as_user=MOSQUITTO_UID),
        )
        w = Workload(
            app=app,
            component=component,
            namespace=args.namespace,
            service_name=args.service_name,
            recreate=args.claim_name is not None,
            policy_skips={
                **THIRD_PARTY_IMAGE_SKIPS,
                **FIXED_UID_SKIPS,
                "CKV2_K8S_6": "MQTT publishers (sensors, Node-RED, other namespaces) connect from anywhere",
                "CKV_K8S_35": ENV_SECRET_SKIP,
            },
            fs_group=MOSQUITTO_UID,
            init_containers=[password_file],
            container=k8s.core.v1.ContainerArgs(
                name="mosquitto",
                image=args.image,
                ports=[k8s.core.v1.ContainerPortArgs(name="mqtt", container_port=PORT)],
                volume_mounts=[
                    mount(
                        "config",
                        "/mosquitto/config/mosquitto.conf",
                        sub_path="mosquitto.conf",
                        read_only=True,
                    ),
                    mount("config", ACL_FILE, sub_path="acl", read_only=True),
                    mount("auth", "/mosquitto/auth", read_only=True),
                    mount("data", "/mosquitto/data"),
                ],
                liveness_probe=tcp_probe(PORT),
                readiness_probe=tcp_probe(PORT, initial_delay=2, period=10),
                resources=args.resources.args(),
                security_context=baseline_security_context(run_as_user=MOSQUITTO_UID),
            ),
            volumes=[
                config_map_volume("config", self.config.metadata.name),
                k8s.core.v1.VolumeArgs(
                    name="auth",
                    empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(medium="Memory", size_limit="1Mi"),
                ),
                claim_or_empty_dir("data", args.claim_name),
            ],
            service_ports=[service_port(PORT, PORT, name="mqtt")],
            placement=args.placement,
        )
        self.deployment = deployment(f"{name}-deployment", w, child)
        self.service = service(f"{name}-service", w, child)
        self.service_name = self.service.metadata.name
        self.url = f"tcp://{args.service_name}:{PORT}"
        self.register_outputs({"service_name": self.service_name, "url": self.url})
