"""The sensor data path on the real node: readings published to Mosquitto in the seed's format reach InfluxDB
through each Telegraf input (the seed's light and temp, and the README's CO2 subclass the local stack adds),
malformed messages are dropped without stopping an input, Telegraf and InfluxDB restarts lose no reading
the broker acknowledged, the provisioned dashboard's queries return the simulator's data, and Node-RED's
provisioned flows load and run."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from components.dashboards import rendered_queries
from tests.e2e.conftest import Platform
from tests.e2e.sensor_path import Reading, SensorPath
from tests.polling import eventually

pytestmark = [pytest.mark.cluster, pytest.mark.pulumi, pytest.mark.node, pytest.mark.slow]

# kind (topic level) -> (measurement, field), as the local stack's inputs render them.
INPUTS = {
    "light": ("light_reading", "lux"),
    "temp": ("temperature_reading", "temp"),
    "co2": ("co2_reading", "ppm"),
}


@pytest.fixture(scope="module")
def path(platform: Platform) -> Iterator[SensorPath]:
    with SensorPath(platform.state_dir) as sensor_path:
        yield sensor_path


def readings(kind: str, count: int, start: datetime | None = None, base: float = 100.0) -> list[Reading]:
    """`count` readings of one new machine, a second apart, at millisecond precision."""
    machine = f"e2e-{kind}-{uuid.uuid4().hex[:6]}"
    first = (start or datetime.now(UTC)).replace(microsecond=0) + timedelta(milliseconds=123)
    _, field = INPUTS[kind]
    return [
        Reading(kind, machine, field, round(base + i * 1.25, 2), first + timedelta(seconds=i))
        for i in range(count)
    ]


def stored(path: SensorPath, sent: list[Reading]) -> list[tuple[int, float]]:
    measurement, field = INPUTS[sent[0].kind]
    return path.points(measurement, sent[0].machine, field)


def expected(sent: list[Reading]) -> list[tuple[int, float]]:
    return [(r.milliseconds, r.value) for r in sent]


def wait_stored(path: SensorPath, sent: list[Reading], timeout: float = 90) -> None:
    want = expected(sent)
    eventually(
        lambda: stored(path, sent) == want, timeout, f"{len(sent)} {sent[0].kind} readings in InfluxDB"
    )


def ready_pod(platform: Platform, app: str) -> dict:
    pods = json.loads(
        platform.kubectl("get", "pods", "-l", f"app.kubernetes.io/name={app}", "-o", "json").stdout
    )
    running = [
        p
        for p in pods["items"]
        if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]
    return running[0] if len(running) == 1 else {}


def test_each_input_stores_readings_as_published(platform: Platform, path: SensorPath) -> None:
    sent = {
        kind: readings(kind, 3, base=base) for kind, base in (("light", 412.5), ("temp", 21.25), ("co2", 640))
    }
    for batch in sent.values():
        for reading in batch:
            path.send(reading)
    for batch in sent.values():
        wait_stored(path, batch)  # values and times exactly as published, tag machine as published
    # The tag set is the seed's: machine only (no host tag that would change with each Telegraf pod).
    rows = path.flux(
        f'from(bucket: "default") |> range(start: -1h, stop: 1h)'
        f' |> filter(fn: (r) => r.machine == "{sent["co2"][0].machine}")'
    )
    assert {r["_measurement"] for r in rows} == {
        "co2_reading"
    }  # the light and temp inputs made nothing of it
    assert {k for k in rows[0] if not k.startswith("_") and k not in ("result", "table", "")} == {"machine"}


def test_a_malformed_message_is_dropped_and_the_input_goes_on(platform: Platform, path: SensorPath) -> None:
    before = ready_pod(platform, "di-light")
    assert before, "di-light is not running"
    good = readings("light", 2, base=300)
    path.send(good[0])
    path.publish(good[0].topic, b"not json {")
    path.publish(
        good[0].topic, json.dumps({"machine": good[0].machine, "lux": "bright", "timestamp": "x"}).encode()
    )
    path.send(good[1])
    wait_stored(path, good)  # the reading after the bad ones arrived, the bad ones made no point
    logs = platform.kubectl("logs", "deployment/di-light").stdout
    assert "invalid JSON provided" in logs
    after = ready_pod(platform, "di-light")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    restarts = [p["status"]["containerStatuses"][0]["restartCount"] for p in (before, after)]
    assert restarts[0] == restarts[1]  # the same container went on


def scale(platform: Platform, deployment: str, replicas: int) -> None:
    platform.kubectl("scale", f"deployment/{deployment}", f"--replicas={replicas}")
    if replicas == 0:
        eventually(
            lambda: (
                not platform.kubectl(
                    "get", "pods", "-l", f"app.kubernetes.io/name={deployment}", "-o", "name"
                ).stdout
            ),
            120,
            f"{deployment}'s pods gone",
        )
    else:
        eventually(lambda: ready_pod(platform, deployment), 180, f"{deployment} ready")


def test_a_telegraf_restart_loses_no_acknowledged_reading(platform: Platform, path: SensorPath) -> None:
    """Telegraf away: the broker keeps its session and queues what arrives (QoS 1, persistent session);
    the new pod gets it all."""
    scale(platform, "di-temp", 0)
    try:
        sent = readings("temp", 20, base=20.5)
        for reading in sent:
            path.send(reading)  # acknowledged by the broker while no Telegraf runs
    finally:
        scale(platform, "di-temp", 1)
    wait_stored(path, sent)


def test_an_influxdb_restart_loses_no_acknowledged_reading(platform: Platform, path: SensorPath) -> None:
    """InfluxDB away: Telegraf keeps the readings (its buffer, up to metric_buffer_limit) and acknowledges
    none to the broker before InfluxDB took it; what InfluxDB held before is on its volume."""
    before = readings("light", 5, base=500)
    for reading in before:
        path.send(reading)
    wait_stored(path, before)
    old = ready_pod(platform, "influxdb")
    platform.kubectl("delete", "pod", old["metadata"]["name"], "--wait=false")
    eventually(lambda: not ready_pod(platform, "influxdb"), 60, "InfluxDB going away")
    during = readings("light", 20, base=600)
    for reading in during:
        path.send(reading)
    eventually(lambda: ready_pod(platform, "influxdb"), 180, "InfluxDB back")
    wait_stored(path, during, timeout=120)
    assert stored(path, before) == expected(before)


def test_the_dashboard_queries_return_the_simulators_readings(platform: Platform, path: SensorPath) -> None:
    provisioned = platform.kubectl("get", "configmap", "grafana-dashboards", "-o", "json").stdout
    (dashboard_json,) = json.loads(provisioned)["data"].values()
    dashboard = json.loads(dashboard_json)
    end = datetime.now(UTC)
    start_ms, end_ms = round((end - timedelta(hours=24)).timestamp() * 1000), round(end.timestamp() * 1000)
    queries = rendered_queries(dashboard, start_ms, end_ms, interval="1m")
    assert set(queries) == {"Light (lux)", "Temperature (°C)", "CO2 (ppm)"}  # the CO2 subclass has its panel

    def simulated_machines(query: str) -> set[str]:
        result = path.influxql(query)["results"][0]
        return {
            s["tags"]["machine"]
            for s in result.get("series", [])
            if any(v[1] is not None for v in s["values"])
        }

    for title, panel in queries.items():
        (query,) = panel
        # The simulator's devices (light-1.., temp-1.., co2-1..) publish every few seconds.
        machines = eventually(lambda q=query: simulated_machines(q), 90, f"data in panel {title}")
        kind = next(k for k in INPUTS if f'"{INPUTS[k][0]}"' in query)
        assert {f"{kind}-1", f"{kind}-2", f"{kind}-3"} <= machines, (title, machines)


def test_node_red_loads_and_runs_its_provisioned_flows(platform: Platform) -> None:
    secrets = json.loads((platform.state_dir / "secrets.json").read_text())
    with httpx.Client(base_url=f"http://127.0.0.1:{platform.state['nodered_port']}", timeout=30) as nodered:
        login = nodered.post(
            "/auth/token",
            data={"client_id": "node-red-admin", "grant_type": "password", "scope": "*",
                  "username": "admin", "password": secrets["noderedAdminPassword"]},
        )  # fmt: skip
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert nodered.get("/flows").status_code == 401  # the admin API needs the login
        flows = nodered.get("/flows", headers=auth).json()
        assert {"inject1", "debug1", "broker", "readings", "reading"} <= {n["id"] for n in flows}
        state = nodered.get("/flows/state", headers=auth).json()
        assert state.get("state") == "start"
        # The starter flow runs: its inject node fired once at start, and again now through the editor's
        # button (the admin API), each time logged by its debug node.
        assert nodered.post("/inject/inject1", headers=auth).status_code == 200

    # Running: the starter flow's message and live readings through the Sensors tab, in Node-RED's recent log.
    def log_shows_readings() -> bool:
        log = platform.kubectl("logs", "deployment/nodered", "--since=2m").stdout
        return (
            "Hello, World!" in log
            and "[debug:reading]" in log
            and re.search(r"machine: .(light|temp|co2)-\d", log) is not None
        )

    eventually(log_shows_readings, 90, "Node-RED's flows running", interval=2)
