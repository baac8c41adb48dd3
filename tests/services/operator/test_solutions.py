"""DT solutions: one operator serves the default solution (the platform's namespace) and the others (each
in its own namespace), each through its own databases and its own folder of the data volume.

The restart in the middle of runs in two solutions is in test_restart.py.
"""

from __future__ import annotations

import json

import pytest
from bson import ObjectId
from pydantic import ValidationError

from services.operator.settings import OperatorSettings
from services.shared import crd
from services.shared.solutions import SolutionPlace
from tests.kubectl import get_object, object_names
from tests.polling import eventually

from .conftest import OperatorEnv
from .test_runs import (
    IMAGE,
    assert_outputs_stored_once_in_run_order,
    launch_retries,
    pending_pods,
    write_outputs,
)


def test_solutions_are_read_from_the_environment_default_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPERATOR_NAMESPACE", "platform")
    monkeypatch.setenv("OPERATOR_SOLUTIONS", json.dumps([{"name": "lab", "namespace": "dt-lab"}]))
    places = OperatorSettings().places
    assert [(p.name, p.namespace) for p in places] == [("default", "platform"), ("lab", "dt-lab")]
    assert [p.records_database for p in places] == ["orchestrator", "orchestrator--lab"]


def test_without_solutions_the_operator_serves_its_namespace_only() -> None:
    assert [(p.name, p.namespace) for p in OperatorSettings(namespace="platform").places] == [
        ("default", "platform")
    ]


@pytest.mark.parametrize(
    "other",
    [
        SolutionPlace(name="lab", namespace="platform"),  # the default solution's namespace
        SolutionPlace(name="default", namespace="dt-x"),  # the default solution's name
    ],
)
def test_a_namespace_or_name_used_twice_is_refused_at_startup(other: SolutionPlace) -> None:
    with pytest.raises(ValidationError, match="used twice"):
        OperatorSettings(namespace="platform", solutions=[other])


def test_one_operator_serves_two_solutions_each_in_its_own_databases(operator_env: OperatorEnv) -> None:
    lab = operator_env.add_solution("lab")
    outside = f"{operator_env.namespace}-outside"  # a namespace that is no solution's
    operator_env.cluster.kubectl("create", "namespace", outside)
    try:
        operator_env.start_operator()
        stray = str(ObjectId())
        stray_resource = {
            "apiVersion": crd.API_VERSION,
            "kind": crd.KIND,
            "metadata": {"name": stray},
            "spec": {"image": IMAGE, "jobType": "ondemand", "reps": 1},
        }
        operator_env.cluster.kubectl("apply", "-n", outside, "-f", "-", input=json.dumps(stray_resource))
        platform_sid = operator_env.insert_record(image=IMAGE, reps=3)
        lab_sid = lab.insert_record(image=IMAGE, reps=2)
        with operator_env.scheduling_paused():
            operator_env.create_analytics(platform_sid, {"image": IMAGE, "jobType": "ondemand", "reps": 3})
            lab.create_analytics(lab_sid, {"image": IMAGE, "jobType": "ondemand", "reps": 2})
            pending_pods(operator_env, platform_sid, 3)
            pending_pods(lab, lab_sid, 2)
            write_outputs(operator_env, platform_sid, 3)
            write_outputs(lab, lab_sid, 2)

        # Each status on its own resource, with its own service's counts.
        platform_status = operator_env.wait_phase(platform_sid, "Succeeded")
        lab_status = lab.wait_phase(lab_sid, "Succeeded")
        assert (platform_status["succeeded"], platform_status["outputs"]) == (3, 6)
        assert (lab_status["succeeded"], lab_status["outputs"]) == (2, 4)
        # Each run's outputs in its own solution's record and files database, none in the other's (the
        # helper counts every file of the database).
        assert_outputs_stored_once_in_run_order(operator_env, platform_sid, 3)
        assert_outputs_stored_once_in_run_order(lab, lab_sid, 2)
        assert [r["_id"] for r in lab.records.find()] == [ObjectId(lab_sid)]
        assert [r["_id"] for r in operator_env.records.find()] == [ObjectId(platform_sid)]
        # The children beside their resource; the lab's runs were read from its folder of the data volume.
        assert [j["metadata"]["name"] for j in operator_env.list("jobs")] == [f"ana-{platform_sid}"]
        assert [j["metadata"]["name"] for j in lab.list("jobs")] == [f"ana-{lab_sid}"]
        assert lab.output_root == operator_env.output_root / "solutions" / "lab"

        # The resource outside every solution, made before the others, was never seen: no finalizer, no
        # status, no Job.
        seen = get_object(operator_env.cluster.kubectl, crd.PLURAL, stray, "-n", outside)
        assert seen is not None and "finalizers" not in seen["metadata"] and "status" not in seen
        assert object_names(operator_env.cluster.kubectl, "jobs", "-n", outside) == set()
    finally:
        operator_env.cluster.kubectl("delete", "namespace", outside, "--wait=false", check=False)


def test_a_record_of_another_solution_is_not_used(operator_env: OperatorEnv) -> None:
    lab = operator_env.add_solution("lab")
    operator_env.start_operator()
    file_id = operator_env.upload_input("a.csv", b"the platform's own input")
    sid = operator_env.insert_record(image=IMAGE, reps=1, mount_files={file_id: "a.csv"})

    # The lab's resource of the same name looks for the record in the lab's database only.
    lab.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 1})
    eventually(lambda: launch_retries(lab, sid) >= 2, 30, "two retries of the lab's launch")
    missing = lab.condition(sid, "RecordFound")
    assert (missing["status"], missing["reason"]) == ("False", "RecordMissing")
    assert lab.analytics_status(sid)["phase"] == "Pending"
    assert lab.get("job", f"ana-{sid}") is None

    # In the default solution the same name finds its record and its input.
    operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 1})
    operator_env.wait_phase(sid, "Succeeded")
    assert (operator_env.output_root / sid / "input" / "a.csv").read_bytes() == b"the platform's own input"
    assert lab.get("job", f"ana-{sid}") is None

    # A lab record naming the platform's file id: the file is not in the lab's bucket, so it is missing.
    lab.insert_record(sid, image=IMAGE, reps=1, mount_files={file_id: "a.csv"})
    lab.wait_phase(sid, "Failed")
    inputs = lab.condition(sid, "InputsReady")
    assert (inputs["status"], inputs["reason"]) == ("False", "InputMissing")
    assert file_id in inputs["message"]
    assert lab.get("job", f"ana-{sid}") is None
    assert not (lab.output_root / sid / "input" / "a.csv").exists()


def test_pods_over_a_solutions_quota_leave_the_service_pending_with_the_quotas_reason(
    operator_env: OperatorEnv,
) -> None:
    """The lab's ResourceQuota admits no pod: its ondemand and persistent services stay Pending, each with
    Kubernetes' refusal in a PodsCreated condition; the default solution's service beside it runs."""
    lab = operator_env.add_solution("lab")
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "solution-quota"},
        "spec": {"hard": {"pods": "0"}},
    }
    lab.apply(quota)
    eventually(
        lambda: "hard" in (lab.get("resourcequota", "solution-quota") or {}).get("status", {}), 30, "quota"
    )
    operator_env.start_operator()
    job_sid = lab.insert_record(image=IMAGE, reps=2)
    lab.create_analytics(job_sid, {"image": IMAGE, "jobType": "ondemand", "reps": 2})
    web_sid = lab.insert_record(image=IMAGE, port=8080)
    lab.create_analytics(web_sid, {"image": IMAGE, "jobType": "persistent", "port": 8080})
    platform_sid = operator_env.insert_record(image=IMAGE, reps=1)
    operator_env.create_analytics(platform_sid, {"image": IMAGE, "jobType": "ondemand", "reps": 1})

    for sid in (job_sid, web_sid):
        eventually(lambda sid=sid: lab.condition(sid, "PodsCreated") is not None, 60, f"{sid}'s pods refused")
        refused = lab.condition(sid, "PodsCreated")
        assert (refused["status"], refused["reason"]) == ("False", "FailedCreate"), refused
        assert "exceeded quota" in refused["message"] and "solution-quota" in refused["message"], refused
        assert lab.analytics_status(sid)["phase"] == "Pending"
        assert lab.pods(sid) == []
    # Not a half-made service: its record and resource are there, and its Job waits for room.
    assert lab.record(job_sid)["_id"] == ObjectId(job_sid)
    assert lab.get("job", f"ana-{job_sid}") is not None

    # The default solution is not held to the lab's quota.
    eventually(
        lambda: (operator_env.condition(platform_sid, "PodsCreated") or {}).get("status") == "True",
        60,
        "the default solution's pods made",
    )

    # Room again: the lab's runs start and the condition turns.
    lab.kubectl("delete", "resourcequota", "solution-quota")
    eventually(
        lambda: (lab.condition(job_sid, "PodsCreated") or {}).get("status") == "True",
        90,
        "the lab's pods made",
    )
