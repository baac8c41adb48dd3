"""Persistent storage for one stateful piece: a PersistentVolumeClaim, either bound to a hostPath
PersistentVolume of our own (the seed's way: a data folder on a known node) or provisioned dynamically by a
StorageClass (any real cluster)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import pulumi
import pulumi_kubernetes as k8s

from .common import check_dns_label, child_options, labels

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_NODE_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class StorageMode(StrEnum):
    HOST_PATH = "hostPath"
    DYNAMIC = "dynamic"


@dataclass(frozen=True)
class StorageArgs:
    """`claim_name` is the PVC's name (workloads mount it; the operator passes it on to module pods).

    hostPath mode: a PV named `<namespace>-<claim_name>` (PVs are cluster-wide) with its folder at
    `<data_root>/<sub_dir>`, created if missing; with `node_affinity_key` the PV is pinned to the matching
    nodes, as the seed's `persistence.nodeAffinity`. `storage_class` is then the name PV and PVC agree on.
    dynamic mode: the claim asks `storage_class` (empty: the cluster's default class) for a volume.
    """

    namespace: str
    claim_name: str
    size: str = "10Gi"
    mode: StorageMode = StorageMode.HOST_PATH
    data_root: str = "/var/lib/dtpoc"
    sub_dir: str | None = None
    storage_class: str = ""
    node_affinity_key: str | None = None
    node_affinity_operator: str = "In"
    node_affinity_values: Sequence[str] = field(default_factory=tuple)
    access_mode: str = "ReadWriteOnce"
    component: str = "storage"
    extra_labels: Mapping[str, str] = field(default_factory=dict)  # on the PV and the PVC

    def __post_init__(self) -> None:
        check_dns_label(self.claim_name, "StorageArgs.claim_name")
        object.__setattr__(self, "mode", StorageMode(self.mode))
        if not _QUANTITY.match(self.size):
            raise ValueError(
                f"StorageArgs.size must be a Kubernetes quantity such as '10Gi', got {self.size!r}"
            )
        if self.access_mode not in ("ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod", "ReadOnlyMany"):
            raise ValueError(f"StorageArgs.access_mode: unknown access mode {self.access_mode!r}")
        if self.mode is StorageMode.HOST_PATH:
            if not self.data_root.startswith("/"):
                raise ValueError(f"StorageArgs.data_root must be an absolute path, got {self.data_root!r}")
            if not self.storage_class:
                raise ValueError(
                    "StorageArgs.storage_class must name the class PV and PVC share in hostPath mode"
                )
        if self.node_affinity_key:
            if self.mode is not StorageMode.HOST_PATH:
                raise ValueError("StorageArgs.node_affinity_* only applies to hostPath mode")
            if self.node_affinity_operator not in _NODE_OPERATORS:
                raise ValueError(
                    f"StorageArgs.node_affinity_operator must be one of {_NODE_OPERATORS}, "
                    f"got {self.node_affinity_operator!r}"
                )
            if self.node_affinity_operator in ("In", "NotIn") and not self.node_affinity_values:
                raise ValueError(
                    f"StorageArgs.node_affinity_values: operator {self.node_affinity_operator} needs values"
                )

    @property
    def host_path(self) -> str:
        return f"{self.data_root.rstrip('/')}/{self.sub_dir or self.claim_name}"

    @property
    def volume_name(self) -> str:
        return f"{self.namespace}-{self.claim_name}"


class Storage(pulumi.ComponentResource):
    """A PVC (and in hostPath mode its PV). Public outputs: `claim_name`, `volume_name` (hostPath only)."""

    claim_name: pulumi.Output[str]
    volume_name: pulumi.Output[str] | None
    claim: k8s.core.v1.PersistentVolumeClaim
    volume: k8s.core.v1.PersistentVolume | None

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dtpoc:storage:Storage", name, None, opts)
        child = child_options(self, opts)
        lbls = {**labels(args.claim_name, args.component), **args.extra_labels}
        resources = k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": args.size})

        self.volume = None
        self.volume_name = None
        if args.mode is StorageMode.HOST_PATH:
            affinity = None
            if args.node_affinity_key:
                affinity = k8s.core.v1.VolumeNodeAffinityArgs(
                    required=k8s.core.v1.NodeSelectorArgs(
                        node_selector_terms=[
                            k8s.core.v1.NodeSelectorTermArgs(
                                match_expressions=[
                                    k8s.core.v1.NodeSelectorRequirementArgs(
                                        key=args.node_affinity_key,
                                        operator=args.node_affinity_operator,
                                        values=list(args.node_affinity_values) or None,
                                    )
                                ]
                            )
                        ]
                    )
                )
            self.volume = k8s.core.v1.PersistentVolume(
                f"{name}-pv",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=args.volume_name, labels=lbls),
                spec=k8s.core.v1.PersistentVolumeSpecArgs(
                    capacity={"storage": args.size},
                    volume_mode="Filesystem",
                    access_modes=[args.access_mode],
                    # Deleting the stack keeps the data folder (as the seed did).
                    persistent_volume_reclaim_policy="Retain",
                    storage_class_name=args.storage_class,
                    host_path=k8s.core.v1.HostPathVolumeSourceArgs(
                        path=args.host_path, type="DirectoryOrCreate"
                    ),
                    node_affinity=affinity,
                ),
                opts=child,
            )
            self.volume_name = self.volume.metadata.name

        self.claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-pvc",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.claim_name, namespace=args.namespace, labels=lbls),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=[args.access_mode],
                resources=resources,
                storage_class_name=args.storage_class or None,
                volume_name=self.volume_name,
            ),
            opts=child,
        )
        self.claim_name = self.claim.metadata.name
        self.register_outputs({"claim_name": self.claim_name, "volume_name": self.volume_name})
