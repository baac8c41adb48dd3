"""MongoDB: the platform's records and files (GridFS). Root credentials live in a Secret of this component
(keys `username`, `password`); everything else reads them from there by reference.

Two engines serve it under the same Service `mongodb:27017` and the same Secret: MongoDB itself (the mongo
image, every real environment) or FerretDB 1.x on SQLite (a MongoDB wire-protocol server, for the local
stack, whose machines cannot pull the mongo image). FerretDB 1.x with SQLite checks no credentials: clients
log in with the PLAIN mechanism (`MongoDB.auth_mechanism`), which it accepts as given. A stand-in for local
use, never an environment's database."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pulumi
import pulumi_kubernetes as k8s

from .common import (
    ANYWHERE,
    ENV_SECRET_SKIP,
    LARGE,
    PASSWORD_KEY,
    ROOT_ENTRYPOINT_SKIPS,
    THIRD_PARTY_IMAGE_SKIPS,
    USERNAME_KEY,
    Placement,
    Resources,
    Workload,
    baseline_security_context,
    check_dns_label,
    child_options,
    claim_or_empty_dir,
    credentials_secret,
    data_owner_init_container,
    deployment,
    empty_dir,
    env,
    meta,
    mount,
    restricted_security_context,
    secret_env,
    service,
    service_port,
    tcp_probe,
)

PORT = 27017
# FerretDB runs as this uid with its SQLite files in STATE (images/ferretdb/Dockerfile).
FERRETDB_UID = 10001
FERRETDB_STATE = "/state"
FERRETDB_TMP = "/tmp"  # noqa: S108 (a pod-private emptyDir there, for SQLite temp files)


class MongoDBEngine(StrEnum):
    MONGODB = "mongodb"
    FERRETDB = "ferretdb"


DEFAULT_IMAGES = {
    MongoDBEngine.MONGODB: "mongo:7.0",
    MongoDBEngine.FERRETDB: "ghcr.io/ferretdb/ferretdb:1.24.2",
}


@dataclass(frozen=True)
class MongoDBArgs:
    """`root_password` is a Pulumi secret (config.require_secret); `claim_name` a PVC for the data (None: an
    emptyDir, data lost with the pod). `image` None: the engine's default image. `chown_data` (FerretDB only,
    which runs as uid 10001): a root init container `chown_image` hands the data folder to that uid first,
    for hostPath volumes, which ignore fsGroup (mongo's own entrypoint does this itself)."""

    namespace: str
    root_password: pulumi.Input[str]
    root_username: str = "root"
    claim_name: pulumi.Input[str] | None = None
    engine: MongoDBEngine = MongoDBEngine.MONGODB
    image: str | None = None
    service_name: str = "mongodb"
    secret_name: str = "mongodb-credentials"  # noqa: S105 (a key name, not a value)
    resources: Resources = LARGE
    chown_data: bool = False
    chown_image: str = "busybox:1.36"
    placement: Placement = ANYWHERE

    def __post_init__(self) -> None:
        check_dns_label(self.service_name, "MongoDBArgs.service_name")
        check_dns_label(self.secret_name, "MongoDBArgs.secret_name")
        object.__setattr__(self, "engine", MongoDBEngine(self.engine))
        if not self.root_username:
            raise ValueError("MongoDBArgs.root_username must not be empty")
        if isinstance(self.root_password, str):
            raise ValueError("MongoDBArgs.root_password must be a Pulumi secret Output, not a plain string")
        if self.chown_data and self.engine is not MongoDBEngine.FERRETDB:
            raise ValueError(
                "MongoDBArgs.chown_data is for the ferretdb engine (mongo chowns its data itself)"
            )

    @property
    def effective_image(self) -> str:
        return self.image or DEFAULT_IMAGES[self.engine]


class MongoDB(pulumi.ComponentResource):
    """Deployment `mongodb` + Service `mongodb:27017` + Secret with the root credentials."""

    service_name: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    host: str
    port: int = PORT
    username_key: str = USERNAME_KEY
    password_key: str = PASSWORD_KEY
    # The authentication mechanism clients must name (None: the driver's default, SCRAM).
    auth_mechanism: str | None

    def __init__(self, name: str, args: MongoDBArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dtpoc:mongodb:MongoDB", name, None, opts)
        child = child_options(self, opts)
        app, component = "mongodb", "database"

        self.secret = credentials_secret(
            f"{name}-credentials",
            meta(args.secret_name, args.namespace, component, app=app),
            args.root_username,
            args.root_password,
            child,
        )
        self.secret_name = self.secret.metadata.name

        ferretdb = args.engine is MongoDBEngine.FERRETDB
        w = self._ferretdb(args) if ferretdb else self._mongo(args)
        self.deployment = deployment(f"{name}-deployment", w, child)
        self.service = service(f"{name}-service", w, child)
        self.service_name = self.service.metadata.name
        self.host = args.service_name
        self.auth_mechanism = "PLAIN" if ferretdb else None
        self.register_outputs({"service_name": self.service_name, "secret_name": self.secret_name})

    def _mongo(self, args: MongoDBArgs) -> Workload:
        return Workload(
            app="mongodb",
            component="database",
            namespace=args.namespace,
            service_name=args.service_name,
            recreate=True,  # one mongod per data folder (it holds a lock file)
            container=k8s.core.v1.ContainerArgs(
                name="mongodb",
                image=args.effective_image,
                ports=[k8s.core.v1.ContainerPortArgs(name="mongodb", container_port=PORT)],
                env=[
                    secret_env("MONGO_INITDB_ROOT_USERNAME", self.secret_name, USERNAME_KEY),
                    secret_env("MONGO_INITDB_ROOT_PASSWORD", self.secret_name, PASSWORD_KEY),
                ],
                volume_mounts=[mount("data", "/data/db")],
                liveness_probe=tcp_probe(PORT, initial_delay=20, period=20),
                readiness_probe=tcp_probe(PORT, initial_delay=5, period=10),
                resources=args.resources.args(),
                security_context=baseline_security_context(),
            ),
            volumes=[claim_or_empty_dir("data", args.claim_name)],
            service_ports=[service_port(PORT, PORT, name="mongodb")],
            policy_skips={
                **THIRD_PARTY_IMAGE_SKIPS,
                **ROOT_ENTRYPOINT_SKIPS,
                "CKV_K8S_35": ENV_SECRET_SKIP,
            },
            placement=args.placement,
        )

    def _ferretdb(self, args: MongoDBArgs) -> Workload:
        skips = {k: v for k, v in THIRD_PARTY_IMAGE_SKIPS.items() if k != "CKV_K8S_22"}
        init_containers = []
        if args.chown_data:
            init_containers.append(
                data_owner_init_container(args.chown_image, FERRETDB_UID, "data", FERRETDB_STATE)
            )
            skips["CKV_K8S_25"] = (
                "the data-owner init container needs CHOWN, as root, to hand a hostPath folder to 10001"
            )
        return Workload(
            app="mongodb",
            component="database",
            namespace=args.namespace,
            service_name=args.service_name,
            recreate=True,  # one server per SQLite folder
            fs_group=FERRETDB_UID,
            init_containers=init_containers,
            container=k8s.core.v1.ContainerArgs(
                name="mongodb",
                image=args.effective_image,
                # Flags both our image (a FerretDB build of ours) and FerretDB's own image understand; its
                # own image also needs the handler named, which it reads from the environment.
                args=[f"--listen-addr=:{PORT}", f"--sqlite-url=file:{FERRETDB_STATE}/"],
                env=[env("FERRETDB_HANDLER", "sqlite"), env("FERRETDB_TELEMETRY", "disable")],
                ports=[k8s.core.v1.ContainerPortArgs(name="mongodb", container_port=PORT)],
                volume_mounts=[mount("data", FERRETDB_STATE), mount("tmp", FERRETDB_TMP)],
                liveness_probe=tcp_probe(PORT, initial_delay=10, period=20),
                readiness_probe=tcp_probe(PORT, initial_delay=2, period=10),
                resources=args.resources.args(),
                security_context=restricted_security_context(),
            ),
            volumes=[claim_or_empty_dir("data", args.claim_name), empty_dir("tmp")],
            service_ports=[service_port(PORT, PORT, name="mongodb")],
            policy_skips=skips,
            placement=args.placement,
        )
