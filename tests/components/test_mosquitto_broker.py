"""The Mosquitto component's mosquitto.conf, run by the real broker (Debian's mosquitto): sensors'
messages on the seed's topic get through, and retained messages survive a restart (persistence)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.mosquitto import mosquitto_conf
from localdev import processes
from localdev.tools import Tools

TOPIC = "CamDT/DC1/IfM/light"
READING = {"machine": "histology-scanner-1", "lux": 412.5, "timestamp": "2026-11-30T09:00:00.000Z"}


class Broker:
    def __init__(self, tools: Tools, folder: Path) -> None:
        self.tools, self.folder, self.port = tools, folder, processes.free_port()
        conf = mosquitto_conf(self.port)
        # Loopback only in tests, and the pod's data folder becomes a temporary one.
        conf = conf.replace(f"listener {self.port}", f"listener {self.port} 127.0.0.1")
        conf = conf.replace("/mosquitto/data/", f"{folder}/data/")
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
            broker.client("mosquitto_pub", "-t", TOPIC, "-q", "1", "-m", json.dumps(READING))
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
    published = broker.client("mosquitto_pub", "-t", TOPIC, "-q", "1", "-r", "-m", json.dumps(READING))
    assert published.returncode == 0, published.stderr
    broker.stop()  # SIGTERM: the broker writes its persistence file on the way out
    assert any((broker.folder / "data").iterdir())
    broker.start()
    received = broker.client("mosquitto_sub", "-t", TOPIC, "-C", "1", "-W", "10")
    assert received.returncode == 0, received.stderr
    assert json.loads(received.stdout) == READING
