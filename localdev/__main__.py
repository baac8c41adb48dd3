"""The main job on the local default: `python -m localdev up|down|status` (behind `make up` / `make down`).

`up` starts FerretDB and a kwok cluster, runs `pulumi up --stack local` for the whole platform, then
runs the API and the operator as local processes against that cluster and database (the cluster's pods
are simulated, so our two services run beside it). Everything it starts is recorded in
`.local/state.json` and `down` stops it by pid.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import processes
from .cluster import LocalCluster
from .ferretdb import FerretDB
from .pulumi import PulumiWorkspace, project_view, write_private
from .tools import REPO, find_tools

STATE_DIR = Path(os.environ.get("DTPOC_STATE_DIR", REPO / ".local"))
STATE_FILE = STATE_DIR / "state.json"
STACK = "local"
PROJECT = STATE_DIR / "project"  # the program seen through symlinks, with its own stack file
API_BASE = "/api/orchestrator/v1alpha1"
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


def say(message: str) -> None:
    print(f"[localdev {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class State:
    ferretdb_pid: int | None = None
    ferretdb_port: int | None = None
    cluster_name: str | None = None
    cluster_port: int | None = None
    api_pid: int | None = None
    api_port: int | None = None
    operator_pid: int | None = None
    namespace: str = "default"
    started: list[str] = field(default_factory=list)

    def save(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        STATE_FILE.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls) -> State:
        return cls(**json.loads(STATE_FILE.read_text())) if STATE_FILE.exists() else cls()


def generated_secrets() -> dict[str, str]:
    """Random values for the stack's secrets, made once and kept (mode 0600) in the state folder; a key
    added to the program since is generated and added."""
    path = STATE_DIR / "secrets.json"
    values: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [key for key in SECRET_KEYS if key not in values]
    if missing:
        values |= {key: secrets.token_urlsafe(24) for key in missing}
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(values))
    return values


def pulumi_up(workspace: PulumiWorkspace, values: dict[str, str]) -> dict[str, object]:
    stacks = workspace.run("stack", "ls", "--json", cwd=PROJECT).stdout
    if not any(s["name"] == STACK for s in json.loads(stacks or "[]")):
        workspace.run("stack", "init", STACK, cwd=PROJECT)
    for key, value in values.items():
        # The value travels on stdin, never on a command line.
        workspace.run("config", "set", "--secret", "--stack", STACK, key, cwd=PROJECT, input=value)
    say("pulumi up --stack local (the whole platform; progress below)")
    subprocess.run(
        workspace.command("up", "--stack", STACK, "--yes", "--skip-preview"),
        cwd=PROJECT,
        env=workspace.env(),
        check=True,
    )
    outputs = workspace.run("stack", "output", "--stack", STACK, "--json", cwd=PROJECT).stdout
    return json.loads(outputs or "{}")


def start_services(state: State, cluster: LocalCluster, mongo_url: str, values: dict[str, str]) -> None:
    env = {
        "KUBECONFIG": str(cluster.kubeconfig),
        "MONGODB_URL": mongo_url,
        "API_TOKEN": values["apiToken"],
        "API_READ_TOKEN": values["apiReadToken"],
        "API_NAMESPACE": state.namespace,
        "OPERATOR_NAMESPACE": state.namespace,
        "OPERATOR_OUTPUT_ROOT": str(STATE_DIR / "data"),
        "OPERATOR_DATA_PVC": "orchestrator-data",
    }
    bin_dir = REPO / ".venv" / "bin"
    state.api_port = processes.free_port() if processes.port_open(8000) else 8000
    env["API_PORT"] = str(state.api_port)
    env["API_HOST"] = "127.0.0.1"
    state.api_pid = processes.start([bin_dir / "dtpoc-api"], STATE_DIR / "logs" / "api.log", env)
    state.operator_pid = processes.start(
        [bin_dir / "dtpoc-operator"], STATE_DIR / "logs" / "operator.log", env
    )
    state.save()
    health = f"http://127.0.0.1:{state.api_port}{API_BASE}/healthz"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(health, timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    processes.wait_until(healthy, 60, f"the API at {health}", interval=0.5)


def up() -> None:
    state = State.load()
    if state.started:
        say(f"already up ({', '.join(state.started)}); `make down` first to start afresh")
        return
    tools = find_tools()
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    try:
        say("starting FerretDB (MongoDB wire protocol, SQLite backend)")
        ferretdb = FerretDB.start(tools, STATE_DIR / "ferretdb")
        state.ferretdb_pid, state.ferretdb_port = ferretdb.pid, ferretdb.port
        state.started.append("ferretdb")
        state.save()

        say("starting the local cluster (etcd, kube-apiserver, controller manager, scheduler, kwok)")
        cluster = LocalCluster.start(tools, STATE_DIR)
        state.cluster_name, state.cluster_port = cluster.name, cluster.apiserver_port
        state.started.append("cluster")
        state.save()

        values = generated_secrets()
        project_view(REPO, PROJECT, STACK)  # a fresh copy of the committed stack file each time
        workspace = PulumiWorkspace.create(tools, STATE_DIR / "pulumi", cluster.kubeconfig)
        outputs = pulumi_up(workspace, values)
        state.namespace = str(outputs.get("namespace", "default"))
        state.started.append("stack")
        state.save()

        say("starting the orchestrator API and operator as local processes")
        state.started.append("services")
        start_services(state, cluster, ferretdb.url, values)
    except BaseException:
        say("start-up failed; stopping what was started (logs in .local/)")
        down()
        raise
    api = f"http://127.0.0.1:{state.api_port}{API_BASE}"
    print(
        f"""
The platform is up.
  API          {api}   (health: {api}/healthz)
  API docs     {api}/docs
  API tokens   in {STATE_DIR / "secrets.json"}: apiToken (reads and changes), apiReadToken (reads)
  kubectl      KUBECONFIG={cluster.kubeconfig} {tools.kubectl} get analytics,pods -n {state.namespace}
  logs         {STATE_DIR / "logs"}
Stop everything with `make down`.""",
        flush=True,
    )


def stop_service(state: State, name: str) -> None:
    pid = getattr(state, f"{name}_pid")
    if pid and processes.alive(pid):
        say(f"stopping the {name} (pid {pid})")
        processes.stop(pid)


def release_analytics(cluster: LocalCluster, namespace: str) -> None:
    """Delete the Analytics resources while the operator still runs to lift its finalizers; otherwise
    deleting the CRD would wait on them. Finalizers left by an operator that is gone are removed."""
    say("deleting the Analytics resources")
    if cluster.kubectl(
        "delete", "analytics", "--all", "-n", namespace, "--timeout=60s", check=False
    ).returncode:
        names = cluster.kubectl("get", "analytics", "-n", namespace, "-o", "name", check=False).stdout.split()
        for name in names:
            cluster.kubectl(
                "patch",
                name,
                "-n",
                namespace,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":[]}}',
                check=False,
            )


def down() -> None:
    """Stops everything `up` started; exits non-zero when `pulumi destroy` failed (after stopping all)."""
    state = State.load()
    destroyed = True
    tools = find_tools()
    stop_service(state, "api")
    if state.cluster_name:
        cluster = LocalCluster(state.cluster_name, STATE_DIR / "kwok", state.cluster_port or 0, tools)
        if "stack" in state.started:
            release_analytics(cluster, state.namespace)
            stop_service(state, "operator")
            say("pulumi destroy --stack local")
            workspace = PulumiWorkspace.create(tools, STATE_DIR / "pulumi", cluster.kubeconfig)
            result = workspace.run(
                "destroy", "--stack", STACK, "--yes", "--skip-preview", cwd=PROJECT, check=False
            )
            destroyed = result.returncode == 0
            if not destroyed:
                tail = (result.stdout + result.stderr)[-4000:]
                say(f"pulumi destroy failed (the cluster goes anyway):\n{tail}")
        say("stopping the local cluster")
        cluster.stop()
        if "stack" in state.started:
            # The stack's resources went with the cluster; forget them so that a new `up` starts clean.
            workspace = PulumiWorkspace.create(tools, STATE_DIR / "pulumi")
            workspace.run("stack", "rm", STACK, "--yes", "--force", cwd=PROJECT, check=False)
    stop_service(state, "operator")
    stop_service(state, "ferretdb")
    STATE_FILE.unlink(missing_ok=True)
    say("down")
    if not destroyed:
        raise SystemExit(1)


def status() -> None:
    state = State.load()
    for name in ("ferretdb_pid", "api_pid", "operator_pid"):
        pid = getattr(state, name)
        running = "running" if pid and processes.alive(pid) else "stopped"
        print(f"{name.removesuffix('_pid'):10} {running} {pid or ''}")
    print(f"{'cluster':10} {state.cluster_name or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m localdev", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    command = parser.parse_args().command
    {"up": up, "down": down, "status": status}[command]()


if __name__ == "__main__":
    main()
