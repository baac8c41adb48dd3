"""Small readers of recorded Kubernetes inputs (Deployments, containers, env) for the assertions."""

from __future__ import annotations

from typing import Any

from .harness import Recorded


def pod_spec(deployment: Recorded) -> dict[str, Any]:
    return deployment.inputs["spec"]["template"]["spec"]


def container(deployment: Recorded, index: int = 0) -> dict[str, Any]:
    return pod_spec(deployment)["containers"][index]


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    """name -> plain value, or ("secret", name, key) / ("field", path) for references."""
    out: dict[str, Any] = {}
    for e in c.get("env") or []:
        source = e.get("valueFrom")
        if source is None:
            out[e["name"]] = e.get("value")
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            out[e["name"]] = ("secret", ref["name"], ref["key"])
        elif "fieldRef" in source:
            out[e["name"]] = ("field", source["fieldRef"]["fieldPath"])
        else:
            out[e["name"]] = ("other", source)
    return out


def mounts_of(c: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    """mount path -> (volume, subPath)."""
    return {m["mountPath"]: (m["name"], m.get("subPath")) for m in c.get("volumeMounts") or []}


def volumes_of(deployment: Recorded) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod_spec(deployment).get("volumes") or []}


def ports_of(c: dict[str, Any]) -> set[int]:
    return {int(p["containerPort"]) for p in c.get("ports") or []}


def service_ports(svc: Recorded) -> list[tuple[int, int]]:
    return [(int(p["port"]), int(p["targetPort"])) for p in svc.inputs["spec"]["ports"]]


def probe(c: dict[str, Any], kind: str) -> tuple[str, Any, int] | None:
    """("http", path, port) or ("tcp", None, port) of `livenessProbe` / `readinessProbe`."""
    p = c.get(kind)
    if p is None:
        return None
    if "httpGet" in p:
        return ("http", p["httpGet"]["path"], int(p["httpGet"]["port"]))
    if "tcpSocket" in p:
        return ("tcp", None, int(p["tcpSocket"]["port"]))
    return ("other", p, 0)


def selects(svc: Recorded, deployment: Recorded) -> bool:
    """The Service's selector matches the Deployment's pod labels."""
    selector = svc.inputs["spec"]["selector"]
    pod_labels = deployment.inputs["spec"]["template"]["metadata"]["labels"]
    return bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items())
