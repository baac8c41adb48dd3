"""Run pods noted in the record (services.operator.pods) against the real FerretDB: which pods are noted
as which run, a newer pod replacing an older one and never the reverse, and notes made while a run is
being collected losing nothing (FerretDB loses one of two updates of a document made at once, so the
operator's writes to a record go one at a time)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient

from services.operator import layout
from services.operator.outputs import Collector, Run
from services.operator.pods import RunPods, identify
from services.shared.files import FileStore
from services.shared.names import SERVICE_ID_LABEL
from services.shared.records import ServiceRecord, services_collection
from services.shared.run_logs import RunPod, run_pod

INDEX = "batch.kubernetes.io/job-completion-index"
JOB = "batch.kubernetes.io/job-name"


def job_pod(sid: str, index: int, name: str, created: str, node: str = "") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "labels": {SERVICE_ID_LABEL: sid, JOB: f"ana-{sid}"},
            "annotations": {INDEX: str(index)},
            "ownerReferences": [{"kind": "Job", "name": f"ana-{sid}"}],
        },
        "spec": {"nodeName": node} if node else {},
    }


def test_which_pods_are_runs() -> None:
    sid = "6b0e4a975fe0bc05c8456404"
    assert identify(job_pod(sid, 3, "p", "2026-01-01T00:00:00Z", "n1")) == (
        sid,
        3,
        RunPod(pod="p", created="2026-01-01T00:00:00Z", node="n1"),
    )
    deployment_pod = {
        "metadata": {
            "name": "web",
            "labels": {SERVICE_ID_LABEL: sid},
            "ownerReferences": [{"kind": "ReplicaSet", "name": f"ana-{sid}-5d9"}],
        }
    }
    assert identify(deployment_pod) == (sid, 0, RunPod(pod="web"))  # a persistent service's run
    scheduled = job_pod(sid, 0, "cron", "2026-01-01T00:00:00Z")
    scheduled["metadata"]["labels"][JOB] = f"ana-{sid}-29000000"
    assert identify(scheduled) is None  # numbered only when its Job finishes
    no_index = job_pod(sid, 0, "x", "")
    del no_index["metadata"]["annotations"][INDEX]
    assert identify(no_index) is None
    assert identify({"metadata": {"name": "other", "labels": {}}}) is None


async def new_record(client: AsyncMongoClient, reps: int) -> str:
    oid = ObjectId()
    await services_collection(client).insert_one(ServiceRecord(image="m:1", reps=reps).to_document(oid))
    return str(oid)


async def test_a_newer_pod_of_a_run_replaces_an_older_one_and_never_the_reverse(
    client: AsyncMongoClient,
) -> None:
    sid = await new_record(client, 1)
    collector = Collector(client, FileStore(client))
    pods = RunPods(services_collection(client), collector.write_lock)
    first = job_pod(sid, 0, "try-1", "2026-01-01T00:00:00Z")
    retry = job_pod(sid, 0, "try-2", "2026-01-01T00:01:00Z")

    async def noted() -> RunPod | None:
        return run_pod(await services_collection(client).find_one({"_id": ObjectId(sid)}), 0)

    assert pods.is_news(first)
    await pods.note(first)
    assert not pods.is_news(first)  # seen already: nothing to write
    assert await noted() == RunPod(pod="try-1", created="2026-01-01T00:00:00Z")
    placed = job_pod(sid, 0, "try-1", "2026-01-01T00:00:00Z", "node-a")
    assert pods.is_news(placed)
    await pods.note(placed)
    assert (await noted()).node == "node-a"
    await pods.note(retry)
    assert (await noted()).pod == "try-2"
    # The first attempt's late event (it is being deleted, say) changes nothing.
    await RunPods(services_collection(client), collector.write_lock).note(placed)
    assert (await noted()).pod == "try-2"


async def test_notes_made_while_runs_are_collected_lose_nothing(
    client: AsyncMongoClient, tmp_path: Path
) -> None:
    reps = 12
    sid = await new_record(client, reps)
    collector = Collector(client, FileStore(client))
    pods = RunPods(services_collection(client), collector.write_lock)
    runs = []
    for index in range(reps):
        directory = layout.run_dir(tmp_path, sid, index)
        directory.mkdir(parents=True)
        (directory / "kpis.json").write_text(f'{{"run": {index}}}')
        runs.append(Run(index, directory))

    async def collect(run: Run) -> None:
        async with collector.lock(sid):
            await collector.collect(sid, [run])

    notes = [pods.note(job_pod(sid, i, f"pod-{i}", "2026-01-01T00:00:00Z", "node-a")) for i in range(reps)]
    await asyncio.gather(*notes, *(collect(run) for run in runs))

    record = await services_collection(client).find_one({"_id": ObjectId(sid)})
    assert sorted(record["collected_runs"]) == list(range(reps))
    assert sorted(o["run"] for o in record["output_files"]) == list(range(reps))
    assert {run: entry["pod"] for run, entry in record["run_pods"].items()} == {
        str(i): f"pod-{i}" for i in range(reps)
    }
