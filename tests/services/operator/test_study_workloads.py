"""A study's pure parts: its spec checked again, one Job per scenario built from it, and its status
judged from those Jobs as one."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.operator import status, workloads
from services.operator.outputs import RecordState
from services.operator.settings import OperatorSettings
from services.operator.study import FIRST_RUN_ANNOTATION, SCENARIO_LABEL
from services.operator.workloads import AnalyticsSpec, InvalidSpec

SID = "669a52d1364a1b751c550d56"
STUDY = {
    "reps": 4,
    "scenarios": [
        {"name": "baseline", "env": {}},
        {"name": "more-staff", "env": {"STAFF": "12", "SIM_HOURS": "48"}},
        {"name": "night-shift", "env": {"SHIFT": "night"}},
    ],
}


def study_spec(**fields: object) -> AnalyticsSpec:
    return AnalyticsSpec.parse(
        {
            "image": "ghcr.io/x/hospital-lab:1",
            "jobType": "ondemand",
            "reps": 12,
            "env": {"SIM_HOURS": "168", "INPUT_EXCEL_FILE": "/input/lab.xlsx"},
            "study": STUDY,
            **fields,
        }
    )


@pytest.fixture
def settings(tmp_path: Path) -> OperatorSettings:
    return OperatorSettings(output_root=tmp_path, data_pvc="data", max_parallelism=6)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"reps": 10}, r"spec.reps must be study.reps \* scenarios = 12"),
        ({"jobType": "scheduled", "schedule": "@daily"}, "only ondemand takes a study"),
        ({"env": {"SCENARIO": "x"}}, "SCENARIO is set by the platform"),
        ({"study": {**STUDY, "scenarios": []}}, "at least one scenario"),
        ({"study": {**STUDY, "reps": 0}, "reps": 0}, "between 1 and 100"),
        ({"study": {"reps": 4, "scenarios": [{"name": "Base"}] * 3}}, "'Base' is not a DNS label"),
        ({"study": {"reps": 4, "scenarios": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}}, "used twice"),
        ({"study": {"reps": 4, "scenarios": [{"name": "a/b"}] * 3}}, "not a DNS label"),
        (
            {"study": {"reps": 6, "scenarios": [{"name": "a", "env": {"RUN_INDEX": "1"}}, {"name": "b"}]}},
            "not a name a scenario may set",
        ),
        ({"study": {"reps": 12, "scenarios": [{"name": "a", "env": {"SCENARIO": "b"}}]}}, "may set"),
    ],
)
def test_bad_studies_are_refused_with_a_reason(fields: dict, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        study_spec(**fields)


def test_a_study_is_one_indexed_job_per_scenario(settings: OperatorSettings) -> None:
    jobs = workloads.children(SID, study_spec(), settings)
    assert [job["metadata"]["name"] for job in jobs] == [f"ana-{SID}-{k}" for k in range(3)]
    for k, (job, scenario) in enumerate(zip(jobs, STUDY["scenarios"], strict=True)):
        assert job["kind"] == "Job"
        assert (job["spec"]["completionMode"], job["spec"]["completions"]) == ("Indexed", 4)
        assert job["spec"]["parallelism"] == 2  # the service's 6, shared by 3 scenarios
        template = job["spec"]["template"]
        assert template["metadata"]["annotations"] == {FIRST_RUN_ANNOTATION: str(4 * k)}
        assert job["metadata"]["labels"][SCENARIO_LABEL] == scenario["name"]
        assert template["metadata"]["labels"][SCENARIO_LABEL] == scenario["name"]
        (container,) = template["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["SCENARIO"] == {"name": "SCENARIO", "value": scenario["name"]}
        # RUN_INDEX is the Job's completion index: the replication within the scenario.
        assert env["RUN_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        )
        assert env["RUN_ID"]["value"] == "$(JOB_NAME)-$(RUN_INDEX)"
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/input"]["subPath"] == f"{SID}/input/{scenario['name']}"
        assert mounts["/input"]["readOnly"] is True
        assert mounts["/output"]["subPathExpr"] == f"{SID}/runs/$(JOB_NAME)/$(RUN_INDEX)"
    # The scenario's env over the service's.
    staff = {e["name"]: e.get("value") for e in jobs[1]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (staff["SIM_HOURS"], staff["STAFF"], staff["INPUT_EXCEL_FILE"]) == ("48", "12", "/input/lab.xlsx")
    base = {e["name"]: e.get("value") for e in jobs[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert base["SIM_HOURS"] == "168" and "STAFF" not in base


def test_a_study_of_more_scenarios_than_parallelism_runs_one_at_a_time_each(tmp_path: Path) -> None:
    few = OperatorSettings(output_root=tmp_path, data_pvc="data", max_parallelism=2)
    jobs = workloads.children(SID, study_spec(), few)
    assert [job["spec"]["parallelism"] for job in jobs] == [1, 1, 1]


def test_without_a_study_nothing_changes(settings: OperatorSettings) -> None:
    plain = AnalyticsSpec.parse({"image": "x.org/m:1", "jobType": "ondemand", "reps": 3})
    (job,) = workloads.children(SID, plain, settings)
    assert job["metadata"]["name"] == f"ana-{SID}"
    env = {e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "SCENARIO" not in env
    assert SCENARIO_LABEL not in job["metadata"]["labels"]


def job(completed: str = "", failed: str = "", active: int = 0, outcome: str | None = None) -> dict:
    conditions = [{"type": outcome, "status": "True", "reason": outcome}] if outcome else []
    return {
        "spec": {"completions": 4},
        "status": {
            "completedIndexes": completed,
            "failedIndexes": failed,
            "active": active,
            "succeeded": len(status.parse_indexes(completed)),
            "conditions": conditions,
        },
    }


def test_the_study_is_finished_when_every_scenario_job_is() -> None:
    parts = [(0, job("0-3", outcome="Complete")), (4, job("0-1", active=2)), (8, None)]
    combined = status.study_job(parts, 12)
    assert status.job_runs(combined) == ({0, 1, 2, 3, 4, 5}, set())
    assert status.job_outcome(combined) is None
    assert combined["status"]["active"] == 2
    update = status.ondemand_update(combined, RecordState(collected={0, 1, 2, 3, 4, 5}))
    assert update.fields["phase"] == "Running" and update.fields["succeeded"] == 6

    parts = [
        (0, job("0-3", outcome="Complete")),
        (4, job("0-3", outcome="Complete")),
        (8, job("0-3", outcome="Complete")),
    ]
    done = status.ondemand_update(status.study_job(parts, 12), RecordState(collected=set(range(12))))
    assert done.fields["phase"] == "Succeeded"

    parts[1] = (4, job("0,2,3", "1", outcome="Failed"))
    failed = status.ondemand_update(status.study_job(parts, 12), RecordState(collected=set(range(12))))
    assert failed.fields["phase"] == "Failed"
    assert (failed.fields["succeeded"], failed.fields["failed"]) == (11, 1)
    assert "failed runs [5]" in failed.conditions[0]["message"]


def test_scenario_runs_count_refused_outputs_as_failed() -> None:
    parts = [(0, job("0-3", outcome="Complete")), (4, job("0-2", "3", outcome="Failed")), (8, job(active=3))]
    state = RecordState(collected=set(range(8)), rejected={1: "too many files"})
    listed = status.scenario_runs(["a", "b", "c"], 4, parts, state)
    assert listed == [
        {"name": "a", "firstRun": 0, "runs": 4, "active": 0, "succeeded": 3, "failed": 1},
        {"name": "b", "firstRun": 4, "runs": 4, "active": 0, "succeeded": 3, "failed": 1},
        {"name": "c", "firstRun": 8, "runs": 4, "active": 3, "succeeded": 0, "failed": 0},
    ]
