"""The real kubelet node of the local environment: containers run for real, inside the instance's own
network namespace, beside kwok's simulated nodes.

What is checked here is what the platform relies on from a node: an Indexed Job as the operator builds
them (non-root, read-only root filesystem, no capabilities, a hostPath volume with `subPath`, `$(VAR)`
expansion), Service DNS and ClusterIPs from pods, `kubectl logs`, and NetworkPolicies enforced.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest

from localdev.netns import NODE_IP
from localdev.node import NODE_LABEL, NODE_NAME
from tests.conftest import RealCluster
from tests.polling import eventually

pytestmark = [pytest.mark.node, pytest.mark.slow]


@pytest.fixture
def ns(real_cluster: RealCluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    real_cluster.kubectl("create", "namespace", name)
    yield name
    real_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def apply(real_cluster: RealCluster, *objects: dict) -> None:
    real_cluster.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
    )


def restricted(image: str, command: list[str]) -> dict:
    """A container as the operator makes module containers: uid 10001, nothing privileged."""
    return {
        "name": "main",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


# Debian's static busybox: its wget (glibc's resolver and NSS, statically linked) crashes, so names are
# resolved with nslookup and HTTP is spoken over nc.
BB = "/bin/busybox"


def http_get(host: str, port: int, attempts: int) -> str:
    """A shell line: resolve `host`, GET /hostname from it, retried; prints "reached" or "blocked"."""
    return (
        f"for i in $({BB} seq {attempts}); do "
        f"ip=$({BB} nslookup {host} | {BB} awk '/^Address: /{{a=$2}} END{{print a}}'); "
        f'[ -n "$ip" ] && printf \'GET /hostname HTTP/1.0\\r\\n\\r\\n\' | {BB} nc -w 2 "$ip" {port} 2>/dev/null '
        f"| {BB} grep -q '200 OK' && echo reached && exit 0; {BB} sleep 1; done; echo blocked"
    )


def pod_phase(real_cluster: RealCluster, ns: str, name: str) -> str:
    return real_cluster.kubectl(
        "get", "pod", name, "-n", ns, "-o", "jsonpath={.status.phase}", check=False
    ).stdout


def test_real_node_joins_beside_simulated_ones(real_cluster: RealCluster) -> None:
    nodes = json.loads(real_cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    by_name = {n["metadata"]["name"]: n for n in nodes}
    real = by_name.pop(NODE_NAME)
    assert real["metadata"]["labels"][NODE_LABEL] == "real"
    assert real["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    assert {a["address"] for a in real["status"]["addresses"] if a["type"] == "InternalIP"} == {NODE_IP}
    assert by_name, "kwok's simulated nodes are still there"
    for simulated in by_name.values():
        ready = {c["type"]: c["status"] for c in simulated["status"]["conditions"]}["Ready"]
        assert ready == "True"  # kwok keeps managing its own and leaves the real one alone
        assert "containerd" not in simulated["status"]["nodeInfo"].get("containerRuntimeVersion", "")


def test_indexed_job_runs_for_real_with_subpath_and_env_expansion(real_cluster: RealCluster, ns: str) -> None:
    data = real_cluster.state_dir / f"data-{ns}"
    (data / "runs" / "0").mkdir(parents=True)
    (data / "runs" / "1").mkdir(parents=True)
    os.chown(data, 10001, 10001)
    for run in (0, 1):
        os.chown(data / "runs" / str(run), 10001, 10001)
    container = restricted(
        real_cluster.busybox(),
        [
            "/bin/busybox",
            "sh",
            "-c",
            'echo "{\\"run\\": \\"$RUN_ID\\", \\"uid\\": $(/bin/busybox id -u)}" > /output/out.json',
        ],
    )
    container["env"] = [
        {
            "name": "RUN_INDEX",
            "valueFrom": {
                "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
            },
        },
        {"name": "RUN_ID", "value": "svc-$(RUN_INDEX)"},
    ]
    container["volumeMounts"] = [{"name": "data", "mountPath": "/output", "subPathExpr": "runs/$(RUN_INDEX)"}]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "runs", "namespace": ns},
        "spec": {
            "completions": 2,
            "parallelism": 2,
            "completionMode": "Indexed",
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": [{"name": "data", "hostPath": {"path": str(data), "type": "Directory"}}],
                }
            },
        },
    }
    apply(real_cluster, job)
    real_cluster.kubectl("wait", "--for=condition=Complete", "job/runs", "-n", ns, "--timeout=120s")
    placed = real_cluster.kubectl("get", "pods", "-n", ns, "-o", "jsonpath={.items[*].spec.nodeName}").stdout
    assert placed.split() == [NODE_NAME, NODE_NAME]  # never "completed" on a simulated node
    for run in (0, 1):
        out = data / "runs" / str(run) / "out.json"
        assert json.loads(out.read_text()) == {"run": f"svc-{run}", "uid": 10001}
        assert out.stat().st_uid == 10001  # written by the container's user, through the subPath mount


def test_service_dns_clusterip_and_logs(real_cluster: RealCluster, ns: str) -> None:
    image = real_cluster.busybox()
    server = restricted(image, ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/etc"])
    apply(
        real_cluster,
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
         "spec": {"containers": [server]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    )  # fmt: skip
    real_cluster.kubectl("wait", "--for=condition=Ready", "pod/web", "-n", ns, "--timeout=120s")
    client = restricted(image, [BB, "sh", "-c", http_get(f"web.{ns}.svc.cluster.local", 80, 20)])
    apply(
        real_cluster,
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "namespace": ns},
         "spec": {"restartPolicy": "Never", "containers": [client]}},
    )  # fmt: skip
    eventually(lambda: pod_phase(real_cluster, ns, "client") == "Succeeded", 90, "the client pod")
    logs = real_cluster.kubectl("logs", "client", "-n", ns).stdout
    assert logs.strip() == "reached"  # `kubectl logs` goes through the apiserver to the real kubelet


def test_network_policy_is_enforced(real_cluster: RealCluster, ns: str) -> None:
    image = real_cluster.busybox()
    server = restricted(image, ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/etc"])
    apply(
        real_cluster,
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db", "namespace": ns, "labels": {"app": "db"}},
         "spec": {"containers": [server]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": ns},
         "spec": {"selector": {"app": "db"}, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "db", "namespace": ns},
         "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "allowed"}}}]}]}},
    )  # fmt: skip
    real_cluster.kubectl("wait", "--for=condition=Ready", "pod/db", "-n", ns, "--timeout=120s")

    def probe(name: str, role: str) -> str:
        command = http_get(f"db.{ns}.svc.cluster.local", 80, 15)
        apply(
            real_cluster,
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": name, "namespace": ns, "labels": {"role": role}},
             "spec": {"restartPolicy": "Never", "containers": [restricted(image, ["/bin/busybox", "sh", "-c", command])]}},
        )  # fmt: skip
        eventually(lambda: pod_phase(real_cluster, ns, name) == "Succeeded", 120, f"pod {name}")
        return real_cluster.kubectl("logs", name, "-n", ns).stdout.strip()

    assert probe("allowed", "allowed") == "reached"
    assert probe("other", "other") == "blocked"
