"""The Mosquitto component's mosquitto.conf and ACL, run by the real broker (Debian's mosquitto): the
publisher's messages on the seed's topic get through, anonymous clients may read but not publish, and
retained messages survive a restart (persistence), a subscriber's persistent session keeps a burst."""

from __future__ import annotations

import json
import subprocess

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from localdev import processes
from tests.mqtt_broker import LOGIN, PASSWORD, PUBLISHER, Broker

TOPIC = "CamDT/DC1/IfM/light"
READING = {"machine": "histology-scanner-1", "lux": 412.5, "timestamp": "2026-11-30T09:00:00.000Z"}


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
