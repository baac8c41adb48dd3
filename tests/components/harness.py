"""Runs Pulumi programs under mocks and records every registered resource with its resolved inputs.

Each run gets a fresh event loop and fresh Pulumi settings, so nothing leaks between tests. Assertions are
made afterwards on the recorded inputs (plain dicts): they always run, unlike asserts inside `apply`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func

PROJECT = "dtpoc"
_SECRET_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270"
DOCKER_IMAGE = "pulumi-python:dynamic/dtpoc:DockerImage"
_HOOK_TIMES = (
    "before_create",
    "after_create",
    "before_update",
    "after_update",
    "before_delete",
    "after_delete",
)


def pushed_ref(tag: str) -> str:
    """What the mocks answer for a pushed image: its tag with a digest derived from the tag (not one
    constant for every image, so that a test can only match it by following the build's output)."""
    return f"{tag}@sha256:{hashlib.sha256(tag.encode()).hexdigest()}"


# Values the test stacks use for the required secrets (long enough for the length checks).
SECRETS = {
    "mongodbPassword": "mongo-Pa55word-unit",
    "influxdbPassword": "influx-Pa55word-unit",
    "influxdbToken": "influx-admin-token-unit-0123456789",
    "apiToken": "api-bearer-token-unit-0123456789",
    "apiReadToken": "api-read-token-unit-0123456789",
    "grafanaAdminPassword": "grafana-Pa55word-unit",
    "noderedAdminPassword": "nodered-Pa55word-unit",
    "mqttPassword": "mqtt-Pa55word-unit",
}
# The tokens of the solutions the test stacks may declare (secret config object `solutionTokens`).
SOLUTION_TOKENS = {
    name: {"admin": f"{name}-admin-token-unit-0123456789", "read": f"{name}-read-token-unit-0123456789"}
    for name in ("lab", "ward", "histo")
}
# What a stack is given when a test names no secrets: the above, and the solutions' tokens.
STACK_SECRETS = {**SECRETS, "solutionTokens": json.dumps(SOLUTION_TOKENS)}


def unwrap(value: Any) -> tuple[Any, bool]:
    """Inputs with Pulumi's secret envelopes removed, and whether any secret was inside."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == _SECRET_VALUE:
            inner, _ = unwrap(value.get("value"))
            return inner, True
        found = False
        out = {}
        for k, v in value.items():
            out[k], s = unwrap(v)
            found = found or s
        return out, found
    if isinstance(value, list):
        items = [unwrap(v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


@dataclass
class Recorded:
    typ: str
    name: str
    inputs: dict[str, Any]
    has_secret: bool
    custom: bool
    # URNs this resource waits for (explicit depends_on and Output dependencies).
    dependencies: list[str] = field(default_factory=list)
    parent: str = ""  # its parent's URN (with its type and name: its own URN)
    # Names of the resource hooks bound to it, by when they run ("before_delete": [...]).
    hooks: dict[str, list[str]] = field(default_factory=dict)

    @property
    def kind(self) -> str | None:
        return self.inputs.get("kind")

    @property
    def metadata(self) -> dict[str, Any]:
        return self.inputs.get("metadata") or {}

    @property
    def k8s_name(self) -> str | None:
        return self.metadata.get("name")

    def dumps(self) -> str:
        return json.dumps(self.inputs, sort_keys=True, default=str)


class RecordingMocks(pulumi.runtime.Mocks):
    """Echoes inputs back as outputs (plus what a few resource types compute) and records every resource."""

    def __init__(self) -> None:
        self.resources: list[Recorded] = []
        self.dependencies: dict[tuple[str, str], list[str]] = {}
        self.parents: dict[tuple[str, str], str] = {}
        self.hooks: dict[tuple[str, str], dict[str, list[str]]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs, has_secret = unwrap(args.inputs)
        key = (args.typ, args.name)
        deps = self.dependencies.get(key, [])
        parent = self.parents.get(key, "")
        hooks = self.hooks.get(key, {})
        self.resources.append(
            Recorded(args.typ, args.name, inputs, has_secret, bool(args.custom), deps, parent, hooks)
        )
        outputs = dict(args.inputs)
        if args.typ == DOCKER_IMAGE:  # the provider's answer: the tag, with a digest once pushed
            outputs["ref"] = pushed_ref(inputs["tag"]) if inputs["push"] else inputs["tag"]
        if args.typ == "kubernetes:helm.sh/v3:Release":
            outputs["status"] = {"status": "deployed", "name": inputs.get("name")}
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, None]:
        return {}, None


class RecordingMonitor(MockMonitor):
    """The mock monitor, also noting each registration's dependencies for the mocks."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:
        self.recording.dependencies[(request.type, request.name)] = list(request.dependencies)
        self.recording.parents[(request.type, request.name)] = request.parent
        self.recording.hooks[(request.type, request.name)] = {
            when: list(getattr(request.hooks, when))
            for when in _HOOK_TIMES
            if request.HasField("hooks") and getattr(request.hooks, when)
        }
        return super().RegisterResource(request)


@dataclass
class Run:
    mocks: RecordingMocks
    result: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def resources(self) -> list[Recorded]:
        return self.mocks.resources

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.typ == typ]

    def kinds(self, kind: str) -> list[Recorded]:
        return [r for r in self.resources if r.custom and r.kind == kind]

    def one(self, kind: str, name: str) -> Recorded:
        found = [r for r in self.kinds(kind) if r.k8s_name == name]
        assert len(found) == 1, f"expected one {kind} {name!r}, found {[r.name for r in found]}"
        return found[0]

    def names(self, kind: str) -> set[str]:
        return {r.k8s_name for r in self.kinds(kind) if r.k8s_name}

    def waits_for(self, r: Recorded, typ: str) -> bool:
        """`r` depends on a resource of type `typ` (a component in depends_on counts as its children)."""
        return any(u.split("::")[-2].endswith(typ) for u in r.dependencies)

    def k8s_objects(self) -> Iterator[Recorded]:
        return (r for r in self.resources if r.custom and r.typ.startswith("kubernetes:"))


def run_program(
    program: Callable[[], Any],
    config: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    resolve_result: Callable[[Any], dict[str, Any]] | None = None,
) -> Run:
    """Run `program` under fresh mocks and a fresh event loop with the given stack config (keys without the
    project prefix; `secrets` are marked secret). Exceptions from the program propagate."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    all_config = {
        f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()
    }
    secret_values = STACK_SECRETS if secrets is None else secrets
    all_config.update({f"{PROJECT}:{k}": v for k, v in secret_values.items()})
    pulumi.runtime.set_all_config(all_config, secret_keys=[f"{PROJECT}:{k}" for k in secret_values])
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack="unit", preview=False, monitor=RecordingMonitor(mocks)
    )
    run = Run(mocks)
    try:

        def body() -> None:
            run.result = program()

        loop.run_until_complete(run_pulumi_func(body))
        if resolve_result is not None:
            run.outputs = {
                k: loop.run_until_complete(pulumi.Output.from_input(v).future())
                for k, v in resolve_result(run.result).items()
            }
    finally:
        pulumi.runtime.set_all_config({}, secret_keys=[])
        loop.close()
        asyncio.set_event_loop(None)
    return run
