"""The Mosquitto component's mosquitto.conf and ACL, run by the real broker (Debian's mosquitto): the
publisher's messages on the seed's topic get through, anonymous clients may read but not publish, and
retained messages survive a restart (persistence), a subscriber's persistent session keeps a burst."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from components.mosquitto import ACL_FILE, PASSWORD_FILE, mosquitto_acl, mosquitto_conf
from localdev import processes
from localdev.tools import Tools

TOPIC = "CamDT/DC1/IfM/light"
READING = {"machine": "histology-scanner-1", "lux": 412.5, "timestamp": "2026-11-30T09:00:00.000Z"}
PUBLISHER, PASSWORD = "publisher", "mqtt-Pa55word-test"
LOGIN = ("-u", PUBLISHER, "-P", PASSWORD)


class Broker:
    def __init__(self, tools: Tools, folder: Path) -> None:
        self.tools, self.folder, self.port = tools, folder, processes.free_port()
        conf = mosquitto_conf(self.port)
        # Loopback only in tests, and the pod's data folder becomes a temporary one.
        conf = conf.replace(f"listener {self.port}", f"listener {self.port} 127.0.0.1")
        conf = conf.replace("/mosquitto/data/", f"{folder}/data/")
        conf = conf.replace(PASSWORD_FILE, str(folder / "passwd")).replace(ACL_FILE, str(folder / "acl"))
        (folder / "acl").write_text(mosquitto_acl(PUBLISHER))
        # As the pod's init container makes it.
        subprocess.run(
            ["mosquitto_passwd", "-c", "-b", str(folder / "passwd"), PUBLISHER, PASSWORD],
            check=True,
            capture_output=True,
        )
        # Started as root (CI is), mosquitto would switch to its own user, which cannot write pytest's
        # private temporary folder; in the pod it runs as its own user from the start.
        conf += "user root\n" if os.geteuid() == 0 else ""
        (folder / "data").mkdir(exist_ok=True)
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(conf)
        self.pid: int | None = None

    def start(self) -> None:
        self.pid = processes.start([self.tools.mosquitto, "-c", self.conf], self.folder / "mosquitto.log")
        processes.wait_until(lambda: processes.port_open(self.port), 10, "mosquitto")

    def stop(self) -> None:
        if self.pid:
            processes.stop(self.pid)
            self.pid = None

    def client(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [name, "-h", "127.0.0.1", "-p", str(self.port), *args], capture_output=True, text=True, timeout=20
        )


@pytest.fixture
def broker(tools: Tools, tmp_path: Path) -> Iterator[Broker]:
    server = Broker(tools, tmp_path)
    server.start()
    yield server
    server.stop()


def test_sensor_message_reaches_a_subscriber(broker: Broker) -> None:
    subscriber = subprocess.Popen(
        [
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            str(broker.port),
            "-t",
            "CamDT/DC1/IfM/#",
            "-C",
            "1",
            "-W",
            "15",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # Publish until the subscriber (which may still be connecting) has its message.
        for _ in range(50):
            broker.client("mosquitto_pub", *LOGIN, "-t", TOPIC, "-q", "1", "-m", json.dumps(READING))
            try:
                out, _ = subscriber.communicate(timeout=0.3)
                break
            except subprocess.TimeoutExpired:
                continue
    finally:
        if subscriber.poll() is None:
            subscriber.kill()
            subscriber.wait()
    assert json.loads(out) == READING


def test_retained_message_survives_a_restart(broker: Broker) -> None:
    published = broker.client(
        "mosquitto_pub", *LOGIN, "-t", TOPIC, "-q", "1", "-r", "-m", json.dumps(READING)
    )
    assert published.returncode == 0, published.stderr
    broker.stop()  # SIGTERM: the broker writes its persistence file on the way out
    assert any((broker.folder / "data").iterdir())
    broker.start()
    received = broker.client("mosquitto_sub", "-t", TOPIC, "-C", "1", "-W", "10")
    assert received.returncode == 0, received.stderr
    assert json.loads(received.stdout) == READING


def test_anonymous_clients_may_read_but_not_publish(broker: Broker) -> None:
    # MQTT 5 makes the broker answer a refused QoS 1 publish ("not authorised"), so no waiting is needed.
    refused = broker.client(
        "mosquitto_pub", "-V", "mqttv5", "-t", TOPIC, "-q", "1", "-r", "-m", '{"forged": true}'
    )
    assert refused.returncode != 0 or "not authori" in (refused.stderr + refused.stdout).lower(), refused
    wrong = broker.client(
        "mosquitto_pub", "-V", "mqttv5", "-u", PUBLISHER, "-P", "wrong-password", "-t", TOPIC, "-m", "x"
    )
    assert wrong.returncode != 0, wrong
    accepted = broker.client(
        "mosquitto_pub", "-V", "mqttv5", *LOGIN, "-t", TOPIC, "-q", "1", "-r", "-m", json.dumps(READING)
    )
    assert accepted.returncode == 0, accepted.stderr
    # An anonymous subscriber reads the publisher's retained message, not the forged one.
    received = broker.client("mosquitto_sub", "-t", TOPIC, "-C", "1", "-W", "10")
    assert received.returncode == 0, received.stderr
    assert json.loads(received.stdout) == READING


def test_a_persistent_session_keeps_a_burst_while_its_subscriber_is_away(broker: Broker) -> None:
    """As Telegraf's session: subscribed at QoS 1 with a client id and no clean start, then away while
    5,000 readings are published and acknowledged; back, it gets every one (beyond Mosquitto's default
    queue of 1,000, the rest would be dropped)."""
    received: list[bytes] = []

    def subscriber() -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dtpoc-di-light", clean_session=False)
        client.on_message = lambda _c, _u, message: received.append(message.payload)
        client.connect("127.0.0.1", broker.port)
        client.subscribe("CamDT/DC1/IfM/#", qos=1)
        client.loop_start()
        return client

    away = subscriber()
    processes.wait_until(lambda: away.is_connected(), 10, "the subscriber")
    away.loop_stop()
    away.disconnect()

    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="burst")
    publisher.username_pw_set(PUBLISHER, PASSWORD)
    publisher.connect("127.0.0.1", broker.port)
    publisher.loop_start()
    sent = [publisher.publish(TOPIC, json.dumps({**READING, "lux": i}), qos=1) for i in range(5000)]
    for info in sent:
        info.wait_for_publish(30)
    assert all(info.is_published() for info in sent)  # acknowledged by the broker
    publisher.loop_stop()
    publisher.disconnect()

    back = subscriber()
    try:
        processes.wait_until(lambda: len(received) >= 5000, 60, "the queued burst")
    finally:
        back.loop_stop()
        back.disconnect()
    assert sorted(json.loads(p)["lux"] for p in received) == list(range(5000))
