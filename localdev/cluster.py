"""A local Kubernetes cluster: etcd, kube-apiserver, controller manager, scheduler and kwok's simulated
nodes, started by kwokctl's binary runtime from our own builds (nothing is downloaded)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from tenacity import Retrying, stop_after_attempt, wait_fixed

from . import processes
from .tools import Tools


@dataclass
class LocalCluster:
    name: str
    workdir: Path
    apiserver_port: int
    tools: Tools

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "clusters" / self.name / "kubeconfig.yaml"

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
        result = subprocess.run(
            [str(self.tools.kwokctl), "--name", self.name, *args],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kwokctl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    @classmethod
    def start(cls, tools: Tools, state_dir: Path, nodes: int = 1) -> LocalCluster:
        name = f"dtpoc-{uuid.uuid4().hex[:8]}"
        cluster = cls(name, state_dir / "kwok", processes.free_port(), tools)
        cluster.workdir.mkdir(parents=True, exist_ok=True)
        try:
            cluster._kwokctl(
                "create",
                "cluster",
                "--runtime=binary",
                f"--kube-apiserver-port={cluster.apiserver_port}",
                "--wait=120s",
                "--quiet-pull",
            )
            # Right after start-up the apiserver can still refuse a connection now and then.
            for attempt in Retrying(stop=stop_after_attempt(5), wait=wait_fixed(1), reraise=True):
                with attempt:
                    cluster._kwokctl("scale", "node", f"--replicas={nodes}")
        except Exception:
            cluster.stop()
            raise
        return cluster

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
        for pid in pids:
            if processes.alive(pid):
                processes.stop(pid)
