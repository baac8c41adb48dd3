"""The removal guard's check (components/solution_guard.py): which solutions a Deployment update removes, and
against the real kube-apiserver, a removal refused while an Analytics resource is in the namespace, allowed
once it is gone, and when forced (finalizers lifted so that the namespace can go)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest

from components.solution_guard import KubeAccess, RemovalCheck, SolutionStillRunning, listed_solutions
from localdev.cluster import LocalCluster
from services.shared import crd
from services.shared.solutions import SOLUTION_LABEL


def deployment_inputs(**env: str) -> dict[str, Any]:
    variables = [
        {"name": "OPERATOR_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
    ]
    variables += [{"name": name, "value": value} for name, value in env.items()]
    return {"spec": {"template": {"spec": {"containers": [{"name": "operator", "env": variables}]}}}}


def solutions_json(*names: str) -> str:
    return json.dumps([{"name": name, "namespace": f"dtpoc-{name}"} for name in names])


def update(before: dict[str, Any], after: dict[str, Any]) -> pulumi.ResourceHookArgs:
    return pulumi.ResourceHookArgs("urn", "id", "operator", "kubernetes:apps/v1:Deployment", after, before)


def test_listed_solutions_reads_the_orchestrators_env() -> None:
    inputs = deployment_inputs(OPERATOR_SOLUTIONS=solutions_json("lab", "ward"))
    assert listed_solutions(inputs) == {"lab": "dtpoc-lab", "ward": "dtpoc-ward"}
    assert listed_solutions(deployment_inputs()) == {}  # a stack without solutions
    assert listed_solutions({"spec": {}}) is None  # not a Deployment's inputs
    unknown = deployment_inputs()
    unknown["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "API_SOLUTIONS", "value": None}
    )
    assert listed_solutions(unknown) is None  # a value a preview does not know yet


# --- against the kube-apiserver ------------------------------------------------------------------------


def analytics(name: str, namespace: str, finalizers: list[str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": crd.API_VERSION,
        "kind": crd.KIND,
        "metadata": {"name": name, "namespace": namespace, "finalizers": finalizers or []},
        "spec": {"image": "busybox:1.36", "jobType": "ondemand", "reps": 1},
    }


@pytest.fixture
def solution_namespace(cluster: LocalCluster, analytics_crd: str) -> Iterator[str]:
    """A fresh namespace named like a solution's (dtpoc-<name>), with the CRD installed."""
    name = f"dtpoc-g{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    for item in cluster.kubectl("get", "analytics", "-n", name, "-o", "name", check=False).stdout.split():
        cluster.kubectl(
            "patch", item, "-n", name, "--type=merge", "-p", '{"metadata":{"finalizers":[]}}', check=False
        )
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def namespace_delete(solution: str, namespace: str) -> pulumi.ResourceHookArgs:
    old = {"metadata": {"name": namespace, "labels": {SOLUTION_LABEL: solution}}}
    return pulumi.ResourceHookArgs("urn", "id", "ns", "kubernetes:core/v1:Namespace", None, old)


async def test_a_removal_is_refused_while_a_service_runs_there(
    cluster: LocalCluster, solution_namespace: str
) -> None:
    check = RemovalCheck([], KubeAccess(str(cluster.kubeconfig)))
    await check.before_namespace_delete(namespace_delete("lab", solution_namespace))  # empty: goes ahead
    cluster.kubectl("apply", "-f", "-", input=json.dumps(analytics("svc-1", solution_namespace)))
    with pytest.raises(SolutionStillRunning) as refused:
        await check.before_namespace_delete(namespace_delete("lab", solution_namespace))
    message = str(refused.value)
    assert (
        f"solution 'lab' cannot be removed: 1 service(s) still run in its namespace {solution_namespace}"
        in message
    )
    assert "(svc-1)" in message
    assert "pulumi config set --path 'solutionsForceRemoval[0]' lab" in message
    # The Deployments' update is checked the same way, with the namespace from their old env.
    before = deployment_inputs(
        OPERATOR_SOLUTIONS=json.dumps([{"name": "lab", "namespace": solution_namespace}])
    )
    with pytest.raises(SolutionStillRunning, match="solution 'lab' cannot be removed"):
        await check.before_deployment_update(update(before, deployment_inputs()))
    await check.before_deployment_update(update(before, before))  # still listed: nothing to check
    # Gone: the removal goes ahead.
    cluster.kubectl("delete", "analytics", "svc-1", "-n", solution_namespace)
    await check.before_namespace_delete(namespace_delete("lab", solution_namespace))
    await check.before_deployment_update(update(before, deployment_inputs()))


async def test_a_missing_namespace_holds_nothing(cluster: LocalCluster, analytics_crd: str) -> None:
    check = RemovalCheck([], KubeAccess(str(cluster.kubeconfig)))
    await check.check("lab", f"dtpoc-gone-{uuid.uuid4().hex[:6]}", lift_finalizers=False)


async def test_a_forced_removal_lifts_the_finalizers(cluster: LocalCluster, solution_namespace: str) -> None:
    finalizer = "kopf.zalando.org/KopfFinalizerMarker"
    for name in ("svc-1", "svc-2"):
        cluster.kubectl(
            "apply", "-f", "-", input=json.dumps(analytics(name, solution_namespace, [finalizer]))
        )
    # The kubeconfig's contents work as well as its path (kubernetes:kubeconfig takes either).
    check = RemovalCheck(["lab"], KubeAccess(cluster.kubeconfig.read_text()))
    await check.before_namespace_delete(namespace_delete("lab", solution_namespace))
    for name in ("svc-1", "svc-2"):
        stored = json.loads(
            cluster.kubectl("get", "analytics", name, "-n", solution_namespace, "-o", "json").stdout
        )
        assert stored["metadata"].get("finalizers", []) == []
    # Nothing holds them any more: deleting the namespace's objects completes.
    cluster.kubectl("delete", "analytics", "--all", "-n", solution_namespace, "--timeout=30s")
    assert cluster.kubectl("get", "analytics", "-n", solution_namespace, "-o", "name").stdout == ""


async def test_forcing_another_solution_does_not_force_this_one(
    cluster: LocalCluster, solution_namespace: str
) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(analytics("svc-1", solution_namespace)))
    check = RemovalCheck(["ward"], KubeAccess(str(cluster.kubeconfig)))
    with pytest.raises(SolutionStillRunning):
        await check.before_namespace_delete(namespace_delete("lab", solution_namespace))
