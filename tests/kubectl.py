"""Reading the cluster with kubectl in tests, shared by every test that checks that something is there
or gone. An object that does not exist is None (a list simply lacks it); any other kubectl failure
(the apiserver away, an unknown kind, no permission) raises, so a check for "gone" can never pass
because kubectl itself failed."""

from __future__ import annotations

import json
import subprocess
from typing import Any, Protocol


class Kubectl(Protocol):
    """`LocalCluster.kubectl` and the tests' own wrappers (which add `-n <namespace>` or a kubeconfig)."""

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]: ...


class KubectlFailed(RuntimeError):
    def __init__(self, args: tuple[str, ...], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(
            f"kubectl {' '.join(args)} failed (exit {result.returncode}): {result.stderr.strip()}"
        )


def _run(kubectl: Kubectl, *args: str) -> str:
    result = kubectl(*args, check=False)
    if result.returncode != 0:
        raise KubectlFailed(args, result)
    return result.stdout


def get_object(kubectl: Kubectl, kind: str, name: str, *scope: str) -> dict[str, Any] | None:
    """The object as JSON, or None when the apiserver says it does not exist."""
    # --ignore-not-found: exit 0 with no output for NotFound only; every other error still exits non-zero.
    out = _run(kubectl, "get", kind, name, *scope, "-o", "json", "--ignore-not-found")
    return json.loads(out) if out.strip() else None


def object_names(kubectl: Kubectl, kind: str, *scope: str) -> set[str]:
    """Names of the objects of `kind` (scope: e.g. "-n", namespace, or "-l", selector)."""
    out = _run(kubectl, "get", kind, *scope, "-o", "json")
    return {item["metadata"]["name"] for item in json.loads(out)["items"]}
