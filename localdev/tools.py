"""Where the tools built by tools/build.sh live (a cache outside the repo, one folder per version)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class MissingTool(RuntimeError):
    pass


def tool_dirs() -> dict[str, Path]:
    """Each tool's cache folder, as tools/build.sh lays it out (defined there only)."""
    out = subprocess.run(
        ["bash", str(REPO / "tools" / "build.sh"), "--dirs"], check=True, capture_output=True, text=True
    ).stdout
    return {name: Path(path) for name, _, path in (line.partition("=") for line in out.splitlines())}


@dataclass(frozen=True)
class Tools:
    """Absolute paths of the binaries; asking for one that is not built fails, naming the fix."""

    dirs: dict[str, Path]

    def _binary(self, tool: str, name: str) -> Path:
        folder = self.dirs[tool]
        if not (folder / ".complete").exists():
            raise MissingTool(f"{tool} is not built ({folder}); run `tools/build.sh {tool}` or `make tools`")
        return folder / "bin" / name

    @property
    def etcd(self) -> Path:
        return self._binary("etcd", "etcd")

    @property
    def kube_apiserver(self) -> Path:
        return self._binary("kubernetes", "kube-apiserver")

    @property
    def kubectl(self) -> Path:
        return self._binary("kubernetes", "kubectl")

    @property
    def kwok(self) -> Path:
        return self._binary("kwok", "kwok")

    @property
    def kwokctl(self) -> Path:
        return self._binary("kwok", "kwokctl")

    @property
    def ferretdb(self) -> Path:
        return self._binary("ferretdb", "ferretdb")

    @property
    def pulumi(self) -> Path:
        return self._binary("pulumi", "pulumi")

    @property
    def pulumi_language_python(self) -> Path:
        return self._binary("pulumi-language-python", "pulumi-language-python")

    @property
    def pulumi_resource_kubernetes(self) -> Path:
        return self._binary("pulumi-resource-kubernetes", "pulumi-resource-kubernetes")

    @property
    def kubelet(self) -> Path:
        return self._binary("kubenode", "kubelet")

    @property
    def kube_proxy(self) -> Path:
        return self._binary("kubenode", "kube-proxy")

    @property
    def coredns(self) -> Path:
        return self._binary("coredns", "coredns")

    @property
    def kube_router(self) -> Path:
        return self._binary("kube-router", "kube-router")

    @property
    def dashboard_check(self) -> Path:
        return self._binary("dashboard-check", "dashboard-check")

    @property
    def telegraf(self) -> Path:
        return self._binary("telegraf", "telegraf")

    @property
    def influxd(self) -> Path:
        return self._binary("influxdb", "influxd")

    @property
    def pause_image(self) -> Path:
        """The sandbox image as an OCI tarball (tools/build.sh pause)."""
        return self._binary("pause", "pause").parent.parent / "pause.oci.tar"

    @property
    def pause_ref(self) -> str:
        return f"localhost/dtpoc-pause:{self.dirs['pause'].name.removeprefix('pause-')}"

    @property
    def pulumi_resource_pulumi_python(self) -> Path:
        """The plugin serving the program's dynamic resources (its image builder)."""
        return self._binary("pulumi-dynamic-python", "pulumi-resource-pulumi-python")

    @cached_property
    def mosquitto(self) -> Path:
        found = shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto",) if Path(p).exists()), None
        )
        if found is None:
            raise MissingTool("mosquitto is not installed; run `apt-get install -y mosquitto` (.ci/run does)")
        return Path(found)

    @property
    def pulumi_path(self) -> str:
        """PATH entries that let the Pulumi CLI find its language host and providers (no downloads)."""
        dirs = [
            self.pulumi.parent,
            self.pulumi_language_python.parent,
            self.pulumi_resource_kubernetes.parent,
            self.pulumi_resource_pulumi_python.parent,
        ]
        return os.pathsep.join(str(d) for d in dirs)


def find_tools() -> Tools:
    return Tools(tool_dirs())
