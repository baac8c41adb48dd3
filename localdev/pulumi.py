"""A Pulumi workspace that needs no network: a file backend, its own PULUMI_HOME, a generated
passphrase, and the CLI, language host and kubernetes provider from our own builds on PATH."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .tools import Tools


def write_private(path: Path, text: str) -> None:
    """Write `text` to a file readable by its owner only, from the first byte: a new file is made with mode
    0600 (never world-readable, not even for a moment) under a temporary name and renamed into place."""
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def project_view(repo: Path, dest: Path, stack: str) -> Path:
    """A folder that is the program (symlinks into the repository) with its own copy of the stack file:
    `stack init` and `config set --secret` write to the stack file, and the committed one stays as it is."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", "__main__.py", "components", "services", ".venv"):
        link = dest / name
        if not link.is_symlink():
            link.symlink_to(repo / name)
    shutil.copy2(repo / f"Pulumi.{stack}.yaml", dest / f"Pulumi.{stack}.yaml")
    return dest


@dataclass
class PulumiWorkspace:
    state_dir: Path
    tools: Tools
    kubeconfig: Path | None = None

    @classmethod
    def create(cls, tools: Tools, state_dir: Path, kubeconfig: Path | None = None) -> PulumiWorkspace:
        (state_dir / "backend").mkdir(parents=True, exist_ok=True)
        (state_dir / "home").mkdir(parents=True, exist_ok=True)
        passphrase_file = state_dir / "passphrase"
        if not passphrase_file.exists():
            write_private(passphrase_file, secrets.token_urlsafe(24))
        return cls(state_dir, tools, kubeconfig)

    @property
    def plugins_dir(self) -> Path:
        return self.state_dir / "home" / "plugins"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "PATH": f"{self.tools.pulumi_path}{os.pathsep}{os.environ.get('PATH', '')}",
            "PULUMI_HOME": str(self.state_dir / "home"),
            "PULUMI_BACKEND_URL": f"file://{self.state_dir / 'backend'}",
            "PULUMI_CONFIG_PASSPHRASE_FILE": str(self.state_dir / "passphrase"),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            "PULUMI_DIY_BACKEND_DISABLE_CHECKPOINT_BACKUPS": "true",
        }
        env.pop("PULUMI_CONFIG_PASSPHRASE", None)
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def command(self, *args: str) -> list[str]:
        return [str(self.tools.pulumi), *args, "--non-interactive"]

    def run(
        self, *args: str, cwd: Path, check: bool = True, timeout: float = 900, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.command(*args),
            cwd=cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"pulumi {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result
