"""MongoDB: the platform's records and files (GridFS). Root credentials live in a Secret of this component
(keys `username`, `password`); everything else reads them from there by reference."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .common import (
    ENV_SECRET_SKIP,
    LARGE,
    ROOT_ENTRYPOINT_SKIPS,
    THIRD_PARTY_IMAGE_SKIPS,
    Resources,
    Workload,
    baseline_security_context,
    check_dns_label,
    child_options,
    claim_or_empty_dir,
    deployment,
    meta,
    mount,
    secret_env,
    service,
    service_port,
    tcp_probe,
)

PORT = 27017
USERNAME_KEY = "username"
PASSWORD_KEY = "password"  # noqa: S105 (a key name, not a value)


@dataclass(frozen=True)
class MongoDBArgs:
    """`root_password` is a Pulumi secret (config.require_secret); `claim_name` a PVC mounted at /data/db
    (None: an emptyDir, data lost with the pod)."""

    namespace: str
    root_password: pulumi.Input[str]
    root_username: str = "root"
    claim_name: pulumi.Input[str] | None = None
    image: str = "mongo:7.0"
    service_name: str = "mongodb"
    secret_name: str = "mongodb-credentials"  # noqa: S105 (a key name, not a value)
    resources: Resources = LARGE

    def __post_init__(self) -> None:
        check_dns_label(self.service_name, "MongoDBArgs.service_name")
        check_dns_label(self.secret_name, "MongoDBArgs.secret_name")
        if not self.root_username:
            raise ValueError("MongoDBArgs.root_username must not be empty")
        if isinstance(self.root_password, str):
            raise ValueError("MongoDBArgs.root_password must be a Pulumi secret Output, not a plain string")


class MongoDB(pulumi.ComponentResource):
    """Deployment `mongodb` + Service `mongodb:27017` + Secret with the root credentials."""

    service_name: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    host: str
    port: int = PORT
    username_key: str = USERNAME_KEY
    password_key: str = PASSWORD_KEY

    def __init__(self, name: str, args: MongoDBArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dtpoc:mongodb:MongoDB", name, None, opts)
        child = child_options(self, opts)
        app, component = "mongodb", "database"

        self.secret = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=meta(args.secret_name, args.namespace, component, app=app),
            type="Opaque",
            string_data={
                USERNAME_KEY: args.root_username,
                PASSWORD_KEY: pulumi.Output.secret(args.root_password),
            },
            opts=child,
        )
        self.secret_name = self.secret.metadata.name

        w = Workload(
            app=app,
            component=component,
            namespace=args.namespace,
            service_name=args.service_name,
            recreate=True,  # one mongod per data folder (it holds a lock file)
            container=k8s.core.v1.ContainerArgs(
                name="mongodb",
                image=args.image,
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
        )
        self.deployment = deployment(f"{name}-deployment", w, child)
        self.service = service(f"{name}-service", w, child)
        self.service_name = self.service.metadata.name
        self.host = args.service_name
        self.register_outputs({"service_name": self.service_name, "secret_name": self.secret_name})
