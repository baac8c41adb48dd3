"""`pulumi up` of the local stack against the local kwok cluster, through the real CLI and provider.

One test, in steps (each one needs the previous): up creates every piece and every Deployment becomes
available, the stack file's DT solution `lab` among them (its namespace, quota, Roles and volume); the CRD
is established and the apiserver itself refuses an invalid Analytics object; a second `up` changes nothing;
removing the solution from the config is refused while an Analytics resource is in its namespace (nothing
changes), and done once it is gone; `destroy` leaves nothing of ours behind.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.orchestrator import API_RULES, OPERATOR_RULES
from components.solution_guard import force_hint
from localdev.cluster import LocalCluster
from localdev.pulumi import PulumiWorkspace
from services.shared import crd

from ..kubectl import object_names
from .local_stack import LocalStack, copy_project

pytestmark = [pytest.mark.pulumi, pytest.mark.cluster, pytest.mark.slow]

NAMESPACE = "dtpoc"  # Pulumi.local.yaml
DEPLOYMENTS = {
    "mongodb", "influxdb", "mosquitto", "nodered", "di-light", "di-temp", "orchestrator-operator",
    "orchestrator-api", "grafana", "mongo-express", "digital-hosp-frontend",
    "di-co2", "sensor-simulator",  # the local stack's sensorClasses (the README's CO2) and simulator
}  # fmt: skip
SERVICES = {
    "mongodb", "influxdb", "mosquitto", "nodered", "grafana", "mongo-express", "orchestrator-api-svc",
    "digital-hosp-frontend-svc",
}  # fmt: skip
VOLUMES = {f"{NAMESPACE}-{piece}-data" for piece in ("mongodb", "influxdb", "orchestrator")}
SOLUTION = "lab"  # Pulumi.local.yaml's solution
SOLUTION_NAMESPACE = f"{NAMESPACE}-{SOLUTION}"

INVALID_ANALYTICS = {
    "apiVersion": crd.API_VERSION,
    "kind": crd.KIND,
    "metadata": {"name": "scheduled-without-schedule", "namespace": NAMESPACE},
    "spec": {"image": "busybox:1.36", "jobType": "scheduled", "reps": 1},
}


def names(cluster: LocalCluster, kind: str, namespace: str | None = NAMESPACE) -> set[str]:
    """Raises when kubectl fails: "nothing left" must come from the apiserver, not from an error."""
    return object_names(cluster.kubectl, kind, *(["-n", namespace] if namespace else []))


@pytest.fixture
def local_stack(
    pulumi_workspace: PulumiWorkspace, cluster: LocalCluster, tmp_path: Path
) -> Iterator[LocalStack]:
    # Other tests of the session may have installed the same CRD with kubectl: put it back afterwards.
    crd_before = crd.CRD_NAME in names(cluster, "crd", None)
    stack = LocalStack(pulumi_workspace, copy_project(tmp_path / "project"))
    stack.init()
    try:
        yield stack
    finally:
        stack.destroy(check=False)
        stack.remove()
        if crd_before:
            cluster.kubectl("apply", "-f", "-", input=json.dumps(crd.crd_manifest()))
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd.CRD_NAME}", "--timeout=60s")


def test_local_stack_up_no_change_and_destroy(local_stack: LocalStack, cluster: LocalCluster) -> None:
    # --- up: every piece, every Deployment available --------------------------------------------------
    local_stack.up()
    assert names(cluster, "deployments") == DEPLOYMENTS
    for name in DEPLOYMENTS:
        deployment = json.loads(
            cluster.kubectl("get", "deployment", name, "-n", NAMESPACE, "-o", "json").stdout
        )
        conditions = {c["type"]: c["status"] for c in deployment["status"].get("conditions", [])}
        assert conditions.get("Available") == "True", (name, deployment["status"])
        assert deployment["status"].get("availableReplicas") == deployment["spec"]["replicas"], name
    assert names(cluster, "services") == SERVICES
    assert names(cluster, "ingresses") == {
        "grafana-ingress",
        "digital-hosp-frontend-ingress",
        "orchestrator-api-ingress",
    }
    assert names(cluster, "secrets") >= {
        "mongodb-credentials",
        "influxdb-credentials",
        "grafana-influxdb-reader",
        "grafana-admin",
        "nodered-admin",
        "mosquitto-publisher",
        "orchestrator-api-token",
        "orchestrator-api-read-token",
    }
    assert names(cluster, "configmaps") >= {
        "mosquitto-config",
        "nodered-flows",
        "di-light-config",
        "di-temp-config",
        "di-co2-config",
        "grafana-datasources",
        "grafana-dashboards",
        "grafana-dashboard-providers",
        "influxdb-init",
        "nodered-settings",
    }
    assert names(cluster, "roles") == {"orchestrator-api", "orchestrator-operator"}
    # Least privilege as the apiserver stored it: exactly the rules of components/orchestrator.py,
    # namespaced Roles only.
    for role, rules in (("orchestrator-api", API_RULES), ("orchestrator-operator", OPERATOR_RULES)):
        stored = json.loads(cluster.kubectl("get", "role", role, "-n", NAMESPACE, "-o", "json").stdout)
        assert [
            (tuple(r["apiGroups"]), tuple(r["resources"]), tuple(r["verbs"])) for r in stored["rules"]
        ] == [(r.api_groups, r.resources, r.verbs) for r in rules], role
    platform_bindings = "-l", "app.kubernetes.io/part-of=dtpoc", "-o", "name"
    assert cluster.kubectl("get", "clusterroles,clusterrolebindings", *platform_bindings).stdout == ""
    # The apiserver accepted the NetworkPolicies (networkPolicies defaults to true).
    assert names(cluster, "networkpolicies") == {
        "mongodb-ingress",
        "influxdb-ingress",
        "orchestrator-api-ingress",
        "orchestrator-operator-ingress",
        "modules-egress",
    }
    # The namespace's guards, as the apiserver stored and enforces them.
    assert names(cluster, "resourcequota") == {f"{NAMESPACE}-quota"}
    assert names(cluster, "limitrange") == {f"{NAMESPACE}-limits"}
    ns_labels = json.loads(cluster.kubectl("get", "namespace", NAMESPACE, "-o", "json").stdout)["metadata"]
    assert ns_labels["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert names(cluster, "pv", None) >= VOLUMES
    claims = json.loads(cluster.kubectl("get", "pvc", "-n", NAMESPACE, "-o", "json").stdout)["items"]
    assert {c["metadata"]["name"]: c["status"]["phase"] for c in claims} == {
        "mongodb-data": "Bound",
        "influxdb-data": "Bound",
        "orchestrator-data": "Bound",
    }
    # The pods got the secrets by reference: the Secret holds the generated value.
    token = cluster.kubectl(
        "get", "secret", "orchestrator-api-token", "-n", NAMESPACE, "-o", "jsonpath={.data.token}"
    ).stdout
    assert base64.b64decode(token).decode() == local_stack.secrets["apiToken"]
    outputs = local_stack.outputs()
    assert outputs["namespace"] == NAMESPACE
    assert outputs["services"]["orchestrator-api"] == "orchestrator-api-svc"

    # --- the CRD: established, and the apiserver enforces the jobType rules ------------------------------
    established = cluster.kubectl(
        "get", "crd", crd.CRD_NAME, "-o", "jsonpath={.status.conditions[?(@.type=='Established')].status}"
    ).stdout
    assert established == "True"
    rejected = cluster.kubectl("apply", "-f", "-", input=json.dumps(INVALID_ANALYTICS), check=False)
    assert rejected.returncode != 0
    assert "scheduled needs a schedule" in rejected.stderr
    assert names(cluster, "analytics") == set()
    short = cluster.kubectl("get", "ana", "-n", NAMESPACE, check=False)
    assert short.returncode == 0, short.stderr  # the short name works

    # --- the DT solution: its namespace, quota, Roles, volume and token Secrets --------------------------
    check_solution_is_up(cluster, local_stack)

    # --- a second up changes nothing -------------------------------------------------------------------
    local_stack.up("up-no-change", "--expect-no-changes")
    local_stack.preview("--expect-no-changes")

    # --- removing the solution: refused while a service is there, done once it is gone --------------------
    check_solution_removal(cluster, local_stack)

    # --- destroy: nothing of ours is left --------------------------------------------------------------
    local_stack.destroy()
    assert names(cluster, "namespace", None) & {NAMESPACE} == set()
    assert crd.CRD_NAME not in names(cluster, "crd", None)
    assert names(cluster, "pv", None) & VOLUMES == set()
    leftovers = cluster.kubectl(
        "get", "all,pvc,secrets,configmaps,ingresses,roles,rolebindings,serviceaccounts", "-A",
        "-l", "app.kubernetes.io/part-of=dtpoc", "-o", "name",
    ).stdout.split()  # fmt: skip
    assert leftovers == []
    assert [r for r in local_stack.resources() if r["type"] != "pulumi:pulumi:Stack"] == []


def operator_solutions(cluster: LocalCluster) -> str | None:
    deployment = json.loads(
        cluster.kubectl("get", "deployment", "orchestrator-operator", "-n", NAMESPACE, "-o", "json").stdout
    )
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return next((e["value"] for e in env if e["name"] == "OPERATOR_SOLUTIONS"), None)


def check_solution_is_up(cluster: LocalCluster, local_stack: LocalStack) -> None:
    namespace = json.loads(cluster.kubectl("get", "namespace", SOLUTION_NAMESPACE, "-o", "json").stdout)
    assert namespace["metadata"]["labels"]["dtpoc.io/solution"] == SOLUTION
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    quota = json.loads(
        cluster.kubectl(
            "get", "resourcequota", f"{SOLUTION_NAMESPACE}-quota", "-n", SOLUTION_NAMESPACE, "-o", "json"
        ).stdout
    )
    hard = quota["spec"]["hard"]
    assert (hard["pods"], hard["requests.cpu"], hard["limits.memory"]) == ("20", "4", "4Gi")
    assert names(cluster, "limitrange", SOLUTION_NAMESPACE) == {f"{SOLUTION_NAMESPACE}-limits"}
    assert names(cluster, "roles", SOLUTION_NAMESPACE) == {"orchestrator-api", "orchestrator-operator"}
    assert names(cluster, "networkpolicies", SOLUTION_NAMESPACE) == {
        "default-deny-ingress",
        "modules-egress",
        "modules-ingress",
    }
    claim = json.loads(
        cluster.kubectl("get", "pvc", "orchestrator-data", "-n", SOLUTION_NAMESPACE, "-o", "json").stdout
    )
    assert claim["status"]["phase"] == "Bound"
    volume = json.loads(
        cluster.kubectl("get", "pv", f"{SOLUTION_NAMESPACE}-orchestrator-data", "-o", "json").stdout
    )
    assert volume["spec"]["hostPath"]["path"].endswith(f"/orchestrator_data/solutions/{SOLUTION}")
    token = cluster.kubectl(
        "get", "secret", f"solution-{SOLUTION}-api-token", "-n", NAMESPACE, "-o", "jsonpath={.data.token}"
    ).stdout
    assert base64.b64decode(token).decode() == local_stack.secrets[f"solutionTokens.{SOLUTION}.admin"]
    assert json.loads(operator_solutions(cluster) or "[]") == [
        {"name": SOLUTION, "namespace": SOLUTION_NAMESPACE}
    ]
    assert local_stack.outputs()["solutions"] == {SOLUTION: SOLUTION_NAMESPACE}


def check_solution_removal(cluster: LocalCluster, local_stack: LocalStack) -> None:
    service = {
        "apiVersion": crd.API_VERSION,
        "kind": crd.KIND,
        "metadata": {"name": "still-running", "namespace": SOLUTION_NAMESPACE},
        "spec": {"image": "busybox:1.36", "jobType": "ondemand", "reps": 1},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(service))
    # The stack file's entry goes; Pulumi.yaml's default (no solution) applies.
    local_stack.pulumi("config", "rm", "--stack", local_stack.stack, "solutions")
    refused = local_stack.up("up-remove-refused", check=False)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output
    assert f"solution '{SOLUTION}' cannot be removed: 1 service(s) still run in its namespace" in output, (
        output
    )
    assert force_hint(SOLUTION) in output
    # Nothing changed: the namespace and its service are there, the operator still serves it.
    assert names(cluster, "analytics", SOLUTION_NAMESPACE) == {"still-running"}
    assert names(cluster, "roles", SOLUTION_NAMESPACE) == {"orchestrator-api", "orchestrator-operator"}
    assert SOLUTION_NAMESPACE in (operator_solutions(cluster) or "")

    cluster.kubectl("delete", "analytics", "still-running", "-n", SOLUTION_NAMESPACE, "--timeout=60s")
    local_stack.up("up-remove")
    assert SOLUTION_NAMESPACE not in names(cluster, "namespace", None)
    assert f"{SOLUTION_NAMESPACE}-orchestrator-data" not in names(cluster, "pv", None)
    assert not {f"solution-{SOLUTION}-api-token", f"solution-{SOLUTION}-api-read-token"} & names(
        cluster, "secrets"
    )
    assert operator_solutions(cluster) is None
    assert "solutions" not in local_stack.outputs()
