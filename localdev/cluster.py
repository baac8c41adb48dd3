"""A local Kubernetes cluster: etcd, kube-apiserver, controller manager, scheduler and kwok's simulated
nodes, started by kwokctl's binary runtime from our own builds (nothing is downloaded).

Started inside a network namespace (`netns`), the control plane listens and advertises only in there, so
that a real kubelet node in the same namespace can join it (localdev.node); the host then reaches the
apiserver through a loopback relay and uses `kubeconfig`, the namespace's programs `inner_kubeconfig`."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tenacity import Retrying, stop_after_attempt, wait_fixed

from . import processes
from .netns import NetworkNamespace
from .relay import Relay
from .tools import Tools

# Inside a namespace nothing else listens, so the apiserver keeps the well-known port.
INNER_APISERVER_PORT = 6443
_OVERRIDES = {"manage-all-nodes"}  # arguments kwokctl sets itself that we replace


@dataclass
class LocalCluster:
    name: str
    workdir: Path
    apiserver_port: int
    tools: Tools
    netns: NetworkNamespace | None = None
    relay_pids: list[int] = field(default_factory=list)

    @property
    def cluster_dir(self) -> Path:
        return self.workdir / "clusters" / self.name

    @property
    def inner_kubeconfig(self) -> Path:
        """kwokctl's kubeconfig: right on the host, or inside the namespace when there is one."""
        return self.cluster_dir / "kubeconfig.yaml"

    @property
    def kubeconfig(self) -> Path:
        """The kubeconfig for programs on the host."""
        if self.netns is None:
            return self.inner_kubeconfig
        return self.cluster_dir / "host-kubeconfig.yaml"

    @property
    def pki(self) -> Path:
        return self.cluster_dir / "pki"

    @property
    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KWOK_WORKDIR": str(self.workdir),
            # kube-apiserver, kube-controller-manager, kube-scheduler and kubectl share one folder.
            "KWOK_KUBE_BINARY_PREFIX": str(self.tools.kube_apiserver.parent),
            "KWOK_KUBECTL_BINARY": str(self.tools.kubectl),
            "KWOK_ETCD_BINARY": str(self.tools.etcd),
            "KWOK_CONTROLLER_BINARY": str(self.tools.kwok),
        }

    def _kwokctl(self, *args: str, timeout: float = 300) -> str:
        prefix = self.netns.enter() if self.netns else []
        result = subprocess.run(
            [*prefix, str(self.tools.kwokctl), "--name", self.name, *args],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kwokctl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    @classmethod
    def start(
        cls,
        tools: Tools,
        state_dir: Path,
        nodes: int = 1,
        netns: NetworkNamespace | None = None,
        socket_dir: Path | None = None,
    ) -> LocalCluster:
        """`nodes` simulated nodes; with `netns`, the control plane runs in there and `socket_dir` (a
        short path) holds the relay's socket."""
        name = f"dtpoc-{uuid.uuid4().hex[:8]}"
        port = INNER_APISERVER_PORT if netns else processes.free_port()
        cluster = cls(name, state_dir / "kwok", port, tools, netns)
        cluster.workdir.mkdir(parents=True, exist_ok=True)
        extra = [f"--config={cluster._write_config()}"] if netns else []
        try:
            cluster._kwokctl(
                "create",
                "cluster",
                "--runtime=binary",
                f"--kube-apiserver-port={cluster.apiserver_port}",
                f"--kubeconfig={cluster.workdir / 'kwokctl-kubeconfig.yaml'}",
                *extra,
                # kwok's simulated kubelet serves a pod's container log from a file named by a `Logs`
                # object (the tests' stand-in for what a container prints); without one, no log.
                "--enable-crds=Logs",
                "--wait=120s",
                "--quiet-pull",
            )
            if netns:
                cluster._relay_apiserver(socket_dir or state_dir)
            # Right after start-up the apiserver can still refuse a connection now and then.
            for attempt in Retrying(stop=stop_after_attempt(5), wait=wait_fixed(1), reraise=True):
                with attempt:
                    cluster._kwokctl("scale", "node", f"--replicas={nodes}")
        except Exception:
            cluster.stop()
            raise
        return cluster

    def _write_config(self) -> Path:
        """kwokctl settings for a control plane that a real kubelet joins (a config file: kwokctl v0.8.0's
        `--extra-args` panics when given for two components)."""
        pki = self.pki
        patches = {
            "kube-apiserver": {
                # `kubectl logs`/`exec` reach the real kubelet by its address, as a client it trusts.
                "kubelet-client-certificate": str(pki / "admin.crt"),
                "kubelet-client-key": str(pki / "admin.key"),
                "kubelet-preferred-address-types": "InternalIP",
            },
            # kwokctl has kwok manage every node: it would race the real kubelet over its pods and status.
            "kwok-controller": {
                "manage-all-nodes": "false",
                "manage-nodes-with-label-selector": "type=kwok",  # what kwokctl's node template sets
            },
        }
        config = {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokctlConfiguration",
            # Pods reach the apiserver as https://kubernetes.default (10.0.0.1, the first address of
            # kwokctl's Service range): its certificate must name that too.
            "options": {
                "kubeApiserverCertSANs": [
                    "10.0.0.1",
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                ]
            },
            "componentsPatches": [
                # `override` replaces an argument kwokctl sets (it drops a key kwokctl does not set)
                {
                    "name": name,
                    "extraArgs": [
                        {"key": k, "value": v, "override": k in _OVERRIDES} for k, v in args.items()
                    ],
                }
                for name, args in patches.items()
            ],
        }
        path = self.workdir / "kwokctl.yaml"
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    def _relay_apiserver(self, socket_dir: Path) -> None:
        assert self.netns is not None
        relay = Relay.start(
            "apiserver",
            self.netns,
            f"127.0.0.1:{INNER_APISERVER_PORT}",
            socket_dir,
            self.cluster_dir / "logs",
        )
        self.relay_pids = relay.pids
        inner = self.inner_kubeconfig.read_text()
        self.kubeconfig.write_text(
            inner.replace(f"127.0.0.1:{INNER_APISERVER_PORT}", f"127.0.0.1:{relay.host_port}")
        )

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.tools.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def restart_apiserver(self, timeout: float = 120) -> None:
        """Stop the kube-apiserver by its pid, as a crash or an upgrade would, and have kwokctl start it
        again with the same settings (port, certificates); etcd keeps the cluster's state meanwhile."""
        pid_file = self.workdir / "clusters" / self.name / "pids" / "kube-apiserver.pid"
        processes.stop(int(pid_file.read_text().strip()))
        self._kwokctl("start", "cluster", timeout=timeout)
        processes.wait_until(
            self._apiserver_ready, timeout, "the kube-apiserver to serve again", interval=0.5
        )

    def _apiserver_ready(self) -> bool:
        result = subprocess.run(
            [str(self.tools.kubectl), f"--kubeconfig={self.kubeconfig}", "get", "--raw", "/readyz"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return result.returncode == 0 and result.stdout.strip() == "ok"

    def pids(self) -> list[int]:
        pid_dir = self.workdir / "clusters" / self.name / "pids"
        return [int(p.read_text().strip()) for p in pid_dir.glob("*.pid") if p.read_text().strip().isdigit()]

    def stop(self) -> None:
        """kwokctl stops the components by the pids it recorded; any it missed are stopped here."""
        pids = self.pids()
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._kwokctl("delete", "cluster", timeout=120)
        for pid in [*pids, *self.relay_pids]:
            if processes.alive(pid):
                processes.stop(pid)
