"""The main job on the local default: `python -m localdev up|down|status` (behind `make up` / `make down`).

`up` brings one platform instance up (localdev.platform): a network namespace with the control plane and
a real kubelet node in it, a Docker engine for image builds, then `pulumi up --stack local`, which builds
the operator, API and stand-in images and runs them as pods; the API answers on a loopback relay.
State lives in `$DTPOC_STATE_DIR` (default `.local/`); `down` stops what that instance started, by pid.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from .platform import LocalPlatform
from .tools import REPO, find_tools

STATE_DIR = Path(os.environ.get("DTPOC_STATE_DIR", REPO / ".local"))


def solution_lines(platform: LocalPlatform) -> str:
    """One line per DT solution of the stack besides the default one: its paths, tokens and namespace."""
    outputs = json.loads((platform.state_dir / "outputs.json").read_text())
    return "".join(
        f"\n  {'solution ' + name:<13}{platform.api_url}/solutions/{name}   "
        f"(tokens solutionTokens.{name}.admin / .read in secrets.json; namespace {namespace})"
        for name, namespace in (outputs.get("solutions") or {}).items()
    )


def up(platform: LocalPlatform) -> None:
    platform.up()
    cluster = platform.cluster()
    solutions = solution_lines(platform)
    print(
        f"""
The platform is up (instance {platform.state.instance}).
  API          {platform.api_url}   (health: {platform.api_url}/healthz)
  API docs     {platform.api_url}/docs
  API tokens   in {platform.state_dir / "secrets.json"}: apiToken (changes too), apiReadToken{solutions}
  MongoDB      mongodb://127.0.0.1:{platform.state.mongodb_port}/ (FerretDB; password in secrets.json)
  MQTT         tcp://127.0.0.1:{platform.state.mqtt_port}   (publisher's password: mqttPassword)
  InfluxDB     http://127.0.0.1:{platform.state.influxdb_port}   (org camdt, bucket default; influxdbToken)
  Node-RED     http://127.0.0.1:{platform.state.nodered_port}/   (admin / noderedAdminPassword)
  kubectl      KUBECONFIG={cluster.kubeconfig} {platform.tools.kubectl} \\
                 get analytics,pods -n {platform.state.namespace}
  logs         {platform.state_dir / "logs"}, {platform.state_dir / "node" / "logs"}
Stop everything with `make down`.""",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m localdev", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    command = parser.parse_args().command
    platform = LocalPlatform.load(STATE_DIR, find_tools())
    if command == "up":
        up(platform)
    elif command == "down":
        if not platform.down():
            raise SystemExit(1)
    else:
        print(platform.status())


if __name__ == "__main__":
    main()
