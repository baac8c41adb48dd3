"""End to end: the main job (`python -m localdev up`) brings the platform up, and a user's story works
through public interfaces only — HTTP to the API, reads from the Kubernetes API.

Two stand-ins play the parts the simulated cluster cannot: the files a module would write to /output
(written into the run's output directory on the data volume), and a slow machine (the node is cordoned
while the stand-in outputs are written, so that the runs finish after them, as a real module's would).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from localdev.tools import REPO, Tools

from ..kubectl import get_object

pytestmark = [pytest.mark.cluster, pytest.mark.mongo, pytest.mark.pulumi, pytest.mark.slow]

BASE = "/api/orchestrator/v1alpha1"
# The seed's example: its record and its Analytics resource, as its developer documentation gives them.
SEED_ID = "669a52d1364a1b751c550d56"
SEED_IMAGE = "ghcr.io/cam-digital-hospitals/digital-hosp-des"
SEED_DESCRIPTION = (
    "An analytics module that uses the Histopathology BIM runner times to simulate sample flow"
    " and reports KPIs"
)
SEED_ENV = {
    "INPUT_EXCEL_FILE": "/input/input.xlsx",
    "OUTPUT_FOLDER": "/output",
    "SIM_HOURS": "1176",
    "NUM_REPS": "2",
}


@dataclass
class Platform:
    state_dir: Path
    api: httpx.Client
    token: str
    kubeconfig: Path
    namespace: str
    mongo_url: str
    tools: Tools

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.tools.kubectl), f"--kubeconfig={self.kubeconfig}", "-n", self.namespace, *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """None only for NotFound; a failing kubectl raises (so wait_deleted cannot pass on an error)."""
        return get_object(self.kubectl, kind, name)

    def run_dir(self, sid: str, run: int) -> Path:
        return self.state_dir / "data" / sid / "runs" / str(run)


def localdev(command: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localdev", command],
        cwd=REPO,
        env={**os.environ, "DTPOC_STATE_DIR": str(state_dir)},
        capture_output=True,
        text=True,
        timeout=900,
    )


def eventually(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def platform(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    state_dir = tmp_path_factory.mktemp("platform")
    started = time.monotonic()
    up = localdev("up", state_dir)
    print(f"main job (python -m localdev up) took {time.monotonic() - started:.1f} s")
    try:
        assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-4000:]
        assert "The platform is up." in up.stdout
        state = json.loads((state_dir / "state.json").read_text())
        token = json.loads((state_dir / "secrets.json").read_text())["apiToken"]
        kubeconfig = state_dir / "kwok" / "clusters" / state["cluster_name"] / "kubeconfig.yaml"
        with httpx.Client(base_url=f"http://127.0.0.1:{state['api_port']}{BASE}", timeout=30) as api:
            yield Platform(
                state_dir,
                api,
                token,
                kubeconfig,
                state["namespace"],
                f"mongodb://127.0.0.1:{state['ferretdb_port']}/",
                tools,
            )
    finally:
        down = localdev("down", state_dir)
        assert down.returncode == 0, down.stdout[-4000:] + down.stderr[-4000:]


def wait_deleted(platform: Platform, kind: str, name: str) -> None:
    eventually(lambda: platform.get(kind, name) is None, 60, f"{kind}/{name} to be deleted")


def test_ondemand_story(platform: Platform, tmp_path: Path) -> None:
    api = platform.api
    # 1. upload an input file
    upload = api.post(
        "/files/upload",
        files={"file": ("input.xlsx", b"PK\x03\x04 stand-in workbook")},
        headers=platform.auth,
    )
    assert upload.status_code in (200, 201), upload.text
    file_id = upload.json()["id"]

    # Hold the runs back (a slow machine) until their stand-in outputs are written.
    node = platform.kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").stdout
    platform.kubectl("cordon", node)
    try:
        # 2. launch an ondemand module with reps 2 and that file mounted
        launch = api.post(
            "/service/launch",
            headers=platform.auth,
            json={
                "image": "ghcr.io/cam-digital-hospitals/digital-hosp-des",
                "version": "1.0",
                "description": "e2e",
                "env": {"SIM_HOURS": "24"},
                "mount_files": {file_id: "input.xlsx"},
                "ana": {"job_type": "ondemand", "reps": 2},
            },
        )
        assert launch.status_code == 202, launch.text
        sid = launch.json()["id"]
        seen = {api.get(f"/service/{sid}/status").json()["status"]}

        # 3. the Job appears with 2 indexed completions and the input mount
        job = eventually(lambda: platform.get("jobs", f"ana-{sid}"), 30, "the Job")
        assert job["spec"]["completions"] == 2
        assert job["spec"]["completionMode"] == "Indexed"
        mounts = {m["mountPath"] for m in job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
        assert {"/input", "/output"} <= mounts
        assert job["spec"]["template"]["spec"]["containers"][0]["image"].endswith("digital-hosp-des:1.0")

        # 4. stand-in outputs: what each run's module writes to /output
        for run in range(2):
            eventually(lambda run=run: platform.run_dir(sid, run).is_dir(), 30, f"run {run}'s output dir")
            (platform.run_dir(sid, run) / "kpis.json").write_text(json.dumps({"run": run, "kpi": 10 * run}))
        seen.add(eventually(lambda: api.get(f"/service/{sid}/status").json()["status"], 10))
    finally:
        platform.kubectl("uncordon", node)

    # 5. status reaches ok through running; outputs 0 and 1 are the two JSON documents
    def finished() -> dict[str, Any] | None:
        body = api.get(f"/service/{sid}/status").json()
        seen.add(body["status"])
        return body if body["status"] == "ok" and body["outputs"] == 2 else None

    status = eventually(finished, 90, "the runs to finish and their outputs to be collected")
    assert {"pending", "running"} & seen and status["succeeded"] == 2
    assert [o["run"] for o in status["output_files"]] == [0, 1]
    for run in range(2):
        output = api.get(f"/service/{sid}/output/{run}")
        assert output.status_code == 200
        assert output.json() == {"run": run, "kpi": 10 * run}
    assert sid in [s["id"] for s in api.get("/service/").json()]

    # 6. terminate removes the resource, the Job and the record
    assert api.delete(f"/service/{sid}/terminate", headers=platform.auth).status_code == 200
    wait_deleted(platform, "analytics", sid)
    wait_deleted(platform, "jobs", f"ana-{sid}")
    assert api.get(f"/service/{sid}/status").status_code == 404


def test_scheduled_and_persistent(platform: Platform) -> None:
    api = platform.api
    scheduled = api.post(
        "/service/launch",
        headers=platform.auth,
        json={
            "image": "example.org/nightly-report",
            "version": "3",
            "description": "nightly",
            "ana": {"job_type": "scheduled", "reps": 1, "schedule": "0 2 * * *"},
        },
    )
    assert scheduled.status_code == 202, scheduled.text
    persistent = api.post(
        "/service/launch",
        headers=platform.auth,
        json={
            "image": "example.org/dashboard",
            "version": "1",
            "description": "live view",
            "port": 8080,
            "ana": {"job_type": "persistent"},
        },
    )
    assert persistent.status_code == 202, persistent.text
    cron_id, web_id = scheduled.json()["id"], persistent.json()["id"]

    cronjob = eventually(lambda: platform.get("cronjobs", f"ana-{cron_id}"), 30, "the CronJob")
    assert cronjob["spec"]["schedule"] == "0 2 * * *"
    deployment = eventually(lambda: platform.get("deployments", f"ana-{web_id}"), 30, "the Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 8080
    service = eventually(lambda: platform.get("services", f"ana-{web_id}"), 30, "the Service")
    assert service["spec"]["ports"][0]["targetPort"] in (8080, "http")
    assert eventually(lambda: platform.get("ingresses", f"ana-{web_id}"), 30, "the Ingress")

    for sid, kind in ((cron_id, "cronjobs"), (web_id, "deployments")):
        assert api.delete(f"/service/{sid}/terminate", headers=platform.auth).status_code == 200
        wait_deleted(platform, "analytics", sid)
        wait_deleted(platform, kind, f"ana-{sid}")


def test_seed_example_as_written(platform: Platform) -> None:
    """The seed's manual flow: a services record in MongoDB, then `kubectl apply` of its YAML."""
    upload = platform.api.post(
        "/files/upload", files={"file": ("input.xlsx", b"seed workbook")}, headers=platform.auth
    )
    file_id = upload.json()["id"]
    record = {
        "image": SEED_IMAGE,
        "version": "latest",
        "description": SEED_DESCRIPTION,
        "mount_files": {file_id: "input.xlsx"},
        "reps": 2,
        "env": SEED_ENV,
    }
    from bson import ObjectId

    with MongoClient(platform.mongo_url) as client:
        client["orchestrator"]["services"].insert_one({"_id": ObjectId(SEED_ID), **record})
    manifest = {
        "apiVersion": "eng.cam.ac.uk/v1alpha1",
        "kind": "Analytics",
        "metadata": {"name": SEED_ID},
        "spec": {
            "image": f"{SEED_IMAGE}:latest",
            "description": SEED_DESCRIPTION,
            "jobType": "ondemand",
            "reps": 2,
            "env": SEED_ENV,
        },
    }
    platform.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    assert (
        platform.kubectl("get", "ana", SEED_ID, "-o", "name").stdout.strip()
        == f"analytics.eng.cam.ac.uk/{SEED_ID}"
    )

    job = eventually(lambda: platform.get("jobs", f"ana-{SEED_ID}"), 30, "the seed's Job")
    assert job["spec"]["completions"] == 2
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{SEED_IMAGE}:latest"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert {k: env[k] for k in SEED_ENV} == SEED_ENV
    assert job["metadata"]["ownerReferences"][0]["name"] == SEED_ID
    eventually(
        lambda: (platform.get("jobs", f"ana-{SEED_ID}") or {}).get("status", {}).get("succeeded") == 2,
        60,
        "the seed's two runs",
    )
    platform.kubectl("delete", "ana", SEED_ID)
    wait_deleted(platform, "jobs", f"ana-{SEED_ID}")
