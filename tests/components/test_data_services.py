"""MongoDB, InfluxDB, Mosquitto and Node-RED: names, ports, mounts, probes, env; secrets by reference."""

from __future__ import annotations

import json

import pulumi
import pytest

from components.influxdb import InfluxDB, InfluxDBArgs, derived_secret
from components.mongodb import MongoDB, MongoDBArgs
from components.mosquitto import Mosquitto, MosquittoArgs
from components.nodered import DEFAULT_FLOWS, NodeRed, NodeRedArgs

from .harness import run_program
from .k8s import container, env_of, mounts_of, ports_of, probe, selects, service_ports, volumes_of

PASSWORD = "mongo-root-Pa55"
INFLUX_PASSWORD = "influx-Pa55word"
INFLUX_TOKEN = "influx-token-0123456789abcdef"
MQTT = "mqtt-publisher-Pa55"
NODERED = "nodered-admin-Pa55"


def test_mongodb() -> None:
    run = run_program(
        lambda: MongoDB(
            "mongodb",
            MongoDBArgs(
                namespace="dtpoc", root_password=pulumi.Output.secret(PASSWORD), claim_name="mongodb-data"
            ),
        ),
        resolve_result=lambda m: {"service": m.service_name, "secret": m.secret_name},
    )
    assert run.outputs == {"service": "mongodb", "secret": "mongodb-credentials"}
    secret = run.one("Secret", "mongodb-credentials")
    assert secret.inputs["stringData"] == {"username": "root", "password": PASSWORD}
    assert secret.has_secret  # the password travels as a Pulumi secret

    dep = run.one("Deployment", "mongodb")
    c = container(dep)
    assert c["image"] == "mongo:7.0"
    assert ports_of(c) == {27017}
    assert env_of(c) == {
        "MONGO_INITDB_ROOT_USERNAME": ("secret", "mongodb-credentials", "username"),
        "MONGO_INITDB_ROOT_PASSWORD": ("secret", "mongodb-credentials", "password"),
    }
    assert mounts_of(c) == {"/data/db": ("data", None)}
    assert volumes_of(dep)["data"]["persistentVolumeClaim"] == {"claimName": "mongodb-data"}
    assert probe(c, "livenessProbe") == ("tcp", None, 27017)
    assert probe(c, "readinessProbe") == ("tcp", None, 27017)
    assert dep.inputs["spec"]["strategy"] == {"type": "Recreate"}
    assert set(c["resources"]) == {"requests", "limits"}

    svc = run.one("Service", "mongodb")
    assert service_ports(svc) == [(27017, 27017)]
    assert selects(svc, dep)
    assert PASSWORD not in dep.dumps() and PASSWORD not in svc.dumps()


def test_mongodb_without_claim_uses_an_empty_dir() -> None:
    run = run_program(
        lambda: MongoDB("m", MongoDBArgs(namespace="n", root_password=pulumi.Output.secret("x" * 8)))
    )
    assert volumes_of(run.one("Deployment", "mongodb"))["data"] == {"name": "data", "emptyDir": {}}


def test_literal_passwords_are_refused() -> None:
    with pytest.raises(ValueError, match="secret Output"):
        MongoDBArgs(namespace="n", root_password="password")
    with pytest.raises(ValueError, match="secret Output"):
        run_program(
            lambda: InfluxDBArgs(
                namespace="n", admin_password="password", admin_token=pulumi.Output.secret("t")
            )
        )


def test_influxdb() -> None:
    run = run_program(
        lambda: InfluxDB(
            "influxdb",
            InfluxDBArgs(
                namespace="dtpoc",
                admin_password=pulumi.Output.secret(INFLUX_PASSWORD),
                admin_token=pulumi.Output.secret(INFLUX_TOKEN),
                claim_name="influxdb-data",
            ),
        ),
        resolve_result=lambda i: {"service": i.service_name, "url": i.url},
    )
    assert run.outputs == {"service": "influxdb", "url": "http://influxdb:8086"}
    secret = run.one("Secret", "influxdb-credentials")
    assert secret.inputs["stringData"] == {
        "username": "admin",
        "password": INFLUX_PASSWORD,
        "token": INFLUX_TOKEN,
    }

    dep = run.one("Deployment", "influxdb")
    c = container(dep)
    assert ports_of(c) == {8086}
    assert env_of(c) == {
        "DOCKER_INFLUXDB_INIT_MODE": "setup",
        "DOCKER_INFLUXDB_INIT_USERNAME": ("secret", "influxdb-credentials", "username"),
        "DOCKER_INFLUXDB_INIT_PASSWORD": ("secret", "influxdb-credentials", "password"),
        "DOCKER_INFLUXDB_INIT_ORG": "camdt",
        "DOCKER_INFLUXDB_INIT_BUCKET": "default",
        "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN": ("secret", "influxdb-credentials", "token"),
        "INFLUX_READ_USER": ("secret", "grafana-influxdb-reader", "username"),
        "INFLUX_READ_PASSWORD": ("secret", "grafana-influxdb-reader", "password"),
    }
    assert mounts_of(c) == {
        "/var/lib/influxdb2": ("data", "data"),
        "/etc/influxdb2": ("data", "config"),
        "/docker-entrypoint-initdb.d": ("init", None),
    }
    assert volumes_of(dep)["init"]["configMap"] == {"name": "influxdb-init", "defaultMode": 0o555}
    reader = run.one("Secret", "grafana-influxdb-reader").inputs["stringData"]
    assert reader["username"] == "grafana"
    assert reader["password"] == derived_secret(INFLUX_TOKEN, "influxdb-reader") != INFLUX_TOKEN
    assert run.one("Secret", "grafana-influxdb-reader").has_secret
    assert volumes_of(dep)["data"]["persistentVolumeClaim"] == {"claimName": "influxdb-data"}
    assert probe(c, "livenessProbe") == ("http", "/health", 8086)
    assert probe(c, "readinessProbe") == ("http", "/ready", 8086)
    svc = run.one("Service", "influxdb")
    assert service_ports(svc) == [(8086, 8086)]
    assert selects(svc, dep)
    for value in (INFLUX_PASSWORD, INFLUX_TOKEN):
        assert value not in dep.dumps()


def test_mosquitto() -> None:
    run = run_program(
        lambda: Mosquitto(
            "mosquitto", MosquittoArgs(namespace="dtpoc", publisher_password=pulumi.Output.secret(MQTT))
        ),
        resolve_result=lambda m: {"url": m.url},
    )
    assert run.outputs["url"] == "tcp://mosquitto:1883"
    conf = run.one("ConfigMap", "mosquitto-config").inputs["data"]["mosquitto.conf"].splitlines()
    assert "listener 1883" in conf
    assert "persistence true" in conf
    assert "persistence_location /mosquitto/data/" in conf
    assert "allow_anonymous true" in conf  # ... to read only: see the acl, and test_mosquitto_broker.py
    dep = run.one("Deployment", "mosquitto")
    c = container(dep)
    assert ports_of(c) == {1883}
    assert mounts_of(c) == {
        "/mosquitto/config/mosquitto.conf": ("config", "mosquitto.conf"),
        "/mosquitto/config/acl": ("config", "acl"),
        "/mosquitto/auth": ("auth", None),
        "/mosquitto/data": ("data", None),
    }
    assert volumes_of(dep)["auth"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Mi"}
    assert run.one("Secret", "mosquitto-publisher").inputs["stringData"] == {
        "username": "publisher",
        "password": MQTT,
    }
    assert MQTT not in dep.dumps()
    assert volumes_of(dep)["config"]["configMap"] == {"name": "mosquitto-config"}
    assert probe(c, "livenessProbe") == ("tcp", None, 1883)
    assert c["securityContext"]["runAsUser"] == 1883 and c["securityContext"]["runAsNonRoot"] is True
    svc = run.one("Service", "mosquitto")
    assert service_ports(svc) == [(1883, 1883)]
    assert selects(svc, dep)


def test_mosquitto_with_a_claim_persists_there() -> None:
    run = run_program(
        lambda: Mosquitto(
            "m",
            MosquittoArgs(
                namespace="dtpoc", claim_name="mqtt-data", publisher_password=pulumi.Output.secret(MQTT)
            ),
        )
    )
    dep = run.one("Deployment", "mosquitto")
    assert volumes_of(dep)["data"]["persistentVolumeClaim"] == {"claimName": "mqtt-data"}
    assert dep.inputs["spec"]["strategy"] == {"type": "Recreate"}


def test_nodered() -> None:
    run = run_program(
        lambda: NodeRed(
            "nodered", NodeRedArgs(namespace="dtpoc", admin_password=pulumi.Output.secret(NODERED))
        )
    )
    flows = run.one("ConfigMap", "nodered-flows").inputs["data"]["flows.json"]
    assert json.loads(flows) == DEFAULT_FLOWS
    dep = run.one("Deployment", "nodered")
    c = container(dep)
    assert ports_of(c) == {1880}
    assert mounts_of(c) == {
        "/data": ("data", None),
        "/data/flows.json": ("flows", "flows.json"),
        "/data/settings.js": ("settings", "settings.js"),
    }
    assert volumes_of(dep)["flows"]["configMap"] == {"name": "nodered-flows"}
    assert env_of(c) == {
        "NODE_RED_ADMIN_USER": ("secret", "nodered-admin", "username"),
        "NODE_RED_ADMIN_PASSWORD": ("secret", "nodered-admin", "password"),
    }
    assert run.one("Secret", "nodered-admin").inputs["stringData"] == {
        "username": "admin",
        "password": NODERED,
    }
    assert NODERED not in dep.dumps()
    assert probe(c, "readinessProbe") == ("http", "/", 1880)
    svc = run.one("Service", "nodered")
    assert service_ports(svc) == [(80, 1880)]
    assert selects(svc, dep)


def test_nodered_flows_must_be_a_json_list() -> None:
    def args(**fields: str) -> NodeRedArgs:
        return NodeRedArgs(namespace="n", admin_password=pulumi.Output.secret(NODERED), **fields)

    with pytest.raises(ValueError, match="not valid JSON"):
        run_program(lambda: args(flows_json="{nope"))
    with pytest.raises(ValueError, match="JSON list"):
        run_program(lambda: args(flows_json='{"id": 1}'))
    with pytest.raises(ValueError, match="secret Output"):
        NodeRedArgs(namespace="n", admin_password="literal-password")
