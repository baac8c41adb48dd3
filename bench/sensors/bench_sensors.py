"""Benchmark of the sensor data path on the real node (not a test): run it by hand or by `make bench`.

Starts a platform instance of its own (or uses a running one: `--attach <state folder>`), then, through the
host's loopback relays:
1. sustained throughput: N readings published to Mosquitto (QoS 1, in the seed's format, many in flight)
   until all N are queryable in InfluxDB, in points per second; baseline: the same N points written
   straight to InfluxDB's write API in batches of 1,000 (Telegraf's batch size), same run; 5 rounds each,
   alternating which goes first, the median reported;
2. publish -> queryable, p50/p95: one reading published, a Flux query polled every 50 ms until it returns it;
   baseline: one point written straight to InfluxDB, polled the same way. The rounds alternate the two.

    uv run python bench/sensors/bench_sensors.py [--points 20000] [--samples 30] [--attach DIR]

Prints each goal with met / not met and writes JSON to bench/results/sensors-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.node.bench_node import localdev, wait_for  # noqa: E402
from bench.stats import Goal, Spread, percentile, save_results  # noqa: E402
from tests.e2e.sensor_path import BUCKET, ORG, Reading, SensorPath  # noqa: E402

THROUGHPUT_GOAL = 1000.0  # points/s through MQTT and Telegraf: hundreds of sensors at a reading a second
THROUGHPUT_RATIO_GOAL = 0.1  # the path at least a tenth of InfluxDB's own write rate
LATENCY_P50_GOAL_S = 2.0  # Telegraf flushes every second (telegraf.conf flush_interval)
REPEATS = 5  # throughput rounds per way, alternating which goes first; the median is reported


def count(path: SensorPath, machine_prefix: str) -> int:
    """How many light readings of the machines named `machine_prefix`-* InfluxDB holds."""
    rows = path.flux(
        f'import "strings" from(bucket: "{BUCKET}") |> range(start: -2h, stop: 1h)'
        ' |> filter(fn: (r) => r._measurement == "light_reading")'
        f' |> filter(fn: (r) => strings.hasPrefix(v: r.machine, prefix: "{machine_prefix}"))'
        " |> group() |> count()"
    )
    return int(rows[0]["_value"]) if rows else 0


def batch(points: int, machines: int = 10) -> list[Reading]:
    """`points` light readings of `machines` new machines, a millisecond apart each (distinct points)."""
    prefix = f"bench-{uuid.uuid4().hex[:6]}"
    start = datetime.now(UTC) - timedelta(minutes=30)
    return [
        Reading(
            "light", f"{prefix}-{i % machines}", "lux", 400 + (i % 97) / 4, start + timedelta(milliseconds=i)
        )
        for i in range(points)
    ]


def line(reading: Reading) -> str:
    return f"light_reading,machine={reading.machine} lux={reading.value} {reading.milliseconds}"


def through_mqtt(path: SensorPath, points: int) -> float:
    readings = batch(points)
    prefix = readings[0].machine.rsplit("-", 1)[0]
    started = time.perf_counter()
    infos = [path.client.publish(r.topic, r.payload, qos=1) for r in readings]
    for info in infos:
        info.wait_for_publish(60)
    wait_for(lambda: count(path, prefix) >= points, 300, f"{points} points through MQTT", interval=0.25)
    return points / (time.perf_counter() - started)


def direct(path: SensorPath, points: int) -> float:
    readings = batch(points)
    prefix = readings[0].machine.rsplit("-", 1)[0]
    started = time.perf_counter()
    for i in range(0, points, 1000):
        write(path, "\n".join(line(r) for r in readings[i : i + 1000]))
    wait_for(lambda: count(path, prefix) >= points, 300, f"{points} points written directly", interval=0.25)
    return points / (time.perf_counter() - started)


def write(path: SensorPath, body: str) -> None:
    response = path.influx.post(
        "/api/v2/write",
        params={"org": ORG, "bucket": BUCKET, "precision": "ms"},
        headers={"Authorization": f"Token {path.token}"},
        content=body,
    )
    response.raise_for_status()


def queryable(path: SensorPath, reading: Reading) -> bool:
    return bool(path.points("light_reading", reading.machine, "lux", hours=1))


def latency(path: SensorPath, via_mqtt: bool) -> float:
    (reading,) = batch(1, machines=1)
    reading = Reading("light", reading.machine, "lux", reading.value, datetime.now(UTC))
    started = time.perf_counter()
    if via_mqtt:
        path.send(reading)
    else:
        write(path, line(reading))
    wait_for(lambda: queryable(path, reading), 60, "one reading queryable", interval=0.05)
    return time.perf_counter() - started


def measure(path: SensorPath, points: int, samples: int) -> dict[str, Any]:
    for via_mqtt in (True, False):  # warm up once: connections, Telegraf's first flush
        latency(path, via_mqtt)
    mqtt_s: list[float] = []
    direct_s: list[float] = []
    for i in range(samples):
        first, second = (True, False) if i % 2 == 0 else (False, True)
        for via_mqtt in (first, second):
            (mqtt_s if via_mqtt else direct_s).append(latency(path, via_mqtt))
    rates: dict[str, list[float]] = {"mqtt": [], "direct": []}
    for i in range(REPEATS):
        order = ("mqtt", "direct") if i % 2 == 0 else ("direct", "mqtt")
        for way in order:
            rates[way].append(through_mqtt(path, points) if way == "mqtt" else direct(path, points))
    return {
        "latency_s": {"mqtt": asdict(Spread.of(mqtt_s)), "direct": asdict(Spread.of(direct_s))},
        "points_per_s": {way: percentile(values, 50) for way, values in rates.items()},
        "points_per_s_each": rates,
        "points": points,
    }


def goals(results: dict[str, Any]) -> list[Goal]:
    rate = results["points_per_s"]
    lat = results["latency_s"]
    return [
        Goal("MQTT -> InfluxDB sustained", rate["mqtt"], THROUGHPUT_GOAL, "points/s", at_most=False),
        Goal(
            "MQTT path / direct write rate", rate["mqtt"] / rate["direct"], THROUGHPUT_RATIO_GOAL, "x", False
        ),
        Goal("publish -> queryable p50", lat["mqtt"]["p50"], LATENCY_P50_GOAL_S, "s"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=20000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--attach", type=Path, help="the state folder of a running instance")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dtpoc-bench-sensors-") as tmp:
        state_dir = args.attach or Path(tmp) / "instance"
        try:
            if not args.attach:
                localdev("up", state_dir)
            with SensorPath(state_dir) as path:
                results = measure(path, args.points, args.samples)
        finally:
            if not args.attach:
                localdev("down", state_dir)
    results["settings"] = {"points": args.points, "samples": args.samples}
    print(json.dumps(results, indent=2))
    lat = results["latency_s"]
    print(f"publish -> queryable p50, MQTT / direct write: {lat['mqtt']['p50'] / lat['direct']['p50']:.2f}x")
    save_results("sensors", results, goals(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
