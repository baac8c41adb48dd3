"""The `local` stack of the program against a local cluster, driven through the real Pulumi CLI.

The project is copied to a scratch folder first (with the repository's virtualenv linked in): `pulumi stack
init` and `pulumi config set --secret` write to the stack file, and the committed one must stay as it is.
Used by the `pulumi` test and by bench/pulumi.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from components.config import secret_keys, solution_token_keys, stack_solution_names
from localdev.pulumi import PulumiWorkspace

REPO = Path(__file__).resolve().parents[2]
STACK = "local"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", ".pytest_cache")


def copy_project(dest: Path, stack: str = STACK) -> Path:
    """Pulumi.yaml, the stack file, __main__.py, components/ and services/ (the shared CRD) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", f"Pulumi.{stack}.yaml", "__main__.py"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("components", "services"):
        shutil.copytree(REPO / name, dest / name, ignore=_IGNORE, dirs_exist_ok=True)
    venv = dest / ".venv"
    if not venv.exists():
        venv.symlink_to(REPO / ".venv")
    return dest


def generated_secrets() -> dict[str, str]:
    """The program's secrets and the tokens of the stack file's solutions (keys as `--path` takes them)."""
    keys = [*secret_keys(), *solution_token_keys(stack_solution_names(REPO / f"Pulumi.{STACK}.yaml"))]
    return {key: secrets.token_hex(32) for key in keys}


@dataclass
class LocalStack:
    workspace: PulumiWorkspace
    project: Path
    stack: str = STACK
    secrets: dict[str, str] = field(default_factory=generated_secrets)
    # Without a real node (this cluster is kwok's alone), the pieces the stack file pins to one run
    # anywhere, i.e. on kwok's simulated nodes; localdev's LocalPlatform is what runs them for real.
    config: dict[str, str] = field(default_factory=lambda: {"realNodeSelector": ""})
    timings: dict[str, float] = field(default_factory=dict)

    def pulumi(
        self, *args: str, check: bool = True, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        return self.workspace.run(*args, cwd=self.project, check=check, timeout=timeout)

    def timed(self, label: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        start = time.perf_counter()
        try:
            return self.pulumi(*args, check=check)
        finally:
            self.timings[label] = time.perf_counter() - start

    def init(self) -> None:
        self.pulumi("stack", "init", self.stack)
        for key, value in self.config.items():
            self.pulumi("config", "set", "--stack", self.stack, key, value)
        for key, value in self.secrets.items():
            self.pulumi("config", "set", "--secret", "--path", "--stack", self.stack, key, value)

    def up(self, label: str = "up", *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.timed(label, "up", "--stack", self.stack, "--yes", *extra, check=check)

    def preview(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.pulumi("preview", "--stack", self.stack, *extra, check=check)

    def destroy(self, check: bool = True) -> subprocess.CompletedProcess[str]:
        # --run-program: a solution's Namespace has a delete hook (components/solution_guard.py).
        return self.timed("destroy", "destroy", "--stack", self.stack, "--yes", "--run-program", check=check)

    def remove(self) -> None:
        self.pulumi("stack", "rm", self.stack, "--yes", "--force", check=False)

    def resources(self) -> list[dict]:
        exported = json.loads(self.pulumi("stack", "export", "--stack", self.stack).stdout)
        return exported.get("deployment", {}).get("resources") or []

    def outputs(self) -> dict:
        return json.loads(self.pulumi("stack", "output", "--stack", self.stack, "--json").stdout)
