"""The sensor simulator (simulators/sensors): the seed's topics and JSON shape, realistic values over
simulated days, seeding, settings; and publishing for real to the platform's Mosquitto configuration (the
real broker, with its publisher login and ACL, as tests/components/test_mosquitto_broker.py runs it)."""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from localdev import processes
from localdev.tools import Tools
from simulators.sensors.sensor_simulator import (
    BAD_CONFIG,
    KINDS,
    BrokerError,
    ConfigError,
    SensorSimulator,
    SimulatorConfig,
    format_timestamp,
    main,
    run,
)
from tests.mqtt_broker import PASSWORD, PUBLISHER, Broker

SCRIPT = Path(__file__).resolve().parents[2] / "simulators" / "sensors" / "sensor_simulator.py"
PREFIX = "CamDT/DC1/IfM"
FIELDS = {"light": "lux", "temp": "temp", "co2": "ppm"}
# Go's layout 2006-01-02T15:04:05.000Z, as Python's strptime spells it (with exactly 3 digits of %f below).
LAYOUT = "%Y-%m-%dT%H:%M:%S.%fZ"
MIDNIGHT = datetime(2026, 12, 1, tzinfo=UTC)


def simulate(
    sensors: dict[str, int], seed: int, hours: float = 24, step_seconds: float = 60
) -> dict[str, list[tuple[datetime, float]]]:
    """Each machine's (time, value) over `hours` simulated hours, one round every `step_seconds`."""
    simulator = SensorSimulator(sensors, PREFIX, seed)
    series: dict[str, list[tuple[datetime, float]]] = {}
    for k in range(int(hours * 3600 / step_seconds)):
        now = MIDNIGHT + timedelta(seconds=k * step_seconds)
        for reading in simulator.readings(now):
            kind = reading.topic.split("/")[-2]
            series.setdefault(reading.payload["machine"], []).append((now, reading.payload[FIELDS[kind]]))
    return series


def mean_between(points: list[tuple[datetime, float]], first_hour: int, last_hour: int) -> float:
    return statistics.mean(v for t, v in points if first_hour <= t.hour < last_hour)


def parse_go_timestamp(text: str) -> datetime:
    assert len(text) == len("2006-01-02T15:04:05.000Z"), text
    return datetime.strptime(text, LAYOUT).replace(tzinfo=UTC)


# --- the seed's shape --------------------------------------------------------------------------------------


def test_one_reading_per_device_in_the_seeds_topic_and_json_shape() -> None:
    now = datetime(2026, 12, 1, 13, 30, 0, 123456, tzinfo=UTC)
    readings = SensorSimulator({"light": 2, "temp": 1, "co2": 1}, PREFIX, seed=7).readings(now)
    assert [r.topic for r in readings] == [
        "CamDT/DC1/IfM/light/light-1",
        "CamDT/DC1/IfM/light/light-2",
        "CamDT/DC1/IfM/temp/temp-1",
        "CamDT/DC1/IfM/co2/co2-1",
    ]
    for reading in readings:
        kind, machine = reading.topic.split("/")[-2:]
        payload = json.loads(reading.json())
        assert payload == reading.payload
        assert list(payload) == ["machine", FIELDS[kind], "timestamp"]
        assert payload["machine"] == machine
        assert isinstance(payload[FIELDS[kind]], float)
        assert payload["timestamp"] == "2026-12-01T13:30:00.123Z"


def test_timestamps_follow_the_go_layout_in_utc() -> None:
    moment = datetime(2026, 3, 4, 5, 6, 7, 89000, tzinfo=UTC)
    assert format_timestamp(moment) == "2026-03-04T05:06:07.089Z"
    assert parse_go_timestamp(format_timestamp(moment)) == moment
    # Another zone is converted to UTC; whole seconds still get their three digits; a naive time is UTC.
    summer = timezone(timedelta(hours=1))  # Cambridge in July
    assert format_timestamp(datetime(2026, 7, 1, 0, 30, tzinfo=summer)) == "2026-06-30T23:30:00.000Z"
    assert format_timestamp(datetime(2026, 7, 1, 12, 0, 0, 999999)) == "2026-07-01T12:00:00.999Z"
    for reading in SensorSimulator({"temp": 1}, PREFIX, 1).readings(datetime.now(UTC)):
        parse_go_timestamp(reading.payload["timestamp"])


def test_values_are_rounded() -> None:
    series = simulate({"light": 2, "temp": 2, "co2": 2}, seed=3, hours=2)
    decimals = {"light": 1, "temp": 2, "co2": 1}
    for machine, points in series.items():
        for _, value in points:
            assert round(value, decimals[machine.split("-")[0]]) == value


# --- realistic values --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_values_stay_in_realistic_ranges_over_a_day(seed: int) -> None:
    series = simulate({"light": 4, "temp": 4, "co2": 4}, seed)
    for machine, points in series.items():
        values = [v for _, v in points]
        if machine.startswith("light"):
            assert min(values) >= 0 and max(values) <= 1000, machine
            assert 300 <= mean_between(points, 9, 17) <= 700, machine  # a lit lab by day
            assert mean_between(points, 0, 5) <= 80, machine  # night lights or dark
        elif machine.startswith("temp"):
            assert min(values) >= 19.5 and max(values) <= 24.5, machine
            assert sum(20 <= v <= 24 for v in values) >= 0.95 * len(values), machine
        else:
            assert min(values) >= 400 and max(values) <= 1200, machine
            assert mean_between(points, 0, 5) <= 550 and mean_between(points, 9, 17) >= 750, machine


def test_daily_cycles_are_visible() -> None:
    series = simulate({"light": 3, "temp": 3, "co2": 3}, seed=11, hours=72)
    for machine, points in series.items():
        night, day = mean_between(points, 0, 5), mean_between(points, 10, 16)
        if machine.startswith("light"):
            assert day > 4 * night, machine
        elif machine.startswith("temp"):
            assert day > night + 0.3, machine  # warmest in the afternoon
        else:
            assert day > night + 250, machine


def test_temperature_is_a_slow_walk_not_jumps() -> None:
    points = simulate({"temp": 1}, seed=5, hours=6, step_seconds=5)["temp-1"]
    steps = [abs(b - a) for (_, a), (_, b) in itertools.pairwise(points)]
    assert max(steps) < 0.3
    assert len({v for _, v in points}) > 20


def test_lights_go_off_or_read_low_now_and_then() -> None:
    # Five simulated days at the default interval.
    points = simulate({"light": 1}, seed=2, hours=120, step_seconds=5)["light-1"]
    daytime = [v for t, v in points if 10 <= t.hour < 16]
    typical = statistics.median(daytime)
    dips = [v for v in daytime if v < 0.6 * typical]
    assert dips, "no off or low reading in five days"
    assert len(dips) < 0.05 * len(daytime)  # occasional
    assert any(v < 0.1 * typical for v in daytime)  # off (some daylight left), not only dimmed


def test_the_same_seed_gives_the_same_readings_and_another_seed_others() -> None:
    sensors = {"light": 2, "temp": 2, "co2": 2}
    first, again = simulate(sensors, seed=42, hours=3), simulate(sensors, seed=42, hours=3)
    assert first == again
    assert simulate(sensors, seed=43, hours=3) != first
    # Each device has its stream: adding devices of another kind changes nothing for the others.
    alone = simulate({"temp": 2}, seed=42, hours=3)
    assert alone["temp-1"] == first["temp-1"] and alone["temp-2"] == first["temp-2"]


# --- settings ----------------------------------------------------------------------------------------------


def test_settings_defaults() -> None:
    config = SimulatorConfig.from_env({})
    assert (config.host, config.port, config.topic_prefix) == ("mosquitto", 1883, "CamDT/DC1/IfM")
    assert dict(config.sensors) == {"light": 3, "temp": 3, "co2": 2}
    assert (config.interval_seconds, config.seed, config.count) == (5.0, None, None)
    assert (config.username, config.password) == (None, None)
    assert set(KINDS) == set(FIELDS)


def test_settings_from_the_environment() -> None:
    config = SimulatorConfig.from_env(
        {
            "MQTT_URL": "tcp://broker.example:1884",
            "TOPIC_PREFIX": "/Site/Lab/",
            "SENSORS": " light=1, co2 = 4 ,",
            "INTERVAL_SECONDS": "0.5",
            "SEED": "99",
            "COUNT": "3",
            "MQTT_USERNAME": "publisher",
            "MQTT_PASSWORD": "secret",
            "MQTT_CLIENT_ID": "sim-a",
        }
    )
    assert (config.host, config.port, config.topic_prefix) == ("broker.example", 1884, "Site/Lab")
    assert dict(config.sensors) == {"light": 1, "co2": 4}
    assert (config.interval_seconds, config.seed, config.count) == (0.5, 99, 3)
    assert (config.username, config.password, config.client_id) == ("publisher", "secret", "sim-a")
    assert "secret" not in repr(config)
    assert SimulatorConfig.from_env({"MQTT_URL": "mqtt://10.0.0.7"}).port == 1883


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MQTT_URL": "mosquitto:1883"}, "MQTT_URL must look like tcp://host:1883"),
        ({"MQTT_URL": "http://mosquitto"}, "MQTT_URL must look like"),
        ({"MQTT_URL": "ssl://mosquitto:8883"}, "no TLS"),
        ({"MQTT_URL": "tcp://mosquitto:70000"}, "port must be 1-65535"),
        ({"SENSORS": "light=3,humidity=2"}, "unknown kind 'humidity' (known: light, temp, co2)"),
        ({"SENSORS": "light:3"}, "SENSORS must look like 'light=3,temp=3,co2=2'"),
        ({"SENSORS": "light=2,light=1"}, "names 'light' twice"),
        ({"SENSORS": "light=-1"}, "count of 'light' must be"),
        ({"SENSORS": "light=0"}, "names no device"),
        ({"INTERVAL_SECONDS": "often"}, "INTERVAL_SECONDS must be a number, got 'often'"),
        ({"INTERVAL_SECONDS": "0"}, "INTERVAL_SECONDS must be between"),
        ({"INTERVAL_SECONDS": "nan"}, "INTERVAL_SECONDS must be between"),
        ({"SEED": "1.5"}, "SEED must be an integer"),
        ({"COUNT": "0"}, "COUNT must be between 1 and"),
        ({"TOPIC_PREFIX": "CamDT/#"}, "TOPIC_PREFIX must be a topic without wildcards"),
        ({"TOPIC_PREFIX": "CamDT//IfM"}, "TOPIC_PREFIX must be a topic"),
        ({"MQTT_PASSWORD": "x"}, "MQTT_PASSWORD is set but MQTT_USERNAME is not"),
    ],
)
def test_bad_settings_are_refused_clearly(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        SimulatorConfig.from_env(env)
    assert message in str(refused.value)


def test_bad_settings_exit_2_with_the_reason_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main({"SENSORS": "light=3,humidity=2"}) == BAD_CONFIG
    err = capsys.readouterr().err
    assert err.startswith("sensor-simulator: error: SENSORS: unknown kind 'humidity'")
    assert len(err.strip().splitlines()) == 1


# --- a real broker -----------------------------------------------------------------------------------------


class Subscriber:
    """An anonymous paho client reading `CamDT/DC1/IfM/#`, ready (SUBACK received) once constructed."""

    def __init__(self, port: int) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-subscriber")
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_connect = lambda client, *_: client.subscribe(f"{PREFIX}/#", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(10), "the subscriber got no SUBACK"

    def take(self, count: int, timeout: float = 10) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout
        return [self.messages.get(timeout=max(0.01, deadline - time.monotonic())) for _ in range(count)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(broker: Broker) -> Iterator[Subscriber]:
    client = Subscriber(broker.port)
    yield client
    client.close()


def config_for(port: int, **overrides: Any) -> SimulatorConfig:
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "sensors": {"light": 2, "temp": 1, "co2": 1},
        "interval_seconds": 0.2,
        "seed": 1,
        "count": 2,
        "username": PUBLISHER,
        "password": PASSWORD,
        "client_id": "test-simulator",
        "connect_timeout_seconds": 10.0,
    }
    return SimulatorConfig(**{**settings, **overrides})


def test_readings_reach_a_subscriber_of_the_real_broker(broker: Broker, subscriber: Subscriber) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert run(config_for(broker.port), threading.Event()) == 0
    messages = subscriber.take(8)  # 2 rounds of 4 devices
    with pytest.raises(queue.Empty):
        subscriber.messages.get(timeout=0.5)  # and no more
    topics = [m.topic for m in messages]
    assert sorted(set(topics)) == sorted(
        f"{PREFIX}/{kind}/{kind}-{n}" for kind, n in [("light", 1), ("light", 2), ("temp", 1), ("co2", 1)]
    )
    assert all(topics.count(t) == 2 for t in topics)
    for message in messages:
        kind, machine = message.topic.split("/")[-2:]
        payload = json.loads(message.payload)
        assert list(payload) == ["machine", FIELDS[kind], "timestamp"]
        assert payload["machine"] == machine and isinstance(payload[FIELDS[kind]], float)
        assert before <= parse_go_timestamp(payload["timestamp"]) <= datetime.now(UTC)
        assert message.qos == 1


def test_an_anonymous_publisher_is_told_to_set_the_login(broker: Broker, subscriber: Subscriber) -> None:
    with pytest.raises(BrokerError, match="MQTT_USERNAME and MQTT_PASSWORD") as refused:
        run(config_for(broker.port, username=None, password=None), threading.Event())
    assert "Not authorized" in str(refused.value)
    with pytest.raises(queue.Empty):
        subscriber.messages.get(timeout=0.5)


def test_a_wrong_password_is_refused_at_once(broker: Broker) -> None:
    started = time.monotonic()
    with pytest.raises(BrokerError, match=r"refused the login: .*check MQTT_USERNAME / MQTT_PASSWORD"):
        run(config_for(broker.port, password="wrong-password"), threading.Event())
    assert time.monotonic() - started < 5  # not retried until the connect timeout


def test_waits_for_a_broker_that_starts_late(tools: Tools, tmp_path: Path) -> None:
    late = Broker(tools, tmp_path)  # its port chosen, not started yet
    outcome: list[int] = []
    simulator = threading.Thread(target=lambda: outcome.append(run(config_for(late.port), threading.Event())))
    simulator.start()
    try:
        time.sleep(1.5)
        assert simulator.is_alive()  # still trying
        late.start()
        simulator.join(20)
        assert outcome == [0]
    finally:
        late.stop()


def test_gives_up_on_an_unreachable_broker_with_a_clear_error() -> None:
    port = processes.free_port()
    with pytest.raises(BrokerError, match=rf"cannot reach the MQTT broker at 127.0.0.1:{port} \(MQTT_URL\)"):
        run(config_for(port, connect_timeout_seconds=1.0), threading.Event())


def test_sigterm_stops_the_program_cleanly(broker: Broker, subscriber: Subscriber, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MQTT_URL": f"tcp://127.0.0.1:{broker.port}",
        "MQTT_USERNAME": PUBLISHER,
        "MQTT_PASSWORD": PASSWORD,
        "SENSORS": "light=1,temp=1",
        "INTERVAL_SECONDS": "0.3",
        "SEED": "5",
    }
    output = tmp_path / "simulator.log"
    with output.open("w") as out:
        program = subprocess.Popen(
            [sys.executable, str(SCRIPT)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        subscriber.take(4)  # two rounds arrived: it runs
        program.send_signal(signal.SIGTERM)
        assert program.wait(10) == 0, output.read_text()
    finally:
        if program.poll() is None:
            program.kill()
            program.wait()
    log = output.read_text()
    assert "round 1: published 2/2 readings" in log
    assert "stopped after" in log
    assert "Traceback" not in log
