"""A ServiceAccount with a namespaced Role and RoleBinding: least privilege spelled out rule by rule; and a
Role with its RoleBinding granting an existing ServiceAccount the same in another namespace (`RoleGrant`:
the operator's and the API's rights in a DT solution's namespace)."""

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
        self.role, self.role_binding = role_and_binding(
            name,
            meta(args.name, args.namespace, args.component, app=app),
            args.rules,
            subject_name=self.service_account.metadata.name,
            subject_namespace=args.namespace,
            opts=child,
        )
        self.service_account_name = self.service_account.metadata.name
        self.register_outputs({"service_account_name": self.service_account_name})


def role_and_binding(
    resource_name: str,
    metadata: k8s.meta.v1.ObjectMetaArgs,
    rules: Sequence[Rule],
    subject_name: pulumi.Input[str],
    subject_namespace: str,
    opts: pulumi.ResourceOptions,
) -> tuple[k8s.rbac.v1.Role, k8s.rbac.v1.RoleBinding]:
    """Role `<metadata.name>` with `rules`, bound to ServiceAccount `subject_name` of `subject_namespace`."""
    role = k8s.rbac.v1.Role(
        f"{resource_name}-role", metadata=metadata, rules=[r.args() for r in rules], opts=opts
    )
    binding = k8s.rbac.v1.RoleBinding(
        f"{resource_name}-binding",
        metadata=metadata,
        role_ref=k8s.rbac.v1.RoleRefArgs(
            api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name
        ),
        subjects=[
            k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=subject_name, namespace=subject_namespace)
        ],
        opts=opts,
    )
    return role, binding


@dataclass(frozen=True)
class RoleGrantArgs:
    """Role and RoleBinding `name` in `namespace` with `rules`, for ServiceAccount `service_account` of
    `service_account_namespace` (which may be another namespace: the rights hold in `namespace` only)."""

    namespace: str
    name: str
    rules: Sequence[Rule]
    service_account: str
    service_account_namespace: str
    component: str = "control-plane"
    app: str | None = None

    def __post_init__(self) -> None:
        check_dns_label(self.namespace, "RoleGrantArgs.namespace")
        check_dns_label(self.name, "RoleGrantArgs.name")
        check_dns_label(self.service_account, "RoleGrantArgs.service_account")
        check_dns_label(self.service_account_namespace, "RoleGrantArgs.service_account_namespace")
        if not self.rules:
            raise ValueError("RoleGrantArgs.rules must not be empty")


class RoleGrant(pulumi.ComponentResource):
    """Rights of an existing ServiceAccount in one more namespace. Output: `role_name`."""

    role_name: pulumi.Output[str]

    def __init__(self, name: str, args: RoleGrantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dtpoc:rbac:RoleGrant", name, None, opts)
        self.role, self.role_binding = role_and_binding(
            name,
            meta(args.name, args.namespace, args.component, app=args.app or args.name),
            args.rules,
            subject_name=args.service_account,
            subject_namespace=args.service_account_namespace,
            opts=child_options(self, opts),
        )
        self.role_name = self.role.metadata.name
        self.register_outputs({"role_name": self.role_name})
