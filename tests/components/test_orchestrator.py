"""The orchestrator: the Analytics CRD, least-privilege RBAC, operator and API workloads."""

from __future__ import annotations

import json

import pulumi
import pytest

from components.common import IngressSettings
from components.orchestrator import API_RULES, OPERATOR_RULES, Orchestrator, OrchestratorArgs
from components.rbac import Rule
from services.shared import crd

from .harness import run_program
from .k8s import container, env_of, mounts_of, pod_spec, ports_of, probe, selects, service_ports, volumes_of

TOKEN = "api-token-0123456789abcdef"
READ_TOKEN = "api-read-token-0123456789abcdef"


def orchestrator_run(**overrides):
    def program():
        args = OrchestratorArgs(
            namespace="dtpoc",
            api_token=pulumi.Output.secret(TOKEN),
            api_read_token=pulumi.Output.secret(READ_TOKEN),
            mongodb_secret_name="mongodb-credentials",
            data_claim_name="orchestrator-data",
            operator_image="registry.local/dtpoc-operator:1",
            api_image="registry.local/dtpoc-api:1",
            **overrides,
        )
        return Orchestrator("orchestrator", args)

    return run_program(program, resolve_result=lambda o: {"crd": o.crd_name, "svc": o.api_service_name})


@pytest.fixture(scope="module")
def run():
    return orchestrator_run(
        ingress=IngressSettings(class_name="nginx", host="dtpoc.example.org"),
        cors_origins=("https://dtpoc.example.org",),
        max_upload_bytes=200 * 1024 * 1024,
        module_ingress_host="dtpoc.example.org",
        module_image_pull_policy="Never",
    )


def test_the_crd_is_the_shared_definition(run) -> None:
    (definition,) = run.kinds("CustomResourceDefinition")
    assert definition.k8s_name == crd.CRD_NAME == "analytics.eng.cam.ac.uk"
    spec = definition.inputs["spec"]
    assert spec == json.loads(json.dumps(crd.crd_spec()))  # exactly services/shared/crd.py
    assert spec["group"] == "eng.cam.ac.uk"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "Analytics",
        "plural": "analytics",
        "singular": "analytic",
        "shortNames": ["ana"],
    }
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Type"] == ".spec.jobType"
    assert columns["Image"] == ".spec.image"
    assert columns["Phase"] == ".status.phase"
    schema = version["schema"]["openAPIV3Schema"]["properties"]
    assert schema["status"]["x-kubernetes-preserve-unknown-fields"] is True
    spec_schema = schema["spec"]
    assert set(spec_schema["required"]) == {"image", "jobType"}
    assert spec_schema["properties"]["jobType"]["enum"] == ["persistent", "scheduled", "ondemand"]
    assert (spec_schema["properties"]["port"]["minimum"], spec_schema["properties"]["port"]["maximum"]) == (
        1,
        65535,
    )
    assert (spec_schema["properties"]["reps"]["minimum"], spec_schema["properties"]["reps"]["maximum"]) == (
        1,
        100,
    )
    rules = {r["message"]: r["rule"] for r in spec_schema["x-kubernetes-validations"]}
    assert rules["persistent takes no reps"] == "self.jobType != 'persistent' || !has(self.reps)"
    assert rules["scheduled needs reps"] == "self.jobType != 'scheduled' || has(self.reps)"
    assert rules["scheduled needs a schedule"] == "self.jobType != 'scheduled' || has(self.schedule)"
    assert rules["ondemand needs reps"] == "self.jobType != 'ondemand' || has(self.reps)"
    assert rules["ondemand takes no port"] == "self.jobType != 'ondemand' || !has(self.port)"
    assert rules["ondemand takes no schedule"] == "self.jobType != 'ondemand' || !has(self.schedule)"
    assert run.outputs["crd"] == crd.CRD_NAME


def rules_of(run, name: str) -> list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]:
    role = run.one("Role", name)
    assert role.metadata["namespace"] == "dtpoc"
    return [(tuple(r["apiGroups"]), tuple(r["resources"]), tuple(r["verbs"])) for r in role.inputs["rules"]]


def test_api_may_only_manage_analytics_and_read_run_logs(run) -> None:
    assert rules_of(run, "orchestrator-api") == [
        (("eng.cam.ac.uk",), ("analytics",), ("get", "list", "watch", "create", "delete")),
        (("eng.cam.ac.uk",), ("analytics/status",), ("get",)),
        (("",), ("pods/log",), ("get",)),  # by name only: it may neither list nor read pods
    ]


def test_operator_rules_are_exact(run) -> None:
    crud = ("get", "list", "watch", "create", "patch", "delete")
    assert rules_of(run, "orchestrator-operator") == [
        (("eng.cam.ac.uk",), ("analytics",), ("get", "list", "watch", "patch")),
        (("eng.cam.ac.uk",), ("analytics/status",), ("get", "patch")),
        (("eng.cam.ac.uk",), ("analytics/finalizers",), ("update",)),
        (("batch",), ("jobs", "cronjobs"), crud),
        (("apps",), ("deployments",), crud),
        (("",), ("services",), crud),
        (("networking.k8s.io",), ("ingresses",), crud),
        (("",), ("pods",), ("get", "list", "watch")),
        (("",), ("pods/log",), ("get",)),
        # list: a pending Job's FailedCreate events tell why its pods are refused (a solution's quota)
        (("",), ("events",), ("create", "list")),
    ]


def test_no_wildcards_and_only_namespaced_rbac(run) -> None:
    for role in run.kinds("Role"):
        for rule in role.inputs["rules"]:
            for value in (*rule["apiGroups"], *rule["resources"], *rule["verbs"]):
                assert "*" not in value
            # nothing that reads or writes Secrets, nor RBAC itself
            assert not {"secrets", "roles", "rolebindings", "serviceaccounts"} & set(rule["resources"])
    assert run.kinds("ClusterRole") == [] and run.kinds("ClusterRoleBinding") == []
    with pytest.raises(ValueError, match="wildcards"):
        Rule(("",), ("pods",), ("*",))
    with pytest.raises(ValueError, match="unknown verbs"):
        Rule(("",), ("pods",), ("read",))
    assert all(isinstance(r, Rule) for r in (*API_RULES, *OPERATOR_RULES))


def test_role_bindings_tie_each_account_to_its_role(run) -> None:
    for name in ("orchestrator-api", "orchestrator-operator"):
        binding = run.one("RoleBinding", name)
        assert binding.inputs["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": name,
        }
        assert binding.inputs["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": "dtpoc"}]
        account = run.one("ServiceAccount", name)
        assert account.inputs["automountServiceAccountToken"] is False  # pods opt in


def assert_restricted(dep) -> None:
    spec = pod_spec(dep)
    sc = container(dep)["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001 and sc["runAsGroup"] == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # Both call the Kubernetes API: automount stays off and the token is a volume named on the pod.
    assert spec["automountServiceAccountToken"] is False
    sources = volumes_of(dep)["kube-api-access"]["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}
    assert mounts_of(container(dep))["/var/run/secrets/kubernetes.io/serviceaccount"] == (
        "kube-api-access",
        None,
    )
    # Credentials come as files from their Secrets, never as env values or secretKeyRefs.
    assert not [v for v in env_of(container(dep)).values() if isinstance(v, tuple) and v[0] == "secret"]
    assert volumes_of(dep)["mongodb-credentials"]["secret"] == {
        "secretName": "mongodb-credentials",
        "defaultMode": 0o440,
    }
    assert mounts_of(container(dep))["/var/run/secrets/dtpoc/mongodb"] == ("mongodb-credentials", None)
    resources = container(dep)["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


MONGODB_ENV = {
    "MONGODB_HOST": "mongodb",
    "MONGODB_PORT": "27017",
    "MONGODB_USERNAME_FILE": "/var/run/secrets/dtpoc/mongodb/username",
    "MONGODB_PASSWORD_FILE": "/var/run/secrets/dtpoc/mongodb/password",
}
SECRET_MOUNTS = {
    "/var/run/secrets/dtpoc/mongodb": ("mongodb-credentials", None),
    "/var/run/secrets/kubernetes.io/serviceaccount": ("kube-api-access", None),
}


def test_operator_workload(run) -> None:
    dep = run.one("Deployment", "orchestrator-operator")
    c = container(dep)
    assert c["image"] == "registry.local/dtpoc-operator:1"
    assert "command" not in c and "args" not in c  # the image's own entry point, dtpoc-operator
    assert env_of(c) == {
        "OPERATOR_NAMESPACE": ("field", "metadata.namespace"),
        "OPERATOR_OUTPUT_ROOT": "/data",
        "OPERATOR_DATA_PVC": "orchestrator-data",
        "OPERATOR_INGRESS_CLASS": "nginx",
        "OPERATOR_INGRESS_HOST": "dtpoc.example.org",
        "OPERATOR_OUTPUT_MAX_FILES": "1000",
        "OPERATOR_OUTPUT_MAX_BYTES": str(1024**3),
        "OPERATOR_OUTPUT_MAX_DEPTH": "16",
        "OPERATOR_LOG_MAX_BYTES": str(1024 * 1024),
        "OPERATOR_IMAGE_PULL_POLICY": "Never",
        **MONGODB_ENV,
    }
    assert mounts_of(c) == {"/data": ("data", None), "/tmp": ("tmp", None), **SECRET_MOUNTS}
    assert volumes_of(dep)["data"]["persistentVolumeClaim"] == {"claimName": "orchestrator-data"}
    assert probe(c, "livenessProbe") == probe(c, "readinessProbe") == ("http", "/healthz", 8080)
    assert ports_of(c) == {8080}
    assert pod_spec(dep)["serviceAccountName"] == "orchestrator-operator"
    assert dep.inputs["spec"]["replicas"] == 1 and dep.inputs["spec"]["strategy"] == {"type": "Recreate"}
    assert "initContainers" not in pod_spec(dep)
    assert_restricted(dep)


def test_api_workload_service_and_ingress(run) -> None:
    dep = run.one("Deployment", "orchestrator-api")
    c = container(dep)
    assert c["image"] == "registry.local/dtpoc-api:1"
    assert "command" not in c and "args" not in c  # the image's own entry point, dtpoc-api
    assert ports_of(c) == {8000}
    assert env_of(c) == {
        "API_TOKEN_FILE": "/var/run/secrets/dtpoc/api/token",
        "API_READ_TOKEN_FILE": "/var/run/secrets/dtpoc/api-read/token",
        "API_NAMESPACE": ("field", "metadata.namespace"),
        "API_MAX_UPLOAD_BYTES": str(200 * 1024 * 1024),
        "API_CORS_ORIGINS": '["https://dtpoc.example.org"]',
        **MONGODB_ENV,
    }
    health = ("http", "/api/orchestrator/v1alpha1/healthz", 8000)
    assert probe(c, "livenessProbe") == health
    assert probe(c, "readinessProbe") == health
    assert mounts_of(c) == {
        "/tmp": ("tmp", None),
        "/var/run/secrets/dtpoc/api": ("api-token", None),
        "/var/run/secrets/dtpoc/api-read": ("api-read-token", None),
        **SECRET_MOUNTS,
    }
    assert volumes_of(dep)["api-token"]["secret"]["secretName"] == "orchestrator-api-token"
    assert volumes_of(dep)["api-read-token"]["secret"]["secretName"] == "orchestrator-api-read-token"
    assert pod_spec(dep)["serviceAccountName"] == "orchestrator-api"
    assert_restricted(dep)

    svc = run.one("Service", "orchestrator-api-svc")
    assert service_ports(svc) == [(80, 8000)]
    assert selects(svc, dep)
    assert run.outputs["svc"] == "orchestrator-api-svc"

    ing = run.one("Ingress", "orchestrator-api-ingress")
    path = ing.inputs["spec"]["rules"][0]["http"]["paths"][0]
    assert path["path"] == "/api/orchestrator" and path["pathType"] == "Prefix"
    assert path["backend"]["service"] == {"name": "orchestrator-api-svc", "port": {"number": 80}}
    annotations = ing.metadata["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "201m"  # the upload limit + envelope
    assert annotations["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    assert "pulumi.com/skipAwait" not in annotations


def test_api_tokens_are_secrets_used_by_reference(run) -> None:
    secret = run.one("Secret", "orchestrator-api-token")
    assert secret.inputs["stringData"] == {"token": TOKEN} and secret.has_secret
    read = run.one("Secret", "orchestrator-api-read-token")
    assert read.inputs["stringData"] == {"token": READ_TOKEN} and read.has_secret
    for r in run.resources:
        if r.kind != "Secret":
            assert TOKEN not in r.dumps() and READ_TOKEN not in r.dumps(), r.name


def test_host_path_data_gets_a_chown_init_container() -> None:
    run = orchestrator_run(chown_data=True)
    (init,) = pod_spec(run.one("Deployment", "orchestrator-operator"))["initContainers"]
    assert init["command"] == ["chown", "10001:10001", "/data"]
    assert init["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}
    assert init["securityContext"]["allowPrivilegeEscalation"] is False
    assert mounts_of(init) == {"/data": ("data", None)}


def test_without_ingress_there_is_no_ingress() -> None:
    run = orchestrator_run()
    assert run.kinds("Ingress") == []
    operator_env = env_of(container(run.one("Deployment", "orchestrator-operator")))
    assert "OPERATOR_INGRESS_HOST" not in operator_env
    assert "OPERATOR_IMAGE_PULL_POLICY" not in operator_env  # Kubernetes' default unless configured


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_upload_bytes": 0}, "max_upload_bytes"),
        ({"cors_origins": ("dtpoc.example.org",)}, "origin"),
        ({"cors_origins": ("*",)}, "origin"),
        ({"output_max_files": 0}, "output_max_files"),
        ({"run_log_max_bytes": 100}, "run_log_max_bytes"),
        ({"api_replicas": 0}, "api_replicas"),
        ({"api_service_name": "Orchestrator API"}, "DNS label"),
    ],
)
def test_impossible_orchestrator_args_fail_early(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        orchestrator_run(**overrides)
