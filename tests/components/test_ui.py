"""UI modules: the base class, Grafana, Mongo Express, the frontend, and a subclass of a few lines."""

from __future__ import annotations

from typing import ClassVar

import pulumi
import pytest
import yaml

from components.common import IngressSettings
from components.ui import (
    DigitalHospFrontend,
    FrontendArgs,
    Grafana,
    GrafanaArgs,
    MongoExpress,
    MongoExpressArgs,
    UIModule,
    UIModuleArgs,
)

from .harness import run_program
from .k8s import container, env_of, mounts_of, ports_of, probe, selects, service_ports, volumes_of

INGRESS = IngressSettings(class_name="nginx", host="dtpoc.example.org")
GRAFANA_ADMIN = "grafana-admin-Pa55"


def ingress_path(ing) -> tuple[str | None, str, str, int]:
    rule = ing.inputs["spec"]["rules"][0]
    path = rule["http"]["paths"][0]
    backend = path["backend"]["service"]
    assert path["pathType"] == "Prefix"
    assert ing.inputs["spec"]["ingressClassName"] == "nginx"
    return rule.get("host"), path["path"], backend["name"], int(backend["port"]["number"])


def test_grafana() -> None:
    def program():
        args = GrafanaArgs(
            namespace="dtpoc",
            ingress=INGRESS,
            reader_secret_name="grafana-influxdb-reader",
            admin_password=pulumi.Output.secret(GRAFANA_ADMIN),
        )
        return Grafana("grafana", args)

    run = run_program(program)
    dep = run.one("Deployment", "grafana")
    c = container(dep)
    assert ports_of(c) == {3000}
    env = env_of(c)
    assert env["GF_SERVER_ROOT_URL"].endswith("/grafana/")
    assert env["GF_SERVER_SERVE_FROM_SUB_PATH"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"  # logins by default (grafanaAnonymous)
    assert "GF_AUTH_ANONYMOUS_ORG_ROLE" not in env
    assert env["GF_SECURITY_ALLOW_EMBEDDING"] == "true"
    assert env["INFLUX_READ_USER"] == ("secret", "grafana-influxdb-reader", "username")
    assert env["INFLUX_READ_PASSWORD"] == ("secret", "grafana-influxdb-reader", "password")
    assert env["GF_SECURITY_ADMIN_USER"] == ("secret", "grafana-admin", "username")
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == ("secret", "grafana-admin", "password")
    admin = run.one("Secret", "grafana-admin")
    assert admin.inputs["stringData"] == {"username": "admin", "password": GRAFANA_ADMIN} and admin.has_secret
    assert GRAFANA_ADMIN not in dep.dumps()
    assert mounts_of(c) == {
        "/etc/grafana/provisioning/datasources": ("datasources", None),
        "/var/lib/grafana": ("data", None),
    }
    assert volumes_of(dep)["datasources"]["configMap"] == {"name": "grafana-datasources"}
    provisioning = yaml.safe_load(run.one("ConfigMap", "grafana-datasources").inputs["data"]["influxdb.yaml"])
    (source,) = provisioning["datasources"]
    assert source["type"] == "influxdb"
    assert source["url"] == "http://influxdb:8086"
    assert source["user"] == "$INFLUX_READ_USER"  # expanded by Grafana from its env
    assert source["jsonData"] == {"dbName": "default", "httpMode": "POST"}
    assert source["secureJsonData"] == {"password": "$INFLUX_READ_PASSWORD"}
    assert probe(c, "livenessProbe") == ("tcp", None, 3000)

    svc = run.one("Service", "grafana")
    assert service_ports(svc) == [(80, 3000)]
    assert selects(svc, dep)
    assert ingress_path(run.one("Ingress", "grafana-ingress")) == (
        "dtpoc.example.org",
        "/grafana",
        "grafana",
        80,
    )


def test_mongo_express() -> None:
    args = MongoExpressArgs(namespace="dtpoc", ingress=INGRESS, mongodb_secret_name="mongodb-credentials")
    run = run_program(lambda: MongoExpress("mongo-express", args))
    dep = run.one("Deployment", "mongo-express")
    c = container(dep)
    assert ports_of(c) == {8081}
    env = env_of(c)
    assert env["ME_CONFIG_MONGODB_SERVER"] == "mongodb"
    assert env["ME_CONFIG_MONGODB_PORT"] == "27017"
    for var, key in [
        ("ME_CONFIG_MONGODB_ADMINUSERNAME", "username"),
        ("ME_CONFIG_MONGODB_ADMINPASSWORD", "password"),
        ("ME_CONFIG_BASICAUTH_USERNAME", "username"),
        ("ME_CONFIG_BASICAUTH_PASSWORD", "password"),
    ]:
        assert env[var] == ("secret", "mongodb-credentials", key)
    assert "ME_CONFIG_MONGODB_URL" not in env  # a URL would carry the password in plain text
    svc = run.one("Service", "mongo-express")
    assert service_ports(svc) == [(8081, 8081)]
    assert selects(svc, dep)
    assert run.kinds("Ingress") == []  # an admin tool: no public path


def test_frontend() -> None:
    args = FrontendArgs(
        namespace="dtpoc",
        ingress=INGRESS,
        env={"ORCHESTRATOR_URL": "http://api.example/v1"},
        api_read_token_secret_name="orchestrator-api-read-token",
    )
    run = run_program(lambda: DigitalHospFrontend("frontend", args))
    dep = run.one("Deployment", "digital-hosp-frontend")
    c = container(dep)
    assert ports_of(c) == {8000}
    # The read-only token: the frontend can show everything and change nothing.
    assert env_of(c) == {
        "ORCHESTRATOR_URL": "http://api.example/v1",
        "ORCHESTRATOR_TOKEN": ("secret", "orchestrator-api-read-token", "token"),
    }
    assert probe(c, "livenessProbe") == ("http", "/", 8000)
    assert probe(c, "readinessProbe") == ("http", "/", 8000)
    svc = run.one("Service", "digital-hosp-frontend-svc")
    assert service_ports(svc) == [(8000, 8000)]
    assert selects(svc, dep)
    assert ingress_path(run.one("Ingress", "digital-hosp-frontend-ingress")) == (
        "dtpoc.example.org",
        "/",
        "digital-hosp-frontend-svc",
        8000,
    )


def test_frontend_defaults_to_the_in_cluster_api() -> None:
    args = FrontendArgs(namespace="dtpoc", api_read_token_secret_name="orchestrator-api-read-token")
    run = run_program(lambda: DigitalHospFrontend("f", args))
    c = container(run.one("Deployment", "digital-hosp-frontend"))
    assert env_of(c)["ORCHESTRATOR_URL"] == "http://orchestrator-api-svc/api/orchestrator/v1alpha1"
    assert run.kinds("Ingress") == []  # no ingress settings, no Ingress


# The README's example, verbatim.
class Whoami(UIModule):
    image = "traefik/whoami:v1.10"
    port = 80
    path = "/whoami"


def test_a_ui_module_is_a_subclass_of_a_few_lines() -> None:
    run = run_program(lambda: Whoami("whoami", UIModuleArgs(namespace="dtpoc", ingress=INGRESS)))
    assert [r.typ for r in run.resources if not r.custom] == ["dtpoc:ui:Whoami"]
    dep = run.one("Deployment", "whoami")
    c = container(dep)
    assert c["image"] == "traefik/whoami:v1.10"
    assert ports_of(c) == {80}
    assert probe(c, "readinessProbe") == ("tcp", None, 80)
    svc = run.one("Service", "whoami")
    assert service_ports(svc) == [(80, 80)]
    assert ingress_path(run.one("Ingress", "whoami-ingress")) == (
        "dtpoc.example.org",
        "/whoami",
        "whoami",
        80,
    )


def test_subclass_options() -> None:
    class StatusBoard(UIModule):
        image = "nginx:1.27-alpine"
        port = 8080
        path = "/board"
        service_name = "board-svc"
        service_port = 80
        probe_path = "/healthz"
        env: ClassVar = {"MODE": "kiosk"}
        ingress_annotations: ClassVar = {"nginx.ingress.kubernetes.io/rewrite-target": "/"}

    args = UIModuleArgs(
        namespace="dtpoc", ingress=INGRESS, image="nginx:1.27", env={"EXTRA": "1"}, replicas=2
    )
    run = run_program(lambda: StatusBoard("board", args))
    dep = run.one("Deployment", "status-board")
    assert dep.inputs["spec"]["replicas"] == 2
    c = container(dep)
    assert c["image"] == "nginx:1.27"
    assert env_of(c) == {"MODE": "kiosk", "EXTRA": "1"}
    assert probe(c, "livenessProbe") == ("http", "/healthz", 8080)
    assert service_ports(run.one("Service", "board-svc")) == [(80, 8080)]
    ing = run.one("Ingress", "status-board-ingress")
    assert ing.metadata["annotations"] == {"nginx.ingress.kubernetes.io/rewrite-target": "/"}


def test_skip_await_only_without_a_controller() -> None:
    no_controller = IngressSettings(skip_await=True)
    run = run_program(lambda: Whoami("w", UIModuleArgs(namespace="dtpoc", ingress=no_controller)))
    ing = run.one("Ingress", "whoami-ingress")
    assert ing.metadata["annotations"] == {"pulumi.com/skipAwait": "true"}
    assert "host" not in ing.inputs["spec"]["rules"][0]


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"port": 80}, "image"),
        ({"image": "x:1"}, "port"),
        ({"image": "x:1", "port": 0}, "port"),
        ({"image": "x:1", "port": 80, "path": "no-slash"}, "path"),
        ({"image": "x:1", "port": 80, "app_name": "Not_A_Label"}, "DNS label"),
    ],
)
def test_incomplete_ui_modules_fail_with_a_clear_message(attrs: dict, message: str) -> None:
    cls = type("Broken", (UIModule,), attrs)
    with pytest.raises(ValueError, match=message):
        cls.validate_class()


def test_modules_refuse_the_wrong_args() -> None:
    with pytest.raises(TypeError, match="GrafanaArgs"):
        run_program(lambda: Grafana("g", UIModuleArgs(namespace="dtpoc")))
    with pytest.raises(ValueError, match="reader_secret_name"):
        GrafanaArgs(namespace="dtpoc")
    with pytest.raises(TypeError, match="FrontendArgs"):
        run_program(lambda: DigitalHospFrontend("f", UIModuleArgs(namespace="dtpoc")))
