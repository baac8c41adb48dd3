"""Output collection against the real FerretDB: stored once, recorded once, in run order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from services.operator import layout
from services.operator.outputs import Collector, Run
from services.shared.files import FileStore, output_file_id
from services.shared.records import ServiceRecord, services_collection


@pytest.fixture
async def client(mongo_url: str) -> AsyncIterator[AsyncMongoClient]:
    mongo = AsyncMongoClient(mongo_url)
    yield mongo
    await mongo.close()


@pytest.fixture
async def sid(client: AsyncMongoClient) -> str:
    oid = ObjectId()
    await services_collection(client).insert_one(ServiceRecord(image="m:1", reps=3).to_document(oid))
    return str(oid)


def write_run(root: Path, sid: str, index: int, files: dict[str, bytes]) -> Run:
    directory = layout.run_dir(root, sid, index)
    for name, content in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(content)
    return Run(index, directory)


async def record(client: AsyncMongoClient, sid: str) -> dict:
    return await services_collection(client).find_one({"_id": ObjectId(sid)})


async def test_runs_finishing_out_of_order_are_recorded_in_run_order(
    client: AsyncMongoClient, sid: str, tmp_path: Path
) -> None:
    store = FileStore(client)
    collector = Collector(client, store)
    runs = [
        write_run(tmp_path, sid, i, {"b.txt": b"b%d" % i, "a/x.json": b'{"run": %d}' % i}) for i in range(3)
    ]
    for run in (runs[2], runs[0], runs[1]):
        async with collector.lock(sid):
            await collector.collect(sid, [run])

    document = await record(client, sid)
    assert [(o["run"], o["filename"]) for o in document["output_files"]] == [
        (0, "a/x.json"), (0, "b.txt"), (1, "a/x.json"), (1, "b.txt"), (2, "a/x.json"), (2, "b.txt"),
    ]  # fmt: skip
    assert sorted(document["collected_runs"]) == [0, 1, 2]
    for entry in document["output_files"]:
        assert entry["file_id"] == str(output_file_id(sid, entry["run"], entry["filename"]))
    grid = await store.bucket.open_download_stream(output_file_id(sid, 1, "a/x.json"))
    assert await grid.read() == b'{"run": 1}'
    assert grid.metadata == {
        "service_id": sid,
        "run": 1,
        "kind": "output",
        "content_type": "application/json",
    }
    assert ServiceRecord.from_document(document).outputs_of_run(2)[1].filename == "b.txt"


async def test_collecting_again_stores_and_records_nothing_twice(
    client: AsyncMongoClient, sid: str, tmp_path: Path
) -> None:
    store = FileStore(client)
    runs = [write_run(tmp_path, sid, i, {"out.csv": b"1,2\n" * 1000}) for i in range(2)]
    await Collector(client, store).collect(sid, runs)
    # A fresh collector (a restarted operator) asked again, and a run whose mark was lost after its
    # files were stored: the file is found in GridFS, the record entry is not added again.
    await services_collection(client).update_one({"_id": ObjectId(sid)}, {"$pull": {"collected_runs": 1}})
    state = await Collector(client, store).collect(sid, runs)

    assert state is not None and state.outputs == 2
    assert await store.files.count_documents({}) == 2
    document = await record(client, sid)
    assert len(document["output_files"]) == 2
    assert sorted(document["collected_runs"]) == [0, 1]


async def test_chunks_of_an_upload_that_died_are_replaced(
    client: AsyncMongoClient, sid: str, tmp_path: Path
) -> None:
    store = FileStore(client)
    content = bytes(range(256)) * 8192  # 2 MiB: two chunks
    run = write_run(tmp_path, sid, 0, {"big.bin": content})
    file_id = output_file_id(sid, 0, "big.bin")
    await store.chunks.insert_one({"files_id": file_id, "n": 0, "data": b"half-written"})

    await Collector(client, store).collect(sid, [run])

    grid = await store.bucket.open_download_stream(file_id)
    assert await grid.read() == content
    assert await store.chunks.count_documents({"files_id": file_id}) == 2


async def test_a_failed_run_is_marked_and_its_partial_output_kept(
    client: AsyncMongoClient, sid: str, tmp_path: Path
) -> None:
    run = write_run(tmp_path, sid, 1, {"log.txt": b"died here"})
    state = await Collector(client, FileStore(client)).collect(sid, [Run(1, run.directory, failed=True)])
    assert state is not None and state.failed == {1} and state.collected == {1}
    assert (await record(client, sid))["output_files"][0]["filename"] == "log.txt"


async def test_without_a_record_nothing_is_collected(client: AsyncMongoClient, tmp_path: Path) -> None:
    store = FileStore(client)
    missing = str(ObjectId())
    run = write_run(tmp_path, missing, 0, {"a": b"a"})
    assert await Collector(client, store).collect(missing, [run]) is None
    assert await store.files.count_documents({}) == 0


async def test_each_scheduled_job_gets_its_own_block_of_run_numbers(
    client: AsyncMongoClient, sid: str
) -> None:
    collector = Collector(client, FileStore(client))
    assert await collector.run_base(sid, "uid-100", 3) == 0
    assert await collector.run_base(sid, "uid-105", 3) == 3
    assert await collector.run_base(sid, "uid-100", 3) == 0  # asked again: the same block
    assert await Collector(client, FileStore(client)).run_base(sid, "uid-110", 2) == 6
    assert await collector.run_base(str(ObjectId()), "uid-1", 1) is None


@pytest.mark.parametrize(
    "stored",
    [{"669a4eee364a1b751c550b02": "earlier.json", "669a4eee364a1b751c550b03": "later.json"}, None],
    ids=["map", "null"],
)
async def test_a_record_of_the_original_platform_gets_its_runs_added(
    client: AsyncMongoClient, tmp_path: Path, stored: dict | None
) -> None:
    # The original's operator kept output_files as a {file_id: name} map (null before the first).
    oid = ObjectId()
    seed_record = {"image": "m:1", "reps": 2, "env": None, "mount_files": None, "created_at": 1721395922.5}
    await services_collection(client).insert_one({"_id": oid, **seed_record, "output_files": stored})
    collector = Collector(client, FileStore(client))
    async with collector.lock(str(oid)):
        state = await collector.collect(str(oid), [write_run(tmp_path, str(oid), 0, {"new.json": b"{}"})])

    old = list((stored or {}).items())
    assert state is not None and state.outputs == len(old) + 1
    document = await record(client, str(oid))
    assert isinstance(document["output_files"], list)
    assert [
        (o["file_id"], o["filename"]) for o in document["output_files"] if o["filename"] != "new.json"
    ] == old
    assert sum(o["filename"] == "new.json" for o in document["output_files"]) == 1
    assert document["collected_runs"] == [0]
