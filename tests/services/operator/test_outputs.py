"""Output collection against the real FerretDB: stored once, recorded once, in run order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient

from services.operator import layout
from services.operator.outputs import Collector, Run
from services.shared.files import FileStore, output_file_id
from services.shared.records import ServiceRecord, services_collection


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


# --- limits and hostile output folders (a module writes what it likes) -------------------------------


async def test_the_walk_runs_off_the_event_loop(
    client: AsyncMongoClient, sid: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import threading

    run = write_run(tmp_path, sid, 0, {"a.txt": b"a", "d/b.txt": b"b"})
    loop_thread = threading.get_ident()
    threads: list[int] = []
    real_scandir = os.scandir

    def spying_scandir(*args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.get_ident())
        return real_scandir(*args, **kwargs)

    monkeypatch.setattr(os, "scandir", spying_scandir)
    await Collector(client, FileStore(client)).collect(sid, [run])
    assert threads and loop_thread not in threads
    assert len((await record(client, sid))["output_files"]) == 2


async def test_a_non_utf8_file_name_is_skipped_and_reported_not_a_stall(
    client: AsyncMongoClient, sid: str, tmp_path: Path
) -> None:
    import os

    run = write_run(tmp_path, sid, 0, {"good.txt": b"ok"})
    fd = os.open(os.path.join(os.fsencode(run.directory), b"caf\xe9.txt"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"latin-1 name")
    os.close(fd)
    state = await Collector(client, FileStore(client)).collect(sid, [run])

    assert state is not None and state.collected == {0} and state.failed == set()
    document = await record(client, sid)
    assert [o["filename"] for o in document["output_files"]] == ["good.txt"]
    (note,) = document["skipped_outputs"]["0"]
    assert "not UTF-8" in note and "caf" in note


def remove_chain(top: Path, levels: int) -> None:
    """Remove `top/d/d/.../d` (`levels` deep, a file at the bottom) without recursion: pytest's own
    clean-up recurses and cannot."""
    import os

    fds = [os.open(os.fsencode(top), os.O_RDONLY)]
    for _ in range(levels):
        fds.append(os.open(b"d", os.O_RDONLY, dir_fd=fds[-1]))
    for name in os.listdir(fds[-1]):
        os.unlink(name, dir_fd=fds[-1])
    os.close(fds.pop())
    while len(fds) > 0:
        os.rmdir(b"d", dir_fd=fds[-1])
        os.close(fds.pop())


async def test_a_thousand_deep_tree_fails_the_run_with_a_reason(
    client: AsyncMongoClient, sid: str, tmp_path: Path
) -> None:
    import os

    run = write_run(tmp_path, sid, 0, {"top.txt": b"top"})
    fd = os.open(os.fsencode(run.directory), os.O_RDONLY)
    try:  # 1,000 levels, made through directory fds (the full path is longer than PATH_MAX)
        for _ in range(1000):
            os.mkdir(b"d", dir_fd=fd)
            inner = os.open(b"d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        leaf = os.open(b"leaf.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, b"deep")
        os.close(leaf)
    finally:
        os.close(fd)
    try:
        state = await asyncio.wait_for(Collector(client, FileStore(client)).collect(sid, [run]), 60)
    finally:
        remove_chain(run.directory, 1000)

    assert state is not None and state.collected == {0} and state.failed == {0}
    document = await record(client, sid)
    assert document["output_files"] == []  # nothing of a rejected run is kept
    assert "deeper than 16 folders" in document["rejected_runs"]["0"]
    assert await FileStore(client).files.count_documents({}) == 0


@pytest.mark.parametrize(
    ("files", "limits", "reason"),
    [
        ({f"f{i}.txt": b"x" for i in range(12)}, {"max_files": 10}, "more than 10 files"),
        ({"a.bin": b"a" * 600, "b.bin": b"b" * 600}, {"max_bytes": 1000}, "more than 1000 bytes"),
        ({"a/b/c/d.txt": b"d"}, {"max_depth": 2}, "deeper than 2 folders"),
    ],
)
async def test_outputs_beyond_a_limit_fail_the_run_and_store_nothing(
    client: AsyncMongoClient, sid: str, tmp_path: Path, files: dict, limits: dict, reason: str
) -> None:
    from services.operator.outputs import OutputLimits

    run = write_run(tmp_path, sid, 1, files)
    ok = write_run(tmp_path, sid, 0, {"kpis.json": b"{}"})
    store = FileStore(client)
    state = await Collector(client, store, limits=OutputLimits(**limits)).collect(sid, [ok, run])

    assert state is not None and state.collected == {0, 1} and state.failed == {1}
    document = await record(client, sid)
    assert [(o["run"], o["filename"]) for o in document["output_files"]] == [(0, "kpis.json")]
    assert reason in document["rejected_runs"]["1"]
    assert await store.files.count_documents({}) == 1


async def test_the_record_never_outgrows_its_cap(client: AsyncMongoClient, sid: str, tmp_path: Path) -> None:
    from services.operator.outputs import OutputLimits

    name = "n" * 200
    runs = [write_run(tmp_path, sid, i, {f"{name}{j}.txt": b"x" for j in range(5)}) for i in range(3)]
    limits = OutputLimits(max_record_bytes=3000)  # room for two runs' entries, not three
    state = await Collector(client, FileStore(client), limits=limits).collect(sid, runs)

    assert state is not None and state.collected == {0, 1, 2} and state.failed == {2}
    document = await record(client, sid)
    assert {o["run"] for o in document["output_files"]} == {0, 1}
    assert "output list is full" in document["rejected_runs"]["2"]
