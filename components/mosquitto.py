"""Mosquitto: the in-cluster MQTT broker the sensors publish to and Telegraf / Node-RED read from."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .common import (
    ANYWHERE,
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
    deployment,
    meta,
    mount,
    service,
    service_port,
    tcp_probe,
)

PORT = 1883
# The image's own user (eclipse-mosquitto); running as it from the start needs no privilege switch.
MOSQUITTO_UID = 1883


def mosquitto_conf(port: int = PORT, allow_anonymous: bool = True) -> str:
    return "\n".join(
        [
            f"listener {port}",
            # Sensors publish without credentials, as in the seed; only the cluster reaches the broker.
            f"allow_anonymous {'true' if allow_anonymous else 'false'}",
            "persistence true",
            "persistence_location /mosquitto/data/",
            "log_dest stdout",
            "",
        ]
    )


@dataclass(frozen=True)
class MosquittoArgs:
    """`claim_name`: where retained messages and persistent sessions survive a restart (None: emptyDir)."""

    namespace: str
    claim_name: pulumi.Input[str] | None = None
    image: str = "eclipse-mosquitto:2.0"
    service_name: str = "mosquitto"
    allow_anonymous: bool = True
    resources: Resources = SMALL
    placement: Placement = ANYWHERE

    def __post_init__(self) -> None:
        check_dns_label(self.service_name, "MosquittoArgs.service_name")


class Mosquitto(pulumi.ComponentResource):
    """ConfigMap `mosquitto-config` (mosquitto.conf) + Deployment + Service `mosquitto:1883`."""

    service_name: pulumi.Output[str]
    url: str

    def __init__(self, name: str, args: MosquittoArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dtpoc:mosquitto:Mosquitto", name, None, opts)
        child = child_options(self, opts)
        app, component = "mosquitto", "broker"

        self.config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=meta("mosquitto-config", args.namespace, component, app=app),
            data={"mosquitto.conf": mosquitto_conf(PORT, args.allow_anonymous)},
            opts=child,
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
            },
            fs_group=MOSQUITTO_UID,
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
                    mount("data", "/mosquitto/data"),
                ],
                liveness_probe=tcp_probe(PORT),
                readiness_probe=tcp_probe(PORT, initial_delay=2, period=10),
                resources=args.resources.args(),
                security_context=baseline_security_context(run_as_user=MOSQUITTO_UID),
            ),
            volumes=[
                config_map_volume("config", self.config.metadata.name),
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
