"""Grafana's provisioned "Sensors" dashboard, made from the sensor inputs present: one time series panel per
`SensorInput` class, an InfluxQL query of its measurement and field per sensor tag value. Pure functions: the
`Grafana` component (ui.py) puts their output in ConfigMaps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .telegraf import SensorInput

DASHBOARD_UID = "dtpoc-sensors"
DASHBOARD_FILE = "sensors.json"
FOLDER = "dtpoc"
# Where the provider reads dashboards; the provider file itself goes under provisioning/dashboards.
DASHBOARDS_PATH = "/etc/grafana/dashboards"
PROVIDERS_PATH = "/etc/grafana/provisioning/dashboards"
# The dashboard schema of Grafana 11.2 (the image ui.py deploys); a newer Grafana migrates it on load.
SCHEMA_VERSION = 39
DATASOURCE = {"type": "influxdb", "uid": "influxdb"}  # as grafana_datasources() in ui.py provisions it
PANEL_WIDTH, PANEL_HEIGHT, GRID_COLUMNS = 12, 8, 24

_INTERVAL = re.compile(r"^[0-9]+(ms|s|m|h|d|w)$")


def panel_title(sensor: type[SensorInput]) -> str:
    """The sensor's own title, else its name and the field it plots, e.g. "Humidity (rh)"."""
    if sensor.title:
        return sensor.title
    return f"{sensor.sensor.replace('_', ' ').replace('-', ' ').capitalize()} ({sensor.field})"


def quoted(identifier: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + identifier.replace("\\", "\\\\").replace('"', '\\"') + '"'


def influxql(sensor: type[SensorInput]) -> str:
    """The mean of the sensor's field per interval, one series per value of its tag (if it has one)."""
    group_by = "time($__interval)" + (f", {quoted(sensor.tag)}" if sensor.tag else "")
    # A query of the class's own names for Grafana to run read-only, not one built from user input.
    return (
        f"SELECT mean({quoted(sensor.field)}) FROM {quoted(sensor.measurement)} "  # noqa: S608
        f"WHERE $timeFilter GROUP BY {group_by} fill(null)"
    )


def panel(sensor: type[SensorInput], index: int) -> dict[str, Any]:
    per_row = GRID_COLUMNS // PANEL_WIDTH
    target: dict[str, Any] = {
        "refId": "A",
        "datasource": dict(DATASOURCE),
        "rawQuery": True,
        "query": influxql(sensor),
        "resultFormat": "time_series",
    }
    if sensor.tag:
        target["alias"] = f"$tag_{sensor.tag}"  # legend: the machine, not "measurement.mean {machine=...}"
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": panel_title(sensor),
        "datasource": dict(DATASOURCE),
        "gridPos": {
            "x": (index % per_row) * PANEL_WIDTH,
            "y": (index // per_row) * PANEL_HEIGHT,
            "w": PANEL_WIDTH,
            "h": PANEL_HEIGHT,
        },
        "fieldConfig": {"defaults": {"unit": sensor.unit} if sensor.unit else {}, "overrides": []},
        "targets": [target],
    }


def sensors_dashboard(sensors: Sequence[type[SensorInput]]) -> dict[str, Any]:
    """The "Sensors" dashboard: last 24 hours, refreshed every 30 s, a panel per sensor input in order."""
    return {
        "uid": DASHBOARD_UID,
        "title": "Sensors",
        "tags": ["dtpoc", "sensors"],
        "timezone": "browser",
        "editable": False,  # provisioned: Grafana could not save changes anyway
        "graphTooltip": 1,  # a shared crosshair across the sensors' panels
        "time": {"from": "now-24h", "to": "now"},
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": [panel(sensor, i) for i, sensor in enumerate(sensors)],
    }


def dashboard_providers(path: str = DASHBOARDS_PATH, folder: str = FOLDER) -> str:
    """Grafana's dashboard provisioning file: the JSON files under `path`, in folder `folder`, read-only."""
    return "\n".join(
        [
            "apiVersion: 1",
            "providers:",
            f"  - name: {folder}",
            "    orgId: 1",
            f"    folder: {folder}",
            "    type: file",
            "    disableDeletion: true",
            "    allowUiUpdates: false",
            "    updateIntervalSeconds: 30",
            "    options:",
            f"      path: {path}",
            "",
        ]
    )


def rendered_queries(
    dashboard: Mapping[str, Any], start_ms: int, end_ms: int, interval: str = "1m"
) -> dict[str, list[str]]:
    """Each panel's InfluxQL queries (by panel title) as Grafana's InfluxQL datasource sends them for the
    time range `start_ms`..`end_ms` (Unix milliseconds) and `interval` (e.g. "1m"): `$timeFilter` and
    `$__interval` replaced."""
    if not _INTERVAL.match(interval):
        raise ValueError(f"interval must look like 10s, 1m or 1h, got {interval!r}")
    if start_ms > end_ms:
        raise ValueError(f"the time range must not end before it starts, got {start_ms}..{end_ms}")
    time_filter = f"time >= {start_ms}ms and time <= {end_ms}ms"

    def render(query: str) -> str:
        # \b: `$__interval_ms` is another macro, left alone.
        return re.sub(r"\$__interval\b", interval, query.replace("$timeFilter", time_filter))

    return {p["title"]: [render(t["query"]) for t in p.get("targets", [])] for p in dashboard["panels"]}
