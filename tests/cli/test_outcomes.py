"""`wait`'s exit codes and `outputs` against services the real operator runs on kwok: kwok completes a
Job's pods at once; with scheduling paused (cordon) the stand-in outputs are written into each run's
output folder first, as the module would, or a pod is marked failed, as its kubelet would when the
module exits 1 (as tests/services/operator/test_runs.py does). The status is the operator's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.live_api import LiveApi
from tests.services.operator.conftest import OperatorEnv
from tests.services.operator.test_runs import pending_pods

from .conftest import DTPOC, Dtpoc, api_bytes

pytestmark = [pytest.mark.cluster, pytest.mark.mongo, pytest.mark.slow]

IMAGE = "example.org/simulation"
ORDER = {"pending": 0, "running": 1, "ok": 2, "error": 2}


def outputs_of(run: int) -> dict[str, bytes]:
    """What run `run` of the stand-in module writes to /output."""
    return {
        "kpis.json": json.dumps({"run": run, "throughput": 10 + run}).encode(),
        "plots/queue.csv": b"t,len\n" + b"".join(b"%d,%d\n" % (t, t * run) for t in range(100)),
    }


def test_wait_exits_0_when_ok_and_outputs_equal_the_apis_files(
    operator_env: OperatorEnv, operated_api: LiveApi, operated_dtpoc: Dtpoc, tmp_path: Path
) -> None:
    dtpoc = operated_dtpoc
    watch: subprocess.Popen[str] | None = None
    try:
        with operator_env.scheduling_paused():
            sid = dtpoc.json("launch", "--image", IMAGE, "--version", "2", "--reps", "2")["id"]
            pending_pods(operator_env, sid, 2, timeout=60)
            for run in range(2):
                for name, content in outputs_of(run).items():
                    path = operator_env.run_dir(sid, run) / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(content)
            watch = subprocess.Popen(
                [DTPOC, "status", sid, "--watch", "--json", "--interval", "0.2"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=dtpoc.env(),
            )
            assert watch.stdout is not None
            first = json.loads(watch.stdout.readline())  # read before the runs can start
        waited = dtpoc("wait", sid)
        rest, errors = watch.communicate(timeout=120)
    finally:
        if watch is not None and watch.poll() is None:  # a failure above: stop the watcher we started
            watch.kill()
            watch.wait()
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.strip() == f"{sid} ok: 2 ok, 0 failed, 0 active of 2"

    # --watch printed each change as a JSON line, from pending, and ended when the service settled.
    assert watch.returncode == 0, errors
    changes = [first] + [json.loads(line) for line in rest.splitlines()]
    assert (changes[0]["id"], changes[0]["status"]) == (sid, "pending")
    assert changes[-1]["status"] == "ok" and changes[-1]["succeeded"] == 2
    assert [ORDER[c["status"]] for c in changes] == sorted(ORDER[c["status"]] for c in changes)
    assert len({json.dumps(c, sort_keys=True) for c in changes}) == len(changes)  # changes only

    folder = tmp_path / "results"
    written = dtpoc.json("outputs", sid, "-o", folder)
    expected = sorted((run, name) for run in range(2) for name in outputs_of(run))
    assert sorted((item["run"], item["filename"]) for item in written) == expected
    for item in written:
        path = Path(item["path"])
        assert path == folder / f"run-{item['run']}" / item["filename"]
        assert (
            path.read_bytes()
            == api_bytes(dtpoc.url, item["file_id"])
            == outputs_of(item["run"])[item["filename"]]
        )
    listed = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert listed == [f"run-{run}/{name}" for run, name in expected]  # nothing else, no partial files

    human = dtpoc.ok("outputs", sid, "-o", tmp_path / "again").stdout
    assert f"run 1: {tmp_path / 'again' / 'run-1' / 'plots/queue.csv'} (" in human


def test_wait_exits_1_when_a_run_failed(
    operator_env: OperatorEnv, operated_api: LiveApi, operated_dtpoc: Dtpoc
) -> None:
    dtpoc = operated_dtpoc
    with operator_env.scheduling_paused():
        sid = dtpoc.json("launch", "--image", IMAGE, "--reps", "1")["id"]
        (pod,) = pending_pods(operator_env, sid, 1, timeout=60)
        failed = {"phase": "Failed", "reason": "Error", "message": "the module exited with status 1"}
        operator_env.kubectl(
            "patch", "pod", pod["metadata"]["name"], "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": failed}),
        )  # fmt: skip

    waited = dtpoc("wait", sid, "--json")
    assert waited.returncode == 1, waited.stderr
    status = json.loads(waited.stdout)
    assert (status["status"], status["failed"], status["succeeded"]) == ("error", 1, 0)
    assert dtpoc("wait", sid).stdout.strip() == f"{sid} error: 0 ok, 1 failed, 0 active of 1"


def test_outputs_of_a_study_are_named_by_scenario_with_its_summary(
    operator_env: OperatorEnv, operated_api: LiveApi, operated_dtpoc: Dtpoc, tmp_path: Path
) -> None:
    """A study launched from a spec file: `outputs` writes DIR/<scenario>/run-<replication>/<file> and
    the summary beside them, each file the API's."""
    dtpoc = operated_dtpoc
    spec = tmp_path / "study.yaml"
    spec.write_text(
        f"image: {IMAGE}\nversion: '2'\nsim:\n  reps: 2\n  scenarios:\n"
        "    - {name: baseline}\n    - {name: more-staff, env: {STAFF: '12'}}\n"
    )
    with operator_env.scheduling_paused():
        sid = dtpoc.json("launch", "-f", spec)["id"]
        for pod in pending_pods(operator_env, sid, 4, timeout=60):
            job = pod["metadata"]["labels"]["batch.kubernetes.io/job-name"]
            replication = int(pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"])
            folder = operator_env.output_root / sid / "runs" / job / str(replication)  # its /output
            scenario = job.rsplit("-", 1)[1]
            (folder / "kpis.json").write_text(json.dumps({"throughput": 10 * int(scenario) + replication}))
    assert dtpoc("wait", sid, "--timeout", "120").returncode == 0

    shown = dtpoc.ok("status", sid).stdout
    assert "summary" in shown and "written" in shown and "more-staff" in shown
    folder = tmp_path / "results"
    written = dtpoc.json("outputs", sid, "-o", folder)
    listed = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert listed == [
        "baseline/run-0/kpis.json", "baseline/run-1/kpis.json",
        "more-staff/run-0/kpis.json", "more-staff/run-1/kpis.json",
        "summary.csv", "summary.json",
    ]  # fmt: skip
    runs = {(item["scenario"], item["replication"]): item for item in written if "scenario" in item}
    assert runs[("more-staff", 1)]["run"] == 3
    assert json.loads((folder / "more-staff/run-1/kpis.json").read_text()) == {"throughput": 11}
    for item in written:
        assert Path(item["path"]).read_bytes() == api_bytes(dtpoc.url, item["file_id"])
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["scenarios"][1]["statistics"]["throughput"]["mean"] == 10.5
    human = dtpoc.ok("outputs", sid, "-o", tmp_path / "again").stdout
    assert f"more-staff run 1 (run 3): {tmp_path / 'again' / 'more-staff' / 'run-1' / 'kpis.json'}" in human
