"""`dtpoc logs` and the events stream behind `status --watch` and `wait`, as a user types them, against a
live API (and for the run logs the real operator on kwok, whose simulated kubelet serves the container
logs from files: tests/kwok_logs.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.kwok_logs import SimulatedLogs, printed
from tests.live_api import LiveApi
from tests.polling import eventually
from tests.services.operator.conftest import OperatorEnv
from tests.services.operator.test_runs import pending_pods

from .conftest import DTPOC, Dtpoc, one_error_line
from .older_api import api_without_events

pytestmark = [pytest.mark.cluster, pytest.mark.mongo]

IMAGE = "example.org/simulation"
UNKNOWN_ID = "0123456789abcdef01234567"


def api_requests(api: LiveApi, sid: str, what: str) -> int:
    """How often the API's access log shows a GET of /service/{sid}/{what}."""
    return api.log.read_text().count(f'"GET /api/orchestrator/v1beta1/service/{sid}/{what}')


@pytest.mark.slow
def test_logs_of_a_finished_run_after_its_pod_is_gone(
    operator_env: OperatorEnv, operated_api: LiveApi, operated_dtpoc: Dtpoc, tmp_path: Path
) -> None:
    dtpoc, env = operated_dtpoc, operator_env
    logs = SimulatedLogs(env.kubectl, env.namespace, tmp_path / "container-logs")
    lines = [f"replication {i}: mean wait {10 + i} min" for i in range(5)]
    with env.scheduling_paused():
        sid = dtpoc.json("launch", "--image", IMAGE, "--reps", "1")["id"]
        (pod,) = pending_pods(env, sid, 1, timeout=60)
        logs.serve(pod["metadata"]["name"], lines)
        logs.wait_served()
    assert dtpoc("wait", sid).returncode == 0
    env.kubectl("delete", "pod", pod["metadata"]["name"], "--wait=true")

    assert dtpoc.ok("logs", sid).stdout == printed(lines)
    assert dtpoc.ok("logs", sid, "--run", "0", "--tail", "2").stdout == printed(lines[-2:])
    line = one_error_line(dtpoc("logs", sid, "--run", "3"))
    assert line == f"dtpoc: error: not found: service {sid} has 1 runs (0 to 0); there is no run 3"
    assert one_error_line(dtpoc("logs", UNKNOWN_ID)) == f"dtpoc: error: not found: no service {UNKNOWN_ID}"
    usage = dtpoc("logs", sid, "--tail", "0")
    assert usage.returncode == 4 and "--tail" in one_error_line(usage)
    # `wait` followed the service through its events stream: no status polling.
    assert api_requests(operated_api, sid, "events") >= 1
    assert api_requests(operated_api, sid, "status") == 0


@pytest.mark.slow
def test_logs_follow_waits_for_the_run_then_prints_lines_as_they_come(
    operator_env: OperatorEnv, operated_api: LiveApi, operated_dtpoc: Dtpoc, tmp_path: Path
) -> None:
    dtpoc, env = operated_dtpoc, operator_env
    logs = SimulatedLogs(env.kubectl, env.namespace, tmp_path / "container-logs")
    sid = dtpoc.json("launch", "--image", IMAGE, "--job-type", "persistent")["id"]
    follower = subprocess.Popen(
        [DTPOC, "logs", sid, "-f"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dtpoc.env()
    )
    try:
        assert follower.stderr is not None and follower.stdout is not None
        # Nothing to read yet (no pod, or no log from it): it says so once, and waits.
        assert follower.stderr.readline() == "run 0 has not started yet; waiting for it\n"
        pod = eventually(
            lambda: ((env.record(sid).get("run_pods") or {}).get("0") or {}).get("pod"),
            60,
            "the operator to note the service's pod",
        )
        logs.serve(pod, ["listening on :8080"])
        assert follower.stdout.readline() == "listening on :8080\n"
        for ward in ("A", "B"):  # each line is printed only after the one before it has arrived
            logs.append(pod, [f"GET /wards/{ward} 200"])
            assert follower.stdout.readline() == f"GET /wards/{ward} 200\n"
        assert follower.poll() is None  # still following
    finally:
        follower.kill()
        follower.wait()


def test_status_watch_reads_the_events_stream_and_ends_with_a_terminated_service(
    dtpoc: Dtpoc, cli_api: LiveApi
) -> None:
    # No operator: the service stays pending until it is terminated.
    sid = dtpoc.json("launch", "--image", IMAGE, "--reps", "1")["id"]
    watch = subprocess.Popen(
        [DTPOC, "status", sid, "--watch", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dtpoc.env(),
    )
    try:
        assert watch.stdout is not None
        first = json.loads(watch.stdout.readline())
        assert (first["id"], first["status"]) == (sid, "pending")
        dtpoc.ok("terminate", sid)
        rest, errors = watch.communicate(timeout=120)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    assert watch.returncode == 0, errors
    assert [json.loads(line) for line in rest.splitlines()] == [{"id": sid, "status": "terminated"}]
    assert api_requests(cli_api, sid, "events") == 1 and api_requests(cli_api, sid, "status") == 0


def test_without_an_events_stream_wait_and_watch_fall_back_to_polling(dtpoc: Dtpoc, cli_api: LiveApi) -> None:
    sid = dtpoc.json("launch", "--image", IMAGE, "--reps", "1")["id"]
    with api_without_events(cli_api.url) as (url, asked):
        older = Dtpoc(f"{url}/api/orchestrator/v1beta1", dtpoc.home)
        waited = older("wait", sid, "--timeout", "1", "--interval", "0.2")
        assert waited.returncode == 2, waited.stderr
        assert waited.stderr.strip() == "timed out after 1 s; the service is pending"
        polls = [path for path in asked if path == f"/api/orchestrator/v1beta1/service/{sid}/status"]
        assert asked[0].endswith(f"/service/{sid}/events") and len(polls) >= 2
        # An unknown service: the polling says so, as one line.
        line = one_error_line(older("wait", UNKNOWN_ID))
        assert line == f"dtpoc: error: not found: no service {UNKNOWN_ID}"
    dtpoc.ok("terminate", sid)


def test_wait_for_an_unknown_service_is_one_error_line(dtpoc: Dtpoc) -> None:
    line = one_error_line(dtpoc("wait", UNKNOWN_ID))
    assert line == f"dtpoc: error: not found: no service {UNKNOWN_ID}"
