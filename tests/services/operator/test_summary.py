"""The study summary writer against the real FerretDB: from what the collector stored (run folders
written here as modules would, collected by the operator's own Collector), whatever the runs left.
These prove the operator's summary, not any module's behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from services.operator import layout
from services.operator.outputs import Collector, OutputLimits, Run
from services.operator.study import Scenario, Study, job_name
from services.operator.summary import SummaryWriter
from services.shared.files import FileStore, summary_file_id
from services.shared.records import ServiceRecord, StudyRecord, services_collection

STUDY = Study(reps=2, scenarios=(Scenario("a", {}), Scenario("b", {})))


@pytest.fixture
async def sid(client: AsyncMongoClient) -> str:
    oid = ObjectId()
    record = ServiceRecord(
        image="m:1", reps=4, study=StudyRecord(reps=2, scenarios=[{"name": "a"}, {"name": "b"}])
    )
    await services_collection(client).insert_one(record.to_document(oid))
    return str(oid)


async def collect(
    client: AsyncMongoClient, sid: str, root: Path, runs: dict[int, dict[str, bytes]], failed=()
):
    """Each run's files in its study folder, as its module would leave them, collected by the operator."""
    collector = Collector(client, FileStore(client), limits=OutputLimits(max_files=10))
    made = []
    for run, files in runs.items():
        k, replication = divmod(run, STUDY.reps)
        directory = layout.run_dir(root, sid, replication, job_name(sid, k))
        for name, content in files.items():
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            (directory / name).write_bytes(content)
        made.append(Run(run, directory, failed=run in failed))
    async with collector.lock(sid):
        await collector.collect(sid, made)


async def test_every_kind_of_run_is_a_row_and_the_summary_is_written_once(
    client: AsyncMongoClient, sid: str, tmp_path: Path
) -> None:
    runs = {
        0: {"kpis.json": b'{"kpis": {"x": 1.5, "y": 2}}', "replication_0.json": b'{"x": 99}'},
        1: {"out/only.json": b'{"x": 2.5, "label": "fine"}', "log.txt": b"ok"},  # its only JSON
        2: {"a.json": b"{}", "b.json": b"{}"},  # two JSON files, neither kpis.json
        3: {"kpis.json": b"[" * 100_000 + b"]" * 100_000},  # crafted: too deep for the parser
    }
    await collect(client, sid, tmp_path, runs)
    writer = SummaryWriter(client, FileStore(client), max_kpi_bytes=1024 * 1024)
    first = await writer.write_once(sid, STUDY)
    assert first is not None
    assert first.json_file_id == str(summary_file_id(sid, "summary.json"))

    store = FileStore(client)
    document = await store.bucket.open_download_stream(summary_file_id(sid, "summary.json"))
    summary = json.loads(await document.read())
    rows = {row["run"]: row for row in summary["runs"]}
    assert rows[0]["source"] == "kpis.json" and rows[0]["kpis"] == {"x": 1.5, "y": 2}
    assert rows[1]["source"] == "out/only.json" and rows[1]["kpis"] == {"x": 2.5, "label": "fine"}
    assert rows[2]["source"] is None and rows[2]["note"].startswith("no KPI JSON")
    assert rows[3]["kpis"] == {} and "is not JSON" in rows[3]["note"]
    a = summary["scenarios"][0]["statistics"]["x"]
    assert (a["n"], a["mean"]) == (2, 2.0)
    assert "x" not in summary["scenarios"][1]["statistics"]

    # Asked again (a restarted operator, another event): the same files, nothing stored twice.
    again = await SummaryWriter(client, FileStore(client), max_kpi_bytes=1024 * 1024).write_once(sid, STUDY)
    assert again is not None
    assert (again.json_file_id, again.csv_file_id) == (first.json_file_id, first.csv_file_id)
    assert await store.files.count_documents({"metadata.kind": "summary"}) == 2


async def test_failed_runs_and_oversized_kpis_are_noted_not_counted(
    client: AsyncMongoClient, sid: str, tmp_path: Path
) -> None:
    runs = {
        0: {"kpis.json": b'{"x": 10}'},
        1: {"kpis.json": b'{"x": 1000}'},  # failed: its figures are not the scenario's
        2: {"kpis.json": b'{"x": 3, "pad": "' + b"p" * 300 + b'"}'},  # beyond the limit below
        3: {"kpis.json": b'{"x": 4}'},
    }
    await collect(client, sid, tmp_path, runs, failed={1})
    writer = SummaryWriter(client, FileStore(client), max_kpi_bytes=200)
    files = await writer.write_once(sid, STUDY)
    assert files is not None
    grid = await FileStore(client).bucket.open_download_stream(summary_file_id(sid, "summary.json"))
    summary = json.loads(await grid.read())
    rows = {row["run"]: row for row in summary["runs"]}
    assert (rows[1]["status"], rows[1]["note"], rows[1]["kpis"]) == ("failed", "the run failed", {})
    assert rows[2]["note"] == "kpis.json is larger than 200 bytes; not read"
    scenario_a, scenario_b = summary["scenarios"]
    assert (scenario_a["succeeded"], scenario_a["failed"]) == (1, 1)
    assert scenario_a["statistics"]["x"]["n"] == 1 and scenario_a["statistics"]["x"]["ci95_low"] is None
    assert scenario_b["statistics"]["x"] == {
        "n": 1, "mean": 4.0, "std": None, "t": None, "ci95_low": None, "ci95_high": None,
    }  # fmt: skip


async def test_without_a_record_nothing_is_written(client: AsyncMongoClient) -> None:
    writer = SummaryWriter(client, FileStore(client), max_kpi_bytes=1024)
    assert await writer.write_once(str(ObjectId()), STUDY) is None
    assert await FileStore(client).files.count_documents({}) == 0
