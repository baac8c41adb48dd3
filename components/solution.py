"""A DT solution: one team's namespace beside the platform's, served by the platform's operator and API.

Per solution (`solutions` in the stack config), in namespace `<platform namespace>-<name>`:
- the Namespace, labelled `dtpoc.io/solution: <name>` and enforcing Pod Security `restricted`;
- a ResourceQuota on pods and on CPU and memory, requests and limits alike, and a LimitRange whose
  defaults let a module container that names no resources in (namespace.py's NamespaceGuards);
- the data PVC, named like the platform's (`orchestrator-data`: the operator mounts it by that name in run
  pods), bound to a hostPath PV on the subfolder `solutions/<name>` of the platform's orchestrator data
  folder, which the operator reads at /data/solutions/<name> through the platform's own volume;
- NetworkPolicies: every pod's ingress denied but persistent modules' from the ingress controller's
  namespace; module pods send DNS only, and to `moduleEgressCidrs` (network_policy.py, as in the
  platform's namespace);
- Roles for the operator and the API with exactly their rules in the platform's namespace
  (orchestrator.py), bound to their ServiceAccounts there; nothing cluster-wide;
- in the platform's namespace, the solution's admin and read API token Secrets, which the API mounts.

A subclass adds pieces of its own by overriding `add_pieces` (components/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath

import pulumi
import pulumi_kubernetes as k8s

from services.shared.solutions import SOLUTION_LABEL, SolutionPlace

from .common import child_options, labels
from .config import SolutionConfig
from .namespace import RESTRICTED_POD_SECURITY_LABELS, NamespaceGuards, NamespaceGuardsArgs
from .network_policy import (
    MODULE_POD_LABELS,
    PERSISTENT_MODULE_POD_LABELS,
    ModuleEgress,
    ModuleIngress,
    NetworkPolicies,
    NetworkPoliciesArgs,
)
from .orchestrator import (
    API_ACCOUNT,
    API_RULES,
    OPERATOR_ACCOUNT,
    OPERATOR_RULES,
    TOKEN_KEY,
    SolutionSecrets,
)
from .rbac import RoleGrant, RoleGrantArgs
from .storage import Storage, StorageArgs, StorageMode


def solution_storage(platform_data: StorageArgs, place: SolutionPlace, size: str) -> StorageArgs:
    """The solution's data volume from the platform's orchestrator volume: same claim name, class and node
    affinity, in the solution's namespace, its folder the platform folder's subfolder `place.data_dir`."""
    if platform_data.mode is not StorageMode.HOST_PATH:
        raise ValueError(
            "a solution's data volume is a folder of the platform's (hostPath mode): a dynamically "
            "provisioned claim cannot be shared across namespaces"
        )
    folder = PurePosixPath(platform_data.sub_dir or platform_data.claim_name, place.data_dir)
    return replace(
        platform_data,
        namespace=place.namespace,
        size=size,
        sub_dir=str(folder),
        extra_labels={**platform_data.extra_labels, SOLUTION_LABEL: place.name},
    )


@dataclass(frozen=True)
class SolutionArgs:
    """`storage`: the solution's data volume (`solution_storage`). `operator_account` / `api_account`: the
    platform's ServiceAccounts (in `platform_namespace`) granted their Roles in the solution's namespace.
    `removal_hooks`: bound to the Namespace (solution_guard.py)."""

    config: SolutionConfig
    platform_namespace: str
    storage: StorageArgs
    network_policies: bool = True
    module_egress_cidrs: Sequence[str] = field(default_factory=tuple)
    ingress_controller_namespace: str = "ingress-nginx"
    operator_account: str = OPERATOR_ACCOUNT
    api_account: str = API_ACCOUNT
    pod_security: Mapping[str, str] = field(default_factory=lambda: dict(RESTRICTED_POD_SECURITY_LABELS))
    removal_hooks: pulumi.ResourceHookBinding | None = None

    def __post_init__(self) -> None:
        if self.config.namespace == self.platform_namespace:
            raise ValueError(f"SolutionArgs: {self.config.name!r} cannot live in the platform's namespace")
        if self.storage.namespace != self.config.namespace:
            raise ValueError(
                f"SolutionArgs.storage: the volume's claim must be in {self.config.namespace}, "
                f"not {self.storage.namespace}"
            )
        if self.storage.mode is not StorageMode.HOST_PATH:
            raise ValueError("SolutionArgs.storage: hostPath mode only (see solution_storage)")


class Solution(pulumi.ComponentResource):
    """Outputs: `namespace`, `token_secret_name`, `read_token_secret_name`; `place` and `secrets` (what the
    orchestrator is told). Subclasses override `add_pieces`."""

    namespace: str
    place: SolutionPlace
    token_secret_name: pulumi.Output[str]
    read_token_secret_name: pulumi.Output[str]

    def __init__(self, name: str, args: SolutionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dtpoc:solution:Solution", name, None, opts)
        self.args = args
        cfg = args.config
        ns = cfg.namespace
        self.resource_name = name
        self.namespace = ns
        self.place = SolutionPlace(name=cfg.name, namespace=ns)
        self.child = child_options(self, opts)

        self.namespace_resource = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ns, labels={**labels(ns, "namespace"), **args.pod_security, **self.solution_label}
            ),
            opts=pulumi.ResourceOptions.merge(self.child, pulumi.ResourceOptions(hooks=args.removal_hooks)),
        )
        # For everything inside the namespace: made once it exists.
        self.in_namespace = pulumi.ResourceOptions.merge(
            self.child, pulumi.ResourceOptions(depends_on=[self.namespace_resource])
        )

        quota, defaults = cfg.quota, cfg.defaults
        self.guards = NamespaceGuards(
            f"{name}-guards",
            NamespaceGuardsArgs(
                namespace=ns,
                pods=quota.pods,
                cpu_limits=quota.cpu,
                memory_limits=quota.memory,
                cpu_requests=quota.cpu,
                memory_requests=quota.memory,
                default_cpu=defaults.cpu,
                default_memory=defaults.memory,
                default_cpu_request=defaults.cpu_request,
                default_memory_request=defaults.memory_request,
            ),
            self.in_namespace,
        )
        self.storage = Storage(f"{name}-storage", args.storage, self.in_namespace)

        self.operator_grant = RoleGrant(
            f"{name}-operator-rbac",
            RoleGrantArgs(
                ns,
                OPERATOR_ACCOUNT,
                OPERATOR_RULES,
                args.operator_account,
                args.platform_namespace,
                app="orchestrator-operator",
            ),
            self.in_namespace,
        )
        self.api_grant = RoleGrant(
            f"{name}-api-rbac",
            RoleGrantArgs(
                ns, API_ACCOUNT, API_RULES, args.api_account, args.platform_namespace, app="orchestrator-api"
            ),
            self.in_namespace,
        )

        self.network_policies = None
        if args.network_policies:
            self.network_policies = NetworkPolicies(
                f"{name}-network-policies",
                NetworkPoliciesArgs(
                    ns,
                    rules=[],
                    module_egress=ModuleEgress(MODULE_POD_LABELS, args.module_egress_cidrs),
                    deny_ingress=True,
                    module_ingress=ModuleIngress(
                        PERSISTENT_MODULE_POD_LABELS, args.ingress_controller_namespace
                    ),
                ),
                self.in_namespace,
            )

        # The API's Secrets stay beside the API, in the platform's namespace (a pod mounts Secrets of its own
        # namespace only); nothing in the solution's namespace can read them.
        self.token_secret = self._token_secret("api-token", cfg.admin_token)
        self.read_token_secret = self._token_secret("api-read-token", cfg.read_token)
        self.token_secret_name = self.token_secret.metadata.name
        self.read_token_secret_name = self.read_token_secret.metadata.name

        self.add_pieces()
        self.register_outputs(
            {
                "namespace": self.namespace,
                "token_secret_name": self.token_secret_name,
                "read_token_secret_name": self.read_token_secret_name,
            }
        )

    def add_pieces(self) -> None:
        """Per-solution pieces of a subclass, made before the component's outputs are registered. At hand:
        `self.namespace`, `self.place`, `self.args`, `self.in_namespace` (options: parented to the solution,
        made once its namespace exists), `self.resource_name` (prefix of child names), `self.solution_label`.
        The namespace enforces Pod Security `restricted` and denies ingress: a piece that serves others
        needs a NetworkPolicy of its own."""

    @property
    def solution_label(self) -> dict[str, str]:
        return {SOLUTION_LABEL: self.place.name}

    @property
    def secrets(self) -> SolutionSecrets:
        return SolutionSecrets(self.place, self.token_secret_name, self.read_token_secret_name)

    def _token_secret(self, kind: str, token: pulumi.Input[str]) -> k8s.core.v1.Secret:
        return k8s.core.v1.Secret(
            f"{self.resource_name}-{kind}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"solution-{self.place.name}-{kind}",
                namespace=self.args.platform_namespace,
                labels={**labels("orchestrator-api", "control-plane"), **self.solution_label},
            ),
            type="Opaque",
            string_data={TOKEN_KEY: pulumi.Output.secret(token)},
            opts=self.child,
        )
