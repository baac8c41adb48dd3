"""A ServiceAccount with a namespaced Role and RoleBinding: least privilege spelled out rule by rule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .common import check_dns_label, child_options, meta

VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class Rule:
    """One PolicyRule. Wildcards are refused: every group, resource and verb is named."""

    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.api_groups or not self.resources or not self.verbs:
            raise ValueError(f"Rule needs api groups, resources and verbs: {self}")
        for value in (*self.api_groups, *self.resources, *self.verbs):
            if "*" in value:
                raise ValueError(f"Rule: wildcards are not allowed ({value!r} in {self})")
        unknown = set(self.verbs) - VERBS
        if unknown:
            raise ValueError(f"Rule: unknown verbs {sorted(unknown)}")

    def args(self) -> k8s.rbac.v1.PolicyRuleArgs:
        return k8s.rbac.v1.PolicyRuleArgs(
            api_groups=list(self.api_groups), resources=list(self.resources), verbs=list(self.verbs)
        )


@dataclass(frozen=True)
class ServiceAccountRbacArgs:
    """ServiceAccount, Role and RoleBinding all named `name`. The account's token is not mounted by default;
    pods that call the Kubernetes API opt in on their pod spec."""

    namespace: str
    name: str
    rules: Sequence[Rule]
    component: str = "control-plane"
    app: str | None = None

    def __post_init__(self) -> None:
        check_dns_label(self.name, "ServiceAccountRbacArgs.name")
        if not self.rules:
            raise ValueError("ServiceAccountRbacArgs.rules must not be empty")


class ServiceAccountRbac(pulumi.ComponentResource):
    """Output: `service_account_name`."""

    service_account_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ServiceAccountRbacArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dtpoc:rbac:ServiceAccountRbac", name, None, opts)
        child = child_options(self, opts)
        app = args.app or args.name
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=meta(args.name, args.namespace, args.component, app=app),
            automount_service_account_token=False,
            opts=child,
        )
        self.role = k8s.rbac.v1.Role(
            f"{name}-role",
            metadata=meta(args.name, args.namespace, args.component, app=app),
            rules=[r.args() for r in args.rules],
            opts=child,
        )
        self.role_binding = k8s.rbac.v1.RoleBinding(
            f"{name}-binding",
            metadata=meta(args.name, args.namespace, args.component, app=app),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=self.role.metadata.name
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    kind="ServiceAccount", name=self.service_account.metadata.name, namespace=args.namespace
                )
            ],
            opts=child,
        )
        self.service_account_name = self.service_account.metadata.name
        self.register_outputs({"service_account_name": self.service_account_name})
