"""A stack without `solutions` renders exactly as before solutions existed (issue 13): every resource's URN,
inputs and dependencies of the committed stacks (local, dev, prod) equal the snapshot written from the
program before the change (snapshot.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .snapshot import SNAPSHOT, STACK_FILES, render


def _by_urn(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["urn"]: r for r in resources}


@pytest.mark.parametrize("stack", STACK_FILES)
def test_a_stack_without_solutions_renders_as_before(stack: str) -> None:
    expected = json.loads(SNAPSHOT.read_text())[stack]
    now = _by_urn(render(expected["config"]))
    before = _by_urn(expected["resources"])
    assert sorted(now.keys() - before.keys()) == [], "resources that did not exist"
    assert sorted(before.keys() - now.keys()) == [], "resources that are gone"
    changed = [urn for urn in before if now[urn] != before[urn]]
    assert changed == [], f"changed: {changed}"
