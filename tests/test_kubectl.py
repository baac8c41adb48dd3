"""The shared kubectl readers against the real local apiserver: NotFound is "not there", and every other
failure raises (the post-destroy and wait-deleted checks rely on it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from localdev.cluster import LocalCluster

from .kubectl import KubectlFailed, get_object, object_names


def test_an_object_that_exists_and_one_that_does_not(cluster: LocalCluster, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "present", "-n", namespace, "--from-literal=k=v")
    found = get_object(cluster.kubectl, "configmap", "present", "-n", namespace)
    assert found is not None and found["data"] == {"k": "v"}
    assert get_object(cluster.kubectl, "configmap", "absent", "-n", namespace) is None
    assert "present" in object_names(cluster.kubectl, "configmaps", "-n", namespace)


def test_an_unknown_kind_raises(cluster: LocalCluster, namespace: str) -> None:
    with pytest.raises(KubectlFailed, match="doesn't have a resource type"):
        get_object(cluster.kubectl, "nosuchkinds", "x", "-n", namespace)
    with pytest.raises(KubectlFailed, match="doesn't have a resource type"):
        object_names(cluster.kubectl, "nosuchkinds", "-n", namespace)


def test_an_apiserver_that_does_not_answer_raises(cluster: LocalCluster, tmp_path: Path) -> None:
    """kubectl pointed at a closed port: the object is not "gone", the read failed."""
    config = cluster.kubeconfig.read_text()
    server = next(line.split("server:")[1].strip() for line in config.splitlines() if "server:" in line)
    away = tmp_path / "kubeconfig"
    away.write_text(config.replace(server, "https://127.0.0.1:9"))

    def kubectl(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(cluster.tools.kubectl), f"--kubeconfig={away}", "--request-timeout=5s", *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    with pytest.raises(KubectlFailed, match="refused"):
        get_object(kubectl, "namespace", "default")
    with pytest.raises(KubectlFailed, match="refused"):
        object_names(kubectl, "namespaces")
