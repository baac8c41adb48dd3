"""mongodbEngine: FerretDB in MongoDB's place for the local stack, behind the same Service and Secret; its
clients (Mongo Express) log in with PLAIN. MongoDB itself stays the default, unchanged."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from components.config import ConfigError
from components.mongodb import FERRETDB_UID, MongoDB, MongoDBArgs, MongoDBEngine

from .conftest import build_platform
from .harness import SECRETS, run_program
from .k8s import container, env_of, mounts_of, pod_spec, ports_of, probe, selects, service_ports, volumes_of
from .test_config import load

PASSWORD = "mongo-root-Pa55"


def ferretdb(**args: Any) -> Any:
    return run_program(
        lambda: MongoDB(
            "mongodb",
            MongoDBArgs(
                namespace="dtpoc",
                root_password=pulumi.Output.secret(PASSWORD),
                claim_name="mongodb-data",
                engine=MongoDBEngine.FERRETDB,
                **args,
            ),
        ),
        resolve_result=lambda m: {"service": m.service_name, "secret": m.secret_name},
    )


def test_ferretdb_serves_the_same_service_and_secret() -> None:
    run = ferretdb()
    assert run.outputs == {"service": "mongodb", "secret": "mongodb-credentials"}
    secret = run.one("Secret", "mongodb-credentials")
    assert secret.inputs["stringData"] == {"username": "root", "password": PASSWORD}
    assert secret.has_secret

    dep = run.one("Deployment", "mongodb")
    c = container(dep)
    assert c["image"] == "ghcr.io/ferretdb/ferretdb:1.24.2"
    # Flags that our image and FerretDB's own both understand; the handler for FerretDB's own from env.
    assert c["args"] == ["--listen-addr=:27017", "--sqlite-url=file:/state/"]
    assert env_of(c) == {"FERRETDB_HANDLER": "sqlite", "FERRETDB_TELEMETRY": "disable"}
    assert "command" not in c
    assert ports_of(c) == {27017}
    assert mounts_of(c) == {"/state": ("data", None), "/tmp": ("tmp", None)}
    assert volumes_of(dep)["data"]["persistentVolumeClaim"] == {"claimName": "mongodb-data"}
    assert volumes_of(dep)["tmp"] == {"name": "tmp", "emptyDir": {}}
    assert probe(c, "readinessProbe") == ("tcp", None, 27017)
    assert dep.inputs["spec"]["strategy"] == {"type": "Recreate"}

    svc = run.one("Service", "mongodb")
    assert service_ports(svc) == [(27017, 27017)]
    assert selects(svc, dep)
    assert PASSWORD not in dep.dumps() and PASSWORD not in svc.dumps()


def test_ferretdb_runs_unprivileged_with_a_read_only_root() -> None:
    dep = ferretdb().one("Deployment", "mongodb")
    sc = container(dep)["securityContext"]
    assert (sc["runAsUser"], sc["runAsNonRoot"], sc["readOnlyRootFilesystem"]) == (FERRETDB_UID, True, True)
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["allowPrivilegeEscalation"] is False
    assert pod_spec(dep)["securityContext"]["fsGroup"] == FERRETDB_UID
    assert "initContainers" not in pod_spec(dep)


def test_ferretdb_on_a_host_path_volume_gets_its_folder_handed_over_first() -> None:
    dep = ferretdb(chown_data=True, chown_image="registry.local/tools:1").one("Deployment", "mongodb")
    (init,) = pod_spec(dep)["initContainers"]
    assert init["image"] == "registry.local/tools:1"
    assert init["command"] == ["chown", f"{FERRETDB_UID}:{FERRETDB_UID}", "/state"]
    assert mounts_of(init) == {"/state": ("data", None)}
    assert init["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}


def test_chown_is_refused_for_mongo_which_does_it_itself() -> None:
    with pytest.raises(ValueError, match="chown_data is for the ferretdb engine"):
        run_program(
            lambda: MongoDBArgs(namespace="n", root_password=pulumi.Output.secret("x" * 8), chown_data=True)
        )


def platform_env(config: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    run = build_platform({"ingressController": "none", **config})
    return run, env_of(container(run.one("Deployment", "mongo-express")))


def test_the_platform_with_ferretdb_on_host_path_storage() -> None:
    run, me_env = platform_env(
        {"mongodbEngine": "ferretdb", "mongodbImage": "localhost:5000/dtpoc-ferretdb:1.24.2"}
    )
    dep = run.one("Deployment", "mongodb")
    assert container(dep)["image"] == "localhost:5000/dtpoc-ferretdb:1.24.2"
    assert [i["name"] for i in pod_spec(dep)["initContainers"]] == ["data-owner"]  # hostPath by default
    # Mongo Express names the mechanism in its URL; the kubelet fills in the credentials from the Secret.
    assert me_env["ME_CONFIG_MONGODB_URL"] == (
        "mongodb://$(ME_CONFIG_MONGODB_ADMINUSERNAME):$(ME_CONFIG_MONGODB_ADMINPASSWORD)@mongodb:27017/"
        "?authMechanism=PLAIN"
    )
    assert me_env["ME_CONFIG_MONGODB_ADMINPASSWORD"] == ("secret", "mongodb-credentials", "password")
    assert "ME_CONFIG_MONGODB_SERVER" not in me_env  # it would make Mongo Express ignore the URL
    names = [e["name"] for e in container(run.one("Deployment", "mongo-express"))["env"]]
    assert names.index("ME_CONFIG_MONGODB_ADMINPASSWORD") < names.index(
        "ME_CONFIG_MONGODB_URL"
    )  # $(VAR) order
    for deployment in run.kinds("Deployment"):
        assert SECRETS["mongodbPassword"] not in deployment.dumps()


def test_ferretdb_on_dynamic_storage_needs_no_chown() -> None:
    run, _ = platform_env({"mongodbEngine": "ferretdb", "storageMode": "dynamic"})
    assert "initContainers" not in pod_spec(run.one("Deployment", "mongodb"))


def test_mongodb_stays_the_default_engine() -> None:
    run, me_env = platform_env({})
    c = container(run.one("Deployment", "mongodb"))
    assert c["image"] == "mongo:7.0"
    assert "MONGO_INITDB_ROOT_PASSWORD" in env_of(c)
    assert (me_env["ME_CONFIG_MONGODB_SERVER"], "ME_CONFIG_MONGODB_URL" in me_env) == ("mongodb", False)


def test_image_keys_reach_their_pieces() -> None:
    run, _ = platform_env(
        {
            "mongodbImage": "registry.local/mongo:7.0.1",
            "mosquittoImage": "registry.local/mosquitto:2",
            "noderedImage": "registry.local/node-red:4",
            "mongoExpressImage": "registry.local/mongo-express:1",
        }
    )
    images = {d.k8s_name: container(d)["image"] for d in run.kinds("Deployment")}
    assert images["mongodb"] == "registry.local/mongo:7.0.1"
    assert images["mosquitto"] == "registry.local/mosquitto:2"
    assert images["nodered"] == "registry.local/node-red:4"
    assert images["mongo-express"] == "registry.local/mongo-express:1"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"mongodbEngine": "postgres"}, "mongodbEngine must be one of mongodb, ferretdb"),
        ({"mongodbImage": "Not An Image"}, "mongodbImage must be an image reference"),
        ({"noderedImage": ""}, "noderedImage must be an image reference"),
    ],
)
def test_wrong_engine_config_fails_with_a_clear_message(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(config)
