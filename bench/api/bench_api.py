"""Benchmark of the orchestrator API (a real `dtpoc-api` process, uvicorn, over loopback).

    uv run python bench/api/bench_api.py [--sizes 1,50,200] [--services 1000] [--files 1500]

Starts its own FerretDB and local cluster (localdev), the API as a subprocess, and measures:
- upload and download throughput through the API for 1 MB, 50 MB and 200 MB files, against pymongo's
  own GridFS on the same FerretDB (same bucket and chunk size: `upload_from_stream`, and
  `open_download_stream` read chunk by chunk, its chunk query in batches FerretDB's 48 MB message limit
  allows), as ratios of the p50 times (goal >= 0.8). Per size: one untimed warm-up round, then
  repetitions that alternate which side goes first;
- the API process's peak RSS while it moves each file, against its idle RSS (goal: no growth with size,
  less than 64 MiB above idle at every size);
- listing 1,000 services (a page of 100, and all 1,000 in one page): p50 and p95 (goal p95 < 100 ms);
- listing 1,500 files, limit=100, through the API (v1alpha1 and v1beta1) against the original platform's
  way on the same FerretDB, measured in the same run: GridFS `find()` with skip/limit in natural order
  behind an endpoint like the original's (bench/api/original_listing.py: FastAPI on uvicorn; goal: the
  API's p50 and p95 no higher), and the same query straight with pymongo (shown: the database's share),
  for the first page and a deep one (skip=1,400), the four asked in a rotating order.
Every request to the API carries its token (every read needs one). Prints a table and each goal with
met / not met, and writes JSON to bench/results/. Stops everything it started, by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from gridfs import AsyncGridFSBucket
from gridfs.asynchronous.grid_file import AsyncGridOut
from pymongo import AsyncMongoClient

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.stats import Goal, Spread, percentile, print_goals  # noqa: E402
from localdev import processes  # noqa: E402
from localdev.cluster import LocalCluster  # noqa: E402
from localdev.ferretdb import FerretDB  # noqa: E402
from localdev.tools import find_tools  # noqa: E402
from services.api.contracts import V1Beta1  # noqa: E402
from services.api.settings import BASE_PATH as V1ALPHA1_PATH  # noqa: E402
from services.api.settings import V1BETA1_PATH  # noqa: E402
from services.shared import crd  # noqa: E402
from services.shared.files import CHUNK_SIZE, READ_BATCH_BYTES, FileStore  # noqa: E402
from services.shared.names import FILES_DATABASE  # noqa: E402
from services.shared.records import services_collection  # noqa: E402

MB = 1024 * 1024
RATIO_GOAL = 0.8  # the API's throughput against pymongo's GridFS, at least
RSS_GROWTH_GOAL_MB = 64  # the API's peak RSS above idle while it moves a file, at most
LISTING_P95_GOAL_MS = 100
TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NAMESPACE = "bench"


class RssSampler:
    """Peak resident memory of a process, sampled every few milliseconds in a thread, and the CPU time
    it used meanwhile."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.cpu_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def _cpu(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    def __enter__(self) -> RssSampler:
        self.peak = self.process.memory_info().rss
        self._cpu_start = self._cpu()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_seconds = self._cpu() - self._cpu_start


@contextmanager
def local_servers(prefix: str, namespaces: Sequence[str]) -> Iterator[tuple[Path, FerretDB, LocalCluster]]:
    """A work folder, FerretDB, and a local cluster with the Analytics CRD and `namespaces`; both stopped
    (by pid) on the way out."""
    tools = find_tools()
    work = Path(tempfile.mkdtemp(prefix=prefix))
    ferretdb = FerretDB.start(tools, work / "ferretdb")
    cluster = None
    try:
        cluster = LocalCluster.start(tools, work / "cluster")
        cluster.kubectl("apply", "-f", "-", input=json.dumps(crd.crd_manifest()))
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd.CRD_NAME}", "--timeout=60s")
        for namespace in namespaces:
            cluster.kubectl("create", "namespace", namespace)
        yield work, ferretdb, cluster
    finally:
        if cluster is not None:
            cluster.stop()
        ferretdb.stop()


@contextmanager
def original_listing_process(mongo_url: str, log: Path) -> Iterator[str]:
    """The original's listing endpoint (bench/api/original_listing.py) on uvicorn, as its own process."""
    port = processes.free_port()
    env = {**os.environ, "MONGODB_URL": mongo_url, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "uvicorn", "bench.api.original_listing:app", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        processes.wait_until(lambda: processes.port_open(port), 30, "the original's listing endpoint")
        yield f"http://127.0.0.1:{port}"
    finally:
        processes.stop(proc.pid)


@contextmanager
def api_process(
    mongo_url: str, kubeconfig: Path, log: Path, settings: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """`dtpoc-api` as its own process on a free port (`settings`: more API_* variables, or other values)."""
    port = processes.free_port()
    env = {
        **os.environ,
        "API_TOKEN": TOKEN,
        "API_PORT": str(port),
        "API_HOST": "127.0.0.1",
        "API_NAMESPACE": NAMESPACE,
        "API_KUBECONFIG": str(kubeconfig),
        "API_MAX_UPLOAD_BYTES": str(1024 * MB),
        "MONGODB_URL": mongo_url,
        **(settings or {}),
    }
    executable = Path(sys.executable).parent / "dtpoc-api"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(executable)], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        processes.wait_until(lambda: processes.port_open(port), 30, "the API")
        yield f"http://127.0.0.1:{port}{V1BETA1_PATH}", proc.pid
    finally:
        processes.stop(proc.pid)


def multipart(name: str, data: bytes, piece: int = 256 * 1024) -> tuple[dict[str, str], AsyncIterator[bytes]]:
    """A multipart body streamed in pieces, as a browser or curl sends a file."""
    boundary = "benchboundary7MA4YWxkTrZu0gW"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        view = memoryview(data)
        for start in range(0, len(data), piece):
            yield bytes(view[start : start + piece])
        yield tail

    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + len(data) + len(tail)),
    }
    return headers, body()


async def api_upload(client: httpx.AsyncClient, data: bytes) -> tuple[float, str]:
    headers, body = multipart("bench.bin", data)
    started = time.perf_counter()
    response = await client.post("/files/upload", content=body, headers={**AUTH, **headers})
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.text
    return elapsed, response.json()["id"]


async def api_download(client: httpx.AsyncClient, file_id: str, size: int) -> float:
    started = time.perf_counter()
    received = 0
    async with client.stream("GET", f"/files/{file_id}") as response:
        assert response.status_code == 200
        async for piece in response.aiter_raw(256 * 1024):
            received += len(piece)
    elapsed = time.perf_counter() - started
    assert received == size, (received, size)
    return elapsed


async def direct_upload(bucket: AsyncGridFSBucket, data: bytes) -> tuple[float, object]:
    started = time.perf_counter()
    file_id = await bucket.upload_from_stream("direct.bin", data)
    return time.perf_counter() - started, file_id


class BatchedChunks:
    """The chunks collection as pymongo's GridFS reader sees it, with one change: its chunk query asks
    for batches of `batch_size` chunks. The reader asks for the server's default first batch (101
    chunks), a reply beyond FerretDB's 48 MB message limit with 1 MiB chunks (pymongo raises
    ProtocolError past ~46 MiB; see services/shared/files.py); the API's reader uses the same batch."""

    def __init__(self, chunks: Any, batch_size: int) -> None:
        self._chunks = chunks
        self._batch_size = batch_size

    def find(self, *args: Any, **kwargs: Any) -> Any:
        return self._chunks.find(*args, batch_size=self._batch_size, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._chunks, name)


async def direct_download(bucket: AsyncGridFSBucket, file_id: object, size: int) -> float:
    """pymongo's GridFS reader: `open_download_stream`, read chunk by chunk."""
    started = time.perf_counter()
    stream: AsyncGridOut = await bucket.open_download_stream(file_id)
    # pymongo (pinned in uv.lock) keeps the chunks collection in `_chunks`; fail loudly if that changes.
    assert hasattr(stream, "_chunks") and stream._chunk_iter is None
    # Duck-typed in place of the collection: the reader only calls `find` on it.
    stream._chunks = BatchedChunks(stream._chunks, max(1, READ_BATCH_BYTES // CHUNK_SIZE))  # type: ignore[assignment]
    received = 0
    while piece := await stream.readchunk():
        received += len(piece)
    await stream.close()
    assert received == size, (received, size)
    return time.perf_counter() - started


async def in_turn(
    first: Callable[[], Awaitable[None]], second: Callable[[], Awaitable[None]], swap: bool
) -> None:
    """Run both, `first` first unless `swap`: repetitions alternate the order, so that neither side always
    meets a cache the other one warmed (or a FerretDB still writing the other one's chunks)."""
    for step in (second, first) if swap else (first, second):
        await step()


@dataclass
class Transfers:
    """One size's samples: seconds per transfer on each side, and the API's peak RSS and CPU time."""

    up_api: list[float] = field(default_factory=list)
    up_direct: list[float] = field(default_factory=list)
    down_api: list[float] = field(default_factory=list)
    down_direct: list[float] = field(default_factory=list)
    peak_up: int = 0
    peak_down: int = 0
    cpu_up: float = 0.0
    cpu_down: float = 0.0

    def spreads(self) -> dict[str, Spread]:
        sides = ("up_api", "up_direct", "down_api", "down_direct")
        return {side: Spread.of(getattr(self, side)) for side in sides}


async def one_round(
    client: httpx.AsyncClient, bucket: AsyncGridFSBucket, api_pid: int, size: int, swap: bool, into: Transfers
) -> None:
    """Upload the same fresh content through the API and straight to GridFS, then download both."""
    data = os.urandom(size)  # fresh content: identical content would be de-duplicated
    ids: dict[str, Any] = {}

    async def up_direct() -> None:
        elapsed, ids["direct"] = await direct_upload(bucket, data)
        into.up_direct.append(elapsed)

    async def up_api() -> None:
        with RssSampler(api_pid) as sampler:
            elapsed, ids["api"] = await api_upload(client, data)
        into.up_api.append(elapsed)
        into.peak_up = max(into.peak_up, sampler.peak)
        into.cpu_up += sampler.cpu_seconds

    async def down_direct() -> None:
        into.down_direct.append(await direct_download(bucket, ids["direct"], size))

    async def down_api() -> None:
        with RssSampler(api_pid) as sampler:
            into.down_api.append(await api_download(client, ids["api"], size))
        into.peak_down = max(into.peak_down, sampler.peak)
        into.cpu_down += sampler.cpu_seconds

    await in_turn(up_direct, up_api, swap)
    await in_turn(down_direct, down_api, swap)
    await bucket.delete(ids["direct"])
    await client.delete(f"/files/{ids['api']}", headers=AUTH)


async def bench_transfers(base_url: str, api_pid: int, mongo_url: str, sizes: list[int]) -> list[dict]:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    direct_bucket = FileStore(mongo).bucket  # the API's own bucket: same database, same chunk size
    results = []
    async with httpx.AsyncClient(base_url=base_url, timeout=600, headers=AUTH) as client:
        await client.get("/files/")  # the connection and the API's MongoDB pool
        idle = psutil.Process(api_pid).memory_info().rss
        for size_mb in sizes:
            size = size_mb * MB
            repeats = 16 if size_mb <= 1 else 4 if size_mb <= 50 else 2  # even: each order equally often
            row: dict = {"size_mb": size_mb, "repeats": repeats}
            await one_round(client, direct_bucket, api_pid, size, False, Transfers())  # warm-up, untimed
            samples = Transfers()
            for repeat in range(repeats):
                await one_round(client, direct_bucket, api_pid, size, repeat % 2 == 1, samples)
            spreads = samples.spreads()
            up_api_s, up_direct_s = spreads["up_api"].p50, spreads["up_direct"].p50
            down_api_s, down_direct_s = spreads["down_api"].p50, spreads["down_direct"].p50
            row.update(
                seconds={side: asdict(spread) for side, spread in spreads.items()},
                upload_api_mb_s=size_mb / up_api_s,
                upload_direct_mb_s=size_mb / up_direct_s,
                upload_ratio=up_direct_s / up_api_s,
                download_api_mb_s=size_mb / down_api_s,
                download_direct_mb_s=size_mb / down_direct_s,
                download_ratio=down_direct_s / down_api_s,
                idle_rss_mb=idle / MB,
                peak_rss_upload_mb=samples.peak_up / MB,
                peak_rss_download_mb=samples.peak_down / MB,
                api_cpu_ms_per_mb_upload=samples.cpu_up * 1000 / (size_mb * repeats),
                api_cpu_ms_per_mb_download=samples.cpu_down * 1000 / (size_mb * repeats),
            )
            results.append(row)
            print(
                f"  {size_mb:>4} MB: up {row['upload_ratio']:.2f}x, down {row['download_ratio']:.2f}x",
                flush=True,
            )
    await mongo.close()
    return results


async def bench_listing(base_url: str, mongo_url: str, services: int, rounds: int) -> dict:
    async with httpx.AsyncClient(base_url=base_url, timeout=60, headers=AUTH) as client:
        launch_times = []
        body = {"image": "ghcr.io/cam-digital-hospitals/digital-hosp-des", "sim": {"reps": 2}}
        semaphore = asyncio.Semaphore(8)

        async def launch() -> None:
            async with semaphore:
                started = time.perf_counter()
                response = await client.post("/service/launch", json=body, headers=AUTH)
                launch_times.append(time.perf_counter() - started)
                assert response.status_code == 202, response.text

        await asyncio.gather(*(launch() for _ in range(services)))
        result: dict = {
            "services": services,
            "launch_p50_ms": percentile(launch_times, 50) * 1000,
            "launch_p95_ms": percentile(launch_times, 95) * 1000,
        }
        for limit in (100, 1000):
            times = []
            for _ in range(5):  # warm-up
                await client.get("/service/", params={"limit": limit})
            for _ in range(rounds):
                started = time.perf_counter()
                response = await client.get("/service/", params={"limit": limit})
                times.append(time.perf_counter() - started)
                assert response.status_code == 200 and len(response.json()) == min(limit, services)
            result[f"list_{limit}_p50_ms"] = percentile(times, 50) * 1000
            result[f"list_{limit}_p95_ms"] = percentile(times, 95) * 1000
        # The floor under the API: the same page query straight to FerretDB with pymongo (storage order,
        # no sort: FerretDB pushes the limit down to SQLite).
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
        collection = services_collection(mongo)
        for limit in (100, 1000):
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                await collection.find({}, projection=V1Beta1.list_fields, limit=limit + 1).to_list()
                times.append(time.perf_counter() - started)
            result[f"mongo_{limit}_p50_ms"] = percentile(times, 50) * 1000
            result[f"mongo_{limit}_p95_ms"] = percentile(times, 95) * 1000
        await mongo.close()
        return result


async def bench_file_listing(
    base_url: str, original_url: str, mongo_url: str, files: int, rounds: int
) -> dict:
    """The API's file listing against the original platform's: the same page of the same files, each
    round asking each in turn, starting each round with the next one (so that all see the same load).
    The original's way twice: behind its own endpoint (FastAPI on uvicorn, like ours: what its clients
    got, the goal) and its query straight with pymongo (shown: the database's share of it)."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)  # the original's client options
    bucket = AsyncGridFSBucket(mongo[FILES_DATABASE])  # as the original stored files: GridFS defaults
    for i in range(files):
        content = b"stand-in workbook %d" % i
        await bucket.upload_from_stream(
            f"input-{i}.xlsx",
            content,
            metadata={"hash": hashlib.md5(content).hexdigest()},  # noqa: S324 - the original's key
        )

    async def original(skip: int, limit: int) -> list[dict]:
        """The original API's listing query: GridFS find, skip/limit, natural order, these fields."""
        cursor = bucket.find().skip(skip).limit(limit)
        return [
            {
                "file_id": str(f._id),
                "filename": f.filename,
                "length": f.length,
                "uploadDate": f.upload_date,
                "metadata": f.metadata,
            }
            async for f in cursor
        ]

    alpha_url = base_url.replace(V1BETA1_PATH, V1ALPHA1_PATH)
    result: dict = {"files": files, "limit": 100}
    # Every read needs a token (the original's listing ignores it).
    async with httpx.AsyncClient(timeout=60, headers=AUTH) as client:
        for label, skip in (("first", 0), ("deep", files - 100)):
            timings: dict[str, list[float]] = {name: [] for name in LISTERS}
            calls = {
                "original": lambda skip=skip: original(skip, 100),
                "original_endpoint": lambda skip=skip: client.get(
                    f"{original_url}/files", params={"skip": skip, "limit": 100}
                ),
                "v1alpha1": lambda skip=skip: client.get(
                    f"{alpha_url}/files", params={"skip": skip, "limit": 100}
                ),
                "v1beta1": lambda skip=skip: client.get(
                    f"{base_url}/files/", params={"skip": skip, "limit": 100}
                ),
            }
            names = list(calls)
            for round_ in range(rounds + 5):
                # Each round starts with the next lister, so that none is always first (or last).
                shift = round_ % len(names)
                for name in names[shift:] + names[:shift]:
                    call = calls[name]
                    started = time.perf_counter()
                    answer = await call()
                    elapsed = time.perf_counter() - started
                    page = answer if isinstance(answer, list) else answer.json()  # type: ignore[attr-defined]
                    assert len(page) == 100, (name, len(page))
                    if round_ >= 5:  # warm-up
                        timings[name].append(elapsed)
            for name, times in timings.items():
                result[f"{label}_{name}_p50_ms"] = percentile(times, 50) * 1000
                result[f"{label}_{name}_p95_ms"] = percentile(times, 95) * 1000
            for version in ("v1alpha1", "v1beta1"):
                result[f"{label}_{version}_vs_original_endpoint_met"] = all(
                    result[f"{label}_{version}_{q}_ms"] <= result[f"{label}_original_endpoint_{q}_ms"]
                    for q in ("p50", "p95")
                )
    await mongo.close()
    return result


LISTERS = {
    "original": "original's query",
    "original_endpoint": "original's endpoint",
    "v1alpha1": "API v1alpha1",
    "v1beta1": "API v1beta1",
}


def print_file_listing(listing: dict) -> None:
    print(f"\nListing {listing['files']:,} files, limit={listing['limit']} (ms)")
    print("  goal: the API's p50 and p95 no higher than the original's endpoint (FastAPI on uvicorn, its")
    print("        GridFS find, skip/limit, natural order) on the same FerretDB, measured in this run; its")
    print("        query straight with pymongo is shown too: the database's share of every answer")
    for label, title in (("first", "first page"), ("deep", f"skip={listing['files'] - 100:,}")):
        print(f"  {title}")
        for name, caption in LISTERS.items():
            p50, p95 = listing[f"{label}_{name}_p50_ms"], listing[f"{label}_{name}_p95_ms"]
            line = f"    {caption:<20} p50 {p50:6.1f}   p95 {p95:6.1f}"
            if name.startswith("v1"):
                endpoint = "met" if listing[f"{label}_{name}_vs_original_endpoint_met"] else "NOT met"
                line += f"   goal (the original's endpoint): {endpoint}"
            print(line)


def print_table(transfers: list[dict], listing: dict) -> None:
    print("\nThroughput (MB/s, from the p50 times) and API memory (RSS, MiB)")
    header = (
        f"{'size':>6} | {'up API':>7} {'up direct':>9} {'ratio':>5} | {'down API':>8} {'down direct':>11} "
        f"{'ratio':>5} | {'idle':>5} {'peak up':>7} {'peak down':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in transfers:
        print(
            f"{r['size_mb']:>4}MB | {r['upload_api_mb_s']:>7.1f} {r['upload_direct_mb_s']:>9.1f} "
            f"{r['upload_ratio']:>5.2f} | {r['download_api_mb_s']:>8.1f} {r['download_direct_mb_s']:>11.1f} "
            f"{r['download_ratio']:>5.2f} | {r['idle_rss_mb']:>5.0f} {r['peak_rss_upload_mb']:>7.0f} "
            f"{r['peak_rss_download_mb']:>9.0f}"
        )
    if listing:
        print(f"\nListing with {listing['services']} services (ms)")
        for label, key in (
            ("page of 100", "list_100"),
            ("  its MongoDB query", "mongo_100"),
            ("all in one page", "list_1000"),
            ("  its MongoDB query", "mongo_1000"),
            ("launch", "launch"),
        ):
            print(f"  {label:<20} p50 {listing[key + '_p50_ms']:6.1f}   p95 {listing[key + '_p95_ms']:6.1f}")


def goals(transfers: list[dict], listing: dict, file_listing: dict) -> list[Goal]:
    out: list[Goal] = []
    for r in transfers:
        size = f"{r['size_mb']} MB"
        for direction in ("upload", "download"):
            ratio = r[f"{direction}_ratio"]
            out.append(Goal(f"{size} {direction}, API / GridFS", ratio, RATIO_GOAL, at_most=False))
        for direction in ("upload", "download"):
            growth = r[f"peak_rss_{direction}_mb"] - r["idle_rss_mb"]
            out.append(Goal(f"{size} {direction}, API RSS above idle", growth, RSS_GROWTH_GOAL_MB, "MiB"))
    for limit in (100, 1000) if listing else ():
        p95 = listing[f"list_{limit}_p95_ms"]
        out.append(
            Goal(f"listing {limit} of {listing['services']} services, p95", p95, LISTING_P95_GOAL_MS, "ms")
        )
    # File listing: each version's p50 and p95 no higher than the original's endpoint in the same run.
    pages = (("first", "first page"), ("deep", "deep page")) if file_listing else ()
    for label, page in pages:
        for version in ("v1alpha1", "v1beta1"):
            for q in ("p50", "p95"):
                out.append(
                    Goal(
                        f"{file_listing['files']} files, {page}, {version} {q} vs the original's endpoint",
                        file_listing[f"{label}_{version}_{q}_ms"],
                        file_listing[f"{label}_original_endpoint_{q}_ms"],
                        "ms",
                    )
                )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1,50,200", help="file sizes in MB, comma-separated")
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=100, help="listing requests per page size")
    parser.add_argument("--files", type=int, default=1500, help="files stored for the file listing")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]

    with (
        local_servers("dtpoc-bench-api-", [NAMESPACE]) as (work, ferretdb, cluster),
        api_process(ferretdb.url, cluster.kubeconfig, work / "api.log") as (base_url, pid),
    ):
        print(f"API pid {pid} at {base_url}; FerretDB at {ferretdb.url}", flush=True)
        transfers = asyncio.run(bench_transfers(base_url, pid, ferretdb.url, sizes))
        file_listing: dict = {}
        if args.files:
            with original_listing_process(ferretdb.url, work / "original.log") as original_url:
                file_listing = asyncio.run(
                    bench_file_listing(base_url, original_url, ferretdb.url, args.files, args.rounds)
                )
        listing = (
            asyncio.run(bench_listing(base_url, ferretdb.url, args.services, args.rounds))
            if args.services
            else {}
        )

    print_table(transfers, listing)
    if file_listing:
        print_file_listing(file_listing)
    held = goals(transfers, listing, file_listing)
    results = {
        "when": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "chunk_size": CHUNK_SIZE,
        "transfers": transfers,
        "listing": listing,
        "file_listing": file_listing,
        "goals": [goal.as_json() for goal in held],
    }
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"api-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(results, indent=2))
    for r in transfers:
        print(
            f"API CPU per MB at {r['size_mb']} MB: upload {r['api_cpu_ms_per_mb_upload']:.1f} ms, "
            f"download {r['api_cpu_ms_per_mb_download']:.1f} ms"
        )
    print_goals(held)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
