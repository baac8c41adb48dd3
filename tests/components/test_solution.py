"""DT solutions under Pulumi's mocks: each one's namespace, quota, data volume, policies, Roles and token
Secrets; what the operator and the API are told; the removal guard's hooks; a subclass's own pieces."""

from __future__ import annotations

import json
from typing import Any

import pulumi_kubernetes as k8s
import pytest

from components.network_policy import MODULE_POD_LABELS
from components.orchestrator import API_RULES, OPERATOR_RULES, SOLUTIONS_SECRETS_DIR
from components.platform import PlatformArgs
from components.solution import Solution
from components.solution_guard import DEPLOYMENT_HOOK, NAMESPACE_HOOK
from services.shared.solutions import SOLUTION_LABEL

from .conftest import build_platform
from .harness import SOLUTION_TOKENS, Recorded, Run
from .k8s import container, env_of, mounts_of, volumes_of

DATA_ROOT = "/var/lib/dtpoc-unit"
STACK = {
    "ingressController": "none",
    "dataRoot": DATA_ROOT,
    "nodeAffinityKey": "kubernetes.io/hostname",
    "nodeAffinityValues": ["node-a"],
    "moduleEgressCidrs": ["203.0.113.0/24"],
    "solutions": [
        {"name": "lab", "quota": {"cpu": "4", "memory": "8Gi", "pods": 20}, "storageSize": "2Gi"},
        {
            "name": "ward",
            "quota": {"cpu": "1", "memory": "1Gi", "pods": 5},
            "defaults": {"cpu": "200m", "memory": "256Mi", "cpuRequest": "20m", "memoryRequest": "32Mi"},
        },
    ],
}
NAMESPACES = {"lab": "dtpoc-lab", "ward": "dtpoc-ward"}


@pytest.fixture(scope="module")
def run() -> Run:
    return build_platform(STACK)


def in_namespace(run: Run, kind: str, namespace: str) -> list[Recorded]:
    return [r for r in run.kinds(kind) if r.metadata.get("namespace") == namespace]


def rules_of(role: Recorded) -> list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]:
    return [(tuple(r["apiGroups"]), tuple(r["resources"]), tuple(r["verbs"])) for r in role.inputs["rules"]]


def test_each_solution_is_a_component_with_its_namespace(run: Run) -> None:
    components = [r.name for r in run.of_type("dtpoc:solution:Solution")]
    # Registration order under Pulumi's mocks follows its async scheduling; each solution once is the rule.
    assert sorted(components) == ["dtpoc-solution-lab", "dtpoc-solution-ward"]
    namespaces = {r.k8s_name: r for r in run.kinds("Namespace")}
    assert set(namespaces) == {"dtpoc", *NAMESPACES.values()}
    for name, namespace in NAMESPACES.items():
        labels = namespaces[namespace].metadata["labels"]
        assert labels[SOLUTION_LABEL] == name
        for mode in ("enforce", "warn", "audit"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels["app.kubernetes.io/part-of"] == "dtpoc"
    assert SOLUTION_LABEL not in namespaces["dtpoc"].metadata["labels"]  # the platform's stays as it was


def test_quota_bounds_requests_and_limits_and_the_limit_range_admits_bare_containers(run: Run) -> None:
    (lab_quota,) = in_namespace(run, "ResourceQuota", "dtpoc-lab")
    assert lab_quota.k8s_name == "dtpoc-lab-quota"
    assert lab_quota.inputs["spec"]["hard"] == {
        "pods": "20",
        "requests.cpu": "4",
        "limits.cpu": "4",
        "requests.memory": "8Gi",
        "limits.memory": "8Gi",
        "services.nodeports": "0",
        "services.loadbalancers": "0",
    }
    (lab_limits,) = in_namespace(run, "LimitRange", "dtpoc-lab")
    (item,) = lab_limits.inputs["spec"]["limits"]
    assert (item["type"], item["default"], item["defaultRequest"]) == (
        "Container",
        {"cpu": "500m", "memory": "512Mi"},
        {"cpu": "50m", "memory": "64Mi"},
    )
    (ward_limits,) = in_namespace(run, "LimitRange", "dtpoc-ward")
    (item,) = ward_limits.inputs["spec"]["limits"]
    assert (item["default"], item["defaultRequest"]) == (
        {"cpu": "200m", "memory": "256Mi"},
        {"cpu": "20m", "memory": "32Mi"},
    )
    # The platform's own quota has no requests bound (as before solutions).
    (platform_quota,) = in_namespace(run, "ResourceQuota", "dtpoc")
    assert not any(k.startswith("requests.") for k in platform_quota.inputs["spec"]["hard"])


def test_data_volume_is_the_platform_folders_subfolder_under_the_same_claim_name(run: Run) -> None:
    volumes = {pv.k8s_name: pv.inputs["spec"] for pv in run.kinds("PersistentVolume")}
    platform = volumes["dtpoc-orchestrator-data"]
    assert platform["hostPath"]["path"] == f"{DATA_ROOT}/orchestrator_data"
    for name, namespace in NAMESPACES.items():
        pv = volumes[f"{namespace}-orchestrator-data"]
        # The operator mounts the platform's volume at /data: this folder is /data/solutions/<name> there.
        assert pv["hostPath"] == {
            "path": f"{DATA_ROOT}/orchestrator_data/solutions/{name}",
            "type": "DirectoryOrCreate",
        }
        assert pv["nodeAffinity"] == platform["nodeAffinity"]  # on the node of the platform's folder
        assert pv["storageClassName"] == platform["storageClassName"]
        assert pv["persistentVolumeReclaimPolicy"] == "Retain"
        (claim,) = in_namespace(run, "PersistentVolumeClaim", namespace)
        assert claim.k8s_name == "orchestrator-data"  # OPERATOR_DATA_PVC, the platform's claim name
        assert claim.inputs["spec"]["volumeName"] == f"{namespace}-orchestrator-data"
        assert claim.metadata["labels"][SOLUTION_LABEL] == name
    assert volumes["dtpoc-lab-orchestrator-data"]["capacity"] == {"storage": "2Gi"}
    assert volumes["dtpoc-ward-orchestrator-data"]["capacity"] == {"storage": "10Gi"}


def test_policies_deny_ingress_but_the_ingress_controllers_and_let_modules_send_dns_only(run: Run) -> None:
    for namespace in NAMESPACES.values():
        policies = {p.k8s_name: p.inputs["spec"] for p in in_namespace(run, "NetworkPolicy", namespace)}
        assert set(policies) == {"default-deny-ingress", "modules-egress", "modules-ingress"}
        assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
        ingress = policies["modules-ingress"]
        assert ingress["podSelector"]["matchLabels"] == {
            **MODULE_POD_LABELS,
            "app.kubernetes.io/component": "persistent",
        }
        assert ingress["ingress"] == [
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
                ]
            }
        ]
        egress = policies["modules-egress"]
        # The platform namespace's module egress policy, reused as it is.
        (platform_egress,) = [
            p for p in in_namespace(run, "NetworkPolicy", "dtpoc") if p.k8s_name == "modules-egress"
        ]
        assert egress == platform_egress.inputs["spec"]
        assert egress["egress"][1] == {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}


def test_the_operator_and_the_api_hold_their_roles_there_bound_to_their_platform_accounts(run: Run) -> None:
    for namespace in NAMESPACES.values():
        roles = {r.k8s_name: r for r in in_namespace(run, "Role", namespace)}
        assert rules_of(roles["orchestrator-operator"]) == [
            (r.api_groups, r.resources, r.verbs) for r in OPERATOR_RULES
        ]
        assert rules_of(roles["orchestrator-api"]) == [
            (r.api_groups, r.resources, r.verbs) for r in API_RULES
        ]
        for role in roles.values():
            assert not any("*" in value for rule in rules_of(role) for part in rule for value in part)
        bindings = {b.k8s_name: b.inputs for b in in_namespace(run, "RoleBinding", namespace)}
        assert set(bindings) == set(roles) == {"orchestrator-operator", "orchestrator-api"}
        for name, binding in bindings.items():
            assert binding["roleRef"] == {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": name,
            }
            assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": "dtpoc"}]
    accounts = {a.k8s_name for a in run.kinds("ServiceAccount")}
    assert accounts == {"orchestrator-operator", "orchestrator-api"}  # no account of their own
    assert run.kinds("ClusterRole") == run.kinds("ClusterRoleBinding") == []


def test_token_secrets_are_in_the_platforms_namespace_marked_secret(run: Run) -> None:
    for name in NAMESPACES:
        for kind, which in (("api-token", "admin"), ("api-read-token", "read")):
            secret = run.one("Secret", f"solution-{name}-{kind}")
            assert secret.metadata["namespace"] == "dtpoc"
            assert secret.metadata["labels"][SOLUTION_LABEL] == name
            assert secret.inputs["stringData"] == {"token": SOLUTION_TOKENS[name][which]}
            assert secret.has_secret
            holders = [r.name for r in run.resources if SOLUTION_TOKENS[name][which] in r.dumps()]
            assert holders == [secret.name]  # nowhere else
    for namespace in NAMESPACES.values():
        assert in_namespace(run, "Secret", namespace) == []


def test_the_operator_and_the_api_are_told_the_solutions(run: Run) -> None:
    operator = env_of(container(run.one("Deployment", "orchestrator-operator")))
    assert json.loads(operator["OPERATOR_SOLUTIONS"]) == [
        {"name": "lab", "namespace": "dtpoc-lab"},
        {"name": "ward", "namespace": "dtpoc-ward"},
    ]
    api_deployment = run.one("Deployment", "orchestrator-api")
    api = env_of(container(api_deployment))
    entries = json.loads(api["API_SOLUTIONS"])
    assert entries == [
        {
            "name": name,
            "namespace": namespace,
            "token_file": f"{SOLUTIONS_SECRETS_DIR}/{name}/api/token",
            "read_token_file": f"{SOLUTIONS_SECRETS_DIR}/{name}/api-read/token",
        }
        for name, namespace in NAMESPACES.items()
    ]
    # Each token file is a read-only mount of that solution's Secret (files, not env).
    mounts = {m["mountPath"]: m for m in container(api_deployment)["volumeMounts"]}
    volumes = volumes_of(api_deployment)
    for entry in entries:
        for file, kind in ((entry["token_file"], "api-token"), (entry["read_token_file"], "api-read-token")):
            folder, key = file.rsplit("/", 1)
            mount = mounts[folder]
            assert mount["readOnly"] is True
            assert volumes[mount["name"]]["secret"]["secretName"] == f"solution-{entry['name']}-{kind}"
            assert key == "token"
    assert not any(isinstance(v, tuple) and v[0] == "secret" for v in api.values())
    # The operator gets no token of any solution.
    operator_volumes = volumes_of(run.one("Deployment", "orchestrator-operator"))
    assert not any(
        v.get("secret", {}).get("secretName", "").startswith("solution-") for v in operator_volumes.values()
    )
    assert "/data" in mounts_of(container(run.one("Deployment", "orchestrator-operator")))


def test_the_orchestrator_waits_for_the_solutions(run: Run) -> None:
    for name in ("orchestrator-operator", "orchestrator-api"):
        deployment = run.one("Deployment", name)
        # A component in depends_on stands for its children: each solution's RoleBindings among them.
        for solution in NAMESPACES:
            for grant in ("operator", "api"):
                binding = f"RoleBinding::dtpoc-solution-{solution}-{grant}-rbac-binding"
                assert any(u.endswith(binding) for u in deployment.dependencies), (name, binding)


def test_the_removal_guard_is_bound_to_the_namespaces_and_the_orchestrator(run: Run) -> None:
    for namespace in NAMESPACES.values():
        assert run.one("Namespace", namespace).hooks == {"before_delete": [NAMESPACE_HOOK]}
    assert run.one("Namespace", "dtpoc").hooks == {}
    for name in ("orchestrator-operator", "orchestrator-api"):
        assert run.one("Deployment", name).hooks == {"before_update": [DEPLOYMENT_HOOK]}


def test_without_solutions_the_orchestrator_is_told_nothing(platform: Run) -> None:
    for name, variable in (
        ("orchestrator-operator", "OPERATOR_SOLUTIONS"),
        ("orchestrator-api", "API_SOLUTIONS"),
    ):
        assert variable not in env_of(container(platform.one("Deployment", name)))
    assert platform.of_type("dtpoc:solution:Solution") == []
    # The guard is bound all the same: removing the last solution is checked too.
    assert platform.one("Deployment", "orchestrator-api").hooks == {"before_update": [DEPLOYMENT_HOOK]}


def test_without_network_policies_a_solution_has_none() -> None:
    run = build_platform({**STACK, "networkPolicies": False})
    assert run.kinds("NetworkPolicy") == []
    assert len(in_namespace(run, "Role", "dtpoc-lab")) == 2


class WithNotes(Solution):
    """A solution with a ConfigMap of its own (components/README.md's example)."""

    def add_pieces(self) -> None:
        self.notes = k8s.core.v1.ConfigMap(
            f"{self.resource_name}-notes",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="notes", namespace=self.namespace, labels=self.solution_label
            ),
            data={"solution": self.place.name},
            opts=self.in_namespace,
        )


def test_a_subclass_adds_pieces_to_every_solution() -> None:
    run = build_platform(STACK, solution_type=WithNotes)
    notes = {c.metadata["namespace"]: c for c in run.kinds("ConfigMap") if c.k8s_name == "notes"}
    assert set(notes) == set(NAMESPACES.values())
    for name, namespace in NAMESPACES.items():
        assert notes[namespace].inputs["data"] == {"solution": name}
        assert notes[namespace].metadata["labels"] == {SOLUTION_LABEL: name}
        assert notes[namespace].parent.endswith(f"dtpoc:solution:Solution::dtpoc-solution-{name}")
        assert run.waits_for(notes[namespace], "kubernetes:core/v1:Namespace")


def test_solution_type_must_be_a_solution() -> None:
    config: Any = object()
    with pytest.raises(ValueError, match="not a Solution subclass"):
        PlatformArgs(config=config, solution_type=dict)  # type: ignore[arg-type]
