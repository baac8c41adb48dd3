"""Telegraf sensor inputs: MQTT readings into InfluxDB. A sensor input is a subclass that names its sensor,
measurement and field; the base class renders telegraf.conf (a ConfigMap) and runs Telegraf with it.

    class Co2Sensor(SensorInput):
        sensor = "co2"
        measurement = "co2_reading"
        field = "ppm"
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import pulumi
import pulumi_kubernetes as k8s

from .common import (
    ANYWHERE,
    ENV_SECRET_SKIP,
    ROOT_ENTRYPOINT_SKIPS,
    SMALL,
    THIRD_PARTY_IMAGE_SKIPS,
    Placement,
    Resources,
    Workload,
    baseline_security_context,
    check_dns_label,
    child_options,
    config_map_volume,
    deployment,
    http_probe,
    meta,
    mount,
    secret_env,
)

IN_CLUSTER_BROKER = "tcp://mosquitto:1883"
# The seed's broker: public and shared, for demos with the seed's sensors only.
PUBLIC_BROKER = "tcp://test.mosquitto.org:1883"
SEED_TOPIC = "CamDT/DC1/IfM/#"
HEALTH_PORT = 8080
TOKEN_ENV = "INFLUX_TOKEN"  # noqa: S105 (a key name, not a value)
_BROKER = re.compile(r"^(tcp|ssl|ws|wss|mqtt|mqtts)://[A-Za-z0-9.\-]+(:[0-9]{1,5})?/?$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_FIELD_TYPES = ("float", "int", "uint", "string", "bool")


def load_sensor_class(ref: str) -> type[SensorInput]:
    """The SensorInput subclass `package.module:ClassName` (config `sensorClasses`), imported from the
    program's folder."""
    module_name, _, class_name = ref.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"sensorClasses: {ref!r} must be `package.module:ClassName`")
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"sensorClasses: cannot import {ref!r}: {e}") from e
    if not (isinstance(found, type) and issubclass(found, SensorInput)):
        raise ValueError(f"sensorClasses: {ref!r} is not a SensorInput subclass")
    found.validate_class()
    return found


def check_broker_url(url: str, what: str = "broker_url") -> str:
    if not _BROKER.match(url):
        raise ValueError(
            f"{what} must look like tcp://host:1883 (schemes tcp, ssl, ws, wss, mqtt, mqtts), got {url!r}"
        )
    return url


def toml_str(value: str) -> str:
    """A TOML basic string (JSON string escapes are valid TOML)."""
    return json.dumps(value)


@dataclass(frozen=True)
class SensorInputArgs:
    """Where readings come from and go to. The InfluxDB token reaches Telegraf as env `INFLUX_TOKEN` from
    `influx_secret_name`/`influx_token_key`; telegraf.conf refers to it as `${INFLUX_TOKEN}`."""

    namespace: str
    influx_secret_name: pulumi.Input[str]
    influx_token_key: str = "token"  # noqa: S105 (a key name, not a value)
    broker_url: str = IN_CLUSTER_BROKER
    influx_url: str = "http://influxdb:8086"
    org: str = "camdt"
    bucket: str = "default"
    image: str = "telegraf:1.37"
    resources: Resources = SMALL
    placement: Placement = ANYWHERE

    def __post_init__(self) -> None:
        check_broker_url(self.broker_url, "SensorInputArgs.broker_url")
        if not self.influx_url.startswith(("http://", "https://")):
            raise ValueError(f"SensorInputArgs.influx_url must be an http(s) URL, got {self.influx_url!r}")
        if not self.org or not self.bucket:
            raise ValueError("SensorInputArgs.org and bucket must not be empty")


class SensorInput(pulumi.ComponentResource):
    """Base class: ConfigMap `di-<sensor>-config` (telegraf.conf) + Deployment `di-<sensor>`.

    Subclasses set `sensor`, `measurement` and `field`; optionally `field_type`, `topics`, `tag`,
    `timestamp_path`, `timestamp_format`, and for its dashboard panel `title` and `unit`. The component
    type is `dtpoc:telegraf:<ClassName>`."""

    sensor: ClassVar[str]
    measurement: ClassVar[str]
    field: ClassVar[str]
    field_type: ClassVar[str] = "float"
    topics: ClassVar[Sequence[str]] = (SEED_TOPIC,)
    tag: ClassVar[str | None] = "machine"
    timestamp_path: ClassVar[str | None] = "timestamp"
    timestamp_format: ClassVar[str] = "2006-01-02T15:04:05.000Z"
    # The sensor's panel on the Sensors dashboard (components/dashboards.py): its title (default: the
    # sensor and field names) and Grafana's unit id for the values (e.g. "lux", "celsius", "ppm").
    title: ClassVar[str | None] = None
    unit: ClassVar[str | None] = None

    deployment_name: str
    config_map_name: str

    @classmethod
    def validate_class(cls) -> None:
        for attr in ("sensor", "measurement", "field"):
            if not getattr(cls, attr, None):
                raise ValueError(f"{cls.__name__} must set the class attribute `{attr}`")
        check_dns_label(f"di-{cls.sensor}-config", f"{cls.__name__}.sensor")
        for attr in ("measurement", "field"):
            if not _IDENT.match(getattr(cls, attr)):
                raise ValueError(f"{cls.__name__}.{attr} must be an identifier, got {getattr(cls, attr)!r}")
        if cls.field_type not in _FIELD_TYPES:
            raise ValueError(
                f"{cls.__name__}.field_type must be one of {_FIELD_TYPES}, got {cls.field_type!r}"
            )
        if not cls.topics or isinstance(cls.topics, str):
            raise ValueError(f"{cls.__name__}.topics must be a non-empty list of MQTT topics")

    def __init__(self, name: str, args: SensorInputArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        type(self).validate_class()
        super().__init__(f"dtpoc:telegraf:{type(self).__name__}", name, None, opts)
        child = child_options(self, opts)
        app, component = f"di-{self.sensor}", "data-input"
        self.deployment_name = app
        self.config_map_name = f"{app}-config"

        self.config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=meta(self.config_map_name, args.namespace, component, app=app),
            data={"telegraf.conf": self.telegraf_conf(args)},
            opts=child,
        )
        w = Workload(
            app=app,
            component=component,
            namespace=args.namespace,
            recreate=True,  # one MQTT session per client id: never two pods of a sensor at once
            container=k8s.core.v1.ContainerArgs(
                name="telegraf",
                image=args.image,
                env=[secret_env(TOKEN_ENV, args.influx_secret_name, args.influx_token_key)],
                ports=[k8s.core.v1.ContainerPortArgs(name="health", container_port=HEALTH_PORT)],
                volume_mounts=[
                    mount("config", "/etc/telegraf/telegraf.conf", sub_path="telegraf.conf", read_only=True)
                ],
                liveness_probe=http_probe("/", HEALTH_PORT, initial_delay=10, period=30),
                readiness_probe=http_probe("/", HEALTH_PORT, initial_delay=5, period=10),
                resources=args.resources.args(),
                security_context=baseline_security_context(),
            ),
            volumes=[config_map_volume("config", self.config.metadata.name)],
            policy_skips={
                **THIRD_PARTY_IMAGE_SKIPS,
                **ROOT_ENTRYPOINT_SKIPS,
                "CKV_K8S_35": ENV_SECRET_SKIP,
                "CKV2_K8S_6": "a client only (MQTT in, InfluxDB out); nothing connects to it but the kubelet",
            },
            placement=args.placement,
        )
        self.deployment = deployment(f"{name}-deployment", w, child)
        self.register_outputs(
            {"deployment_name": self.deployment_name, "config_map_name": self.config_map_name}
        )

    def telegraf_conf(self, args: SensorInputArgs) -> str:
        """The whole telegraf.conf: MQTT (json_v2) in, stdout and InfluxDB 2 out, a health endpoint."""
        parser = [
            "[[inputs.mqtt_consumer.json_v2]]",
            f"  measurement_name = {toml_str(self.measurement)}",
        ]
        if self.timestamp_path:
            parser += [
                f"  timestamp_path = {toml_str(self.timestamp_path)}",
                f"  timestamp_format = {toml_str(self.timestamp_format)}",
            ]
        parser += [
            "  [[inputs.mqtt_consumer.json_v2.field]]",
            f"    path = {toml_str(self.field)}",
            f"    type = {toml_str(self.field_type)}",
            # The inputs share the seed's topic: another sensor's reading has no such field and makes no
            # metric here (not an error). A message that is not JSON, or a value of the wrong type, is
            # logged and dropped; the input goes on.
            "    optional = true",
        ]
        if self.tag:
            parser += [
                "  [[inputs.mqtt_consumer.json_v2.tag]]",
                f"    path = {toml_str(self.tag)}",
                '    type = "string"',
            ]
        topics = ", ".join(toml_str(t) for t in self.topics)
        return "\n".join(
            [
                "[agent]",
                '  interval = "10s"',
                "  round_interval = true",
                # Readings are written within a second (live dashboards); at most this many wait in memory
                # while InfluxDB is away, and none of them is acknowledged to the broker before it is written.
                '  flush_interval = "1s"',
                "  metric_buffer_limit = 10000",
                '  collection_jitter = "0s"',
                '  flush_jitter = "0s"',
                '  precision = ""',
                "  debug = false",
                "  quiet = false",
                # The pod's name would be a new series on every restart; `machine` names the sensor.
                "  omit_hostname = true",
                "",
                "[[inputs.mqtt_consumer]]",
                f"  servers = [{toml_str(args.broker_url)}]",
                f"  topics = [{topics}]",
                '  data_format = "json_v2"',
                '  topic_tag = ""',
                "  qos = 1",
                # A session the broker keeps while Telegraf restarts, and acknowledgements only once InfluxDB
                # took the reading: no acknowledged reading is lost to a Telegraf or InfluxDB restart.
                "  persistent_session = true",
                f"  client_id = {toml_str(f'dtpoc-di-{self.sensor}')}",
                # The broker may come up after Telegraf: keep trying instead of exiting.
                '  startup_error_behavior = "retry"',
                "",
                *parser,
                "",
                "[[outputs.file]]",
                '  files = ["stdout"]',
                "",
                "[[outputs.influxdb_v2]]",
                f"  urls = [{toml_str(args.influx_url)}]",
                # Telegraf substitutes env variables in its config: the token is never in the ConfigMap.
                f'  token = "${{{TOKEN_ENV}}}"',
                f"  organization = {toml_str(args.org)}",
                f"  bucket = {toml_str(args.bucket)}",
                '  startup_error_behavior = "retry"',
                "",
                "[[outputs.health]]",
                f'  service_address = "http://:{HEALTH_PORT}"',
                "",
            ]
        )


class LightSensor(SensorInput):
    """The seed's light sensor: `lux` readings as measurement `light_reading`."""

    sensor = "light"
    measurement = "light_reading"
    field = "lux"
    title = "Light (lux)"
    unit = "lux"


class TempSensor(SensorInput):
    """The seed's temperature sensor: `temp` readings as measurement `temperature_reading`."""

    sensor = "temp"
    measurement = "temperature_reading"
    field = "temp"
    title = "Temperature (°C)"
    unit = "celsius"
