"""The sensor simulator's Deployment: on by config only, publishing readings of the sensor inputs present that
it can simulate, as the broker's publisher, with nothing but its image's own rights."""

from __future__ import annotations

import json

import pytest

from components.config import ConfigError
from components.sensor_simulator import SensorSimulatorArgs

from .conftest import build_platform
from .k8s import container, env_of
from .test_config import load

SIMULATOR = {"sensorSimulator": True, "sensorSimulatorImage": "registry.local/sensor-simulator:1"}


def test_off_unless_the_stack_asks() -> None:
    assert "sensor-simulator" not in build_platform({"ingressController": "none"}).names("Deployment")


def test_publishes_the_inputs_present_as_the_brokers_publisher() -> None:
    run = build_platform(
        {
            "ingressController": "none",
            **SIMULATOR,
            "sensorClasses": json.dumps(["examples.co2_sensor:Co2Sensor"]),
        }
    )
    c = container(run.one("Deployment", "sensor-simulator"))
    assert c["image"] == "registry.local/sensor-simulator:1"
    assert env_of(c) == {
        "MQTT_URL": "tcp://mosquitto:1883",
        "TOPIC_PREFIX": "CamDT/DC1/IfM",  # the seed's inputs subscribe to CamDT/DC1/IfM/#
        "SENSORS": "co2=3,light=3,temp=3",  # the CO2 input is there, so is its simulated device
        "INTERVAL_SECONDS": "5.0",
        "MQTT_USERNAME": ("secret", "mosquitto-publisher", "username"),
        "MQTT_PASSWORD": ("secret", "mosquitto-publisher", "password"),
    }
    security = c["securityContext"]
    assert security["runAsNonRoot"] is True and security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert "ports" not in c  # a publisher only


def test_without_co2_input_no_co2_device() -> None:
    run = build_platform({"ingressController": "none", **SIMULATOR})
    assert env_of(container(run.one("Deployment", "sensor-simulator")))["SENSORS"] == "light=3,temp=3"


def test_the_simulator_needs_an_image() -> None:
    with pytest.raises(ConfigError, match="sensorSimulator needs its image"):
        load({"sensorSimulator": True})


@pytest.mark.parametrize(
    ("devices", "message"),
    [({"humidity": 1}, "knows light, temp, co2"), ({"light": 0}, ">= 1 device"), ({}, ">= 1")],
)
def test_devices_are_kinds_it_can_simulate(devices: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SensorSimulatorArgs(namespace="dtpoc", image="x:1", publisher_secret_name="s", devices=devices)
