"""Benchmark of the orchestrator operator (a real `dtpoc-operator` process) on the local kwok cluster.

    uv run python bench/operator/bench_operator.py [--launches 30] [--runs 20] [--burst 100]

Starts its own FerretDB and local cluster (localdev), the operator as a subprocess, and measures:
- resource created -> workload created: from just before the Analytics POST to the Job's ADDED event
  on a watch of the bench's own, one launch at a time: p50, p95 (goal p50 < 1 s);
- run finished -> outputs stored: from the pod's Succeeded event (the bench's own watch, wall clock)
  to the run's last file in GridFS (its uploadDate, written by the operator on the same clock; the
  record follows in the same step), one run at a time with two stand-in files (~50 KB) in its output
  directory: p50, p95 (goal p50 < 2 s); then for 10 resources x 3 runs all finishing together;
- 100 resources created at once (concurrent POSTs) -> every Job created: total time (goal < 30 s),
  and until every resource is Succeeded;
- the operator's RSS: idle after start, and peak over the whole run (sampled every 20 ms);
- the storage check of one run's outputs (which files are stored already, leftover chunks removed) for
  a run of 200 files among 1000 stored ones: `FileStore.not_yet_stored` (two queries) against the
  baseline of a query pair per file, alternating, p50 of 3 (goal ratio <= 0.1: FerretDB scans for each
  query, so the per-file check grows with files x stored files).
Prints a table and each goal with met / not met, and writes JSON to bench/results/. Stops everything it
started, by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from bson import ObjectId
from kubernetes_asyncio import client, config, watch
from pymongo import AsyncMongoClient

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.stats import Goal, Spread, print_goals  # noqa: E402
from localdev import processes  # noqa: E402
from localdev.cluster import LocalCluster  # noqa: E402
from localdev.ferretdb import FerretDB  # noqa: E402
from localdev.tools import find_tools  # noqa: E402
from services.shared import crd  # noqa: E402
from services.shared.files import FileStore, output_file_id  # noqa: E402
from services.shared.names import SERVICE_ID_LABEL  # noqa: E402
from services.shared.records import ServiceRecord, services_collection  # noqa: E402

NAMESPACE = "bench"
PVC = "orchestrator-data"
IMAGE = "example.org/bench-module:1"
OUTPUT_NAMES = ("kpis.json", "trace.csv")  # what each stand-in run writes (~50 KB together)
LAUNCH_P50_GOAL_S = 1.0
COLLECT_P50_GOAL_S = 2.0
BURST_GOAL_S = 30.0
BATCHED_CHECK_RATIO_GOAL = 0.1


class RssSampler:
    """Peak resident memory of a process, sampled in a thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def summary(values: list[float]) -> dict[str, float]:
    spread = Spread.of(values)
    return {"n": spread.n, "p50_s": spread.p50, "p95_s": spread.p95, "max_s": spread.max}


def goals(results: dict) -> list[Goal]:
    return [
        Goal("launch -> workload, p50", results["launch_to_workload"]["p50_s"], LAUNCH_P50_GOAL_S, "s"),
        Goal(
            "run finished -> outputs stored, p50",
            results["run_finished_to_outputs_stored"]["p50_s"],
            COLLECT_P50_GOAL_S,
            "s",
        ),
        Goal(
            f"burst of {results['burst']['resources']}: all workloads created",
            results["burst"]["all_workloads_created_s"],
            BURST_GOAL_S,
            "s",
        ),
        Goal(
            "storage check of a 200-file run, batched / per file",
            results["storage_check"]["batched_p50_s"] / results["storage_check"]["per_file_p50_s"],
            BATCHED_CHECK_RATIO_GOAL,
            "x",
        ),
    ]


def prepare_cluster(cluster: LocalCluster, data_dir: Path) -> None:
    def apply(manifest: dict[str, Any]) -> None:
        cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    apply(crd.crd_manifest())
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd.CRD_NAME}", "--timeout=60s")
    cluster.kubectl("create", "namespace", NAMESPACE)
    apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "bench-data"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "hostPath": {"path": str(data_dir)},
                "claimRef": {"namespace": NAMESPACE, "name": PVC},
            },
        }
    )
    apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": PVC, "namespace": NAMESPACE},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "volumeName": "bench-data",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )
    cluster.kubectl(
        "wait", "-n", NAMESPACE, "--for=jsonpath={.status.phase}=Bound", f"pvc/{PVC}", "--timeout=60s"
    )


@contextmanager
def operator_process(cluster: LocalCluster, mongo_url: str, data_dir: Path, log: Path) -> Iterator[int]:
    port = processes.free_port()
    env = {
        "KUBECONFIG": str(cluster.kubeconfig),
        "OPERATOR_NAMESPACE": NAMESPACE,
        "OPERATOR_OUTPUT_ROOT": str(data_dir),
        "OPERATOR_DATA_PVC": PVC,
        "OPERATOR_LIVENESS_HOST": "127.0.0.1",
        "OPERATOR_LIVENESS_PORT": str(port),
        "MONGODB_URL": mongo_url,
    }
    pid = processes.start([Path(sys.executable).parent / "dtpoc-operator"], log, env)
    try:
        processes.wait_until(lambda: processes.port_open(port), 30, "the operator's liveness endpoint")
        yield pid
    finally:
        processes.stop(pid)


class Watcher:
    """First-seen times (bench clock) of Jobs and of Succeeded pods in the namespace."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.jobs: dict[str, float] = {}
        self.succeeded_pods: dict[tuple[str, str], float] = {}  # (service id, index) -> time
        self.changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _jobs(self) -> None:
        batch = client.BatchV1Api(self.api)
        while True:
            async with watch.Watch().stream(
                batch.list_namespaced_job, NAMESPACE, timeout_seconds=300
            ) as stream:
                async for event in stream:
                    name = event["object"].metadata.name
                    self.jobs.setdefault(name, time.perf_counter())
                    self.changed.set()

    async def _pods(self) -> None:
        core = client.CoreV1Api(self.api)
        while True:
            async with watch.Watch().stream(
                core.list_namespaced_pod, NAMESPACE, timeout_seconds=300
            ) as stream:
                async for event in stream:
                    pod = event["object"]
                    if pod.status.phase != "Succeeded":
                        continue
                    sid = (pod.metadata.labels or {}).get(SERVICE_ID_LABEL)
                    index = (pod.metadata.annotations or {}).get("batch.kubernetes.io/job-completion-index")
                    if sid and index is not None:
                        self.succeeded_pods.setdefault((sid, index), time.time())  # wall clock, as uploadDate

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._jobs()), asyncio.create_task(self._pods())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_jobs(self, names: set[str], within: float = 120) -> None:
        deadline = time.perf_counter() + within
        while not names <= self.jobs.keys():
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{len(names - self.jobs.keys())} Jobs never appeared")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 1)


class Bench:
    def __init__(
        self, api: client.ApiClient, mongo: AsyncMongoClient, data_dir: Path, cluster: LocalCluster
    ) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.records = services_collection(mongo)
        self.files = FileStore(mongo).files
        self.data_dir = data_dir
        self.cluster = cluster
        self.watcher = Watcher(api)

    async def new_record(self, reps: int) -> str:
        sid = ObjectId()
        await self.records.insert_one(ServiceRecord(image=IMAGE, reps=reps).to_document(sid))
        return str(sid)

    async def create(self, sid: str, reps: int) -> float:
        body = {
            "apiVersion": crd.API_VERSION,
            "kind": crd.KIND,
            "metadata": {"name": sid},
            "spec": {"image": IMAGE, "jobType": "ondemand", "reps": reps},
        }
        started = time.perf_counter()
        await self.custom.create_namespaced_custom_object(crd.GROUP, crd.VERSION, NAMESPACE, crd.PLURAL, body)
        return started

    async def phase(self, sid: str) -> str | None:
        obj = await self.custom.get_namespaced_custom_object(
            crd.GROUP, crd.VERSION, NAMESPACE, crd.PLURAL, sid
        )
        return (obj.get("status") or {}).get("phase")

    async def wait_succeeded(self, sids: list[str], within: float = 300) -> None:
        deadline = time.perf_counter() + within
        pending = set(sids)
        while pending:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{len(pending)} resources never succeeded")
            done = await asyncio.gather(*(self.phase(s) for s in pending))
            pending = {s for s, p in zip(list(pending), done, strict=True) if p != "Succeeded"}
            await asyncio.sleep(0.2)

    def set_scheduling(self, paused: bool) -> None:
        nodes = json.loads(self.cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
        for node in nodes:
            self.cluster.kubectl("cordon" if paused else "uncordon", node["metadata"]["name"])

    def write_outputs(self, sid: str, reps: int) -> None:
        for index in range(reps):
            directory = self.data_dir / sid / "runs" / str(index)
            directory.mkdir(parents=True, exist_ok=True)
            kpis, trace = OUTPUT_NAMES
            (directory / kpis).write_text(json.dumps({"run": index, "values": list(range(2000))}))
            (directory / trace).write_bytes(os.urandom(40_000))

    async def wait_collected(self, sids: list[str], runs: int, within: float = 120) -> None:
        """Until every run of `sids` is in its record's collected_runs (polled lightly: 100 ms)."""
        deadline = time.perf_counter() + within
        while True:
            docs = [
                await self.records.find_one({"_id": ObjectId(s)}, projection={"collected_runs": 1})
                for s in sids
            ]
            if all(len(d.get("collected_runs") or []) == runs for d in docs):
                return
            if time.perf_counter() > deadline:
                raise TimeoutError("runs never collected")
            await asyncio.sleep(0.1)

    async def stored_at(self, sid: str, index: int) -> float:
        """When run `index`'s outputs were all in GridFS: the latest uploadDate of its files (set by
        the operator as it stores each file; the same machine's clock as the watch's timestamps)."""
        dates = []
        for name in OUTPUT_NAMES:
            doc = await self.files.find_one(
                {"_id": output_file_id(sid, index, name)}, projection={"uploadDate": 1}
            )
            dates.append(doc["uploadDate"].timestamp())
        return max(dates)

    # -- the measurements -----------------------------------------------------------------------
    async def launch_latency(self, count: int) -> list[float]:
        latencies = []
        for _ in range(count):
            sid = await self.new_record(1)
            started = await self.create(sid, 1)
            await self.watcher.wait_jobs({f"ana-{sid}"})
            latencies.append(self.watcher.jobs[f"ana-{sid}"] - started)
        return latencies

    async def collect_latency(self, resources: int, reps: int) -> list[float]:
        """`resources` resources of `reps` runs each, all finishing together."""
        self.set_scheduling(paused=True)
        try:
            sids = [await self.new_record(reps) for _ in range(resources)]
            for sid in sids:
                await self.create(sid, reps)
            await self.watcher.wait_jobs({f"ana-{sid}" for sid in sids})
            for sid in sids:
                self.write_outputs(sid, reps)
            await asyncio.sleep(0.5)  # the Jobs' pods exist (Pending) by now
        finally:
            self.set_scheduling(paused=False)
        await self.wait_collected(sids, reps)
        await asyncio.sleep(0.2)
        return [
            await self.stored_at(sid, i) - self.watcher.succeeded_pods[(sid, str(i))]
            for sid in sids
            for i in range(reps)
        ]

    async def burst(self, count: int) -> dict[str, float]:
        sids = [await self.new_record(1) for _ in range(count)]
        started = time.perf_counter()
        await asyncio.gather(*(self.create(sid, 1) for sid in sids))
        posted = time.perf_counter()
        await self.watcher.wait_jobs({f"ana-{sid}" for sid in sids})
        created = max(self.watcher.jobs[f"ana-{sid}"] for sid in sids)
        await self.wait_succeeded(sids)
        return {
            "resources": count,
            "posted_s": posted - started,
            "all_workloads_created_s": created - started,
            "all_succeeded_s": time.perf_counter() - started,
        }


async def storage_check(mongo: AsyncMongoClient, stored: int = 1000, run_files: int = 200) -> dict:
    """The check before a run's outputs are uploaded, batched (the operator's) and per file (baseline)."""
    store = FileStore(mongo)
    sid = str(ObjectId())
    for index in range(stored):
        await store.upload_with_id(output_file_id(sid, 0, f"f{index}"), f"f{index}", b"x" * 100, {})
    # Half of the run's files stored by an earlier attempt, half not: both branches of the check.
    ids = [output_file_id(sid, 0, f"f{index}") for index in range(run_files // 2)]
    ids += [output_file_id(sid, 1, f"f{index}") for index in range(run_files // 2)]

    async def per_file() -> None:
        for file_id in ids:
            if await store.files.find_one({"_id": file_id}, projection={"_id": 1}) is None:
                await store.chunks.delete_many({"files_id": file_id})

    timings: dict[str, list[float]] = {"batched": [], "per_file": []}
    for repetition in range(3):
        order = [("batched", lambda: store.not_yet_stored(ids)), ("per_file", per_file)]
        for name, check in order if repetition % 2 == 0 else reversed(order):
            started = time.perf_counter()
            await check()
            timings[name].append(time.perf_counter() - started)
    return {
        "stored_files": stored,
        "run_files": run_files,
        "batched_p50_s": Spread.of(timings["batched"]).p50,
        "per_file_p50_s": Spread.of(timings["per_file"]).p50,
    }


async def run_bench(
    args: argparse.Namespace, cluster: LocalCluster, mongo_url: str, data_dir: Path, pid: int
) -> dict:
    configuration = client.Configuration()
    await config.load_kube_config(str(cluster.kubeconfig), client_configuration=configuration)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    async with client.ApiClient(configuration) as api:
        bench = Bench(api, mongo, data_dir, cluster)
        bench.watcher.start()
        try:
            await asyncio.sleep(1)
            idle = psutil.Process(pid).memory_info().rss
            with RssSampler(pid) as sampler:
                await bench.launch_latency(3)  # warm-up: connections, first watch events
                launch = await bench.launch_latency(args.launches)
                collect_one = []
                for _ in range(args.runs):
                    collect_one += await bench.collect_latency(1, 1)
                collect_burst = await bench.collect_latency(10, 3)
                burst = await bench.burst(args.burst)
            check = await storage_check(mongo)
            return {
                "storage_check": check,
                "launch_to_workload": summary(launch),
                "run_finished_to_outputs_stored": summary(collect_one),
                "run_finished_to_outputs_stored_10x3_together": summary(collect_burst),
                "burst": burst,
                "operator_rss_mb": {"idle": idle / 2**20, "peak": sampler.peak / 2**20},
            }
        finally:
            await bench.watcher.stop()
            await mongo.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--launches", type=int, default=30)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--burst", type=int, default=100)
    args = parser.parse_args()

    tools = find_tools()
    with tempfile.TemporaryDirectory(prefix="bench-operator-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        data_dir.mkdir()
        ferret = FerretDB.start(tools, work / "ferretdb")
        cluster = None
        try:
            cluster = LocalCluster.start(tools, work / "cluster")
            prepare_cluster(cluster, data_dir)
            with operator_process(cluster, ferret.url, data_dir, work / "operator.log") as pid:
                results = asyncio.run(run_bench(args, cluster, ferret.url, data_dir, pid))
        except BaseException:
            log = work / "operator.log"
            if log.exists():
                print(log.read_text()[-5000:], file=sys.stderr)
            raise
        finally:
            if cluster is not None:
                cluster.stop()
            ferret.stop()

    results["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    results["settings"] = vars(args)
    held = goals(results)
    results["goals"] = [goal.as_json() for goal in held]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = REPO / "bench" / "results" / f"operator-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))

    print(f"{'measure':48} {'n':>4} {'p50 s':>8} {'p95 s':>8} {'max s':>8}")
    for key in (
        "launch_to_workload",
        "run_finished_to_outputs_stored",
        "run_finished_to_outputs_stored_10x3_together",
    ):
        row = results[key]
        print(f"{key:48} {row['n']:>4} {row['p50_s']:>8.3f} {row['p95_s']:>8.3f} {row['max_s']:>8.3f}")
    burst = results["burst"]
    print(
        f"burst of {burst['resources']}: all workloads created in {burst['all_workloads_created_s']:.2f} s, "
        f"all Succeeded in {burst['all_succeeded_s']:.2f} s"
    )
    check = results["storage_check"]
    print(
        f"storage check of a {check['run_files']}-file run among {check['stored_files']} stored files: "
        f"batched {check['batched_p50_s']:.3f} s, per file {check['per_file_p50_s']:.3f} s (p50 of 3)"
    )
    rss = results["operator_rss_mb"]
    print(f"operator RSS: idle {rss['idle']:.0f} MiB, peak {rss['peak']:.0f} MiB")
    print_goals(held)
    print(f"written to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
