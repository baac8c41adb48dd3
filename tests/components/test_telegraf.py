"""Telegraf sensor inputs: the seed's light and temp sensors, the broker option, and a subclass."""

from __future__ import annotations

import tomllib

import pytest

from components.telegraf import (
    PUBLIC_BROKER,
    LightSensor,
    SensorInput,
    SensorInputArgs,
    TempSensor,
    load_sensor_class,
)
from examples.co2_sensor import Co2Sensor

from .harness import run_program
from .k8s import container, env_of, mounts_of, probe, volumes_of


def sensor_run(cls: type[SensorInput], **kwargs):
    args = SensorInputArgs(namespace="dtpoc", influx_secret_name="influxdb-credentials", **kwargs)
    return run_program(lambda: cls(cls.sensor, args))


def conf_of(run, sensor: str) -> dict:
    text = run.one("ConfigMap", f"di-{sensor}-config").inputs["data"]["telegraf.conf"]
    return tomllib.loads(text)


@pytest.mark.parametrize(
    ("cls", "measurement", "field"),
    [(LightSensor, "light_reading", "lux"), (TempSensor, "temperature_reading", "temp")],
)
def test_seed_sensors(cls: type[SensorInput], measurement: str, field: str) -> None:
    run = sensor_run(cls)
    assert [r.typ for r in run.resources if not r.custom] == [f"dtpoc:telegraf:{cls.__name__}"]
    conf = conf_of(run, cls.sensor)
    mqtt = conf["inputs"]["mqtt_consumer"][0]
    assert mqtt["servers"] == ["tcp://mosquitto:1883"]  # the in-cluster broker by default
    assert mqtt["topics"] == ["CamDT/DC1/IfM/#"]
    assert mqtt["data_format"] == "json_v2"
    # The broker keeps the session and Telegraf acknowledges a reading once written (restarts lose none).
    assert mqtt["persistent_session"] is True
    assert mqtt["client_id"] == f"dtpoc-di-{cls.sensor}"
    assert mqtt["startup_error_behavior"] == "retry"  # the broker may start after Telegraf
    assert conf["agent"]["omit_hostname"] is True
    parser = mqtt["json_v2"][0]
    assert parser["measurement_name"] == measurement
    assert parser["timestamp_path"] == "timestamp"
    assert parser["field"] == [{"path": field, "type": "float", "optional": True}]
    assert parser["tag"] == [{"path": "machine", "type": "string"}]
    assert conf["outputs"]["file"] == [{"files": ["stdout"]}]
    influx = conf["outputs"]["influxdb_v2"][0]
    assert influx == {
        "urls": ["http://influxdb:8086"],
        "token": "${INFLUX_TOKEN}",
        "organization": "camdt",
        "bucket": "default",
        "startup_error_behavior": "retry",
    }

    dep = run.one("Deployment", f"di-{cls.sensor}")
    c = container(dep)
    assert env_of(c) == {"INFLUX_TOKEN": ("secret", "influxdb-credentials", "token")}
    assert mounts_of(c) == {"/etc/telegraf/telegraf.conf": ("config", "telegraf.conf")}
    assert volumes_of(dep)["config"]["configMap"] == {"name": f"di-{cls.sensor}-config"}
    assert probe(c, "livenessProbe") == ("http", "/", 8080)
    assert conf["outputs"]["health"] == [{"service_address": "http://:8080"}]
    assert run.kinds("Service") == []  # nothing connects to Telegraf


def test_the_seeds_public_broker_is_an_option() -> None:
    run = sensor_run(LightSensor, broker_url=PUBLIC_BROKER)
    assert conf_of(run, "light")["inputs"]["mqtt_consumer"][0]["servers"] == ["tcp://test.mosquitto.org:1883"]


@pytest.mark.parametrize("url", ["mosquitto:1883", "http://mosquitto", "tcp://bad host:1883", ""])
def test_bad_broker_urls_fail_early(url: str) -> None:
    with pytest.raises(ValueError, match="broker_url"):
        SensorInputArgs(namespace="dtpoc", influx_secret_name="s", broker_url=url)


# The README's example, verbatim.
def test_a_sensor_input_is_a_subclass_of_a_few_lines() -> None:
    run = sensor_run(Co2Sensor)
    assert [r.typ for r in run.resources if not r.custom] == ["dtpoc:telegraf:Co2Sensor"]
    parser = conf_of(run, "co2")["inputs"]["mqtt_consumer"][0]["json_v2"][0]
    assert parser["measurement_name"] == "co2_reading"
    assert parser["field"] == [{"path": "ppm", "type": "float", "optional": True}]
    assert run.names("Deployment") == {"di-co2"}


def test_subclass_options_reach_the_config() -> None:
    class Door(SensorInput):
        sensor = "door"
        measurement = "door_state"
        field = "open"
        field_type = "bool"
        topics = ("CamDT/DC1/Doors/#", "CamDT/DC2/Doors/#")
        tag = None
        timestamp_path = None

    parser_conf = conf_of(sensor_run(Door), "door")["inputs"]["mqtt_consumer"][0]
    assert parser_conf["topics"] == ["CamDT/DC1/Doors/#", "CamDT/DC2/Doors/#"]
    parser = parser_conf["json_v2"][0]
    assert parser["field"] == [{"path": "open", "type": "bool", "optional": True}]
    assert "tag" not in parser and "timestamp_path" not in parser


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"measurement": "m", "field": "f"}, "sensor"),
        ({"sensor": "Bad Name", "measurement": "m", "field": "f"}, "DNS label"),
        ({"sensor": "s", "measurement": "m", "field": "f", "field_type": "decimal"}, "field_type"),
        ({"sensor": "s", "measurement": "m", "field": "f", "topics": "a/#"}, "topics"),
        ({"sensor": "s", "measurement": "bad name", "field": "f"}, "identifier"),
    ],
)
def test_incomplete_subclasses_fail_with_a_clear_message(attrs: dict, message: str) -> None:
    cls = type("Broken", (SensorInput,), attrs)
    with pytest.raises(ValueError, match=message):
        cls.validate_class()


def test_sensor_classes_are_named_by_module_and_class() -> None:
    assert load_sensor_class("examples.co2_sensor:Co2Sensor") is Co2Sensor
    for ref, message in [
        ("examples.co2_sensor", "package.module:ClassName"),
        ("examples.nothing_here:Co2Sensor", "cannot import"),
        ("examples.co2_sensor:Nope", "cannot import"),
        ("components.telegraf:SensorInputArgs", "not a SensorInput subclass"),
        ("components.telegraf:SensorInput", "must set the class attribute"),
    ]:
        with pytest.raises(ValueError, match=message):
            load_sensor_class(ref)
