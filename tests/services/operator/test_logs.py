"""Run logs with the real operator on kwok: the record names each run's pod as soon as it exists, a
finished run's log is stored in GridFS with its outputs (capped, the cut marked), and the API serves
it after the pod is gone. A log that cannot be read leaves a note and never holds up the run.

kwok serves a pod's container log from a file (tests/kwok_logs.py): the file stands in for what the
module printed, written while the pods wait on cordoned nodes, before they run.
"""

from __future__ import annotations

from pathlib import Path

from services.shared.run_logs import run_log_file_id
from tests.kwok_logs import SimulatedLogs, printed
from tests.polling import eventually
from tests.services.api.conftest import make_settings, running

from .conftest import OperatorEnv, OperatorProcess
from .test_runs import pending_pods

IMAGE = "example.org/simulation:3"
INDEX = "batch.kubernetes.io/job-completion-index"
CAP = 4096


def simulated_logs(env: OperatorEnv, tmp_path: Path) -> SimulatedLogs:
    return SimulatedLogs(env.kubectl, env.namespace, tmp_path / "container-logs")


def pods_by_run(pods: list[dict]) -> dict[int, str]:
    return {int(p["metadata"]["annotations"][INDEX]): p["metadata"]["name"] for p in pods}


def stored(env: OperatorEnv, sid: str, run: int) -> bytes:
    file_id = run_log_file_id(sid, run)
    chunks = env.files["fs.chunks"].find({"files_id": file_id}).sort("n", 1)
    return b"".join(chunk["data"] for chunk in chunks)


async def test_a_runs_log_is_stored_capped_and_served_after_its_pod_is_gone(
    operator_env: OperatorEnv, tmp_path: Path
) -> None:
    env = operator_env
    env.start_operator(OPERATOR_LOG_MAX_BYTES=str(CAP))
    logs = simulated_logs(env, tmp_path)
    short = [f"run 0: step {i} of 3" for i in range(3)]
    long = [f"run 1: step {i:04d} of 400, queue length {i * 7 % 13}" for i in range(400)]
    sid = env.insert_record(image=IMAGE, reps=2)
    with env.scheduling_paused():
        env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 2})
        pods = pods_by_run(pending_pods(env, sid, 2))
        # The operator names each run's pod in the record as soon as the pod exists (no node yet).
        noted = eventually(
            lambda: len(env.record(sid).get("run_pods") or {}) == 2 and env.record(sid),
            30,
            "the operator to note both pods",
        )
        assert {run: entry["pod"] for run, entry in noted["run_pods"].items()} == {"0": pods[0], "1": pods[1]}
        assert {entry["node"] for entry in noted["run_pods"].values()} == {""}
        logs.serve(pods[0], short)
        logs.serve(pods[1], long)
        logs.wait_served()
    env.wait_phase(sid, "Succeeded")

    # And the node each got (noted by another handler than the collection's: maybe a moment later).
    def placed() -> dict | None:
        record = env.record(sid)
        nodes = {entry["node"] for entry in record["run_pods"].values()}
        return record if nodes == {"node-000000"} else None

    record = eventually(placed, 30, "the operator to note the pods' node")
    assert record["run_logs"]["0"] == {
        "file_id": str(run_log_file_id(sid, 0)),
        "length": len(printed(short)),
        "log_bytes": len(printed(short)),
        "truncated": False,
        "pod": pods[0],
        "note": None,
    }
    assert stored(env, sid, 0) == printed(short).encode()

    # Run 1 printed more than the cap: its first and last lines are kept, whole, and the cut is marked.
    entry = record["run_logs"]["1"]
    whole = printed(long).encode()
    kept = stored(env, sid, 1)
    assert (entry["truncated"], entry["log_bytes"], entry["length"]) == (True, len(whole), len(kept))
    head, _, rest = kept.decode().partition("[dtpoc: ")
    assert whole.startswith(head.encode()) and head.endswith("\n") and CAP // 2 - 100 < len(head) <= CAP // 2
    marker, _, tail = rest.partition("\n")
    assert whole.endswith(tail.encode()) and tail.startswith("run 1: step ") and len(tail) <= CAP // 2
    left_out = len(whole) - len(head) - len(tail)
    assert marker.startswith(f"{left_out} bytes of this log were left out here")
    document = env.files["fs.files"].find_one({"_id": run_log_file_id(sid, 1)})
    assert document["metadata"]["kind"] == "log" and document["metadata"]["truncated"] is True

    # The pods go; the API still serves both logs, from the copies the operator stored.
    env.kubectl("delete", "pods", "-l", f"batch.kubernetes.io/job-name=ana-{sid}", "--wait=true")
    assert env.pods(sid) == []
    settings = make_settings(env.mongo_url, env.cluster.kubeconfig, env.namespace)
    async with running(settings) as api:
        answer = await api.get(f"/service/{sid}/logs", params={"run": 0})
        assert answer.status_code == 200, answer.text
        assert answer.text == printed(short)
        assert answer.headers["x-log-source"] == "stored"
        assert answer.headers["x-log-truncated"] == "false"
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"
        last = await api.get(f"/service/{sid}/logs", params={"run": 1, "tail": 2})
        assert last.status_code == 200 and last.text == printed(long[-2:])
        assert last.headers["x-log-truncated"] == "true"
        # follow changes nothing for a finished run: its stored log, and the answer ends.
        followed = await api.get(f"/service/{sid}/logs", params={"run": 1, "follow": "true"})
        assert followed.content == kept


async def test_a_log_that_cannot_be_read_leaves_a_note_and_the_run_still_succeeds(
    operator_env: OperatorEnv, operator: OperatorProcess
) -> None:
    env = operator_env
    sid = env.insert_record(image=IMAGE, reps=1)
    with env.scheduling_paused():
        env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 1})
        (pod,) = pending_pods(env, sid, 1)
    # No Logs object for this pod: kwok's kubelet answers that it has no log for the container.
    status = env.wait_phase(sid, "Succeeded")
    assert (status["succeeded"], status["failed"]) == (1, 0)
    entry = env.record(sid)["run_logs"]["0"]
    name = pod["metadata"]["name"]
    assert (entry["file_id"], entry["pod"], entry["truncated"]) == (None, name, False)
    assert entry["note"].startswith(f"the log of pod {name} could not be read (400: ")
    assert "no logs found" in entry["note"]
    assert env.files["fs.files"].find_one({"_id": run_log_file_id(sid, 0)}) is None

    # The API says so; once the pod is gone, that it is gone and why nothing was stored.
    settings = make_settings(env.mongo_url, env.cluster.kubeconfig, env.namespace)
    async with running(settings) as api:
        live = await api.get(f"/service/{sid}/logs", params={"run": 0})
        assert live.status_code == 409, live.text
        assert "has no log to read now" in live.json()["detail"] and "no logs found" in live.json()["detail"]
        env.kubectl("delete", "pod", name, "--wait=true")
        gone = await api.get(f"/service/{sid}/logs", params={"run": 0})
        assert gone.status_code == 404, gone.text
        detail = gone.json()["detail"]
        assert f"pod {name} is gone" in detail and f"no log was stored: {entry['note']}" in detail
