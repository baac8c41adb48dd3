"""`solutions`, `solutionTokens` and `solutionsForceRemoval`: typed settings, and a message naming the key and
the fix for every wrong or missing value (a token's value never in a message)."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components.config import (
    ConfigError,
    ContainerDefaults,
    MissingSecretError,
    PlatformConfig,
    SolutionQuota,
    solution_token_keys,
    stack_solution_names,
)

from .harness import SECRETS, SOLUTION_TOKENS, run_program
from .test_config import REPO

LAB = {"name": "lab", "quota": {"cpu": 2, "memory": "4Gi", "pods": 10}}


def load(config: dict[str, Any], tokens: Any = SOLUTION_TOKENS, **secrets: str) -> PlatformConfig:
    values = {**SECRETS, **secrets, **({"solutionTokens": json.dumps(tokens)} if tokens is not None else {})}
    return run_program(PlatformConfig.load, config, secrets=values).result


def test_solutions_become_typed_settings() -> None:
    entry = {**LAB, "defaults": {"cpu": "1", "memoryRequest": "128Mi"}, "storageSize": "2Gi"}
    cfg = load(
        {"solutions": [entry, {"name": "ward", "quota": {"cpu": "500m", "memory": "1Gi", "pods": "3"}}]}
    )
    lab, ward = cfg.solutions
    assert (lab.name, lab.namespace, ward.namespace) == ("lab", "dtpoc-lab", "dtpoc-ward")
    assert lab.quota == SolutionQuota(cpu="2", memory="4Gi", pods=10)  # a YAML number is a quantity
    assert ward.quota == SolutionQuota(cpu="500m", memory="1Gi", pods=3)
    assert lab.defaults == ContainerDefaults(
        cpu="1", memory="512Mi", cpu_request="50m", memory_request="128Mi"
    )
    assert ward.defaults == ContainerDefaults()
    assert (lab.storage_size, ward.storage_size) == ("2Gi", "10Gi")  # orchestratorStorageSize by default


def test_a_solutions_namespace_follows_the_platforms() -> None:
    cfg = load({"namespace": "hospital", "solutions": [LAB]})
    assert cfg.solutions[0].namespace == "hospital-lab"


def test_tokens_are_secret_outputs_with_the_configured_values() -> None:
    def tokens(cfg: PlatformConfig) -> dict[str, Any]:
        (lab,) = cfg.solutions
        return {
            "admin": lab.admin_token,
            "read": lab.read_token,
            "secret": pulumi.Output.all(lab.admin_token.is_secret(), lab.read_token.is_secret()),
        }

    values = {**SECRETS, "solutionTokens": json.dumps(SOLUTION_TOKENS)}
    run = run_program(PlatformConfig.load, {"solutions": [LAB]}, secrets=values, resolve_result=tokens)
    assert run.outputs == {**SOLUTION_TOKENS["lab"], "secret": [True, True]}


def test_no_solutions_and_an_empty_list_are_the_same() -> None:
    assert load({}, tokens=None).solutions == load({"solutions": []}, tokens=None).solutions == ()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"solutions": {"name": "lab"}}, "solutions must be a list"),
        ({"solutions": ["lab"]}, r"solutions\[0\] must be an object"),
        ({"solutions": [{"name": "lab"}]}, r"solutions\[0\]: missing quota .*--path 'solutions\[0\].name'"),
        ({"solutions": [{**LAB, "size": "1Gi"}]}, r"solutions\[0\]: unknown key\(s\) size"),
        (
            {"solutions": [{"name": "lab", "quota": {"cpu": 1, "pods": 2}}]},
            r"solutions\[0\].quota: missing memory",
        ),
        ({"solutions": [{"name": "Lab", "quota": LAB["quota"]}]}, "solution name 'Lab': lowercase letters"),
        ({"solutions": [{"name": "a" * 41, "quota": LAB["quota"]}]}, "at most 40 characters"),
        (
            {"solutions": [{"name": "default", "quota": LAB["quota"]}]},
            r"'default' is the platform's own namespace",
        ),
        ({"solutions": [LAB, LAB]}, "the name lab is used twice"),
        (
            {"solutions": [LAB], "storageMode": "dynamic"},
            "solutions need storageMode hostPath.*cannot be shared",
        ),
        (
            {"solutions": [{"name": "lab", "quota": {"cpu": "lots", "memory": "4Gi", "pods": 1}}]},
            r"solutions\[0\].quota: pods must be >= 1, cpu a CPU quantity",
        ),
        (
            {"solutions": [{"name": "lab", "quota": {"cpu": 1, "memory": "4Gi", "pods": "many"}}]},
            r"solutions\[0\].quota.pods must be an integer",
        ),
        (
            {"solutions": [{**LAB, "defaults": {"memory": "lots"}}]},
            r"solutions\[0\].defaults.memory: a quantity",
        ),
        ({"solutions": [{**LAB, "defaults": {"gpu": 1}}]}, r"solutions\[0\].defaults: unknown key\(s\) gpu"),
        ({"solutions": [{**LAB, "storageSize": "big"}]}, r"solutions\[0\].storageSize must be a size"),
        ({"solutions": [LAB], "namespace": "n" * 60}, r"solutions\[0\] 'lab': its namespace"),
        ({"solutionsForceRemoval": ["Lab"]}, "solution name 'Lab'"),
        ({"ingressControllerNamespace": "Ingress"}, "ingressControllerNamespace"),
    ],
)
def test_wrong_solutions_fail_with_a_clear_message(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(config)


def test_a_solutions_namespace_must_not_be_the_ingress_controllers() -> None:
    tokens = {"nginx": SOLUTION_TOKENS["lab"]}
    solutions = [{"name": "nginx", "quota": LAB["quota"]}]
    with pytest.raises(
        ConfigError, match="namespace ingress-nginx is the platform's or the ingress controller's"
    ):
        load({"namespace": "ingress", "solutions": solutions}, tokens=tokens)


@pytest.mark.parametrize(
    ("tokens", "missing"),
    [
        ({}, "admin"),
        ({"lab": {"admin": SOLUTION_TOKENS["lab"]["admin"]}}, "read"),
        ({"lab": {"admin": "", "read": SOLUTION_TOKENS["lab"]["read"]}}, "admin"),
        (None, "admin"),
    ],
)
def test_a_solution_without_its_tokens_says_the_command(tokens: Any, missing: str) -> None:
    with pytest.raises(MissingSecretError) as caught:
        load({"solutions": [LAB]}, tokens=tokens)
    assert f"pulumi config set --secret --path 'solutionTokens.lab.{missing}' <value>" in str(caught.value)
    assert f"dtpoc:solutionTokens.lab.{missing}" in str(caught.value)


def test_a_short_token_is_refused_without_showing_it() -> None:
    short = "short-token-123"  # 15 characters
    tokens = {"lab": {"admin": short, "read": SOLUTION_TOKENS["lab"]["read"]}}
    with pytest.raises(
        ConfigError, match=r"solutionTokens\.lab\.admin is shorter than 16 characters"
    ) as caught:
        load({"solutions": [LAB]}, tokens=tokens)
    assert short not in str(caught.value)


@pytest.mark.parametrize(
    ("tokens", "platform", "message"),
    [
        (
            {**SOLUTION_TOKENS, "lab": {"admin": "same-token-0123456789", "read": "same-token-0123456789"}},
            {},
            "solutionTokens.lab.read equals solutionTokens.lab.admin",
        ),
        (
            {
                **SOLUTION_TOKENS,
                "ward": {"admin": SOLUTION_TOKENS["lab"]["read"], "read": "ward-read-0123456789"},
            },
            {},
            "solutionTokens.ward.admin equals solutionTokens.lab.read",
        ),
        (
            SOLUTION_TOKENS,
            {"apiToken": SOLUTION_TOKENS["lab"]["admin"]},
            "solutionTokens.lab.admin equals apiToken",
        ),
        (
            SOLUTION_TOKENS,
            {"apiReadToken": SOLUTION_TOKENS["ward"]["read"]},
            "solutionTokens.ward.read equals apiReadToken",
        ),
    ],
)
def test_every_token_differs(tokens: Any, platform: dict[str, str], message: str) -> None:
    ward = {"name": "ward", "quota": LAB["quota"]}
    with pytest.raises(ConfigError, match=message) as caught:
        load({"solutions": [LAB, ward]}, tokens=tokens, **platform)
    assert not any(v in str(caught.value) for t in tokens.values() for v in t.values())


def test_tokens_of_a_solution_no_longer_listed_are_ignored() -> None:
    cfg = load({"solutions": [LAB]}, tokens={**SOLUTION_TOKENS, "gone": {"admin": "x", "read": "x"}})
    assert [s.name for s in cfg.solutions] == ["lab"]


def test_force_removal_names_are_kept() -> None:
    assert load({"solutionsForceRemoval": ["lab", "ward"]}).solutions_force_removal == ("lab", "ward")


def test_the_local_stack_declares_one_small_solution_and_its_token_keys() -> None:
    names = stack_solution_names(REPO / "Pulumi.local.yaml")
    assert names == ["lab"]
    assert solution_token_keys(names) == ["solutionTokens.lab.admin", "solutionTokens.lab.read"]
    assert stack_solution_names(REPO / "Pulumi.prod.yaml") == []
