"""The provisioned "Sensors" dashboard: valid for Grafana, a panel per sensor input, mounted where its
provider reads it.

Valid for Grafana: `dashboard-check` (tools/go/dashboard-check, built by tools/build.sh) decodes the JSON
strictly with the dashboard types the Grafana Foundation SDK generates from Grafana's schemas (unknown
fields and wrong types are errors; panel options and queries by their plugin's types) and runs the
schema's constraints.
"""

from __future__ import annotations

import copy
import itertools
import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from components.dashboards import (
    DASHBOARDS_PATH,
    PROVIDERS_PATH,
    SCHEMA_VERSION,
    influxql,
    rendered_queries,
    sensors_dashboard,
)
from components.platform import SEED_SENSORS
from components.telegraf import LightSensor, SensorInput, TempSensor
from components.ui import Grafana
from localdev.tools import Tools

from .conftest import build_platform
from .harness import Run
from .k8s import container, mounts_of, volumes_of
from .test_telegraf import Co2Sensor

SENSORS: tuple[type[SensorInput], ...] = (*SEED_SENSORS, Co2Sensor)


class NoTagSensor(SensorInput):
    sensor = "door"
    measurement = "door_reading"
    field = "open"
    tag = None


class WardSensor(SensorInput):
    sensor = "humidity"
    measurement = "humidity_reading"
    field = "rh"
    tag = "ward"


@pytest.fixture(scope="module")
def check(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Callable[[dict[str, Any]], str]:
    """Runs dashboard-check on one dashboard: "" when valid, else its errors."""
    folder = tmp_path_factory.mktemp("dashboards")

    def run(dashboard: dict[str, Any]) -> str:
        path = folder / "dashboard.json"
        path.write_text(json.dumps(dashboard))
        done = subprocess.run(
            [str(tools.dashboard_check), str(path)], capture_output=True, text=True, check=False, timeout=60
        )
        if done.returncode == 0:
            assert done.stdout.startswith("ok "), done.stdout
            return ""
        assert done.returncode == 1, done.stderr  # 1: the dashboard failed; anything else: the tool did
        return done.stdout

    return run


@pytest.fixture(scope="module")
def platform_run() -> Run:
    return build_platform({"ingressController": "none"}, extra_sensors=[Co2Sensor])


def test_the_dashboard_is_valid_for_grafana(check: Callable[[dict[str, Any]], str]) -> None:
    assert check(sensors_dashboard(SENSORS)) == ""
    assert check(sensors_dashboard([NoTagSensor, WardSensor])) == ""


def test_a_broken_dashboard_fails_the_check(check: Callable[[dict[str, Any]], str]) -> None:
    broken = sensors_dashboard(SENSORS)
    broken["panels"][1]["gridPos"] = "x=12,y=0"
    assert "panels[1].gridPos" in check(broken)
    unknown = sensors_dashboard(SENSORS)
    unknown["panels"][0]["fieldconfig"] = {}  # a misspelt key is no key of Grafana's
    assert "unexpected field 'fieldconfig'" in check(unknown)
    wrong_type = copy.deepcopy(sensors_dashboard(SENSORS))
    wrong_type["schemaVersion"] = "39"
    assert "schemaVersion" in check(wrong_type)


def test_the_dashboard_is_for_the_grafana_deployed() -> None:
    assert sensors_dashboard(SENSORS)["schemaVersion"] == SCHEMA_VERSION
    assert Grafana.image == "grafana/grafana:11.2.0"  # a new Grafana: check SCHEMA_VERSION again


def test_settings() -> None:
    dashboard = sensors_dashboard(SENSORS)
    assert dashboard["uid"] == "dtpoc-sensors" and dashboard["title"] == "Sensors"
    assert dashboard["time"] == {"from": "now-24h", "to": "now"}
    assert dashboard["refresh"] == "30s"
    assert sensors_dashboard([LightSensor]) == sensors_dashboard([LightSensor])  # stable: no ids or times


def test_a_panel_per_sensor_input_subclasses_too() -> None:
    panels = sensors_dashboard(SENSORS)["panels"]
    assert [p["title"] for p in panels] == ["Light (lux)", "Temperature (°C)", "CO2 (ppm)"]
    assert [p["type"] for p in panels] == ["timeseries"] * 3
    assert [p["fieldConfig"]["defaults"]["unit"] for p in panels] == ["lux", "celsius", "ppm"]
    # Without a title of its own, a sensor's panel is named after it and its field.
    assert [p["title"] for p in sensors_dashboard([WardSensor])["panels"]] == ["Humidity (rh)"]
    assert len({p["id"] for p in panels}) == 3
    assert sensors_dashboard([])["panels"] == []


@pytest.mark.parametrize("sensor", [LightSensor, TempSensor, Co2Sensor, WardSensor])
def test_queries_name_measurement_field_and_tag(sensor: type[SensorInput]) -> None:
    (panel,) = sensors_dashboard([sensor])["panels"]
    (target,) = panel["targets"]
    query = target["query"]
    assert query.startswith("SELECT ")
    assert f'mean("{sensor.field}") FROM "{sensor.measurement}" WHERE $timeFilter GROUP BY' in query
    assert query.endswith(f'GROUP BY time($__interval), "{sensor.tag}" fill(null)')
    source = {"type": "influxdb", "uid": "influxdb"}  # the datasource ui.py provisions
    assert target["rawQuery"] is True and target["resultFormat"] == "time_series"
    assert target["datasource"] == panel["datasource"] == source
    assert target["alias"] == f"$tag_{sensor.tag}"


def test_a_sensor_without_a_tag_is_one_series() -> None:
    query = influxql(NoTagSensor)
    assert query.endswith("GROUP BY time($__interval) fill(null)")
    assert "alias" not in sensors_dashboard([NoTagSensor])["panels"][0]["targets"][0]


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_panels_do_not_overlap(count: int) -> None:
    sensors = [
        type(f"S{i}", (SensorInput,), {"sensor": f"s{i}", "measurement": f"m{i}", "field": "v"})
        for i in range(count)
    ]
    grids = [p["gridPos"] for p in sensors_dashboard(sensors)["panels"]]
    for g in grids:
        assert g["x"] >= 0 and g["y"] >= 0 and g["x"] + g["w"] <= 24
    for a, b in itertools.combinations(grids, 2):
        apart = (
            a["x"] + a["w"] <= b["x"]
            or b["x"] + b["w"] <= a["x"]
            or a["y"] + a["h"] <= b["y"]
            or b["y"] + b["h"] <= a["y"]
        )
        assert apart, (a, b)


def test_rendered_queries_are_what_grafana_sends() -> None:
    queries = rendered_queries(
        sensors_dashboard([LightSensor, NoTagSensor]), 1_700_000_000_000, 1_700_086_400_000
    )
    assert queries == {
        "Light (lux)": [
            'SELECT mean("lux") FROM "light_reading" WHERE time >= 1700000000000ms '
            'and time <= 1700086400000ms GROUP BY time(1m), "machine" fill(null)'
        ],
        "Door (open)": [
            'SELECT mean("open") FROM "door_reading" WHERE time >= 1700000000000ms '
            "and time <= 1700086400000ms GROUP BY time(1m) fill(null)"
        ],
    }
    (query,) = rendered_queries(sensors_dashboard([TempSensor]), 0, 10, interval="10s")["Temperature (°C)"]
    assert "time >= 0ms and time <= 10ms" in query and "time(10s)" in query and "$" not in query


@pytest.mark.parametrize(("interval", "start", "end"), [("1 m", 0, 1), ("$__interval", 0, 1), ("1m", 2, 1)])
def test_rendered_queries_refuse_bad_arguments(interval: str, start: int, end: int) -> None:
    with pytest.raises(ValueError):
        rendered_queries(sensors_dashboard([LightSensor]), start, end, interval=interval)


def test_the_platform_provisions_the_dashboard(
    platform_run: Run, check: Callable[[dict[str, Any]], str]
) -> None:
    dashboard = json.loads(platform_run.one("ConfigMap", "grafana-dashboards").inputs["data"]["sensors.json"])
    assert dashboard == sensors_dashboard(SENSORS)  # the seed's sensors and the extra one, in that order
    assert check(dashboard) == ""

    providers = yaml.safe_load(
        platform_run.one("ConfigMap", "grafana-dashboard-providers").inputs["data"]["dtpoc.yaml"]
    )
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["folder"] == "dtpoc"
    assert provider["options"]["path"] == DASHBOARDS_PATH

    grafana = platform_run.one("Deployment", "grafana")
    mounts = mounts_of(container(grafana))
    assert mounts[DASHBOARDS_PATH] == ("dashboards", None)  # a folder: updated in place, unlike subPath
    assert mounts[PROVIDERS_PATH] == ("dashboard-providers", None)
    volumes = volumes_of(grafana)
    assert volumes["dashboards"]["configMap"]["name"] == "grafana-dashboards"
    assert volumes["dashboard-providers"]["configMap"]["name"] == "grafana-dashboard-providers"
