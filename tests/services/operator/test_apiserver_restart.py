"""The kube-apiserver restarts under a running operator: its watches break, and it must resume watching on
its own and handle a resource created afterwards (no operator restart).

A private cluster for this module: restarting the session's apiserver would disturb every other test.
The `cluster` and `analytics_crd` fixtures are overridden here, so `operator_env` builds on it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from localdev.cluster import LocalCluster
from localdev.tools import Tools
from services.shared import crd
from tests.polling import eventually

from .conftest import OperatorEnv
from .test_runs import IMAGE

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.mongo]


@pytest.fixture(scope="module")
def cluster(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    private = LocalCluster.start(tools, tmp_path_factory.mktemp("restart-cluster"))
    try:
        yield private
    finally:
        private.stop()


@pytest.fixture(scope="module")
def analytics_crd(cluster: LocalCluster) -> str:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(crd.crd_manifest()))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd.CRD_NAME}", "--timeout=60s")
    return crd.CRD_NAME


def launch(env: OperatorEnv) -> str:
    sid = env.insert_record(image=IMAGE, reps=1)
    env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 1})
    return sid


def test_the_operator_resumes_watching_after_the_apiserver_restarts(
    operator_env: OperatorEnv, cluster: LocalCluster
) -> None:
    operator = operator_env.start_operator()
    before = launch(operator_env)
    eventually(lambda: operator_env.get("job", f"ana-{before}"), 60, "the Job of the first resource")

    cluster.restart_apiserver()

    after = launch(operator_env)
    job = eventually(lambda: operator_env.get("job", f"ana-{after}"), 120, "the Job of a resource made after")
    assert job["spec"]["completions"] == 1
    # Handled end to end by the operator: status written back through the restarted apiserver. (Whether the
    # run's pod then completes is up to the cluster's own controllers, which reconnect on their own time.)
    created = eventually(lambda: operator_env.condition(after, "WorkloadCreated"), 60, "the status update")
    assert created["status"] == "True"
    assert operator.healthy()  # the same process throughout
    assert len(operator_env.started) == 1
