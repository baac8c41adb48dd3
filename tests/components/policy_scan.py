"""The platform's manifests as Kubernetes YAML, and checkov's verdict on them.

The manifests are the Kubernetes objects a stack registers under Pulumi's mocks (harness.py), one file per
object. checkov runs in a tool environment of its own (`uv tool run`, pinned): its dependencies clash with
Pulumi's pins, so it cannot live in the project's virtualenv. `--skip-download` keeps it offline.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .harness import Run

CHECKOV = "checkov==3.3.30"


def _plain(value: Any) -> Any:
    """Pulumi's mocks hand numbers back as floats (protobuf); Kubernetes YAML has integers (ports, uids)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def write_manifests(run: Run, dest: Path) -> list[Path]:
    """Every Kubernetes object of `run` as `<Kind>-<name>.yaml` under `dest` (Helm releases are not
    manifests and are left out)."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for r in run.k8s_objects():
        if r.kind is None:
            continue
        path = dest / f"{r.kind}-{r.k8s_name}.yaml"
        path.write_text(yaml.safe_dump(_plain(r.inputs), sort_keys=False))
        written.append(path)
    return written


@dataclass(frozen=True)
class Finding:
    check_id: str
    resource: str  # checkov's id: Kind.namespace.name (Pods derived from templates carry their labels)
    name: str

    @property
    def app(self) -> str:
        """The object's name (for derived Pods: the name of the workload they come from)."""
        return self.resource.split(".")[2]


@dataclass
class ScanReport:
    passed: int
    failed: list[Finding]
    skipped: list[tuple[Finding, str]]  # with the reason written next to the skip

    def failed_for(self, apps: Iterable[str]) -> list[Finding]:
        wanted = set(apps)
        return [f for f in self.failed if f.app in wanted]


def _finding(raw: dict) -> Finding:
    return Finding(raw["check_id"], raw["resource"], raw["check_name"])


def scan(directory: Path, timeout: float = 300) -> ScanReport:
    result = subprocess.run(
        [
            "uv", "tool", "run", "--from", CHECKOV, "checkov",
            "--directory", str(directory), "--framework", "kubernetes",
            "--output", "json", "--compact", "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )  # fmt: skip
    # checkov exits 1 when a check failed; anything else, or no JSON, is the tool itself failing.
    if result.returncode not in (0, 1) or not result.stdout.strip().startswith(("{", "[")):
        raise RuntimeError(f"checkov failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    reports = json.loads(result.stdout)
    report = reports[0] if isinstance(reports, list) else reports
    results = report.get("results", {})
    return ScanReport(
        passed=report["summary"]["passed"],
        failed=[_finding(f) for f in results.get("failed_checks", [])],
        skipped=[
            (_finding(f), (f.get("check_result") or {}).get("suppress_comment", ""))
            for f in results.get("skipped_checks", [])
        ],
    )
