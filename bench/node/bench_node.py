"""Benchmark of the platform on the real node (not a test): run it by hand or by `make bench`.

Starts a platform instance of its own (`python -m localdev up` in a temporary state folder), then:
1. launch -> first run container started, p50: the probe module stamps its start (`started_at`, the
   host's clock: one kernel); baseline: the same image as a bare Job created through the Kubernetes API
   (no API, no operator), measured the same way in the same run;
2. container exit -> outputs in GridFS, p50 (goal < 2 s): the probe's `written_at` (the moment before it
   exits) to the stored file's uploadDate;
3. 20 services launched at once -> every output collected, none twice; baseline: 20 bare Jobs to
   Complete;
4. warm `make up`: `localdev down` then `localdev up` on the same state folder (tools, base images and
   BuildKit's cache warm); baseline: this run's first `up` of the instance.
The one-line rebuild of the API image is bench/images' figure.

    uv run python bench/node/bench_node.py [--samples 5] [--concurrent 20]

Prints each goal with met / not met and writes JSON to bench/results/node-<time>.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.stats import Goal, Spread, save_results  # noqa: E402
from localdev.tools import Tools, find_tools  # noqa: E402

BASE = "/api/orchestrator/v1beta1"
EXIT_TO_STORED_GOAL_S = 2.0
LAUNCH_TO_START_RATIO_GOAL = 3.0  # the platform's launch path at most 3x a bare Job's
CONCURRENT_RATIO_GOAL = 3.0
WARM_UP_GOAL_S = 180.0


def localdev(command: str, state_dir: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "localdev", command],
        cwd=REPO,
        env={**os.environ, "DTPOC_STATE_DIR": str(state_dir)},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"localdev {command} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return time.perf_counter() - start


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if value := check():
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(interval)


class Instance:
    """One running platform instance, reached only through its public interfaces."""

    def __init__(self, state_dir: Path, tools: Tools) -> None:
        state = json.loads((state_dir / "state.json").read_text())
        secrets = json.loads((state_dir / "secrets.json").read_text())
        self.namespace = state["namespace"]
        self.kubeconfig = state_dir / "kwok" / "clusters" / state["cluster_name"] / "host-kubeconfig.yaml"
        self.kubectl_bin = str(tools.kubectl)
        self.probe = json.loads((state_dir / "outputs.json").read_text())["images"]["probe"]
        self.api = httpx.Client(
            base_url=f"http://127.0.0.1:{state['api_port']}{BASE}",
            headers={"Authorization": f"Bearer {secrets['apiToken']}"},
            timeout=60,
        )

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return subprocess.run(
            [self.kubectl_bin, f"--kubeconfig={self.kubeconfig}", "-n", self.namespace, *args],
            input=input, capture_output=True, text=True, check=True, timeout=120,
        ).stdout  # fmt: skip

    def launch(self, description: str) -> tuple[str, float]:
        image, _, version = self.probe.rpartition(":")
        body = {
            "image": image,
            "version": version,
            "description": description,
            "env": {"PROBE_MODE": "write"},
            "ana": {"job_type": "ondemand", "reps": 1},
        }
        sent = time.time()
        response = self.api.post("/service/launch", json=body)
        response.raise_for_status()
        return str(response.json()["id"]), sent

    def settled(self, sid: str) -> dict[str, Any] | None:
        status = self.api.get(f"/service/{sid}/status").json()
        return status if status["status"] in ("ok", "error") else None

    def output(self, sid: str) -> dict[str, Any]:
        return dict(self.api.get(f"/service/{sid}/output/0").json())

    def terminate(self, sid: str) -> None:
        self.api.delete(f"/service/{sid}/terminate").raise_for_status()

    def upload_date(self, file_id: str) -> float:
        """The stored file's uploadDate, from the files listing (the API's own view of GridFS)."""
        skip = 0
        while True:
            page = self.api.get("/files", params={"limit": 1000, "skip": skip}).json()
            for entry in page:
                if entry["id"] == file_id:
                    return datetime.fromisoformat(entry["upload_date"].replace("Z", "+00:00")).timestamp()
            if len(page) < 1000:
                raise LookupError(f"file {file_id} is not listed")
            skip += 1000

    def bare_job(self, name: str) -> tuple[str, float]:
        """The probe as a plain Job, as a user with kubectl would run it; its start from its logs."""
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": "bench-bare-job"}},
                    "spec": {
                        "restartPolicy": "Never",
                        "nodeSelector": {"dtpoc.io/node": "real"},
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "probe",
                                "image": self.probe,
                                "imagePullPolicy": "Never",
                                "env": [
                                    {"name": "PROBE_MODE", "value": "write"},
                                    {"name": "OUTPUT_FOLDER", "value": "/tmp/out"},
                                ],
                                "command": [
                                    "sh",
                                    "-c",
                                    "python3 /opt/probe/probe.py && cat /tmp/out/probe.json",
                                ],
                                "resources": {
                                    "requests": {"cpu": "100m", "memory": "64Mi"},
                                    "limits": {"cpu": "1", "memory": "256Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                            }
                        ],
                    },
                },
            },
        }
        sent = time.time()
        self.kubectl("create", "-f", "-", input=json.dumps(job))
        return name, sent

    def bare_job_done(self, name: str) -> bool:
        status = json.loads(self.kubectl("get", "job", name, "-o", "json")).get("status", {})
        return bool(status.get("succeeded"))

    def bare_job_started(self, name: str) -> float:
        logs = self.kubectl("logs", f"job/{name}")
        return float(json.loads(logs[logs.index("{") :])["started_at"])


def launch_latencies(instance: Instance, samples: int) -> dict[str, Any]:
    platform, bare, stored = [], [], []
    for i in range(samples):
        sid, sent = instance.launch(f"bench launch {i}")
        status = wait_for(functools.partial(instance.settled, sid), 180, f"service {sid}")
        out = instance.output(sid)
        platform.append(out["started_at"] - sent)
        entry = next(o for o in status["output_files"] if o["filename"] == "probe.json")
        stored.append(instance.upload_date(entry["file_id"]) - out["written_at"])
        instance.terminate(sid)
        name, sent = instance.bare_job(f"bench-bare-{i}-{int(time.time())}")
        wait_for(functools.partial(instance.bare_job_done, name), 180, f"job {name}")
        bare.append(instance.bare_job_started(name) - sent)
        instance.kubectl("delete", "job", name, "--cascade=foreground", "--wait=false")
    return {
        "launch_to_start_s": Spread.of(platform).__dict__,
        "bare_job_to_start_s": Spread.of(bare).__dict__,
        "exit_to_stored_s": Spread.of(stored).__dict__,
    }


def concurrent_runs(instance: Instance, count: int) -> dict[str, Any]:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=count) as pool:
        launched = list(pool.map(lambda i: instance.launch(f"bench concurrent {i}")[0], range(count)))
    statuses = [wait_for(functools.partial(instance.settled, sid), 600, f"service {sid}") for sid in launched]
    platform_s = time.perf_counter() - start
    file_ids = [o["file_id"] for s in statuses for o in s["output_files"]]
    ok = sum(s["status"] == "ok" for s in statuses)
    for sid in launched:
        instance.terminate(sid)
    start = time.perf_counter()
    stamp = int(time.time())
    names = [instance.bare_job(f"bench-burst-{i}-{stamp}")[0] for i in range(count)]
    for name in names:
        wait_for(functools.partial(instance.bare_job_done, name), 600, f"job {name}")
    bare_s = time.perf_counter() - start
    instance.kubectl("delete", "jobs", *names, "--wait=false")
    return {
        "services": count,
        "ok": ok,
        "outputs": len(file_ids),
        "distinct_outputs": len(set(file_ids)),
        "all_collected_s": round(platform_s, 2),
        "bare_jobs_complete_s": round(bare_s, 2),
    }


def goals(results: dict[str, Any]) -> list[Goal]:
    launch = results["latency"]
    burst = results["concurrent"]
    return [
        Goal(
            "launch -> first run container started, p50 / bare Job's p50",
            launch["launch_to_start_s"]["p50"] / launch["bare_job_to_start_s"]["p50"],
            LAUNCH_TO_START_RATIO_GOAL,
            "x",
        ),
        Goal(
            "container exit -> outputs in GridFS, p50",
            launch["exit_to_stored_s"]["p50"],
            EXIT_TO_STORED_GOAL_S,
            "s",
        ),
        Goal(
            f"{burst['services']} concurrent runs: outputs collected once each",
            burst["distinct_outputs"] if burst["outputs"] == burst["distinct_outputs"] else -1,
            burst["services"],
            "files",
            at_most=False,
        ),
        Goal(
            f"{burst['services']} concurrent runs collected / {burst['services']} bare Jobs complete",
            burst["all_collected_s"] / burst["bare_jobs_complete_s"],
            CONCURRENT_RATIO_GOAL,
            "x",
        ),
        Goal("warm make up (localdev up, caches warm)", results["up"]["warm_s"], WARM_UP_GOAL_S, "s"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=20)
    args = parser.parse_args()
    tools = find_tools()
    results: dict[str, Any] = {"settings": vars(args)}
    with tempfile.TemporaryDirectory(prefix="dtpoc-bench-node-") as tmp:
        state_dir = Path(tmp) / "instance"
        try:
            first_up = localdev("up", state_dir)
            localdev("down", state_dir)
            warm_up = localdev("up", state_dir)
            results["up"] = {"first_s": round(first_up, 1), "warm_s": round(warm_up, 1)}
            instance = Instance(state_dir, tools)
            results["latency"] = launch_latencies(instance, args.samples)
            results["concurrent"] = concurrent_runs(instance, args.concurrent)
        finally:
            localdev("down", state_dir)
    print(json.dumps(results, indent=2))
    print(f"warm up / first up of this run: {results['up']['warm_s'] / results['up']['first_s']:.2f}x")
    save_results("node", results, goals(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
