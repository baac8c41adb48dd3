"""Reading Kubernetes objects in tests: NotFound is "not there"; any other kubectl failure raises, so a
check that something is gone never passes because kubectl itself failed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any


def kubectl_get(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], kind: str, name: str
) -> dict[str, Any] | None:
    result = kubectl("get", kind, name, "-o", "json", check=False)
    if result.returncode == 0:
        return dict(json.loads(result.stdout))
    if "NotFound" in result.stderr or "not found" in result.stderr:
        return None
    raise RuntimeError(f"kubectl get {kind} {name} failed: {result.stderr.strip()}")
