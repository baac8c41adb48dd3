"""The sensor simulator: a Deployment publishing realistic readings of the platform's sensors to its broker,
in the seed's topic and JSON shape (`simulators/sensors/`), so that a stack without real sensors shows live
data (config `sensorSimulator`; the local stack turns it on). It publishes as the broker's publisher."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from .common import (
    ANYWHERE,
    SMALL,
    Placement,
    Resources,
    Workload,
    child_options,
    deployment,
    env,
    restricted_security_context,
    secret_env,
)

# The kinds the simulator can make readings for (its own profiles), by sensor name: a sensor input of
# another kind is left to real devices.
SIMULATED_KINDS = ("light", "temp", "co2")
NO_PROBE = "a publisher with no port to probe; it reconnects to the broker by itself (its log says when)"


@dataclass(frozen=True)
class SensorSimulatorArgs:
    """`devices`: sensor kind -> how many devices of it publish (kinds of SIMULATED_KINDS only)."""

    namespace: str
    image: str
    publisher_secret_name: pulumi.Input[str]
    devices: Mapping[str, int] = field(default_factory=lambda: {"light": 3, "temp": 3})
    broker_url: str = "tcp://mosquitto:1883"
    topic_prefix: str = "CamDT/DC1/IfM"
    interval_seconds: float = 5.0
    resources: Resources = SMALL
    placement: Placement = ANYWHERE

    def __post_init__(self) -> None:
        unknown = sorted(set(self.devices) - set(SIMULATED_KINDS))
        if unknown:
            raise ValueError(
                f"SensorSimulatorArgs.devices: the simulator knows {', '.join(SIMULATED_KINDS)}, "
                f"not {unknown}"
            )
        if not self.devices or any(n < 1 for n in self.devices.values()):
            raise ValueError("SensorSimulatorArgs.devices must name at least one kind, each with >= 1 device")
        if self.interval_seconds <= 0:
            raise ValueError("SensorSimulatorArgs.interval_seconds must be positive")


class SensorSimulator(pulumi.ComponentResource):
    """Deployment `sensor-simulator` (no Service: it only publishes)."""

    def __init__(
        self, name: str, args: SensorSimulatorArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dtpoc:sensors:SensorSimulator", name, None, opts)
        child = child_options(self, opts)
        sensors = ",".join(f"{kind}={count}" for kind, count in sorted(args.devices.items()))
        w = Workload(
            app="sensor-simulator",
            component="data-input",
            namespace=args.namespace,
            container=k8s.core.v1.ContainerArgs(
                name="simulator",
                image=args.image,
                env=[
                    env("MQTT_URL", args.broker_url),
                    env("TOPIC_PREFIX", args.topic_prefix),
                    env("SENSORS", sensors),
                    env("INTERVAL_SECONDS", str(args.interval_seconds)),
                    secret_env("MQTT_USERNAME", args.publisher_secret_name, "username"),
                    secret_env("MQTT_PASSWORD", args.publisher_secret_name, "password"),
                ],
                resources=args.resources.args(),
                security_context=restricted_security_context(),
            ),
            policy_skips={
                "CKV_K8S_35": "the simulator reads the broker's login from its environment",
                "CKV2_K8S_6": "a client only (it publishes to the broker); nothing connects to it",
                "CKV_K8S_8": NO_PROBE,
                "CKV_K8S_9": NO_PROBE,
            },
            placement=args.placement,
        )
        self.deployment = deployment(f"{name}-deployment", w, child)
        self.register_outputs({})
