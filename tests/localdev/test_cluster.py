"""The local cluster behaves like a cluster: workloads become available, Jobs complete, CRD schemas hold."""

from __future__ import annotations

import json

from localdev.cluster import LocalCluster


def apply(cluster: LocalCluster, namespace: str, manifest: dict) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def pod_template(app: str) -> dict:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["true"]}]},
    }


def test_deployment_reaches_its_available_replicas(cluster: LocalCluster, namespace: str) -> None:
    apply(
        cluster,
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": pod_template("web"),
            },
        },
    )
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Available", "deployment/web", "--timeout=90s")
    available = cluster.kubectl(
        "get", "-n", namespace, "deployment/web", "-o", "jsonpath={.status.availableReplicas}"
    )
    assert available.stdout == "2"


def test_job_with_three_completions_succeeds_three_times(cluster: LocalCluster, namespace: str) -> None:
    template = pod_template("batch")
    template["spec"]["restartPolicy"] = "Never"
    apply(
        cluster,
        namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "three"},
            "spec": {"completions": 3, "parallelism": 2, "completionMode": "Indexed", "template": template},
        },
    )
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Complete", "job/three", "--timeout=90s")
    succeeded = cluster.kubectl("get", "-n", namespace, "job/three", "-o", "jsonpath={.status.succeeded}")
    assert succeeded.stdout == "3"


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.smoke.example.com"},
    "spec": {
        "group": "smoke.example.com",
        "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {"size": {"type": "integer", "minimum": 1, "maximum": 10}},
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_crd_schema_is_enforced_by_the_apiserver(cluster: LocalCluster, namespace: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(WIDGET_CRD))
    cluster.kubectl("wait", "--for=condition=Established", "crd/widgets.smoke.example.com", "--timeout=60s")

    def widget(name: str, spec: dict) -> dict:
        return {
            "apiVersion": "smoke.example.com/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": spec,
        }

    apply(cluster, namespace, widget("good", {"size": 3}))
    assert cluster.kubectl("get", "-n", namespace, "widget/good", "-o", "jsonpath={.spec.size}").stdout == "3"

    for name, spec in [("too-big", {"size": 11}), ("missing", {})]:
        rejected = cluster.kubectl(
            "apply", "-n", namespace, "-f", "-", input=json.dumps(widget(name, spec)), check=False
        )
        assert rejected.returncode != 0
        assert "Invalid value" in rejected.stderr or "Required value" in rejected.stderr
    absent = cluster.kubectl("get", "-n", namespace, "widget/too-big", check=False)
    assert absent.returncode != 0 and "NotFound" in absent.stderr
