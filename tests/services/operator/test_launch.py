"""Launching: each jobType becomes the right children, inputs arrive, the record is waited for."""

from __future__ import annotations

from pathlib import Path

from services.shared import crd
from services.shared.names import SERVICE_ID_LABEL
from tests.polling import eventually

from .conftest import OperatorEnv, OperatorProcess

IMAGE = "ghcr.io/cam-digital-hospitals/digital-hosp-des:latest"


def owned_by_resource(env: OperatorEnv, child: dict, sid: str) -> bool:
    resource = env.get(crd.PLURAL, sid)
    assert resource is not None
    (owner,) = child["metadata"]["ownerReferences"]
    return (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        crd.KIND,
        sid,
        resource["metadata"]["uid"],
        True,
    )


def platform_labels(child: dict, sid: str) -> bool:
    labels = child["metadata"]["labels"]
    return (
        labels[SERVICE_ID_LABEL] == sid
        and labels["app.kubernetes.io/part-of"] == "dtpoc"
        and labels["app.kubernetes.io/managed-by"] == "dtpoc-orchestrator-operator"
        and labels["app.kubernetes.io/name"] == "digital-hosp-des"
    )


def test_ondemand_becomes_an_indexed_job_of_reps_completions(operator_env: OperatorEnv) -> None:
    operator_env.start_operator(OPERATOR_MAX_PARALLELISM="2")
    env_vars = {"INPUT_EXCEL_FILE": "/input/input.xlsx", "OUTPUT_FOLDER": "/output", "LITERAL": "$(HOME)"}
    sid = operator_env.insert_record(image=IMAGE, reps=3, env=env_vars)
    operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 3, "env": env_vars})

    job = eventually(lambda: operator_env.get("job", f"ana-{sid}"), 30, "the Job")
    assert owned_by_resource(operator_env, job, sid)
    assert platform_labels(job, sid)
    assert (job["spec"]["completionMode"], job["spec"]["completions"], job["spec"]["parallelism"]) == (
        "Indexed",
        3,
        2,
    )
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    env = {e["name"]: e for e in container["env"]}
    assert env["INPUT_EXCEL_FILE"]["value"] == "/input/input.xlsx"
    assert env["LITERAL"]["value"] == "$$(HOME)"
    assert (
        "batch.kubernetes.io/job-completion-index" in env["RUN_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    )
    assert not [name for name in env if name.startswith("MONGODB")]  # modules get no database access
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/output"]["subPathExpr"] == f"{sid}/runs/$(RUN_INDEX)"
    assert mounts["/input"]["readOnly"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True

    # The three runs' pods ran (kwok completes them) with their own completion index each.
    operator_env.wait_phase(sid, "Succeeded")
    indexes = sorted(
        p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        for p in operator_env.pods(sid)
    )
    assert indexes == ["0", "1", "2"]
    assert all((operator_env.run_dir(sid, i)).is_dir() for i in range(3))


def test_scheduled_becomes_a_cronjob_with_the_schedule_and_run_template(operator_env: OperatorEnv) -> None:
    operator_env.start_operator()
    sid = operator_env.insert_record(image=IMAGE, reps=2)
    operator_env.create_analytics(
        sid, {"image": IMAGE, "jobType": "scheduled", "reps": 2, "schedule": "*/5 * * * *"}
    )

    cron = eventually(lambda: operator_env.get("cronjob", f"ana-{sid}"), 30, "the CronJob")
    assert owned_by_resource(operator_env, cron, sid)
    assert platform_labels(cron, sid)
    assert cron["spec"]["schedule"] == "*/5 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    job_spec = cron["spec"]["jobTemplate"]["spec"]
    assert (job_spec["completionMode"], job_spec["completions"]) == ("Indexed", 2)
    (container,) = job_spec["template"]["spec"]["containers"]
    assert {m["mountPath"]: m.get("subPathExpr") for m in container["volumeMounts"]}["/output"] == (
        f"{sid}/runs/$(JOB_NAME)/$(RUN_INDEX)"
    )
    assert operator_env.wait_phase(sid, "Scheduled")["active"] == 0


def test_scheduled_runs_are_collected_with_their_own_run_numbers(operator_env: OperatorEnv) -> None:
    """A Job made from the CronJob (as `kubectl create job --from` does) is collected like a tick."""
    operator_env.start_operator()
    sid = operator_env.insert_record(image=IMAGE, reps=2)
    operator_env.create_analytics(
        sid, {"image": IMAGE, "jobType": "scheduled", "reps": 2, "schedule": "0 0 1 1 *"}
    )
    eventually(lambda: operator_env.get("cronjob", f"ana-{sid}"), 30, "the CronJob")
    with operator_env.scheduling_paused():
        operator_env.kubectl("create", "job", f"ana-{sid}-manual", f"--from=cronjob/ana-{sid}")
        manual = eventually(lambda: operator_env.get("job", f"ana-{sid}-manual"), 30, "the manual Job")
        # kubectl's --from sets the CronJob as owner, so the operator treats it as one of its ticks.
        assert manual["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
        run_dirs = [operator_env.output_root / sid / "runs" / f"ana-{sid}-manual" / str(i) for i in range(2)]
        eventually(lambda: all(d.is_dir() for d in run_dirs), 30, "the Job's output directories")
        for i, directory in enumerate(run_dirs):
            (directory / "result.json").write_text(f'{{"tick_run": {i}}}')
    status = eventually(
        lambda: (
            (s := operator_env.analytics_status(sid)).get("outputs") == 2 and s.get("succeeded") == 2 and s
        ),
        60,
        "both runs collected",
    )
    assert status["phase"] == "Scheduled"
    record = operator_env.record(sid)
    assert [(o["run"], o["filename"]) for o in record["output_files"]] == [
        (0, "result.json"),
        (1, "result.json"),
    ]
    assert record["run_bases"] == {manual["metadata"]["uid"]: 0}


def test_persistent_with_port_becomes_deployment_service_and_ingress(operator_env: OperatorEnv) -> None:
    operator_env.start_operator(OPERATOR_INGRESS_HOST="dt.example.org", OPERATOR_INGRESS_CLASS="nginx")
    sid = operator_env.insert_record(image="nginx:1.27")
    operator_env.create_analytics(sid, {"image": "nginx:1.27", "jobType": "persistent", "port": 8080})

    deployment = eventually(lambda: operator_env.get("deployment", f"ana-{sid}"), 30, "the Deployment")
    service = eventually(lambda: operator_env.get("service", f"ana-{sid}"), 30, "the Service")
    ingress = eventually(lambda: operator_env.get("ingress", f"ana-{sid}"), 30, "the Ingress")
    for child in (deployment, service, ingress):
        assert owned_by_resource(operator_env, child, sid)
        assert child["metadata"]["labels"][SERVICE_ID_LABEL] == sid
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["ports"][0]["containerPort"] == 8080
    assert {m["mountPath"]: m.get("subPath") for m in container["volumeMounts"]}["/output"] == f"{sid}/runs/0"
    assert service["spec"]["ports"][0]["port"] == 8080
    assert service["spec"]["selector"][SERVICE_ID_LABEL] == sid
    rule = ingress["spec"]["rules"][0]
    assert (ingress["spec"]["ingressClassName"], rule["host"]) == ("nginx", "dt.example.org")
    assert rule["http"]["paths"][0]["path"] == f"/services/{sid}"
    assert rule["http"]["paths"][0]["backend"]["service"]["name"] == f"ana-{sid}"
    assert operator_env.wait_phase(sid, "Available")["active"] == 1


def test_persistent_without_port_has_no_service(operator_env: OperatorEnv, operator: OperatorProcess) -> None:
    sid = operator_env.insert_record(image="busybox:1.36")
    operator_env.create_analytics(sid, {"image": "busybox:1.36", "jobType": "persistent"})
    operator_env.wait_phase(sid, "Available")
    assert operator_env.get("service", f"ana-{sid}") is None
    assert operator_env.get("ingress", f"ana-{sid}") is None


def test_inputs_are_staged_before_the_workload(operator_env: OperatorEnv, operator: OperatorProcess) -> None:
    content = b"PK\x03\x04 a spreadsheet" * 1000
    file_id = operator_env.upload_input("upload-name.xlsx", content)
    sid = operator_env.insert_record(image=IMAGE, reps=1, mount_files={file_id: "input.xlsx"})
    operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 1})

    eventually(lambda: operator_env.get("job", f"ana-{sid}"), 30, "the Job")
    staged: Path = operator_env.output_root / sid / "input" / "input.xlsx"
    assert staged.read_bytes() == content
    assert operator_env.condition(sid, "InputsReady")["status"] == "True"


def test_a_missing_input_fails_the_service_without_a_workload(
    operator_env: OperatorEnv, operator: OperatorProcess
) -> None:
    present = operator_env.upload_input("a.csv", b"a")
    absent = "669a4eee364a1b751c550b02"
    sid = operator_env.insert_record(
        image=IMAGE, reps=1, mount_files={present: "a.csv", absent: "input.xlsx"}
    )
    operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 1})

    operator_env.wait_phase(sid, "Failed")
    cond = operator_env.condition(sid, "InputsReady")
    assert (cond["status"], cond["reason"]) == ("False", "InputMissing")
    assert absent in cond["message"] and "input.xlsx" in cond["message"]
    assert operator_env.get("job", f"ana-{sid}") is None
    assert not (operator_env.output_root / sid / "input" / "a.csv").exists()  # nothing half-staged


def test_an_unsafe_input_name_fails_the_service(operator_env: OperatorEnv, operator: OperatorProcess) -> None:
    file_id = operator_env.upload_input("x", b"x")
    sid = operator_env.insert_record(image=IMAGE, reps=1, mount_files={file_id: "../escape.sh"})
    operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 1})
    operator_env.wait_phase(sid, "Failed")
    assert operator_env.condition(sid, "InputsReady")["reason"] == "InvalidInput"
    assert not (operator_env.output_root / "escape.sh").exists()
    assert operator_env.get("job", f"ana-{sid}") is None


def test_a_resource_created_before_its_record_waits_then_proceeds(
    operator_env: OperatorEnv, operator: OperatorProcess
) -> None:
    sid = "669a52d1364a1b751c550d56"
    operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 2})

    cond = eventually(lambda: operator_env.condition(sid, "RecordFound"), 30, "the RecordFound condition")
    assert (cond["status"], cond["reason"]) == ("False", "RecordMissing")
    assert operator_env.analytics_status(sid)["phase"] == "Pending"
    assert operator_env.get("job", f"ana-{sid}") is None

    operator_env.insert_record(sid, image=IMAGE, reps=2)
    eventually(lambda: operator_env.get("job", f"ana-{sid}"), 30, "the Job, once the record exists")
    assert operator_env.condition(sid, "RecordFound")["status"] == "True"
    operator_env.wait_phase(sid, "Succeeded")


def test_a_name_that_is_not_a_record_id_fails(operator_env: OperatorEnv, operator: OperatorProcess) -> None:
    operator_env.create_analytics("not-an-object-id", {"image": IMAGE, "jobType": "ondemand", "reps": 1})
    operator_env.wait_phase("not-an-object-id", "Failed")
    assert operator_env.condition("not-an-object-id", "RecordFound")["reason"] == "InvalidName"


def test_deleting_the_resource_removes_children_and_keeps_outputs(
    operator_env: OperatorEnv, operator: OperatorProcess
) -> None:
    sid = operator_env.insert_record(image=IMAGE, reps=1)
    operator_env.run_dir(sid, 0).mkdir(parents=True)
    operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 1})
    operator_env.wait_phase(sid, "Succeeded")
    operator_env.kubectl("delete", crd.PLURAL, sid, "--timeout=30s")
    eventually(lambda: operator_env.get("job", f"ana-{sid}") is None, 60, "the Job to be garbage-collected")
    assert operator_env.record(sid)["collected_runs"] == [0]  # the record (and GridFS) untouched


def test_kopf_run_runs_the_same_operator(operator_env: OperatorEnv) -> None:
    operator_env.start_operator(kopf_cli=True)
    sid = operator_env.insert_record(image=IMAGE, reps=1)
    operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 1})
    assert operator_env.wait_phase(sid, "Succeeded")["succeeded"] == 1
