"""The sensor data path of a running instance, from the host through its loopback relays: publish readings to
Mosquitto as the sensors do (the seed's topic and JSON, QoS 1, each acknowledged by the broker), read them
back from InfluxDB with Flux (admin token) or InfluxQL (Grafana's read-only user, as its panels query)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from components.influxdb import READER_USERNAME, derived_secret

PREFIX = "CamDT/DC1/IfM"
ORG, BUCKET = "camdt", "default"
LAYOUT = "%Y-%m-%dT%H:%M:%S.%f"  # Go's 2006-01-02T15:04:05.000Z, milliseconds cut below


def seed_timestamp(moment: datetime) -> str:
    """The seed's timestamp text: UTC, milliseconds, a literal Z."""
    return moment.astimezone(UTC).strftime(LAYOUT)[:-3] + "Z"


@dataclass(frozen=True)
class Reading:
    kind: str  # the topic level: light, temp, co2
    machine: str
    field: str
    value: float
    at: datetime

    @property
    def topic(self) -> str:
        return f"{PREFIX}/{self.kind}/{self.machine}"

    @property
    def payload(self) -> bytes:
        return json.dumps(
            {"machine": self.machine, self.field: self.value, "timestamp": seed_timestamp(self.at)}
        ).encode()

    @property
    def milliseconds(self) -> int:
        return round(self.at.timestamp() * 1000)


class SensorPath:
    """One instance's broker and InfluxDB. Use as a context manager (the MQTT connection)."""

    def __init__(self, state_dir: Path) -> None:
        state = json.loads((state_dir / "state.json").read_text())
        secrets = json.loads((state_dir / "secrets.json").read_text())
        self.mqtt_port = int(state["mqtt_port"])
        self.influx = httpx.Client(base_url=f"http://127.0.0.1:{state['influxdb_port']}", timeout=30)
        self.token = secrets["influxdbToken"]
        self.reader_password = derived_secret(self.token, "influxdb-reader")
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"e2e-{uuid.uuid4().hex[:8]}")
        self.client.username_pw_set("publisher", secrets["mqttPassword"])

    def __enter__(self) -> SensorPath:
        self.client.connect("127.0.0.1", self.mqtt_port)
        self.client.loop_start()
        return self

    def __exit__(self, *_: object) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        self.influx.close()

    def publish(self, topic: str, payload: bytes, timeout: float = 10) -> None:
        """Publish with QoS 1 and wait for the broker's acknowledgement (the point the broker now owns)."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise AssertionError(f"the broker did not acknowledge a message to {topic}")

    def send(self, reading: Reading) -> None:
        self.publish(reading.topic, reading.payload)

    def flux(self, query: str) -> list[dict[str, str]]:
        """The rows of a Flux query (CSV without annotations), as dicts by column."""
        response = self.influx.post(
            "/api/v2/query",
            params={"org": ORG},
            headers={"Authorization": f"Token {self.token}", "Accept": "application/csv"},
            json={"query": query, "type": "flux", "dialect": {"header": True, "annotations": []}},
        )
        response.raise_for_status()
        rows: list[dict[str, str]] = []
        header: list[str] | None = None
        for row in csv.reader(io.StringIO(response.text)):
            if not row or not any(row):
                header = None  # tables are separated by an empty line, each with its own header
                continue
            if header is None:
                header = row
                continue
            rows.append(dict(zip(header, row, strict=True)))
        return rows

    def points(self, measurement: str, machine: str, field: str, hours: int = 48) -> list[tuple[int, float]]:
        """(time in ms, value) of one sensor's field, oldest first."""
        rows = self.flux(
            f'from(bucket: "{BUCKET}") |> range(start: -{hours}h, stop: 1h)'
            f' |> filter(fn: (r) => r._measurement == "{measurement}" and r.machine == "{machine}"'
            f' and r._field == "{field}")'
        )
        return sorted(
            (round(datetime.fromisoformat(r["_time"]).timestamp() * 1000), float(r["_value"])) for r in rows
        )

    def influxql(self, query: str) -> dict[str, Any]:
        """InfluxQL on InfluxDB 2's v1 API as Grafana's read-only user, as its datasource sends it."""
        response = self.influx.post(
            "/query",
            params={"db": BUCKET, "epoch": "ms"},
            data={"q": query},
            auth=(READER_USERNAME, self.reader_password),
        )
        response.raise_for_status()
        return dict(response.json())
