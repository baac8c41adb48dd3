"""Storage: a hostPath PV + PVC bound by name (the seed's way), or a dynamic PVC by storage class."""

from __future__ import annotations

import pulumi
import pytest

from components.storage import Storage, StorageArgs, StorageMode

from .harness import run_program


def make(args: StorageArgs):
    return run_program(lambda: Storage("data", args), resolve_result=lambda s: {"claim": s.claim_name})


def test_host_path_volume_bound_to_its_claim_with_node_affinity() -> None:
    run = make(
        StorageArgs(
            namespace="dtpoc",
            claim_name="mongodb-data",
            size="5Gi",
            data_root="/srv/dtpoc/",
            sub_dir="mongodb_data",
            storage_class="dtpoc-hostpath",
            node_affinity_key="kubernetes.io/hostname",
            node_affinity_values=("docker-desktop",),
        )
    )
    pv = run.one("PersistentVolume", "dtpoc-mongodb-data")
    pvc = run.one("PersistentVolumeClaim", "mongodb-data")
    assert "namespace" not in pv.metadata  # cluster-scoped
    assert pv.inputs["spec"]["hostPath"] == {"path": "/srv/dtpoc/mongodb_data", "type": "DirectoryOrCreate"}
    assert pv.inputs["spec"]["capacity"] == {"storage": "5Gi"}
    assert pv.inputs["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv.inputs["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pv.inputs["spec"]["nodeAffinity"] == {
        "required": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["docker-desktop"]}
                    ]
                }
            ]
        }
    }
    assert pvc.metadata["namespace"] == "dtpoc"
    assert pvc.inputs["spec"]["volumeName"] == "dtpoc-mongodb-data"
    assert pvc.inputs["spec"]["storageClassName"] == pv.inputs["spec"]["storageClassName"] == "dtpoc-hostpath"
    assert pvc.inputs["spec"]["resources"] == {"requests": {"storage": "5Gi"}}
    assert run.outputs["claim"] == "mongodb-data"
    assert {r.typ for r in run.resources} == {
        "dtpoc:storage:Storage",
        "kubernetes:core/v1:PersistentVolume",
        "kubernetes:core/v1:PersistentVolumeClaim",
    }


def test_host_path_without_affinity_and_default_sub_dir() -> None:
    run = make(StorageArgs(namespace="ns1", claim_name="x-data", storage_class="manual"))
    pv = run.one("PersistentVolume", "ns1-x-data")
    assert pv.inputs["spec"]["hostPath"]["path"] == "/var/lib/dtpoc/x-data"
    assert "nodeAffinity" not in pv.inputs["spec"]


@pytest.mark.parametrize("storage_class", ["fast-ssd", ""])
def test_dynamic_claim_has_no_volume_of_ours(storage_class: str) -> None:
    run = make(
        StorageArgs(
            namespace="dtpoc",
            claim_name="influxdb-data",
            mode=StorageMode.DYNAMIC,
            storage_class=storage_class,
        )
    )
    assert run.kinds("PersistentVolume") == []
    pvc = run.one("PersistentVolumeClaim", "influxdb-data")
    assert "volumeName" not in pvc.inputs["spec"]
    if storage_class:
        assert pvc.inputs["spec"]["storageClassName"] == storage_class
    else:  # the cluster's default class
        assert "storageClassName" not in pvc.inputs["spec"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": "ten gigs"}, "quantity"),
        ({"claim_name": "Bad_Name"}, "DNS label"),
        ({"data_root": "relative/dir"}, "absolute path"),
        ({"storage_class": ""}, "storage_class"),
        ({"node_affinity_key": "kubernetes.io/hostname"}, "needs values"),
        (
            {"node_affinity_key": "k", "node_affinity_operator": "Near", "node_affinity_values": ("a",)},
            "operator",
        ),
        ({"mode": "dynamic", "node_affinity_key": "k", "node_affinity_values": ("a",)}, "hostPath mode"),
        ({"mode": "cloud"}, "cloud"),
        ({"access_mode": "ReadWriteSometimes"}, "access mode"),
    ],
)
def test_impossible_storage_args_fail_early(kwargs: dict, message: str) -> None:
    base = {"namespace": "dtpoc", "claim_name": "data", "storage_class": "manual"}
    with pytest.raises(ValueError, match=message):
        StorageArgs(**{**base, **kwargs})


def test_storage_outputs_are_attributes() -> None:
    run = run_program(
        lambda: Storage("d", StorageArgs(namespace="n", claim_name="c", storage_class="manual")),
        resolve_result=lambda s: {"claim": s.claim_name, "volume": s.volume_name},
    )
    assert run.outputs == {"claim": "c", "volume": "n-c"}
    assert isinstance(run.result.claim_name, pulumi.Output)
