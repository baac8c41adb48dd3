"""The pure parts: spec checks, manifests built from a spec, status computed from a Job."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from services.operator import layout, status, workloads
from services.operator.outputs import RecordState, output_files
from services.operator.runs import is_settled
from services.operator.settings import OperatorSettings
from services.operator.workloads import AnalyticsSpec, InvalidSpec
from services.shared.names import SERVICE_ID_LABEL

SID = "669a52d1364a1b751c550d56"


@pytest.fixture
def settings(tmp_path: Path) -> OperatorSettings:
    return OperatorSettings(output_root=tmp_path, data_pvc="data", max_parallelism=4)


def spec(**fields: object) -> AnalyticsSpec:
    return AnalyticsSpec.parse(
        {"image": "ghcr.io/x/digital-hosp-des:latest", "jobType": "ondemand", "reps": 3, **fields}
    )


def container(pod_template: dict) -> dict:
    return pod_template["spec"]["containers"][0]


def env_of(pod_template: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container(pod_template)["env"]}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"env": {"1BAD": "x"}}, "not a valid variable name"),
        ({"env": {"A-B": "x"}}, "not a valid variable name"),
        ({"env": {"RUN_INDEX": "7"}}, "set by the platform"),
        ({"env": {"MONGODB_PASSWORD": "x"}}, "set by the platform"),
        ({"reps": 0}, "reps between 1 and 100"),
        ({"reps": 101}, "reps between 1 and 100"),
        ({"port": 8080}, "not taken by ondemand"),
        ({"schedule": "* * * * *"}, "only scheduled"),
        ({"jobType": "scheduled", "schedule": "not cron"}, "not a valid cron"),
        ({"jobType": "persistent"}, "persistent takes no reps"),
        ({"jobType": "batch"}, "jobType must be one of"),
        ({"image": " "}, "image is required"),
    ],
)
def test_bad_specs_are_refused_with_a_reason(fields: dict, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        spec(**fields)


def test_ondemand_is_an_indexed_job_with_bounded_parallelism(settings: OperatorSettings) -> None:
    job = workloads.job(SID, spec(reps=10), settings)
    assert job["metadata"]["name"] == f"ana-{SID}"
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == 10
    assert job["spec"]["parallelism"] == 4
    assert job["spec"]["backoffLimitPerIndex"] == 0
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert workloads.job(SID, spec(reps=2), settings)["spec"]["parallelism"] == 2


def test_children_carry_the_platform_labels(settings: OperatorSettings) -> None:
    job = workloads.job(SID, spec(), settings)
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels == {
            "app.kubernetes.io/name": "digital-hosp-des",
            "app.kubernetes.io/component": "ondemand",
            "app.kubernetes.io/part-of": "dtpoc",
            "app.kubernetes.io/managed-by": "dtpoc-orchestrator-operator",
            SERVICE_ID_LABEL: SID,
        }


def test_run_pods_get_input_output_and_run_identity(settings: OperatorSettings) -> None:
    template = workloads.job(SID, spec(), settings)["spec"]["template"]
    mounts = {m["mountPath"]: m for m in container(template)["volumeMounts"]}
    assert mounts["/input"] == {
        "name": "data",
        "mountPath": "/input",
        "subPath": f"{SID}/input",
        "readOnly": True,
    }
    assert mounts["/output"] == {
        "name": "data",
        "mountPath": "/output",
        "subPathExpr": f"{SID}/runs/$(RUN_INDEX)",
    }
    assert template["spec"]["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    env = env_of(template)
    assert env["RUN_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )
    assert env["RUN_ID"]["value"] == "$(JOB_NAME)-$(RUN_INDEX)"
    names = [e["name"] for e in container(template)["env"]]
    assert names.index("RUN_INDEX") < names.index("RUN_ID") and names.index("JOB_NAME") < names.index(
        "RUN_ID"
    )


def test_env_values_arrive_literally(settings: OperatorSettings) -> None:
    values = {"PLAIN": "/input/input.xlsx", "DOLLAR": "$(HOME) and $$(X) cost $5", "SHELL": "; rm -rf / `id`"}
    env = env_of(workloads.pod_template(SID, spec(env=values), settings))
    assert env["PLAIN"] == {"name": "PLAIN", "value": "/input/input.xlsx"}
    assert env["DOLLAR"]["value"] == "$$(HOME) and $$$$(X) cost $$5"  # Kubernetes turns $$ back into $
    assert env["SHELL"]["value"] == "; rm -rf / `id`"
    assert "command" not in container(workloads.pod_template(SID, spec(env=values), settings))


def test_run_pods_are_non_root_and_bounded(settings: OperatorSettings) -> None:
    template = workloads.pod_template(SID, spec(), settings)
    assert template["spec"]["securityContext"]["runAsNonRoot"] is True
    assert template["spec"]["securityContext"]["runAsUser"] == 10001
    assert template["spec"]["automountServiceAccountToken"] is False
    assert container(template)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert set(container(template)["resources"]) == {"requests", "limits"}


def test_module_pull_policy_is_kubernetes_default_unless_set(settings: OperatorSettings) -> None:
    assert "imagePullPolicy" not in container(workloads.pod_template(SID, spec(), settings))
    never = settings.model_copy(update={"image_pull_policy": "Never"})
    assert container(workloads.pod_template(SID, spec(), never))["imagePullPolicy"] == "Never"


def test_scheduled_is_a_cronjob_with_the_same_run_template(settings: OperatorSettings) -> None:
    scheduled = spec(jobType="scheduled", schedule="*/5 * * * *", reps=2)
    cron = workloads.cronjob(SID, scheduled, settings)
    assert cron["kind"] == "CronJob"
    assert cron["spec"]["schedule"] == "*/5 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    job_spec = cron["spec"]["jobTemplate"]["spec"]
    assert (job_spec["completionMode"], job_spec["completions"]) == ("Indexed", 2)
    mounts = {m["mountPath"]: m for m in container(job_spec["template"])["volumeMounts"]}
    assert mounts["/output"]["subPathExpr"] == f"{SID}/runs/$(JOB_NAME)/$(RUN_INDEX)"


def test_persistent_with_port_gets_service_and_ingress(settings: OperatorSettings) -> None:
    persistent = AnalyticsSpec.parse({"image": "nginx:1", "jobType": "persistent", "port": 8080})
    deployment, service, ingress = workloads.children(
        SID, persistent, settings.model_copy(update={"ingress_host": "dt.example"})
    )
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert deployment["spec"]["selector"]["matchLabels"][SERVICE_ID_LABEL] == SID
    assert container(deployment["spec"]["template"])["ports"][0]["containerPort"] == 8080
    assert service["spec"]["ports"][0]["port"] == 8080
    rule = ingress["spec"]["rules"][0]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert rule["host"] == "dt.example"
    assert rule["http"]["paths"][0]["path"] == f"/services/{SID}"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": f"ana-{SID}", "port": {"number": 8080}}
    no_port = AnalyticsSpec.parse({"image": "nginx:1", "jobType": "persistent"})
    assert [c["kind"] for c in workloads.children(SID, no_port, settings)] == ["Deployment"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, set()), ("", set()), ("3", {3}), ("0-2,5", {0, 1, 2, 5}), ("1,3-4", {1, 3, 4})],
)
def test_job_index_lists_are_parsed(text: str | None, expected: set[int]) -> None:
    assert status.parse_indexes(text) == expected


def _job(**job_status: object) -> dict:
    return {"spec": {"completions": 3}, "status": job_status}


def test_ondemand_phase_follows_the_job_and_waits_for_outputs() -> None:
    nothing = RecordState()
    assert status.ondemand_update(_job(active=3), nothing).fields["phase"] == "Pending"
    assert status.ondemand_update(_job(active=3, ready=1), nothing).fields["phase"] == "Running"
    complete = _job(succeeded=3, completedIndexes="0-2", conditions=[{"type": "Complete", "status": "True"}])
    assert status.ondemand_update(complete, RecordState(collected={0, 1})).fields["phase"] == "Running"
    done = status.ondemand_update(complete, RecordState(collected={0, 1, 2}, outputs=6))
    assert done.fields == {"phase": "Succeeded", "active": 0, "succeeded": 3, "failed": 0, "outputs": 6}
    failed = _job(
        completedIndexes="0,2",
        failedIndexes="1",
        conditions=[{"type": "Failed", "status": "True", "reason": "FailedIndexes"}],
    )
    update = status.ondemand_update(failed, RecordState(collected={0, 1, 2}, failed={1}))
    assert (update.fields["phase"], update.fields["succeeded"], update.fields["failed"]) == ("Failed", 2, 1)
    assert update.conditions[0]["message"] == "FailedIndexes: failed runs [1]"


def test_a_run_whose_outputs_were_refused_fails_the_service() -> None:
    complete = _job(succeeded=3, completedIndexes="0-2", conditions=[{"type": "Complete", "status": "True"}])
    state = RecordState(collected={0, 1, 2}, failed={1}, rejected={1: "the run wrote more than 10 files"})
    update = status.ondemand_update(complete, state)
    assert (update.fields["phase"], update.fields["succeeded"], update.fields["failed"]) == ("Failed", 2, 1)
    conditions = {c["type"]: c for c in update.conditions}
    assert conditions["RunsFinished"]["message"] == "OutputsRefused: failed runs [1]"
    accepted = conditions["OutputsAccepted"]
    assert (accepted["status"], accepted["reason"]) == ("False", "LimitExceeded")
    assert accepted["message"] == "outputs refused: run 1: the run wrote more than 10 files"
    fine = status.ondemand_update(complete, RecordState(collected={0, 1, 2}))
    assert fine.fields["phase"] == "Succeeded"
    assert {c["type"]: c["status"] for c in fine.conditions}["OutputsAccepted"] == "True"


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    first = status.merge_conditions([], [status.condition("A", False, "Waiting")])
    first[0]["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    same = status.merge_conditions(first, [status.condition("A", False, "StillWaiting")])
    assert same[0]["lastTransitionTime"] == "2020-01-01T00:00:00Z" and same[0]["reason"] == "StillWaiting"
    flipped = status.merge_conditions(same, [status.condition("A", True, "Done")])
    assert flipped[0]["lastTransitionTime"] != "2020-01-01T00:00:00Z"


def test_output_listing_skips_symlinks(tmp_path: Path) -> None:
    run = layout.run_dir(tmp_path, SID, 0)
    (run / "sub").mkdir(parents=True)
    (run / "a.json").write_text("{}")
    (run / "sub" / "b.txt").write_text("b")
    (run / "secret").symlink_to("/etc/passwd")
    (run / "linked-dir").symlink_to(tmp_path)
    assert output_files(run) == ["a.json", "sub/b.txt"]
    assert output_files(tmp_path / "missing") == []


def test_only_finished_collected_or_never_started_resources_skip_the_sweep() -> None:
    def with_(phase: str, *true: str) -> dict:
        return {"phase": phase, "conditions": [status.condition(t, True, "x") for t in true]}

    assert is_settled(with_("Succeeded", "WorkloadCreated", "OutputsCollected"))
    assert not is_settled(with_("Failed", "WorkloadCreated"))  # runs failed, outputs still to collect
    assert is_settled(with_("Failed", "RecordFound"))  # failed before its workload was made
    assert not is_settled(with_("Running", "WorkloadCreated", "OutputsCollected"))
    assert not is_settled({})


# --- hostile but valid values: never a shell, never expanded ------------------------------------------


def kubernetes_expand(text: str, env: dict[str, str]) -> str:
    """What the kubelet does to an env value: `$$` is `$`, `$(NAME)` is NAME's value when NAME is defined
    earlier, anything else stays as written."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if text.startswith("$(", i) and (end := text.find(")", i + 2)) != -1:
            name = text[i + 2 : end]
            out.append(env.get(name, text[i : end + 1]))
            i = end + 1
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def containers_of(manifest: dict) -> list[dict]:
    spec = manifest["spec"]
    spec = spec.get("jobTemplate", {}).get("spec", spec)
    template = spec.get("template")
    return template["spec"]["containers"] if template else []


HOSTILE = st.sampled_from(
    ["$(MONGODB_PASSWORD)", "$(RUN_ID)", "$$(HOME)", "`id`", "; rm -rf /", "a && b", "$(", "\n", "x\\$(Y)"]
)
env_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True).filter(
    lambda n: n not in workloads.RESERVED_ENV and n != "BASE_PATH"
)
env_values = st.lists(st.one_of(HOSTILE, st.text(max_size=20)), max_size=4).map("".join)


@given(
    env=st.dictionaries(env_names, env_values, max_size=6),
    job_type=st.sampled_from(["ondemand", "scheduled", "persistent"]),
    port=st.one_of(st.none(), st.integers(1, 65535)),
)
@hypothesis_settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_hostile_env_values_reach_the_container_literally_and_never_a_shell(
    settings: OperatorSettings, env: dict[str, str], job_type: str, port: int | None
) -> None:
    fields: dict = {"jobType": job_type, "env": env}
    if job_type == "persistent":
        fields |= {"reps": None, **({"port": port} if port else {})}
    if job_type == "scheduled":
        fields["schedule"] = "*/5 * * * *"
    parsed = AnalyticsSpec.parse(
        {k: v for k, v in {"image": "ghcr.io/x/m:1", "reps": 2, **fields}.items() if v is not None}
    )
    for manifest in workloads.children(SID, parsed, settings):
        for c in containers_of(manifest):
            # The image's own entry point: nothing of ours, and nothing from the resource, is run by a shell.
            assert "command" not in c and "args" not in c
            defined: dict[str, str] = {}
            for entry in c["env"]:
                if "value" in entry:
                    defined[entry["name"]] = kubernetes_expand(entry["value"], defined)
            for name, value in env.items():
                assert defined[name] == value, (name, value)


def test_output_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"FILES": "50", "BYTES": "4096", "DEPTH": "3", "RECORD_BYTES": "65536"}.items():
        monkeypatch.setenv(f"OPERATOR_OUTPUT_MAX_{name}", value)
    limits = OperatorSettings().output_limits
    assert (limits.max_files, limits.max_bytes, limits.max_depth, limits.max_record_bytes) == (
        50,
        4096,
        3,
        65536,
    )
    monkeypatch.setenv("OPERATOR_OUTPUT_MAX_RECORD_BYTES", str(16 * 1024 * 1024))  # past MongoDB's cap
    with pytest.raises(ValueError, match="output_max_record_bytes"):
        OperatorSettings()


def test_module_ingress_serves_https_on_its_own_host(settings: OperatorSettings) -> None:
    persistent = AnalyticsSpec.parse({"image": "nginx:1", "jobType": "persistent", "port": 8080})
    tls = settings.model_copy(update={"ingress_host": "apps.example", "ingress_tls_secret": "dt-tls"})
    ingress = workloads.children(SID, persistent, tls)[2]
    assert ingress["spec"]["tls"] == [{"secretName": "dt-tls", "hosts": ["apps.example"]}]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    plain = workloads.children(SID, persistent, settings)[2]
    assert "tls" not in plain["spec"] and "annotations" not in plain["metadata"]


def test_a_running_service_never_shows_pending_again() -> None:
    pending = status.Update({"phase": "Pending", "active": 3}, [{"type": "RunsFinished"}])
    kept = status._forward_only({"phase": "Running"}, pending)
    assert kept.fields == {"active": 3} and kept.conditions == pending.conditions
    assert status._forward_only({"phase": "Pending"}, pending) is pending  # nothing started yet: as it is
    ok = status.Update({"phase": "Succeeded"})
    assert status._forward_only({"phase": "Running"}, ok) is ok
