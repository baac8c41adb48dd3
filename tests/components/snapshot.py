"""What a stack renders, as one comparable document: every resource's URN, inputs and dependencies.

`test_no_solutions_snapshot.py` compares stacks without `solutions` with the file this module wrote from the
program before solutions existed (issue 13: a stack without solutions renders exactly as before). Values
that change with the repository's content and not with the program are replaced by placeholders: the
images' content-hash tags and digests, the repository's folder and the dynamic provider's pickled
code.

Regenerate (only when a change of the rendered stacks is intended):
    uv run --frozen python -m tests.components.snapshot
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from .conftest import build_platform
from .harness import PROJECT, Run

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = Path(__file__).with_name("no_solutions_snapshot.json")
STACK_FILES = ("local", "dev", "prod")

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_CONTENT_TAG = re.compile(r":[0-9a-f]{20}\b")
_DROPPED_INPUTS = ("__provider",)  # the dynamic provider's pickled code


def stack_config(stack: str) -> dict[str, Any]:
    """A committed stack file's config, keys without the project prefix."""
    document = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
    prefix = f"{PROJECT}:"
    return {k.removeprefix(prefix): v for k, v in (document.get("config") or {}).items()}


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _DROPPED_INPUTS}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, str):
        value = value.replace(str(REPO), "<repo>")
        return _CONTENT_TAG.sub(":<content-hash>", _DIGEST.sub("sha256:<digest>", value))
    return value


def rendered(run: Run) -> list[dict[str, Any]]:
    """Every resource (by URN: registrations arrive in the order their inputs resolve), as the engine
    would compare it."""
    resources = [
        {
            "urn": _stable(f"{r.parent}::{r.typ}::{r.name}"),
            "custom": r.custom,
            "inputs": _stable(r.inputs),
            "dependencies": sorted(_stable(d) for d in r.dependencies),
        }
        for r in run.resources
    ]
    return sorted(resources, key=lambda r: r["urn"])


def render(config: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(json.dumps(rendered(build_platform(config)), sort_keys=True, default=str))


def main() -> None:
    stacks = {}
    for stack in STACK_FILES:
        config = {k: v for k, v in stack_config(stack).items() if not k.startswith("solution")}
        stacks[stack] = {"config": config, "resources": render(config)}
    SNAPSHOT.write_text(json.dumps(stacks, indent=1, sort_keys=True) + "\n")
    counts = ", ".join(f"{stack}: {len(v['resources'])}" for stack, v in stacks.items())
    print(f"wrote {SNAPSHOT} ({counts} resources)")


if __name__ == "__main__":
    main()
