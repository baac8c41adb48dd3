"""Container logs on kwok's simulated nodes, for the tests of run logs.

kwok runs no containers, so a pod on a simulated node has no log of its own. kwok's simulated kubelet
serves one from a file when a `Logs` object (kwok.x-k8s.io, enabled by localdev.cluster) names the pod:
the file is in the container runtime's log format (CRI), and the API server reaches it as it reaches a
real kubelet (`kubectl logs`, the `pods/log` subresource). The file stands in for what the module
printed; the platform reads it through the same API a real node's log goes through.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.polling import eventually

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
CONTAINER = "module"


def cri_lines(lines: Iterable[str], stream: str = "stdout") -> str:
    """`lines` as a container runtime writes them to a log file: time, stream, tag (F: a full line)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return "".join(f"{now} {stream} F {line}\n" for line in lines)


def printed(lines: Iterable[str]) -> str:
    """What the log API gives for `lines`: each with its newline."""
    return "".join(f"{line}\n" for line in lines)


@dataclass
class SimulatedLogs:
    """Serves container logs of pods in one namespace from files in `folder`."""

    kubectl: Kubectl  # bound to the namespace, as OperatorEnv.kubectl
    namespace: str
    folder: Path

    def path(self, pod: str) -> Path:
        return self.folder / f"{pod}.log"

    def serve(self, pod: str, lines: Iterable[str]) -> Path:
        """The module container of `pod` has printed `lines` (more can follow with `append`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(pod)
        path.write_text(cri_lines(lines))
        logs = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "Logs",
            "metadata": {"name": pod, "namespace": self.namespace},
            "spec": {"logs": [{"containers": [CONTAINER], "logsFile": str(path), "follow": True}]},
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(logs))
        return path

    def append(self, pod: str, lines: Iterable[str]) -> None:
        with self.path(pod).open("a") as handle:
            handle.write(cri_lines(lines))

    def wait_served(self) -> None:
        """Until kwok serves every log made so far: it learns of `Logs` objects by a watch, in order, so
        once it serves a canary pod's log made last, it serves the others too."""
        node = json.loads(self.kubectl("get", "nodes", "-o", "json").stdout)["items"][0]["metadata"]["name"]
        canary = f"log-canary-{uuid.uuid4().hex[:8]}"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": canary},
            "spec": {
                "nodeName": node,  # placed directly: served even while the nodes are cordoned
                "automountServiceAccountToken": False,
                "containers": [{"name": CONTAINER, "image": "example.org/canary:1"}],
            },
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(pod))
        self.serve(canary, ["canary"])
        try:
            eventually(
                lambda: self.kubectl("logs", canary, "-c", CONTAINER, check=False).stdout == "canary\n",
                60,
                "kwok to serve the simulated container logs",
            )
        finally:
            self.kubectl("delete", "pod", canary, "--wait=false", check=False)
