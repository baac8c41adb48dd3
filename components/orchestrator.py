"""The orchestrator: the Analytics CRD, the operator (kopf) and its REST API, each with its own
ServiceAccount and least-privilege Role, the API's two token Secrets (admin, read-only), and the API's
Service and Ingress path. The operator gets no database credential to hand to modules: the MongoDB Secret
reaches only the operator's and the API's own processes, as files."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from services.shared import crd
from services.shared.solutions import SolutionPlace

from .analytics_crd import AnalyticsCrd
from .common import (
    ANYWHERE,
    APP_UID,
    MEDIUM,
    IngressSettings,
    Placement,
    Resources,
    Workload,
    check_dns_label,
    check_port,
    child_options,
    deployment,
    empty_dir,
    env,
    field_env,
    http_probe,
    ingress,
    kube_api_access_mount,
    kube_api_access_volume,
    meta,
    mount,
    restricted_security_context,
    secret_volume,
    service,
    service_port,
)
from .rbac import Rule, ServiceAccountRbac, ServiceAccountRbacArgs

API_PORT = 8000
API_SERVICE_PORT = 80
API_BASE_PATH = "/api/orchestrator"
API_HEALTH_PATH = f"{API_BASE_PATH}/v1alpha1/healthz"
OPERATOR_HEALTH_PORT = 8080
OPERATOR_HEALTH_PATH = "/healthz"
OUTPUT_ROOT = "/data"
TOKEN_KEY = "token"  # noqa: S105 (a key name, not a value)
MIB = 1024 * 1024

_WORKLOAD_VERBS = ("get", "list", "watch", "create", "patch", "delete")
# The ServiceAccounts of the operator and the API (in the platform's namespace); DT solutions grant them
# their Roles in the solutions' namespaces (solution.py).
OPERATOR_ACCOUNT = "orchestrator-operator"
API_ACCOUNT = "orchestrator-api"

# hostPath data only: the init container that hands /data to the operator's user.
CHOWN_SKIPS = {
    "CKV_K8S_25": "the data-owner init container needs CHOWN, as root, to hand a hostPath folder to 10001",
}

# The API manages Analytics objects only: launch (create), terminate (delete), list and watch them (the
# status events stream), and read their status; and it reads run logs (`pods/log` get, by the pod's name,
# which the operator notes in the services record: no right to list or read pods). Records and files live
# in MongoDB.
API_RULES: tuple[Rule, ...] = (
    Rule((crd.GROUP,), (crd.PLURAL,), ("get", "list", "watch", "create", "delete")),
    Rule((crd.GROUP,), (f"{crd.PLURAL}/status",), ("get",)),
    Rule(("",), ("pods/log",), ("get",)),
)

# The operator watches Analytics objects (kopf keeps its finalizer and progress on them: patch), writes their
# status, makes and cleans up their workloads, reads the pods of runs and their logs (stored with the runs'
# outputs), and reports Kubernetes events; it lists a pending Job's events to tell why its pods are refused
# (a solution's quota: the Job itself does not say).
# `analytics/finalizers: update`: its children carry ownerReferences with blockOwnerDeletion, which clusters
# running the OwnerReferencesPermissionEnforcement admission plugin allow only to who may update the owner's
# finalizers.
OPERATOR_RULES: tuple[Rule, ...] = (
    Rule((crd.GROUP,), (crd.PLURAL,), ("get", "list", "watch", "patch")),
    Rule((crd.GROUP,), (f"{crd.PLURAL}/status",), ("get", "patch")),
    Rule((crd.GROUP,), (f"{crd.PLURAL}/finalizers",), ("update",)),
    Rule(("batch",), ("jobs", "cronjobs"), _WORKLOAD_VERBS),
    Rule(("apps",), ("deployments",), _WORKLOAD_VERBS),
    Rule(("",), ("services",), _WORKLOAD_VERBS),
    Rule(("networking.k8s.io",), ("ingresses",), _WORKLOAD_VERBS),
    Rule(("",), ("pods",), ("get", "list", "watch")),
    Rule(("",), ("pods/log",), ("get",)),
    Rule(("",), ("events",), ("create", "list")),
)


# Secrets reach our own services as files (settings `*_FILE`), never as environment variables: the
# environment leaks into crash reports, `/proc/<pid>/environ` and child processes.
SECRETS_ROOT = "/var/run/secrets/dtpoc"
SOLUTIONS_SECRETS_DIR = f"{SECRETS_ROOT}/solutions"


@dataclass(frozen=True)
class SolutionSecrets:
    """A DT solution as the operator and the API are told about it (OPERATOR_SOLUTIONS, API_SOLUTIONS): its
    place, and its admin and read token Secrets (key `token`, in the platform's namespace) that the API
    mounts read-only under SOLUTIONS_SECRETS_DIR/<name>/."""

    place: SolutionPlace
    token_secret_name: pulumi.Input[str]
    read_token_secret_name: pulumi.Input[str]

    @property
    def token_file(self) -> str:
        return f"{SOLUTIONS_SECRETS_DIR}/{self.place.name}/api/{TOKEN_KEY}"

    @property
    def read_token_file(self) -> str:
        return f"{SOLUTIONS_SECRETS_DIR}/{self.place.name}/api-read/{TOKEN_KEY}"

    def api_entry(self) -> dict[str, str]:
        return {
            **self.place.model_dump(),
            "token_file": self.token_file,
            "read_token_file": self.read_token_file,
        }

    def api_volumes(self) -> list[k8s.core.v1.VolumeArgs]:
        return [
            secret_volume(f"sol-{self.place.name}-token", self.token_secret_name),
            secret_volume(f"sol-{self.place.name}-read-token", self.read_token_secret_name),
        ]

    def api_mounts(self) -> list[k8s.core.v1.VolumeMountArgs]:
        return [
            mount(f"sol-{self.place.name}-token", self.token_file.rsplit("/", 1)[0], read_only=True),
            mount(
                f"sol-{self.place.name}-read-token", self.read_token_file.rsplit("/", 1)[0], read_only=True
            ),
        ]


def solutions_env(prefix: str, entries: list[dict[str, str]]) -> list[k8s.core.v1.EnvVarArgs]:
    """`<prefix>_SOLUTIONS` as JSON, only when there are solutions (a stack without any renders as before)."""
    return [env(f"{prefix}_SOLUTIONS", json.dumps(entries))] if entries else []


@dataclass(frozen=True)
class OrchestratorArgs:
    """Everything the control plane needs from the rest of the platform.

    `api_token`: a Pulumi secret, becomes Secret `api_token_secret_name` (key `token`): reads and changes.
    `api_read_token`: likewise, Secret `api_read_token_secret_name`: reads only (the frontend's).
    `mongodb_secret_name`: the MongoDB Secret (keys `username`, `password`), read by reference only.
    `data_claim_name`: the PVC the operator mounts at /data and passes to module pods.
    `module_ingress_class`, `module_ingress_host`, `module_tls_secret`: Ingresses the operator makes for
    persistent modules (a host of their own keeps their pages out of the platform's origin).
    `output_max_*`: what one run may leave in /output to be collected (the operator's OutputLimits).
    `run_log_max_bytes`: how much of each run's log the operator stores with its outputs.
    `chown_data`: run a root init container that hands /data to uid 10001 (hostPath volumes ignore fsGroup).
    `solutions`: the DT solutions besides the platform's namespace, served by the same operator and API.
    `deployment_hooks`: resource hooks of both Deployments (solution_guard.py: a removed solution's check).
    """

    namespace: str
    api_token: pulumi.Input[str]
    api_read_token: pulumi.Input[str]
    mongodb_secret_name: pulumi.Input[str]
    data_claim_name: pulumi.Input[str]
    operator_image: pulumi.Input[str]
    api_image: pulumi.Input[str]
    mongodb_host: str = "mongodb"
    mongodb_port: int = 27017
    mongodb_auth_mechanism: str | None = None  # "PLAIN" for FerretDB (MongoDB.auth_mechanism)
    ingress: IngressSettings | None = None
    module_ingress_class: str = "nginx"
    module_ingress_host: str | None = None
    module_tls_secret: pulumi.Input[str] | None = None
    output_max_files: int = 1000
    output_max_bytes: int = 1024 * MIB
    output_max_depth: int = 16
    run_log_max_bytes: int = MIB
    module_image_pull_policy: str | None = None  # OperatorSettings.image_pull_policy
    max_upload_bytes: int = 100 * MIB
    cors_origins: Sequence[str] = field(default_factory=tuple)
    api_replicas: int = 1
    api_service_name: str = "orchestrator-api-svc"
    api_token_secret_name: str = "orchestrator-api-token"  # noqa: S105 (a key name, not a value)
    api_read_token_secret_name: str = "orchestrator-api-read-token"  # noqa: S105 (a name, not a value)
    chown_data: bool = False
    chown_image: str = "busybox:1.36"
    placement: Placement = ANYWHERE
    operator_resources: Resources = MEDIUM
    api_resources: Resources = MEDIUM
    solutions: Sequence[SolutionSecrets] = field(default_factory=tuple)
    deployment_hooks: pulumi.ResourceHookBinding | None = None

    def __post_init__(self) -> None:
        check_dns_label(self.namespace, "OrchestratorArgs.namespace")
        names = [s.place.name for s in self.solutions]
        if len(set(names)) != len(names) or any(s.place.is_default for s in self.solutions):
            raise ValueError(
                f"OrchestratorArgs.solutions: names must be unique and not the default's: {names}"
            )
        check_dns_label(self.api_service_name, "OrchestratorArgs.api_service_name")
        check_dns_label(self.api_token_secret_name, "OrchestratorArgs.api_token_secret_name")
        check_dns_label(self.api_read_token_secret_name, "OrchestratorArgs.api_read_token_secret_name")
        check_port(self.mongodb_port, "OrchestratorArgs.mongodb_port")
        for what in ("api_token", "api_read_token"):
            if isinstance(getattr(self, what), str):
                raise ValueError(
                    f"OrchestratorArgs.{what} must be a Pulumi secret Output, not a plain string"
                )
        for what in ("output_max_files", "output_max_bytes", "output_max_depth"):
            if getattr(self, what) < 1:
                raise ValueError(f"OrchestratorArgs.{what} must be at least 1")
        if not 1024 <= self.run_log_max_bytes <= 64 * MIB:
            raise ValueError(
                f"OrchestratorArgs.run_log_max_bytes must be 1 KiB..64 MiB, got {self.run_log_max_bytes}"
            )
        if not 1 <= self.max_upload_bytes <= 64 * 1024 * MIB:
            raise ValueError(
                f"OrchestratorArgs.max_upload_bytes must be 1 B..64 GiB, got {self.max_upload_bytes}"
            )
        if not 1 <= self.api_replicas <= 10:
            raise ValueError(f"OrchestratorArgs.api_replicas must be 1..10, got {self.api_replicas}")
        for origin in self.cors_origins:
            if "*" in origin or not origin.startswith(("http://", "https://")):
                raise ValueError(f"OrchestratorArgs.cors_origins: {origin!r} is not an http(s) origin")

    @property
    def body_size(self) -> str:
        """nginx's proxy-body-size: the upload limit plus room for the multipart envelope."""
        return f"{math.ceil(self.max_upload_bytes / MIB) + 1}m"


MONGODB_SECRET_VOLUME = "mongodb-credentials"  # noqa: S105 (a volume name, not a value)
MONGODB_SECRET_DIR = f"{SECRETS_ROOT}/mongodb"
API_TOKEN_VOLUME = "api-token"  # noqa: S105 (a volume name, not a value)
API_TOKEN_DIR = f"{SECRETS_ROOT}/api"
API_READ_TOKEN_VOLUME = "api-read-token"  # noqa: S105 (a volume name, not a value)
API_READ_TOKEN_DIR = f"{SECRETS_ROOT}/api-read"


def mongodb_env(args: OrchestratorArgs) -> list[k8s.core.v1.EnvVarArgs]:
    return [
        env("MONGODB_HOST", args.mongodb_host),
        env("MONGODB_PORT", str(args.mongodb_port)),
        *(
            [env("MONGODB_AUTH_MECHANISM", args.mongodb_auth_mechanism)]
            if args.mongodb_auth_mechanism
            else []
        ),
        env("MONGODB_USERNAME_FILE", f"{MONGODB_SECRET_DIR}/username"),
        env("MONGODB_PASSWORD_FILE", f"{MONGODB_SECRET_DIR}/password"),
    ]


def mongodb_secret_volume(args: OrchestratorArgs) -> k8s.core.v1.VolumeArgs:
    return secret_volume(MONGODB_SECRET_VOLUME, args.mongodb_secret_name)


def mongodb_secret_mount() -> k8s.core.v1.VolumeMountArgs:
    return mount(MONGODB_SECRET_VOLUME, MONGODB_SECRET_DIR, read_only=True)


class Orchestrator(pulumi.ComponentResource):
    """Outputs: `crd_name`, `api_service_name`, `api_url` (in-cluster), `api_path`,
    `api_token_secret_name`, `api_read_token_secret_name`."""

    crd_name: pulumi.Output[str]
    api_service_name: pulumi.Output[str]
    api_token_secret_name: pulumi.Output[str]
    api_read_token_secret_name: pulumi.Output[str]
    api_url: str
    api_path: str

    def __init__(self, name: str, args: OrchestratorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dtpoc:orchestrator:Orchestrator", name, None, opts)
        child = child_options(self, opts)
        ns = args.namespace

        self.crd = AnalyticsCrd(f"{name}-crd", opts=child)
        # Both services fail at start without the CRD (kopf cannot watch it, the API cannot create objects).
        after_crd = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.crd]))

        self.operator_rbac = ServiceAccountRbac(
            f"{name}-operator-rbac",
            ServiceAccountRbacArgs(ns, OPERATOR_ACCOUNT, OPERATOR_RULES, app="orchestrator-operator"),
            opts=child,
        )
        self.api_rbac = ServiceAccountRbac(
            f"{name}-api-rbac",
            ServiceAccountRbacArgs(ns, API_ACCOUNT, API_RULES, app="orchestrator-api"),
            opts=child,
        )
        self.api_token_secret = k8s.core.v1.Secret(
            f"{name}-api-token",
            metadata=meta(args.api_token_secret_name, ns, "control-plane", app="orchestrator-api"),
            type="Opaque",
            string_data={TOKEN_KEY: pulumi.Output.secret(args.api_token)},
            opts=child,
        )
        self.api_read_token_secret = k8s.core.v1.Secret(
            f"{name}-api-read-token",
            metadata=meta(args.api_read_token_secret_name, ns, "control-plane", app="orchestrator-api"),
            type="Opaque",
            string_data={TOKEN_KEY: pulumi.Output.secret(args.api_read_token)},
            opts=child,
        )

        # --- operator ---------------------------------------------------------------------------------
        init_containers = []
        if args.chown_data:
            init_containers.append(
                k8s.core.v1.ContainerArgs(
                    name="data-owner",
                    image=args.chown_image,
                    command=["chown", f"{APP_UID}:{APP_UID}", OUTPUT_ROOT],
                    volume_mounts=[mount("data", OUTPUT_ROOT)],
                    resources=Resources("10m", "16Mi", "100m", "32Mi").args(),
                    security_context=k8s.core.v1.SecurityContextArgs(
                        run_as_user=0,
                        run_as_non_root=False,
                        read_only_root_filesystem=True,
                        allow_privilege_escalation=False,
                        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"], add=["CHOWN"]),
                        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                    ),
                )
            )
        operator = Workload(
            app="orchestrator-operator",
            component="control-plane",
            namespace=ns,
            recreate=True,  # one operator at a time
            service_account_name=self.operator_rbac.service_account_name,
            fs_group=APP_UID,
            init_containers=init_containers,
            policy_skips=CHOWN_SKIPS if args.chown_data else {},
            container=k8s.core.v1.ContainerArgs(
                name="operator",
                image=args.operator_image,
                ports=[k8s.core.v1.ContainerPortArgs(name="health", container_port=OPERATOR_HEALTH_PORT)],
                env=[
                    field_env("OPERATOR_NAMESPACE", "metadata.namespace"),
                    env("OPERATOR_OUTPUT_ROOT", OUTPUT_ROOT),
                    env("OPERATOR_DATA_PVC", args.data_claim_name),
                    env("OPERATOR_INGRESS_CLASS", args.module_ingress_class),
                    *(
                        [env("OPERATOR_INGRESS_HOST", args.module_ingress_host)]
                        if args.module_ingress_host
                        else []
                    ),
                    *(
                        [env("OPERATOR_INGRESS_TLS_SECRET", args.module_tls_secret)]
                        if args.module_tls_secret is not None
                        else []
                    ),
                    env("OPERATOR_OUTPUT_MAX_FILES", str(args.output_max_files)),
                    env("OPERATOR_OUTPUT_MAX_BYTES", str(args.output_max_bytes)),
                    env("OPERATOR_OUTPUT_MAX_DEPTH", str(args.output_max_depth)),
                    env("OPERATOR_LOG_MAX_BYTES", str(args.run_log_max_bytes)),
                    *(
                        [env("OPERATOR_IMAGE_PULL_POLICY", args.module_image_pull_policy)]
                        if args.module_image_pull_policy
                        else []
                    ),
                    *mongodb_env(args),
                    *solutions_env("OPERATOR", [s.place.model_dump() for s in args.solutions]),
                ],
                volume_mounts=[
                    mount("data", OUTPUT_ROOT),
                    mount("tmp", "/tmp"),  # noqa: S108
                    mongodb_secret_mount(),
                    kube_api_access_mount(),
                ],
                liveness_probe=http_probe(
                    OPERATOR_HEALTH_PATH, OPERATOR_HEALTH_PORT, initial_delay=10, period=20
                ),
                # Ready once kopf runs its handlers (it answers /healthz only then); nothing routes to it.
                readiness_probe=http_probe(
                    OPERATOR_HEALTH_PATH, OPERATOR_HEALTH_PORT, initial_delay=5, period=10
                ),
                resources=args.operator_resources.args(),
                security_context=restricted_security_context(),
            ),
            volumes=[
                k8s.core.v1.VolumeArgs(
                    name="data",
                    persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                        claim_name=args.data_claim_name
                    ),
                ),
                empty_dir("tmp"),
                mongodb_secret_volume(args),
                kube_api_access_volume(),
            ],
            placement=args.placement,
        )
        deployments = after_crd
        if args.deployment_hooks is not None:
            deployments = pulumi.ResourceOptions.merge(
                after_crd, pulumi.ResourceOptions(hooks=args.deployment_hooks)
            )
        self.operator_deployment = deployment(f"{name}-operator", operator, deployments)

        # --- API --------------------------------------------------------------------------------------
        spool_mib = max(64, 2 * math.ceil(args.max_upload_bytes / MIB))
        api = Workload(
            app="orchestrator-api",
            component="control-plane",
            namespace=ns,
            replicas=args.api_replicas,
            service_name=args.api_service_name,
            service_account_name=self.api_rbac.service_account_name,
            fs_group=APP_UID,
            container=k8s.core.v1.ContainerArgs(
                name="api",
                image=args.api_image,
                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=API_PORT)],
                env=[
                    env("API_TOKEN_FILE", f"{API_TOKEN_DIR}/{TOKEN_KEY}"),
                    env("API_READ_TOKEN_FILE", f"{API_READ_TOKEN_DIR}/{TOKEN_KEY}"),
                    field_env("API_NAMESPACE", "metadata.namespace"),
                    env("API_MAX_UPLOAD_BYTES", str(args.max_upload_bytes)),
                    env("API_CORS_ORIGINS", json.dumps(list(args.cors_origins))),
                    *mongodb_env(args),
                    *solutions_env("API", [s.api_entry() for s in args.solutions]),
                ],
                # Uploads beyond the in-memory spool go to /tmp: a bounded emptyDir, the root stays read-only.
                volume_mounts=[
                    mount("tmp", "/tmp"),  # noqa: S108
                    mount(API_TOKEN_VOLUME, API_TOKEN_DIR, read_only=True),
                    mount(API_READ_TOKEN_VOLUME, API_READ_TOKEN_DIR, read_only=True),
                    mongodb_secret_mount(),
                    kube_api_access_mount(),
                    *(m for s in args.solutions for m in s.api_mounts()),
                ],
                liveness_probe=http_probe(API_HEALTH_PATH, API_PORT, initial_delay=10, period=20),
                readiness_probe=http_probe(API_HEALTH_PATH, API_PORT, initial_delay=2, period=10),
                resources=args.api_resources.args(),
                security_context=restricted_security_context(),
            ),
            volumes=[
                k8s.core.v1.VolumeArgs(
                    name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=f"{spool_mib}Mi")
                ),
                secret_volume(API_TOKEN_VOLUME, self.api_token_secret.metadata.name),
                secret_volume(API_READ_TOKEN_VOLUME, self.api_read_token_secret.metadata.name),
                mongodb_secret_volume(args),
                kube_api_access_volume(),
                *(v for s in args.solutions for v in s.api_volumes()),
            ],
            service_ports=[service_port(API_SERVICE_PORT, API_PORT)],
            placement=args.placement,
        )
        self.api_deployment = deployment(f"{name}-api", api, deployments)
        self.api_service = service(f"{name}-api-service", api, child)
        self.api_ingress = None
        if args.ingress is not None:
            self.api_ingress = ingress(
                f"{name}-api-ingress",
                name="orchestrator-api-ingress",
                app="orchestrator-api",
                component="control-plane",
                namespace=ns,
                path=API_BASE_PATH,
                service_name=self.api_service.metadata.name,
                service_port_number=API_SERVICE_PORT,
                settings=args.ingress,
                annotations={
                    "nginx.ingress.kubernetes.io/proxy-body-size": args.body_size,
                    # Stream uploads to the API instead of buffering them in the controller.
                    "nginx.ingress.kubernetes.io/proxy-request-buffering": "off",
                    "nginx.ingress.kubernetes.io/proxy-read-timeout": "300",
                    "nginx.ingress.kubernetes.io/proxy-send-timeout": "300",
                },
                opts=child,
            )

        self.crd_name = self.crd.crd_name
        self.api_service_name = self.api_service.metadata.name
        self.api_token_secret_name = self.api_token_secret.metadata.name
        self.api_read_token_secret_name = self.api_read_token_secret.metadata.name
        self.api_url = f"http://{args.api_service_name}{API_BASE_PATH}/v1alpha1"
        self.api_path = API_BASE_PATH
        self.register_outputs(
            {
                "crd_name": self.crd_name,
                "api_service_name": self.api_service_name,
                "api_token_secret_name": self.api_token_secret_name,
                "api_read_token_secret_name": self.api_read_token_secret_name,
                "api_url": self.api_url,
            }
        )
