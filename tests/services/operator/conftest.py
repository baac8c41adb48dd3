"""The operator under test runs as its own process (the `dtpoc-operator` console script) against the
local kwok cluster and FerretDB, with a temporary directory as its data volume. Tests act on the
cluster with kubectl and on the database with pymongo, as the API and the modules would.

Run pods mount a PVC; the `operator_env` fixture makes a bound PV/PVC pair (the scheduler does not
place pods whose claim is missing or unbound).

`operator_env` is the default DT solution (the platform's namespace and databases, the data volume's
root); `operator_env.add_solution(name)` makes another one (its namespace, its PV/PVC on its folder of
the data volume, its databases emptied), which the operators started afterwards serve as well.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gridfs
import pytest
from bson import ObjectId
from pymongo import AsyncMongoClient, MongoClient

from localdev import processes
from localdev.cluster import LocalCluster
from services.shared import crd
from services.shared.names import SERVICE_ID_LABEL
from services.shared.records import ServiceRecord, services_collection
from services.shared.solutions import SolutionPlace, default_place
from tests.kubectl import get_object
from tests.polling import eventually

PVC = "orchestrator-data"


@pytest.fixture
async def client(mongo_url: str) -> AsyncIterator[AsyncMongoClient]:
    """An async MongoDB client on the test's emptied FerretDB (the operator's own client type)."""
    mongo = AsyncMongoClient(mongo_url)
    yield mongo
    await mongo.close()


@dataclass
class OperatorProcess:
    pid: int
    port: int
    log: Path

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def log_text(self, since: int = 0) -> str:
        """The log from character `since` on (a `len(log_text())` taken earlier)."""
        return self.log.read_text(errors="replace")[since:] if self.log.exists() else ""

    def handled(self, namespace: str, name: str, handler: str, since: int = 0) -> int:
        """How often kopf logged `handler` ("Handler 'job_event'", "Timer 'sweep'") as succeeded on
        object `name`: the operator's own word that it processed an event, after character `since`."""
        return self.log_text(since).count(f"[{namespace}/{name}] {handler} succeeded.")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful stop, as if the node died."""
        os.killpg(self.pid, signal.SIGKILL)
        processes.wait_until(lambda: not processes.alive(self.pid), 10, f"operator pid {self.pid} to die")

    def stop(self) -> None:
        processes.stop(self.pid)


@dataclass
class OperatorEnv:
    """A solution's namespace with the operator's prerequisites, and helpers to drive and inspect it: the
    fixture's is the default solution, which starts the operator; `add_solution` makes the others."""

    cluster: LocalCluster
    namespace: str
    mongo_url: str
    output_root: Path  # the solution's folder of the data volume (the default's: the volume's root)
    workdir: Path
    mongo: MongoClient
    place: SolutionPlace
    others: list[OperatorEnv] = field(default_factory=list)  # the default's: the other solutions
    started: list[OperatorProcess] = field(default_factory=list)

    def add_solution(self, name: str) -> OperatorEnv:
        """Another solution, in a namespace of its own, for the operators started from now on."""
        assert self.place.is_default, "solutions are added to the default one"
        place = SolutionPlace(name=name, namespace=f"{self.namespace}-{name}")
        self.cluster.kubectl("create", "namespace", place.namespace)
        output_root = self.output_root / place.data_dir  # made by the operator as it starts
        bind_data_volume(self.cluster, place.namespace, output_root)
        for database in (place.records_database, place.files_database):
            self.mongo.drop_database(database)
        other = OperatorEnv(
            self.cluster, place.namespace, self.mongo_url, output_root, self.workdir, self.mongo, place
        )
        self.others.append(other)
        return other

    # -- the operator process -------------------------------------------------------------------
    def start_operator(self, *, kopf_cli: bool = False, **settings: str) -> OperatorProcess:
        """The operator as `dtpoc-operator`, or with `kopf_cli` as `kopf run -m services.operator.main`,
        serving this (the default) solution and the others added."""
        assert self.place.is_default, "the operator is started with the default solution's settings"
        port = processes.free_port()
        solutions = [other.place.model_dump() for other in self.others]
        env = {
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "OPERATOR_NAMESPACE": self.namespace,
            "OPERATOR_SOLUTIONS": json.dumps(solutions),
            "OPERATOR_OUTPUT_ROOT": str(self.output_root),
            "OPERATOR_DATA_PVC": PVC,
            "OPERATOR_LIVENESS_HOST": "127.0.0.1",
            "OPERATOR_LIVENESS_PORT": str(port),
            "OPERATOR_SWEEP_SECONDS": "10",
            "OPERATOR_RECORD_WAIT_SECONDS": "0.5",
            "OPERATOR_ERROR_RETRY_SECONDS": "1",
            "MONGODB_URL": self.mongo_url,
            "MONGODB_TIMEOUT_MS": "3000",
            **settings,
        }
        log = self.workdir / f"operator-{len(self.started)}.log"
        bin_dir = Path(sys.executable).parent
        command: list[str | Path] = [bin_dir / "dtpoc-operator"]
        if kopf_cli:
            liveness = f"http://127.0.0.1:{port}/healthz"
            command = [bin_dir / "kopf", "run", "-m", "services.operator.main", "--standalone"]
            for namespace in [self.namespace, *(other.namespace for other in self.others)]:
                command += ["--namespace", namespace]
            command += ["--liveness", liveness]
        process = OperatorProcess(processes.start(command, log, env), port, log)
        self.started.append(process)
        try:
            processes.wait_until(process.healthy, 30, "the operator's /healthz")
        except TimeoutError:
            raise AssertionError(f"operator did not start:\n{process.log_text()}") from None
        return process

    # -- Kubernetes -----------------------------------------------------------------------------
    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl("-n", self.namespace, *args, input=input, check=check)

    def apply(self, manifest: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return get_object(self.kubectl, kind, name)

    def list(self, kind: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", kind, "-o", "json"] + (["-l", selector] if selector else [])
        return json.loads(self.kubectl(*args).stdout)["items"]

    def pods(self, sid: str) -> list[dict[str, Any]]:
        return self.list("pods", f"{SERVICE_ID_LABEL}={sid}")

    def create_analytics(self, sid: str, spec: dict[str, Any]) -> None:
        self.apply({"apiVersion": crd.API_VERSION, "kind": crd.KIND, "metadata": {"name": sid}, "spec": spec})

    def analytics_status(self, sid: str) -> dict[str, Any]:
        resource = self.get(crd.PLURAL, sid)
        return (resource or {}).get("status") or {}

    def condition(self, sid: str, type_: str) -> dict[str, Any] | None:
        return next((c for c in self.analytics_status(sid).get("conditions", []) if c["type"] == type_), None)

    def wait_phase(self, sid: str, phase: str, timeout: float = 60) -> dict[str, Any]:
        return eventually(
            lambda: (s := self.analytics_status(sid)).get("phase") == phase and s,
            timeout,
            f"{sid} to reach phase {phase} (status now {self.analytics_status(sid)})",
        )

    @contextmanager
    def scheduling_paused(self) -> Iterator[None]:
        """Cordon the simulated nodes: new pods stay Pending (not scheduled) until the block ends."""
        nodes = [
            n["metadata"]["name"]
            for n in json.loads(self.cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
        ]
        for node in nodes:
            self.cluster.kubectl("cordon", node)
        try:
            yield
        finally:
            for node in nodes:
                self.cluster.kubectl("uncordon", node)

    # -- MongoDB --------------------------------------------------------------------------------
    @property
    def records(self) -> Any:
        return services_collection(self.mongo, self.place.records_database)

    @property
    def files(self) -> Any:
        return self.mongo[self.place.files_database]

    def insert_record(self, sid: str | None = None, **fields: Any) -> str:
        sid = sid or str(ObjectId())
        record = ServiceRecord(image=fields.pop("image", "example.org/module:1"), **fields)
        self.records.insert_one(record.to_document(ObjectId(sid)))
        return sid

    def record(self, sid: str) -> dict[str, Any]:
        return self.records.find_one({"_id": ObjectId(sid)}) or {}

    def upload_input(self, filename: str, content: bytes) -> str:
        return str(gridfs.GridFSBucket(self.files).upload_from_stream(filename, content))

    def run_dir(self, sid: str, index: int) -> Path:
        return self.output_root / sid / "runs" / str(index)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


def bind_data_volume(cluster: LocalCluster, namespace: str, folder: Path) -> None:
    """The data PVC in `namespace`, bound to a PV of its own on `folder` (named after the namespace)."""
    pv = f"pv-{namespace}"
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": pv},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteMany"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "",
                    "hostPath": {"path": str(folder)},
                    "claimRef": {"namespace": namespace, "name": PVC},
                },
            }
        ),
    )
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": PVC},
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "storageClassName": "",
                    "volumeName": pv,
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
        ),
    )
    cluster.kubectl(
        "wait", "-n", namespace, "--for=jsonpath={.status.phase}=Bound", f"pvc/{PVC}", "--timeout=60s"
    )


@pytest.fixture
def operator_env(
    request: pytest.FixtureRequest,
    cluster: LocalCluster,
    analytics_crd: str,
    namespace: str,
    mongo_url: str,
    tmp_path: Path,
) -> Iterator[OperatorEnv]:
    output_root = tmp_path / "data"
    output_root.mkdir(exist_ok=True)
    bind_data_volume(cluster, namespace, output_root)
    with MongoClient(mongo_url) as mongo:
        env = OperatorEnv(
            cluster, namespace, mongo_url, output_root, tmp_path, mongo, default_place(namespace)
        )
        try:
            yield env
        finally:
            if request.node.stash.get(_FAILED, False):
                for process in env.started:  # shown with the failure report
                    print(f"--- {process.log.name} (last 6000 characters)\n{process.log_text()[-6000:]}")
            # Delete the resources while an operator still runs, so that it releases their finalizers.
            if any(processes.alive(p.pid) for p in env.started):
                for solution in [env, *env.others]:
                    solution.kubectl("delete", crd.PLURAL, "--all", "--timeout=30s", check=False)
            for process in env.started:
                process.stop()
            for solution in [env, *env.others]:
                cluster.kubectl("delete", "pv", f"pv-{solution.namespace}", "--wait=false", check=False)
            for other in env.others:
                cluster.kubectl("delete", "namespace", other.namespace, "--wait=false", check=False)
                mongo.drop_database(other.place.records_database)
                mongo.drop_database(other.place.files_database)


@pytest.fixture
def operator(operator_env: OperatorEnv) -> OperatorProcess:
    """One operator, started with the test settings."""
    return operator_env.start_operator()
