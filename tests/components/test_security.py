"""The platform as three attackers meet it (issue 11): the author of a module image, someone who reaches the
ingress, a holder of a token. Each test names the finding it proves; all under Pulumi's mocks, on the
manifests a stack would apply (what only a real node can show is listed in the README's threat model)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.config import ConfigError
from components.ingress_nginx import IngressNginxArgs
from services.operator import workloads
from services.operator.settings import OperatorSettings

from .conftest import build_platform
from .harness import Run
from .k8s import container, env_of, pod_spec, volumes_of
from .test_config import stack_config

REPO = Path(__file__).resolve().parents[2]
SID = "669a52d1364a1b751c550d56"
PLATFORM_APPS = [
    "mongodb", "influxdb", "mosquitto", "nodered", "di-light", "di-temp", "orchestrator-api",
    "orchestrator-operator", "grafana", "mongo-express", "digital-hosp-frontend",
]  # fmt: skip


def module_pod_labels(image: str, job_type: str = "ondemand") -> dict[str, str]:
    fields: dict[str, Any] = {"image": image, "jobType": job_type}
    fields |= {"reps": 1} if job_type != "persistent" else {"port": 8086}
    if job_type == "scheduled":
        fields["schedule"] = "* * * * *"
    spec = workloads.AnalyticsSpec.parse(fields)
    return workloads.pod_template(SID, spec, OperatorSettings(data_pvc="data"))["metadata"]["labels"]


def matches(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


def platform_selectors(run: Run) -> list[tuple[str, dict[str, str]]]:
    """Every label selector of the platform that picks pods it trusts: Service and Deployment selectors,
    and the pods a NetworkPolicy protects or admits as clients (the module egress policy is the one that
    selects module pods on purpose)."""
    found = []
    for svc in run.kinds("Service"):
        found.append((f"Service {svc.k8s_name}", svc.inputs["spec"]["selector"]))
    for dep in run.kinds("Deployment"):
        found.append((f"Deployment {dep.k8s_name}", dep.inputs["spec"]["selector"]["matchLabels"]))
    for pol in run.kinds("NetworkPolicy"):
        spec = pol.inputs["spec"]
        if "Egress" in spec["policyTypes"]:
            continue
        found.append((f"NetworkPolicy {pol.k8s_name}", spec["podSelector"]["matchLabels"]))
        for rule in spec.get("ingress") or []:
            for peer in rule.get("from") or []:
                if "podSelector" in peer:
                    found.append((f"NetworkPolicy {pol.k8s_name} peer", peer["podSelector"]["matchLabels"]))
    return found


# --- H1: modules get no database credentials and no path to MongoDB ---


def test_h1_mongodb_admits_no_module_pod(platform: Run) -> None:
    spec = platform.one("NetworkPolicy", "mongodb-ingress").inputs["spec"]
    (rule,) = spec["ingress"]
    peers = [p["podSelector"]["matchLabels"] for p in rule["from"]]
    for job_type in ("ondemand", "scheduled", "persistent"):
        labels = module_pod_labels("ghcr.io/x/des:1", job_type)
        assert not any(matches(peer, labels) for peer in peers), job_type


def test_h1_the_operator_hands_no_database_secret_to_modules(platform: Run) -> None:
    env = env_of(container(platform.one("Deployment", "orchestrator-operator")))
    assert "OPERATOR_MONGODB_SECRET" not in env
    assert not [k for k, v in env.items() if k.startswith("OPERATOR_") and v == "mongodb-credentials"]


# --- H2: no image name makes a module pod a backend or a trusted client ---

hostile_images = st.one_of(
    st.sampled_from(PLATFORM_APPS).flatmap(
        lambda app: st.sampled_from(
            [app, f"evil.example/{app}", f"evil.example/x/{app}:1", f"{app}@sha256:0"]
        )
    ),
    st.from_regex(r"[a-z0-9]{1,10}(/[a-z0-9-]{1,20}){0,2}(:[a-z0-9.]{1,8})?", fullmatch=True),
)


@given(image=hostile_images, job_type=st.sampled_from(["ondemand", "scheduled", "persistent"]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_h2_platform_selectors_never_match_a_module_pod(platform: Run, image: str, job_type: str) -> None:
    labels = module_pod_labels(image, job_type)
    for what, selector in platform_selectors(platform):
        assert not matches(selector, labels), f"{what} selects the module image {image!r}"


def test_h2_every_platform_pod_matches_its_own_selectors(platform: Run) -> None:
    # ... and the platform's own selectors still find the platform's pods.
    for svc in platform.kinds("Service"):
        selected = [
            d
            for d in platform.kinds("Deployment")
            if matches(svc.inputs["spec"]["selector"], d.inputs["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(selected) == 1, svc.k8s_name


# --- H4: a fixed ingress-nginx, and module pods kept from its admission webhook ---


def chart_version(run: Run) -> tuple[int, ...]:
    (release,) = run.of_type("kubernetes:helm.sh/v3:Release")
    return tuple(int(x) for x in release.inputs["version"].split("."))


def test_h4_the_installed_chart_carries_the_cve_2025_1974_fix(build) -> None:
    version = chart_version(build({"ingressController": "install"}))
    assert version >= (4, 12, 1) or (4, 11, 5) <= version < (4, 12, 0), version
    with pytest.raises(ValueError, match="CVE-2025-1974"):
        IngressNginxArgs(chart_version="4.10.1")
    with pytest.raises(ValueError, match="CVE-2025-1974"):
        IngressNginxArgs(chart_version="4.12.0")
    IngressNginxArgs(chart_version="4.11.5")


def module_egress(run: Run) -> dict[str, Any]:
    return run.one("NetworkPolicy", "modules-egress").inputs["spec"]


def test_h4_m9_module_pods_may_reach_dns_only(platform: Run) -> None:
    spec = module_egress(platform)
    assert spec["policyTypes"] == ["Egress"]
    for job_type in ("ondemand", "scheduled", "persistent"):
        assert matches(spec["podSelector"]["matchLabels"], module_pod_labels("x/m:1", job_type))
    for dep in platform.kinds("Deployment"):  # platform pods are not restricted by it
        assert not matches(
            spec["podSelector"]["matchLabels"], dep.inputs["spec"]["template"]["metadata"]["labels"]
        )
    # One rule: port 53 (the cluster's resolver, wherever it runs) and nothing else: no admission webhook
    # (8443), no database, no API server, no other pod.
    (rule,) = spec["egress"]
    assert sorted((p["protocol"], p["port"]) for p in rule["ports"]) == [("TCP", 53), ("UDP", 53)]
    assert "to" not in rule


def test_m9_module_egress_to_configured_networks_only(build) -> None:
    run = build({"ingressController": "none", "moduleEgressCidrs": ["203.0.113.0/24"]})
    dns, extra = module_egress(run)["egress"]
    assert "to" not in dns
    assert extra == {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}
    with pytest.raises(ConfigError, match="moduleEgressCidrs"):
        build({"ingressController": "none", "moduleEgressCidrs": ["not-a-network"]})


# --- M7: TLS per stack, HTTP redirected to HTTPS ---


def assert_tls_everywhere(run: Run, host: str, secret: str) -> None:
    ingresses = run.kinds("Ingress")
    assert ingresses
    for ing in ingresses:
        assert ing.inputs["spec"]["tls"] == [{"hosts": [host], "secretName": secret}], ing.k8s_name
        annotations = ing.metadata["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true", ing.k8s_name
    env = env_of(container(run.one("Deployment", "orchestrator-operator")))
    assert env["OPERATOR_INGRESS_TLS_SECRET"] == secret


def test_m7_tls_from_an_existing_secret(build) -> None:
    run = build({"ingressController": "external", "ingressHost": "dt.example.org", "tlsSecretName": "dt-tls"})
    assert_tls_everywhere(run, "dt.example.org", "dt-tls")


def test_m7_tls_with_a_certificate_made_by_the_program(build) -> None:
    run = build({"ingressController": "external", "ingressHost": "dt.example.org", "tlsSelfSigned": True})
    (material,) = [r for r in run.resources if r.typ == "pulumi-python:dynamic:Resource"]
    assert material.inputs["hosts"] == ["dt.example.org"]
    assert len(run.of_type("dtpoc:tls:SelfSignedCertificate")) == 1
    secret = run.one("Secret", "dtpoc-tls")
    assert secret.inputs["type"] == "kubernetes.io/tls"
    assert_tls_everywhere(run, "dt.example.org", "dtpoc-tls")


def test_m7_tls_needs_a_host_and_one_source(build) -> None:
    with pytest.raises(ConfigError, match="ingressHost"):
        build({"ingressController": "none", "tlsSecretName": "dt-tls"})
    with pytest.raises(ConfigError, match="either"):
        build({"ingressHost": "dt.example.org", "tlsSecretName": "x", "tlsSelfSigned": True})


def test_m7_the_prod_example_serves_https() -> None:
    run = build_platform(stack_config("prod"))
    host = stack_config("prod")["ingressHost"]
    assert_tls_everywhere(run, host, stack_config("prod")["tlsSecretName"])


# --- M8: Grafana reads InfluxDB with a read-only credential for its bucket; no anonymous viewers ---


def test_m8_grafana_holds_no_influxdb_admin_credential(platform: Run) -> None:
    grafana = platform.one("Deployment", "grafana")
    for c in (*pod_spec(grafana)["containers"], *(pod_spec(grafana).get("initContainers") or [])):
        for value in env_of(c).values():
            if isinstance(value, tuple) and value[0] == "secret":
                assert value[1] != "influxdb-credentials", value
    for volume in volumes_of(grafana).values():
        assert (volume.get("secret") or {}).get("secretName") != "influxdb-credentials"
    env = env_of(container(grafana))
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD"][1] != "influxdb-credentials"


def test_m8_grafana_reads_through_a_bucket_scoped_read_only_user(platform: Run) -> None:
    provisioning = yaml.safe_load(
        platform.one("ConfigMap", "grafana-datasources").inputs["data"]["influxdb.yaml"]
    )
    (source,) = provisioning["datasources"]
    assert source["jsonData"]["dbName"] == "default"
    assert source["user"] == "$INFLUX_READ_USER"
    assert source["secureJsonData"] == {"password": "$INFLUX_READ_PASSWORD"}
    env = env_of(container(platform.one("Deployment", "grafana")))
    assert env["INFLUX_READ_PASSWORD"] == ("secret", "grafana-influxdb-reader", "password")
    # InfluxDB makes that user at setup: read on the bucket only (v1 authorization, --read-bucket).
    script = platform.one("ConfigMap", "influxdb-init").inputs["data"]["grafana-reader.sh"]
    assert "influx v1 auth create" in script and "--read-bucket" in script
    assert "--write-bucket" not in script and "--all-access" not in script
    influx = env_of(container(platform.one("Deployment", "influxdb")))
    assert influx["INFLUX_READ_PASSWORD"] == ("secret", "grafana-influxdb-reader", "password")


def test_m8_anonymous_viewers_only_when_asked(build) -> None:
    run = build({"ingressController": "none", "grafanaAnonymous": True})
    env = env_of(container(run.one("Deployment", "grafana")))
    assert (env["GF_AUTH_ANONYMOUS_ENABLED"], env["GF_AUTH_ANONYMOUS_ORG_ROLE"]) == ("true", "Viewer")


# --- M9: Node-RED's admin API and MQTT publishing need credentials ---


def test_m9_nodered_admin_needs_a_login(platform: Run) -> None:
    settings_js = platform.one("ConfigMap", "nodered-settings").inputs["data"]["settings.js"]
    assert "adminAuth" in settings_js and "timingSafeEqual" in settings_js
    c = container(platform.one("Deployment", "nodered"))
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts["/data/settings.js"]["subPath"] == "settings.js"
    assert env_of(c)["NODE_RED_ADMIN_PASSWORD"] == ("secret", "nodered-admin", "password")


def test_m9_mqtt_publishing_needs_credentials(platform: Run) -> None:
    data = platform.one("ConfigMap", "mosquitto-config").inputs["data"]
    conf = data["mosquitto.conf"]
    assert re.search(r"^password_file /mosquitto/auth/passwd$", conf, re.M)
    assert re.search(r"^acl_file /mosquitto/config/acl$", conf, re.M)
    anonymous, _, users = data["acl"].partition("\nuser ")
    # Anonymous clients (Telegraf, Node-RED) may read; only the named user may write.
    assert re.findall(r"^topic (\w+) ", anonymous, re.M) == ["read"]
    assert users.startswith("publisher\n") and "topic readwrite #" in users
    init = pod_spec(platform.one("Deployment", "mosquitto"))["initContainers"][0]
    assert "mosquitto_passwd" in " ".join(init["command"])
    assert env_of(init)["MQTT_PASSWORD"] == ("secret", "mosquitto-publisher", "password")


# --- M10: persistent modules on a host of their own ---


def test_m10_modules_are_served_from_their_own_host(build) -> None:
    run = build(
        {"ingressController": "none", "ingressHost": "dt.example.org", "moduleHost": "apps.example.org"}
    )
    env = env_of(container(run.one("Deployment", "orchestrator-operator")))
    assert env["OPERATOR_INGRESS_HOST"] == "apps.example.org"
    with pytest.raises(ConfigError, match="moduleHost"):
        build({"ingressController": "none", "ingressHost": "dt.example.org", "moduleHost": "dt.example.org"})
    assert stack_config("prod")["moduleHost"] != stack_config("prod")["ingressHost"]


# --- L11: the namespace's Pod Security level, quota and limit range ---


def test_l11_namespace_guards(platform: Run) -> None:
    labels = platform.one("Namespace", "dtpoc").metadata["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"
    quota = platform.one("ResourceQuota", "dtpoc-quota").inputs["spec"]["hard"]
    assert {"pods", "limits.cpu", "limits.memory", "services.nodeports", "services.loadbalancers"} <= set(
        quota
    )
    (limit,) = platform.one("LimitRange", "dtpoc-limits").inputs["spec"]["limits"]
    assert limit["type"] == "Container" and set(limit["default"]) == {"cpu", "memory"}


# --- L15: no wildcard CORS, no mutable default images ---


def test_l15_cors_wildcard_is_refused(build) -> None:
    with pytest.raises(ConfigError, match="apiCorsOrigins"):
        build({"ingressController": "none", "apiCorsOrigins": ["*"]})


def test_l15_default_images_are_pinned(platform: Run, build) -> None:
    for dep in platform.kinds("Deployment"):
        for c in (*pod_spec(dep)["containers"], *(pod_spec(dep).get("initContainers") or [])):
            image = c["image"]
            assert not image.endswith(":latest") and ":" in image.rsplit("/", 1)[-1], (dep.k8s_name, image)
    declared = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["config"]
    for key in ("operatorImage", "apiImage", "frontendImage"):
        assert not declared[key]["default"].endswith(":latest"), key
    assert declared["imageTag"]["default"] != "latest"
    with pytest.raises(ConfigError, match="latest"):
        build({"ingressController": "none", "frontendImage": "ghcr.io/x/frontend:latest"})
