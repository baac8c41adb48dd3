"""NetworkPolicies: who may open connections to which pods of the platform (`networkPolicies: true`).

Each ingress policy protects the pods of one app and admits, on one port, only the pods whose labels match
one of its client label sets (in the same namespace), or anyone when `clients` is None (a server reached
through the ingress controller, whose namespace differs between clusters). Client label sets are platform
selectors (`selector_labels`), which no module pod can match.

Module pods (untrusted code) get a default-deny egress policy of their own (`ModuleEgress`): port 53 for
name lookups and the networks a stack names (`moduleEgressCidrs`), nothing else: no database, no API
server, no other pod, no admission webhook of the ingress controller. Traffic a policy does not name is
refused once the policy exists; pods no policy selects are unaffected.

A DT solution's namespace (solution.py) holds module pods only: there every pod's ingress is denied
(`deny_ingress`) but persistent modules' from the ingress controller's namespace (`ModuleIngress`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from services.shared.crd import JobType
from services.shared.names import MANAGED_BY_OPERATOR, PART_OF

from .common import check_dns_label, check_port, child_options, meta, selector_labels

# The pods of Analytics modules, as the operator labels them (services/operator/workloads.py): what the
# module policies select. No platform selector matches them (they never carry PLATFORM_APP_LABEL).
MODULE_POD_LABELS = {
    "app.kubernetes.io/managed-by": MANAGED_BY_OPERATOR,
    "app.kubernetes.io/part-of": PART_OF,
}
# Persistent modules' pods (the only modules with a Service and an Ingress).
PERSISTENT_MODULE_POD_LABELS = {**MODULE_POD_LABELS, "app.kubernetes.io/component": JobType.PERSISTENT.value}
DENY_INGRESS_POLICY = "default-deny-ingress"
# The label the apiserver sets on every namespace (its name): how a policy names another namespace.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class IngressRule:
    """Pods of `app` accept TCP on `port` from pods matching any of `clients` (None: from anywhere)."""

    app: str
    port: int
    clients: Sequence[Mapping[str, str]] | None

    def __post_init__(self) -> None:
        check_dns_label(self.app, "IngressRule.app")
        check_port(self.port, "IngressRule.port")
        if self.clients is not None and (not self.clients or not all(self.clients)):
            raise ValueError(f"IngressRule {self.app}: clients must be non-empty label sets, or None")

    @property
    def policy_name(self) -> str:
        return f"{self.app}-ingress"

    def spec(self) -> k8s.networking.v1.NetworkPolicySpecArgs:
        peers = None
        if self.clients is not None:
            peers = [
                k8s.networking.v1.NetworkPolicyPeerArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(labels))
                )
                for labels in self.clients
            ]
        return k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector_labels(self.app)),
            policy_types=["Ingress"],
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=peers,
                    ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=self.port, protocol="TCP")],
                )
            ],
        )


@dataclass(frozen=True)
class ModuleEgress:
    """Module pods (`pod_labels`, as the operator labels them) may send only DNS (UDP and TCP 53, to any
    address: the cluster's resolver runs as a pod in one cluster and on the node in another) and traffic
    to `cidrs`."""

    pod_labels: Mapping[str, str]
    cidrs: Sequence[str] = ()
    policy_name: str = "modules-egress"

    def __post_init__(self) -> None:
        if not self.pod_labels:
            raise ValueError("ModuleEgress.pod_labels must not be empty")
        for cidr in self.cidrs:
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                raise ValueError(f"ModuleEgress: {cidr!r} is not a network such as 203.0.113.0/24") from None

    def spec(self) -> k8s.networking.v1.NetworkPolicySpecArgs:
        rules = [
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                ports=[
                    k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol="UDP"),
                    k8s.networking.v1.NetworkPolicyPortArgs(port=53, protocol="TCP"),
                ]
            )
        ]
        if self.cidrs:
            rules.append(
                k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                    to=[
                        k8s.networking.v1.NetworkPolicyPeerArgs(
                            ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr)
                        )
                        for cidr in self.cidrs
                    ]
                )
            )
        return k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(self.pod_labels)),
            policy_types=["Egress"],
            egress=rules,
        )


@dataclass(frozen=True)
class ModuleIngress:
    """Module pods matching `pod_labels` accept connections, on any port (a persistent module names its
    own), from the pods of `controller_namespace` (the ingress controller's) only."""

    pod_labels: Mapping[str, str]
    controller_namespace: str
    policy_name: str = "modules-ingress"

    def __post_init__(self) -> None:
        if not self.pod_labels:
            raise ValueError("ModuleIngress.pod_labels must not be empty")
        check_dns_label(self.controller_namespace, "ModuleIngress.controller_namespace")

    def spec(self) -> k8s.networking.v1.NetworkPolicySpecArgs:
        controller = k8s.meta.v1.LabelSelectorArgs(
            match_labels={NAMESPACE_NAME_LABEL: self.controller_namespace}
        )
        return k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(self.pod_labels)),
            policy_types=["Ingress"],
            ingress=[
                k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                    from_=[k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=controller)]
                )
            ],
        )


def deny_ingress_spec() -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Every pod of the namespace, no ingress rule: nothing may connect but what another policy admits."""
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress"]
    )


def app_clients(*apps: str) -> list[dict[str, str]]:
    """Client label sets of the platform's own apps (their Deployments' selector labels)."""
    return [selector_labels(app) for app in apps]


@dataclass(frozen=True)
class NetworkPoliciesArgs:
    namespace: str
    rules: Sequence[IngressRule]
    module_egress: ModuleEgress | None = None
    deny_ingress: bool = False  # policy `default-deny-ingress` over every pod of the namespace
    module_ingress: ModuleIngress | None = None

    def __post_init__(self) -> None:
        apps = [r.app for r in self.rules]
        if len(set(apps)) != len(apps):
            raise ValueError(f"NetworkPoliciesArgs: one rule per app, got {apps}")


class NetworkPolicies(pulumi.ComponentResource):
    """One NetworkPolicy `<app>-ingress` per rule, `modules-egress`, and when asked `default-deny-ingress`
    and `modules-ingress`. Output: `policy_names`."""

    policy_names: list[str]

    def __init__(
        self, name: str, args: NetworkPoliciesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dtpoc:network_policy:NetworkPolicies", name, None, opts)
        child = child_options(self, opts)
        self.policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{rule.app}",
                metadata=meta(rule.policy_name, args.namespace, "network-policy", app=rule.app),
                spec=rule.spec(),
                opts=child,
            )
            for rule in args.rules
        ]
        self.policy_names = [r.policy_name for r in args.rules]
        if args.module_egress is not None:
            egress = args.module_egress
            self.policies.append(
                k8s.networking.v1.NetworkPolicy(
                    f"{name}-modules-egress",
                    metadata=meta(egress.policy_name, args.namespace, "network-policy", app="modules"),
                    spec=egress.spec(),
                    opts=child,
                )
            )
            self.policy_names.append(egress.policy_name)
        if args.deny_ingress:
            self._add(f"{name}-deny-ingress", DENY_INGRESS_POLICY, "all", deny_ingress_spec(), args, child)
        if args.module_ingress is not None:
            module_ingress = args.module_ingress
            self._add(
                f"{name}-modules-ingress",
                module_ingress.policy_name,
                "modules",
                module_ingress.spec(),
                args,
                child,
            )
        self.register_outputs({"policy_names": self.policy_names})

    def _add(
        self,
        resource_name: str,
        policy_name: str,
        app: str,
        spec: k8s.networking.v1.NetworkPolicySpecArgs,
        args: NetworkPoliciesArgs,
        opts: pulumi.ResourceOptions,
    ) -> None:
        self.policies.append(
            k8s.networking.v1.NetworkPolicy(
                resource_name,
                metadata=meta(policy_name, args.namespace, "network-policy", app=app),
                spec=spec,
                opts=opts,
            )
        )
        self.policy_names.append(policy_name)
