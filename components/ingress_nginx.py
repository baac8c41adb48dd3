"""ingress-nginx from its Helm chart (the seed's dependency, one controller replica), pinned to a release
with the fix for CVE-2025-1974 (admission webhook RCE; fixed in controller v1.12.1 / v1.11.5, charts 4.12.1 /
4.11.5; the seed's 4.10.1 has it). Module pods cannot reach the webhook anyway: their egress is DNS only
(network_policy.ModuleEgress). Optional per stack: clusters with a controller of their own, or none, skip
it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .common import check_dns_label, child_options

CHART = "ingress-nginx"
CHART_VERSION = "4.12.1"
REPOSITORY = "https://kubernetes.github.io/ingress-nginx"
# The first chart of each release line with the fix for CVE-2025-1974 (and the CVEs published with it).
FIXED_RELEASES = {(4, 11): (4, 11, 5), (4, 12): (4, 12, 1)}


def check_chart_version(version: str) -> str:
    """Refuse a chart of ingress-nginx without the CVE-2025-1974 fix."""
    try:
        parts = tuple(int(x) for x in version.split("."))
    except ValueError:
        raise ValueError(f"ingress-nginx chart version must be like 4.12.1, got {version!r}") from None
    if len(parts) != 3:
        raise ValueError(f"ingress-nginx chart version must be like 4.12.1, got {version!r}")
    fixed = FIXED_RELEASES.get(parts[:2])
    if parts < (4, 11, 0) or (fixed is not None and parts < fixed):
        raise ValueError(
            f"ingress-nginx chart {version} carries CVE-2025-1974 (admission webhook RCE); "
            "use 4.12.1 or later (or 4.11.5 on the 4.11 line)"
        )
    return version


@dataclass(frozen=True)
class IngressNginxArgs:
    """The controller runs in its own namespace (`namespace`, made by Helm) and serves `ingress_class`."""

    namespace: str = "ingress-nginx"
    ingress_class: str = "nginx"
    replicas: int = 1
    chart_version: str = CHART_VERSION
    service_type: str = "LoadBalancer"

    def __post_init__(self) -> None:
        check_chart_version(self.chart_version)
        check_dns_label(self.namespace, "IngressNginxArgs.namespace")
        check_dns_label(self.ingress_class, "IngressNginxArgs.ingress_class")
        if not 1 <= self.replicas <= 10:
            raise ValueError(f"IngressNginxArgs.replicas must be 1..10, got {self.replicas}")
        if self.service_type not in ("LoadBalancer", "NodePort", "ClusterIP"):
            raise ValueError(f"IngressNginxArgs.service_type: unknown Service type {self.service_type!r}")


class IngressNginx(pulumi.ComponentResource):
    """A Helm release `ingress-nginx`. Outputs: `ingress_class`, `release_status`."""

    ingress_class: str
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: IngressNginxArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dtpoc:ingress:IngressNginx", name, None, opts)
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name="ingress-nginx",
            chart=CHART,
            version=args.chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=REPOSITORY),
            namespace=args.namespace,
            create_namespace=True,
            values={
                "controller": {
                    "replicaCount": args.replicas,
                    "ingressClassResource": {"name": args.ingress_class, "enabled": True},
                    "service": {"type": args.service_type},
                }
            },
            opts=child_options(self, opts),
        )
        self.ingress_class = args.ingress_class
        self.register_outputs({"ingress_class": self.ingress_class, "release_status": self.release.status})
