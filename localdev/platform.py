"""One local platform instance: its network namespace, the control plane and a real kubelet node in it, a
Docker engine for the program's image builds, `pulumi up --stack local`, and a loopback relay to the API.

Every instance is its own (issue: `make up` and `make test` side by side): an 8-hex id names the network
namespace (`dtpoc-<id>`), the short runtime folder for sockets (`/run/dtpoc/<id>`) and the cgroup root;
the state folder holds the rest. Addresses inside the namespace are the same in every instance: nothing
outside it ever sees them. What was started is recorded in `<state>/state.json`, and `down` stops exactly
that, by pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from components.config import solution_token_keys, stack_solution_names
from services.shared.solutions import SOLUTION_LABEL

from . import processes
from .base_image import local_build_config
from .cluster import LocalCluster
from .docker import Dockerd
from .netns import RUN_ROOT, NetworkNamespace
from .node import RealNode
from .pulumi import PulumiWorkspace, project_view, write_private
from .relay import Relay
from .tools import REPO, Tools

STACK = "local"
API_BASE = "/api/orchestrator/v1alpha1"
API_SERVICE = "orchestrator-api-svc"
# Secret config keys of the program (see Pulumi.yaml), set from generated values.
SECRET_KEYS = (
    "mongodbPassword",
    "influxdbPassword",
    "influxdbToken",
    "apiToken",
    "apiReadToken",
    "grafanaAdminPassword",
    "noderedAdminPassword",
    "mqttPassword",
)
APP_UID = 10001  # the platform's images run as this uid (and gid)
DATA_PIECES = ("mongodb", "influxdb", "orchestrator")  # hostPath folders `<piece>_data` (components/platform)
# subPath mounts the kubelet would otherwise make as root (InfluxDB's image runs as APP_UID here).
DATA_SUB_PATHS = {"influxdb": ("data", "config")}


def say(message: str) -> None:
    print(f"[localdev {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class State:
    """What an instance started; written after each step so that `down` can always undo it."""

    instance: str = ""
    cluster_name: str | None = None
    relay_pids: list[int] = field(default_factory=list)
    node_pids: dict[str, int] = field(default_factory=dict)
    dockerd_pid: int | None = None
    dockerd_run_dir: str | None = None
    api_port: int | None = None
    mongodb_port: int | None = None
    # The sensor data path, for the host: MQTT (Mosquitto), InfluxDB's HTTP API, Node-RED's editor.
    mqtt_port: int | None = None
    influxdb_port: int | None = None
    nodered_port: int | None = None
    namespace: str = "dtpoc"
    started: list[str] = field(default_factory=list)


@dataclass
class LocalPlatform:
    state_dir: Path
    tools: Tools
    state: State = field(default_factory=State)

    # -- places -----------------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def project(self) -> Path:
        return self.state_dir / "project"  # the program through symlinks, with its own stack file

    @property
    def run_dir(self) -> Path:
        return RUN_ROOT / self.state.instance

    @property
    def netns(self) -> NetworkNamespace:
        return NetworkNamespace(f"dtpoc-{self.state.instance}")

    @property
    def data_root(self) -> Path:
        return self.state_dir / "data"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.state.api_port}{API_BASE}"

    def cluster(self) -> LocalCluster:
        assert self.state.cluster_name
        return LocalCluster(
            self.state.cluster_name,
            self.state_dir / "kwok",
            6443,
            self.tools,
            self.netns,
            self.state.relay_pids,
        )

    def node(self) -> RealNode:
        return RealNode(
            self.state.instance, self.netns, self.state_dir / "node", self.run_dir, self.tools,
            dict(self.state.node_pids),
        )  # fmt: skip

    def workspace(self, kubeconfig: Path | None = None) -> PulumiWorkspace:
        return PulumiWorkspace.create(self.tools, self.state_dir / "pulumi", kubeconfig)

    # -- state ------------------------------------------------------------------------------------
    @classmethod
    def load(cls, state_dir: Path, tools: Tools) -> LocalPlatform:
        platform = cls(state_dir, tools)
        if platform.state_file.exists():
            platform.state = State(**json.loads(platform.state_file.read_text()))
        return platform

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(asdict(self.state), indent=2))

    def _step(self, name: str, action: Callable[[], None]) -> None:
        action()
        self.state.started.append(name)
        self.save()

    def generated_secrets(self) -> dict[str, str]:
        """Random values for the stack's secrets, made once and kept (mode 0600 from the first byte) in the
        state folder; a key added to the program since is generated and added. With the stack file's
        solutions, their tokens (`solutionTokens.<name>.admin` / `.read`, set with --path)."""
        path = self.state_dir / "secrets.json"
        values: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        solutions = stack_solution_names(REPO / f"Pulumi.{STACK}.yaml")
        keys = [*SECRET_KEYS, *solution_token_keys(solutions)]
        missing = [key for key in keys if key not in values]
        if missing:
            values |= {key: secrets.token_urlsafe(24) for key in missing}
            self.state_dir.mkdir(parents=True, exist_ok=True)
            write_private(path, json.dumps(values))
        return {key: values[key] for key in keys}

    # -- up ---------------------------------------------------------------------------------------
    def up(self) -> None:
        if self.state.started:
            say(f"already up ({', '.join(self.state.started)}); `make down` first to start afresh")
            return
        self.state = State(instance=uuid.uuid4().hex[:8])
        self.save()
        try:
            self._step("netns", self._create_netns)
            self._step("cluster", self._start_cluster)
            self._step("dockerd", self._start_dockerd)
            self._step("node", self._start_node)
            self._step("stack", self._pulumi_up)
            self._step("relays", self._relay_services)
        except BaseException:
            say(f"start-up failed; stopping what was started (logs in {self.state_dir})")
            self.down()
            raise

    def _create_netns(self) -> None:
        say(f"creating the network namespace {self.netns.name}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        NetworkNamespace.create(self.netns.name)

    def _start_cluster(self) -> None:
        say("starting the control plane in it (etcd, kube-apiserver, controller manager, scheduler, kwok)")
        cluster = LocalCluster.start(self.tools, self.state_dir, 1, self.netns, self.run_dir)
        self.state.cluster_name, self.state.relay_pids = cluster.name, cluster.relay_pids

    def _start_dockerd(self) -> None:
        say("starting a Docker engine for the program's image builds")
        dockerd = Dockerd.start(self.state_dir / "docker")
        self.state.dockerd_pid, self.state.dockerd_run_dir = dockerd.pid, str(dockerd.run_dir)

    def _start_node(self) -> None:
        say("starting the real node (containerd, CoreDNS, kubelet, kube-proxy, NetworkPolicy enforcer)")
        cluster = self.cluster()
        node = RealNode.start(self.tools, cluster, self.state.instance, self.state_dir / "node", self.run_dir)
        self.state.node_pids = node.pids
        self.save()
        self._prepare_data_root()

    def _prepare_data_root(self) -> None:
        """The hostPath volumes' folders, owned by the platform's uid (a hostPath volume ignores fsGroup,
        and the kubelet would make missing folders root's)."""
        for piece in DATA_PIECES:
            folder = self.data_root / f"{piece}_data"
            for made in (folder, *(folder / sub for sub in DATA_SUB_PATHS.get(piece, ()))):
                made.mkdir(parents=True, exist_ok=True)
                os.chown(made, APP_UID, APP_UID)
                made.chmod(0o770)
        self.data_root.chmod(0o755)

    def dockerd(self) -> Dockerd:
        assert self.state.dockerd_pid and self.state.dockerd_run_dir
        return Dockerd(self.state_dir / "docker", Path(self.state.dockerd_run_dir), self.state.dockerd_pid)

    def instance_config(self) -> dict[str, str]:
        """Stack config that only this instance knows (paths, sockets, its base images), set on its own
        copy of the stack file: the program builds its images in this instance's Docker engine and
        imports them into this instance's node."""
        return {
            **local_build_config(self.dockerd(), self.node().containerd_address, node_images=True),
            "dataRoot": str(self.data_root),
            # Images whose context is a binary tools/build.sh made (images/README.md).
            "imageContexts[0]": f"ferretdb={self.tools.ferretdb.parent}",
            "imageContexts[1]": f"telegraf={self.tools.telegraf.parent}",
            "imageContexts[2]": f"influxdb={self._influxdb_context()}",
        }

    def _influxdb_context(self) -> Path:
        """images/influxdb's build context: the binaries tools/build.sh made and the image's entrypoint."""
        context = self.state_dir / "contexts" / "influxdb"
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        for source in (*self.tools.influxd.parent.iterdir(), REPO / "images" / "influxdb" / "entrypoint.sh"):
            shutil.copy2(source, context / source.name)
        return context

    def _pulumi_up(self) -> None:
        cluster = self.cluster()
        project_view(REPO, self.project, STACK)  # a fresh copy of the committed stack file each time
        workspace = self.workspace(cluster.kubeconfig)
        stacks = workspace.run("stack", "ls", "--json", cwd=self.project).stdout
        if not any(s["name"] == STACK for s in json.loads(stacks or "[]")):
            workspace.run("stack", "init", STACK, cwd=self.project)
        for key, value in self.generated_secrets().items():
            # The value travels on stdin, never on a command line.
            workspace.run(
                "config", "set", "--secret", "--path", "--stack", STACK, key, cwd=self.project, input=value
            )
        for key, value in self.instance_config().items():
            workspace.run("config", "set", "--path", "--stack", STACK, key, value, cwd=self.project)
        say("pulumi up --stack local (builds the images, deploys the whole platform; progress below)")
        subprocess.run(
            workspace.command("up", "--stack", STACK, "--yes", "--skip-preview"),
            cwd=self.project,
            env=workspace.env(),
            check=True,
        )
        outputs = json.loads(
            workspace.run("stack", "output", "--stack", STACK, "--json", cwd=self.project).stdout or "{}"
        )
        # The stack's outputs (secrets stay masked) for scripts and tests: image references, namespace.
        (self.state_dir / "outputs.json").write_text(json.dumps(outputs, indent=2))
        self.state.namespace = str(outputs.get("namespace", self.state.namespace))

    def _relay_services(self) -> None:
        """The API (on 8000 when free), MongoDB and the sensor data path, for the host: Service addresses
        exist only inside."""
        self.state.api_port = self._relay_service(
            "api", API_SERVICE, None if processes.port_open(8000) else 8000
        )
        self.state.mongodb_port = self._relay_service("mongodb", "mongodb")
        self.state.mqtt_port = self._relay_service("mqtt", "mosquitto")
        self.state.influxdb_port = self._relay_service("influxdb", "influxdb")
        self.state.nodered_port = self._relay_service("nodered", "nodered")
        self.save()
        processes.wait_until(self._api_healthy, 180, f"the API at {self.api_url}/healthz", interval=0.5)

    def _relay_service(self, name: str, service: str, host_port: int | None = None) -> int:
        cluster = self.cluster()
        ip, port = cluster.kubectl(
            "get", "service", service, "-n", self.state.namespace,
            "-o", "jsonpath={.spec.clusterIP} {.spec.ports[0].port}",
        ).stdout.split()  # fmt: skip
        relay = Relay.start(
            name, self.netns, f"{ip}:{port}", self.run_dir, self.state_dir / "logs", host_port
        )
        self.state.relay_pids = [*self.state.relay_pids, *relay.pids]
        return relay.host_port

    def _api_healthy(self) -> bool:
        try:
            # our own http:// URL on loopback
            with urllib.request.urlopen(f"{self.api_url}/healthz", timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except OSError:
            return False

    # -- down -------------------------------------------------------------------------------------
    def down(self) -> bool:
        """Stops everything this instance started; False when `pulumi destroy` failed (after stopping all)."""
        started = set(self.state.started)
        destroyed = True
        if "cluster" in started:
            cluster = self.cluster()
            if "stack" in started:
                destroyed = self._destroy(cluster)
            if "node" in started or self.state.node_pids:
                say("stopping the real node")
                self.node().stop(cluster)
            say("stopping the control plane")
            cluster.stop()
        elif self.state.node_pids:
            self.node().stop(None)
        if self.state.dockerd_pid:
            say("stopping the Docker engine")
            self.dockerd().stop()
        for pid in self.state.relay_pids:
            if processes.alive(pid):
                processes.stop(pid)
        if self.state.instance:
            self.netns.delete()
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self.state_file.unlink(missing_ok=True)
        self.state = State()
        say("down")
        return destroyed

    def _destroy(self, cluster: LocalCluster) -> bool:
        self._release_analytics(cluster)
        say("pulumi destroy --stack local")
        workspace = self.workspace(cluster.kubeconfig)
        # --run-program: a solution's Namespace has a delete hook (components/solution_guard.py).
        result = workspace.run(
            "destroy",
            "--stack",
            STACK,
            "--yes",
            "--skip-preview",
            "--run-program",
            cwd=self.project,
            check=False,
        )
        if result.returncode != 0:
            say(
                f"pulumi destroy failed (the cluster goes anyway):\n{(result.stdout + result.stderr)[-4000:]}"
            )
        # The stack's resources went with the cluster; forget them so that a new `up` starts clean.
        self.workspace().run("stack", "rm", STACK, "--yes", "--force", cwd=self.project, check=False)
        return result.returncode == 0

    def _release_analytics(self, cluster: LocalCluster) -> None:
        """Delete the Analytics resources while the operator still runs to lift its finalizers; otherwise
        deleting the CRD would wait on them (and the removal guard refuses a solution's namespace that still
        holds some). Finalizers left by an operator that is gone are removed."""
        say("deleting the Analytics resources")
        solutions = cluster.kubectl(
            "get", "namespaces", "-l", SOLUTION_LABEL, "-o", "jsonpath={.items[*].metadata.name}", check=False
        ).stdout.split()
        for namespace in [self.state.namespace, *solutions]:
            self._release_analytics_in(cluster, namespace)

    def _release_analytics_in(self, cluster: LocalCluster, namespace: str) -> None:
        if cluster.kubectl(
            "delete", "analytics", "--all", "-n", namespace, "--timeout=60s", check=False
        ).returncode:
            for name in cluster.kubectl(
                "get", "analytics", "-n", namespace, "-o", "name", check=False
            ).stdout.split():
                with contextlib.suppress(subprocess.SubprocessError):
                    cluster.kubectl(
                        "patch", name, "-n", namespace, "--type=merge",
                        "-p", '{"metadata":{"finalizers":[]}}',
                        check=False,
                    )  # fmt: skip

    def status(self) -> str:
        lines = [
            f"instance   {self.state.instance or 'none'} ({', '.join(self.state.started) or 'nothing up'})"
        ]
        for name, pid in {**self.state.node_pids, "dockerd": self.state.dockerd_pid}.items():
            running = "running" if pid and processes.alive(pid) else "stopped"
            lines.append(f"{name:10} {running} {pid or ''}")
        if self.state.api_port:
            lines.append(f"api        {self.api_url}")
        return "\n".join(lines)
