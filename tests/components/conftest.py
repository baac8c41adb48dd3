"""Fixtures of the component tests: programs run under Pulumi's mocks (see harness.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from components.config import PlatformConfig
from components.platform import Platform, PlatformArgs

from .harness import Run, run_program


def build_platform(config: dict[str, Any] | None = None, **platform_args: Any) -> Run:
    """The whole platform from stack config (the required secrets are set unless `secrets` is given).
    `run.outputs["images"]`: what its images component answered (`operator_ref`, `api_ref`)."""
    secrets = platform_args.pop("secrets", None)

    def program() -> Platform:
        return Platform("dtpoc", PlatformArgs(PlatformConfig.load(), **platform_args))

    def images(platform: Platform) -> dict[str, Any]:
        return {"images": {"operator": platform.images.operator_ref, "api": platform.images.api_ref}}

    return run_program(program, config, secrets=secrets, resolve_result=images)


@pytest.fixture(scope="module")
def platform() -> Run:
    """The platform as the local stack builds it (no ingress controller), run once per test module."""
    return build_platform({"ingressController": "none"})


@pytest.fixture
def build() -> Callable[..., Run]:
    return build_platform
