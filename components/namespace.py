"""What the platform's namespace allows: a ResourceQuota (pods, CPU and memory limits, no NodePort or
LoadBalancer Services) and a LimitRange (defaults for a container that names no resources). Module pods are
made by the operator from users' launches: the quota bounds what any number of them can take together.

The namespace's Pod Security level is set by labels on the Namespace itself (platform.py): `baseline`
enforced (the database images start as root to own their volumes), `restricted` warned and audited; the
operator's run pods and our own services meet `restricted`."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .common import check_dns_label, child_options, meta

# Pod Security Admission labels of the namespace.
POD_SECURITY_LABELS = {
    "pod-security.kubernetes.io/enforce": "baseline",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}
# A DT solution's namespace holds the operator's module pods (which meet `restricted`) and no database
# image that starts as root: `restricted` is enforced.
RESTRICTED_POD_SECURITY_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}


@dataclass(frozen=True)
class NamespaceGuardsArgs:
    namespace: str
    pods: int = 100
    cpu_limits: str = "64"
    memory_limits: str = "128Gi"
    # Also bound the sum of requests (a DT solution's namespace: what its modules may reserve on the nodes).
    cpu_requests: str | None = None
    memory_requests: str | None = None
    # For a container that names none (ours and the operator's all do).
    default_cpu: str = "500m"
    default_memory: str = "512Mi"
    default_cpu_request: str = "50m"
    default_memory_request: str = "64Mi"

    def __post_init__(self) -> None:
        check_dns_label(self.namespace, "NamespaceGuardsArgs.namespace")
        if self.pods < 1:
            raise ValueError(f"NamespaceGuardsArgs.pods must be at least 1, got {self.pods}")


class NamespaceGuards(pulumi.ComponentResource):
    """ResourceQuota `<namespace>-quota` and LimitRange `<namespace>-limits`."""

    def __init__(
        self, name: str, args: NamespaceGuardsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dtpoc:namespace:NamespaceGuards", name, None, opts)
        child = child_options(self, opts)
        ns = args.namespace
        self.quota = k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=meta(f"{ns}-quota", ns, "namespace"),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(
                hard={
                    "pods": str(args.pods),
                    "limits.cpu": args.cpu_limits,
                    "limits.memory": args.memory_limits,
                    **({"requests.cpu": args.cpu_requests} if args.cpu_requests else {}),
                    **({"requests.memory": args.memory_requests} if args.memory_requests else {}),
                    # Nothing in the namespace is published on the nodes' ports or a cloud load balancer.
                    "services.nodeports": "0",
                    "services.loadbalancers": "0",
                }
            ),
            opts=child,
        )
        self.limits = k8s.core.v1.LimitRange(
            f"{name}-limits",
            metadata=meta(f"{ns}-limits", ns, "namespace"),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container",
                        default={"cpu": args.default_cpu, "memory": args.default_memory},
                        default_request={
                            "cpu": args.default_cpu_request,
                            "memory": args.default_memory_request,
                        },
                    )
                ]
            ),
            opts=child,
        )
        self.register_outputs({})
