"""Fixtures that start real servers (FerretDB, a kwok cluster, a Pulumi workspace) for the tests that
ask for them, once per session, and stop them by pid afterwards. A missing tool fails the run loudly."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pymongo import MongoClient

from localdev.cluster import LocalCluster
from localdev.docker import Dockerd
from localdev.ferretdb import FerretDB
from localdev.netns import RUN_ROOT, NetworkNamespace
from localdev.node import BUSYBOX_REF, RealNode
from localdev.pulumi import PulumiWorkspace
from localdev.tools import Tools, find_tools
from services.shared import crd
from services.shared.names import FILES_DATABASE, RECORDS_DATABASE
from tests.mqtt_broker import Broker

# Tests that use these fixtures get the marker, so `-m "not cluster"` and the like select correctly.
_MARKERS = {
    "ferretdb": "mongo",
    "mongo_url": "mongo",
    "cluster": "cluster",
    "namespace": "cluster",
    "analytics_crd": "cluster",
    "pulumi_workspace": "pulumi",
    "real_cluster": "node",
    "dockerd": "docker",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & _MARKERS.keys():
            item.add_marker(_MARKERS[fixture])


@pytest.fixture(scope="session")
def tools() -> Tools:
    return find_tools()


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    """A Docker engine of the session's own (builds use the host network; see localdev/docker.py)."""
    daemon = Dockerd.start(tmp_path_factory.mktemp("dockerd"))
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def ferretdb(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerretDB]:
    server = FerretDB.start(tools, tmp_path_factory.mktemp("ferretdb"))
    yield server
    server.stop()


@pytest.fixture
def mongo_url(ferretdb: FerretDB) -> str:
    """The FerretDB URL, with the platform's databases emptied before the test."""
    with MongoClient(ferretdb.url) as client:
        client.drop_database(RECORDS_DATABASE)
        client.drop_database(FILES_DATABASE)
    return ferretdb.url


@pytest.fixture(scope="session")
def cluster(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster.start(tools, tmp_path_factory.mktemp("cluster"))
    yield local
    local.stop()


@pytest.fixture(scope="session")
def analytics_crd(cluster: LocalCluster) -> str:
    """The Analytics CRD of services.shared.crd, installed and established."""
    import json

    cluster.kubectl("apply", "-f", "-", input=json.dumps(crd.crd_manifest()))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd.CRD_NAME}", "--timeout=60s")
    return crd.CRD_NAME


@pytest.fixture
def namespace(cluster: LocalCluster) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def pulumi_workspace(
    tools: Tools, cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> PulumiWorkspace:
    return PulumiWorkspace.create(tools, tmp_path_factory.mktemp("pulumi"), cluster.kubeconfig)


@dataclass
class RealCluster:
    """A control plane and a real kubelet node inside a network namespace of the test's own."""

    cluster: LocalCluster
    node: RealNode
    state_dir: Path

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, input=input, check=check)

    def busybox(self) -> str:
        """Debian's static busybox, imported by the node (a shell, nc and nslookup; nothing pulled)."""
        return BUSYBOX_REF


@pytest.fixture(scope="session")
def real_cluster(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCluster]:
    instance = uuid.uuid4().hex[:8]
    state = tmp_path_factory.mktemp("real-node")
    run_dir = RUN_ROOT / instance
    run_dir.mkdir(parents=True)
    netns = NetworkNamespace.create(f"dtpoc-{instance}")
    cluster = node = None
    try:
        cluster = LocalCluster.start(tools, state, 1, netns, run_dir)
        node = RealNode.start(tools, cluster, instance, state / "node", run_dir)
        yield RealCluster(cluster, node, state)
    finally:
        if node is not None:
            node.stop(cluster)
        if cluster is not None:
            cluster.stop()
        netns.delete()
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def broker(tools: Tools, tmp_path: Path) -> Iterator[Broker]:
    """Debian's mosquitto with the platform's mosquitto.conf and ACL (anonymous read, publisher writes)."""
    server = Broker(tools, tmp_path)
    server.start()
    yield server
    server.stop()
