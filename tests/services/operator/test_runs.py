"""Runs: the status follows the Job, outputs end up in GridFS and the record once each, in run order.

kwok runs a Job's pods to completion at once. To put stand-in outputs in place *before* a run
finishes, as the module would, the tests pause scheduling (cordon): the pods wait in Pending, the
files are written into each run's output directory, then scheduling resumes and the runs complete.
"""

from __future__ import annotations

import json

from bson import ObjectId

from services.shared import crd
from services.shared.files import output_file_id
from services.shared.records import ServiceRecord
from tests.polling import eventually

from .conftest import OperatorEnv, OperatorProcess

IMAGE = "example.org/simulation:2"
# kopf's progress of the `launch` handler (retries, last message): services/operator/main.py's PREFIX
# and the handler's id (not imported: importing main registers the handlers in this process).
LAUNCH_PROGRESS = "orchestrator.eng.cam.ac.uk/launch"


def outputs_of(run: int) -> dict[str, bytes]:
    """What run `run` of the stand-in module writes to /output."""
    return {
        "kpis.json": json.dumps({"run": run, "throughput": 10 + run}).encode(),
        "plots/queue.csv": b"t,len\n" + b"".join(b"%d,%d\n" % (t, t * run) for t in range(100)),
    }


def write_outputs(env: OperatorEnv, sid: str, runs: int) -> None:
    for run in range(runs):
        for name, content in outputs_of(run).items():
            path = env.run_dir(sid, run) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)


def pending_pods(env: OperatorEnv, sid: str, count: int, timeout: float = 30) -> list[dict]:
    """The service's `count` pods, once all exist and are Pending (kwok holds them on a cordoned node)."""
    return eventually(
        lambda: (
            len(pods := env.pods(sid)) == count
            and all(p["status"].get("phase") == "Pending" for p in pods)
            and pods
        ),
        timeout,
        f"{count} pending pods of {sid}",
    )


def assert_outputs_stored_once_in_run_order(env: OperatorEnv, sid: str, runs: int) -> None:
    expected = [(run, name) for run in range(runs) for name in sorted(outputs_of(run))]
    record = env.record(sid)
    listed = [(o["run"], o["filename"]) for o in record["output_files"]]
    assert listed == expected
    assert [o["file_id"] for o in record["output_files"]] == [
        str(output_file_id(sid, r, n)) for r, n in expected
    ]
    assert sorted(record["collected_runs"]) == list(range(runs))

    files = env.files["fs.files"]
    assert files.count_documents({}) == len(expected)
    for run, name in expected:
        file_id = output_file_id(sid, run, name)
        document = files.find_one({"_id": file_id})
        assert document is not None and document["filename"] == name
        chunks = list(env.files["fs.chunks"].find({"files_id": file_id}).sort("n", 1))
        assert [c["n"] for c in chunks] == list(range(len(chunks)))  # no duplicate or stray chunks
        assert b"".join(c["data"] for c in chunks) == outputs_of(run)[name]
    # What the API serves as /output/{idx}:
    model = ServiceRecord.from_document(record)
    assert [o.filename for o in model.outputs_of_run(runs - 1)] == sorted(outputs_of(runs - 1))


def test_three_runs_outputs_are_stored_once_each_in_index_order(
    operator_env: OperatorEnv, operator: OperatorProcess
) -> None:
    sid = operator_env.insert_record(image=IMAGE, reps=3)
    with operator_env.scheduling_paused():
        operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 3})
        pending_pods(operator_env, sid, 3)
        write_outputs(operator_env, sid, 3)
    status = operator_env.wait_phase(sid, "Succeeded")
    assert (status["succeeded"], status["failed"], status["active"], status["outputs"]) == (3, 0, 0, 6)
    assert_outputs_stored_once_in_run_order(operator_env, sid, 3)

    # A restarted operator resumes the finished resource and stores nothing again: once it has handled
    # the resume and the events of the Job and of each finished pod (each of which may collect).
    operator.stop()
    again = operator_env.start_operator()
    ns = operator_env.namespace
    lines = [f"[{ns}/{sid}] Resuming is processed: 1 succeeded", f"[{ns}/ana-{sid}] Handler 'job_event'"]
    lines += [f"[{ns}/{p['metadata']['name']}] Handler 'pod_event'" for p in operator_env.pods(sid)]
    assert len(lines) == 2 + 3
    for line in lines:
        eventually(lambda line=line: line in again.log_text(), 30, f"the operator to log {line!r}")
    assert_outputs_stored_once_in_run_order(operator_env, sid, 3)
    assert len(operator_env.list("jobs")) == 1


def test_status_follows_the_job_from_pending_to_succeeded(operator_env: OperatorEnv) -> None:
    # A sweep every 2 s: each re-reads the Job and the record and publishes the status again.
    operator = operator_env.start_operator(OPERATOR_SWEEP_SECONDS="2")
    sid = operator_env.insert_record(image=IMAGE, reps=2)
    with operator_env.scheduling_paused():
        operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 2})
        pending_pods(operator_env, sid, 2)
        status = operator_env.wait_phase(sid, "Pending")
        assert (status["active"], status["succeeded"], status["outputs"]) == (2, 0, 0)
        assert operator_env.condition(sid, "WorkloadCreated")["status"] == "True"
        assert operator_env.condition(sid, "RunsFinished")["status"] == "False"
        # And it stays so: after two sweeps logged from here on (so one began after this point), the
        # status is still the one read above.
        since = len(operator.log_text())
        eventually(
            lambda: operator.handled(operator_env.namespace, sid, "Timer 'sweep'", since) >= 2,
            30,
            "two sweeps of the pending resource",
        )
        assert operator_env.analytics_status(sid) == status

    status = operator_env.wait_phase(sid, "Succeeded")
    assert (status["succeeded"], status["failed"], status["active"]) == (2, 0, 0)
    finished = operator_env.condition(sid, "RunsFinished")
    assert (finished["status"], finished["reason"]) == ("True", "Succeeded")
    assert operator_env.condition(sid, "OutputsCollected")["status"] == "True"
    printed = operator_env.kubectl("get", "ana", sid, "--no-headers").stdout.split()
    assert printed[1:4] == ["ondemand", IMAGE, "Succeeded"]


def test_a_failing_run_shows_failed(operator_env: OperatorEnv, operator: OperatorProcess) -> None:
    sid = operator_env.insert_record(image=IMAGE, reps=2)
    with operator_env.scheduling_paused():
        operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 2})
        pods = pending_pods(operator_env, sid, 2)
        write_outputs(operator_env, sid, 2)
        victim = next(
            p for p in pods if p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "1"
        )
        failed = {"phase": "Failed", "reason": "Error", "message": "the module exited with status 1"}
        operator_env.kubectl(
            "patch", "pod", victim["metadata"]["name"], "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": failed}),
        )  # fmt: skip

    status = operator_env.wait_phase(sid, "Failed")
    assert (status["succeeded"], status["failed"]) == (1, 1)
    finished = operator_env.condition(sid, "RunsFinished")
    assert (finished["status"], finished["reason"]) == ("True", "Failed")
    assert "failed runs [1]" in finished["message"]
    record = operator_env.record(sid)
    assert sorted(record["collected_runs"]) == [0, 1] and record["failed_runs"] == [1]
    # The failed run's partial output is kept too (for diagnosis), after run 0's.
    assert [o["run"] for o in record["output_files"]] == [0, 0, 1, 1]


def test_a_spec_update_before_any_run_started_remakes_the_job(
    operator_env: OperatorEnv, operator: OperatorProcess
) -> None:
    sid = operator_env.insert_record(image=IMAGE, reps=2)
    with operator_env.scheduling_paused():
        operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 2})
        first = eventually(lambda: operator_env.get("job", f"ana-{sid}"), 30, "the Job")
        operator_env.create_analytics(
            sid, {"image": "example.org/simulation:3", "jobType": "ondemand", "reps": 3}
        )
        remade = eventually(
            lambda: (
                (j := operator_env.get("job", f"ana-{sid}"))
                and j["metadata"]["uid"] != first["metadata"]["uid"]
                and j
            ),
            60,
            "the Job made again",
        )
        assert remade["spec"]["completions"] == 3
        assert remade["spec"]["template"]["spec"]["containers"][0]["image"] == "example.org/simulation:3"
        assert (
            eventually(lambda: operator_env.condition(sid, "SpecApplied"), 30, "SpecApplied")["status"]
            == "True"
        )
    assert operator_env.wait_phase(sid, "Succeeded")["succeeded"] == 3


def test_a_spec_update_after_runs_started_is_not_applied(
    operator_env: OperatorEnv, operator: OperatorProcess
) -> None:
    sid = operator_env.insert_record(image=IMAGE, reps=1)
    operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 1})
    job = operator_env.get("job", f"ana-{sid}") or eventually(
        lambda: operator_env.get("job", f"ana-{sid}"), 30, "Job"
    )
    operator_env.wait_phase(sid, "Succeeded")
    operator_env.create_analytics(
        sid, {"image": "example.org/simulation:3", "jobType": "ondemand", "reps": 1}
    )
    cond = eventually(lambda: operator_env.condition(sid, "SpecApplied"), 30, "SpecApplied")
    assert (cond["status"], cond["reason"]) == ("False", "RunsStarted")
    assert operator_env.get("job", f"ana-{sid}")["metadata"]["uid"] == job["metadata"]["uid"]
    assert operator_env.analytics_status(sid)["phase"] == "Succeeded"


def test_a_persistent_spec_update_rolls_the_deployment(
    operator_env: OperatorEnv, operator: OperatorProcess
) -> None:
    sid = operator_env.insert_record(image="nginx:1.27")
    operator_env.create_analytics(sid, {"image": "nginx:1.27", "jobType": "persistent", "port": 80})
    operator_env.wait_phase(sid, "Available")
    operator_env.create_analytics(sid, {"image": "nginx:1.28", "jobType": "persistent", "env": {"MODE": "x"}})

    def rolled() -> bool:
        deployment = operator_env.get("deployment", f"ana-{sid}")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        return container["image"] == "nginx:1.28" and "ports" not in container

    eventually(rolled, 30, "the Deployment's new template")
    eventually(
        lambda: operator_env.get("service", f"ana-{sid}") is None, 30, "the Service to go with the port"
    )
    assert operator_env.get("ingress", f"ana-{sid}") is None
    assert operator_env.condition(sid, "SpecApplied")["status"] == "True"


def launch_retries(env: OperatorEnv, sid: str) -> int:
    """How often the launch handler has been retried: kopf's own progress record on the resource."""
    resource = env.get(crd.PLURAL, sid) or {}
    progress = (resource["metadata"].get("annotations") or {}).get(LAUNCH_PROGRESS)
    return int(json.loads(progress).get("retries") or 0) if progress else 0


def test_an_unknown_record_id_stays_pending(operator_env: OperatorEnv, operator: OperatorProcess) -> None:
    sid = str(ObjectId())
    operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "persistent"})
    eventually(lambda: operator_env.condition(sid, "RecordFound"), 30, "RecordFound")
    eventually(lambda: launch_retries(operator_env, sid) >= 3, 30, "three retries of the launch handler")
    assert operator_env.analytics_status(sid)["phase"] == "Pending"
    assert operator_env.condition(sid, "RecordFound")["reason"] == "RecordMissing"
    assert operator_env.get("deployment", f"ana-{sid}") is None
