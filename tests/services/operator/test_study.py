"""A study end to end on the test platform: launched through a live `dtpoc-api`, run by the real
operator on the kwok cluster, its status, outputs and summary read back through the API.

kwok's simulated pods run no container, so no module writes outputs here. As in test_runs.py, the pods
are held Pending (the nodes cordoned) while the test writes each run's `kpis.json` into the output
folder its pod would mount at /output (the pod's own subPathExpr, expanded as the kubelet does), then
scheduling resumes and the runs complete. That proves the operator's part only: what it makes for each
run (Jobs, env, mounts, staged inputs, read here from the real kube-apiserver and the data volume), its
collection, and the summary it computes from what it collected. A module's own behaviour on a real
node is tests/e2e/test_platform_e2e.py's (test_hospital_study_on_the_real_node).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.operator import layout
from services.shared.files import summary_file_id
from services.shared.names import SERVICE_ID_LABEL
from tests.live_api import ApiTokens, LiveApi, serve_api
from tests.polling import eventually

from .conftest import OperatorEnv
from .test_runs import pending_pods

IMAGE = "example.org/hospital-lab"
TOKENS = ApiTokens("study-test-token-0123456789", "study-read-token-0123456789")
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
SCENARIOS = ["baseline", "more-staff", "night-shift"]
REPS = 4
T_975_DF3 = 3.182446305284263  # t(0.975, 3) (tables: 3.182)


@pytest.fixture
def api(operator_env: OperatorEnv, tmp_path: Path) -> Iterator[httpx.Client]:
    """The real operator (parallelism for all 12 runs at once, so that all 12 pods wait together) and
    a live API on its namespace, as an admin's HTTP client."""
    operator_env.start_operator(OPERATOR_MAX_PARALLELISM="12")
    live: LiveApi
    with (
        serve_api(
            operator_env.mongo_url,
            operator_env.cluster.kubeconfig,
            operator_env.namespace,
            tmp_path / "api.log",
            TOKENS,
            16 * 1024 * 1024,
        ) as live,
        httpx.Client(
            base_url=f"{live.url}/api/orchestrator/v1beta1",
            headers={"Authorization": f"Bearer {TOKENS.admin}"},
            timeout=60,
        ) as client,
    ):
        yield client


def upload(api: httpx.Client, name: str, content: bytes) -> str:
    response = api.post("/files/upload", files={"file": (name, content)})
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"])


def kpis_of(scenario: int, replication: int) -> dict[str, Any]:
    """What the stand-in module reports for a run: figures that differ by scenario and replication."""
    throughput = 40 + 7 * scenario + (replication * 3) % 5 + 0.25 * replication**2
    return {
        "scenario": SCENARIOS[scenario],
        "seeds": [replication, 17],
        "kpis": {"samples_completed": 100 * scenario + 3 * replication, "turnaround": {"p90": throughput}},
    }


def output_dir_of(pod: dict[str, Any], root: Path) -> Path:
    """The folder the pod mounts at /output: its subPathExpr on the data volume, expanded with its env as
    the kubelet would ($(JOB_NAME) from the job-name label, $(RUN_INDEX) from its completion index)."""
    (container,) = pod["spec"]["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/output"]
    values = {
        "$(JOB_NAME)": pod["metadata"]["labels"]["batch.kubernetes.io/job-name"],
        "$(RUN_INDEX)": pod["metadata"]["annotations"][COMPLETION_INDEX],
    }
    path = mount["subPathExpr"]
    for name, value in values.items():
        path = path.replace(name, value)
    return root / path


def env_of(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}


def test_a_three_by_four_study_runs_twelve_runs_and_summarises_them(
    operator_env: OperatorEnv, api: httpx.Client
) -> None:
    shared = upload(api, "calendar.csv", b"day,shift\nmon,early\n")
    workbooks = {name: f"workbook of {name}".encode() for name in SCENARIOS}
    own = {name: upload(api, "lab.xlsx", content) for name, content in workbooks.items()}
    body = {
        "image": IMAGE,
        "version": "1",
        "description": "staffing study",
        "env": {"INPUT_EXCEL_FILE": "/input/lab.xlsx", "SIM_HOURS": "168"},
        "mount_files": {shared: "calendar.csv"},
        "sim": {
            "reps": REPS,
            "scenarios": [
                {"name": name, "mount_files": {own[name]: "lab.xlsx"}, "env": env}
                for name, env in zip(SCENARIOS, ({}, {"STAFF": "12"}, {"SIM_HOURS": "48"}), strict=True)
            ],
        },
    }
    root = operator_env.output_root
    with operator_env.scheduling_paused():
        launched = api.post("/service/launch", json=body)
        assert launched.status_code == 202, launched.text
        sid = launched.json()["id"]
        pods = pending_pods(operator_env, sid, 12, timeout=90)

        # One Indexed Job per scenario, as the kube-apiserver holds them.
        jobs = sorted(
            operator_env.list("jobs", f"{SERVICE_ID_LABEL}={sid}"), key=lambda j: j["metadata"]["name"]
        )
        assert [j["metadata"]["name"] for j in jobs] == [f"ana-{sid}-{k}" for k in range(3)]
        assert [j["spec"]["completions"] for j in jobs] == [REPS] * 3
        assert [j["metadata"]["labels"]["orchestrator.eng.cam.ac.uk/scenario"] for j in jobs] == SCENARIOS

        # Each of the 12 pods: its scenario's env and /input, its replication as RUN_INDEX.
        seen = set()
        for pod in pods:
            scenario = pod["metadata"]["labels"]["orchestrator.eng.cam.ac.uk/scenario"]
            k = SCENARIOS.index(scenario)
            replication = int(pod["metadata"]["annotations"][COMPLETION_INDEX])
            seen.add((scenario, replication))
            assert pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == f"ana-{sid}-{k}"
            assert pod["metadata"]["annotations"]["orchestrator.eng.cam.ac.uk/first-run"] == str(k * REPS)
            env = env_of(pod)
            assert env["SCENARIO"]["value"] == scenario
            assert env["RUN_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
                f"metadata.annotations['{COMPLETION_INDEX}']"
            )
            assert env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"].endswith(
                f"['{COMPLETION_INDEX}']"
            )  # set by the Job controller: the same index
            assert env["INPUT_EXCEL_FILE"]["value"] == "/input/lab.xlsx"
            assert env["SIM_HOURS"]["value"] == ("48" if scenario == "night-shift" else "168")
            assert ("STAFF" in env) == (scenario == "more-staff")
            mounts = {m["mountPath"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
            assert mounts["/input"]["subPath"] == f"{sid}/input/{scenario}"
            assert mounts["/input"]["readOnly"] is True
            target = output_dir_of(pod, root)
            assert target == layout.run_dir(root, sid, replication, f"ana-{sid}-{k}")
            # Where the module would write: the folder the pod mounts.
            (target / "kpis.json").write_text(json.dumps(kpis_of(k, replication)))
            (target / "log.txt").write_text(f"{scenario} {replication}\n")
        assert seen == {(name, r) for name in SCENARIOS for r in range(REPS)}

        # What each scenario's runs see at /input: the service's file and the scenario's own workbook.
        for name in SCENARIOS:
            staged = root / sid / "input" / name
            assert sorted(p.name for p in staged.iterdir()) == ["calendar.csv", "lab.xlsx"]
            assert (staged / "lab.xlsx").read_bytes() == workbooks[name]

    status = eventually(
        lambda: (s := api.get(f"/service/{sid}/status").json())["status"] == "ok" and s,
        180,
        "the study to finish with its summary",
    )
    assert (status["total"], status["succeeded"], status["failed"], status["outputs"]) == (12, 12, 0, 24)
    assert status["summary"] is not None
    groups = status["scenarios"]
    assert [g["name"] for g in groups] == SCENARIOS
    for k, group in enumerate(groups):
        assert group["runs"] == [k * REPS + r for r in range(REPS)]
        assert (group["succeeded"], group["failed"], group["active"]) == (REPS, 0, 0)
        assert [(o["run"], o["replication"], o["filename"]) for o in group["output_files"]] == [
            (k * REPS + r, r, name) for r in range(REPS) for name in ("kpis.json", "log.txt")
        ]
    written = next(c for c in status["conditions"] if c["type"] == "SummaryWritten")
    assert (written["status"], written["reason"]) == ("True", "Written")
    # output/{idx} is the run number: run 5 is replication 1 of more-staff.
    assert api.get(f"/service/{sid}/output/5", params={"name": "kpis.json"}).json() == kpis_of(1, 1)

    # The summary's figures equal those computed here from the 12 outputs.
    summary = api.get(f"/service/{sid}/summary").json()
    assert summary["columns"] == ["samples_completed", "turnaround.p90"]
    assert [
        (r["run"], r["scenario"], r["replication"], r["status"], r["source"]) for r in summary["runs"]
    ] == [(k * REPS + r, SCENARIOS[k], r, "succeeded", "kpis.json") for k in range(3) for r in range(REPS)]
    for row in summary["runs"]:
        expected = kpis_of(SCENARIOS.index(row["scenario"]), row["replication"])["kpis"]
        assert row["kpis"] == {
            "samples_completed": expected["samples_completed"],
            "turnaround.p90": expected["turnaround"]["p90"],
        }
    table = list(csv.reader(io.StringIO(api.get(f"/service/{sid}/summary", params={"format": "csv"}).text)))
    for k, group in enumerate(summary["scenarios"]):
        throughput = [kpis_of(k, r)["kpis"]["turnaround"]["p90"] for r in range(REPS)]
        completed = [kpis_of(k, r)["kpis"]["samples_completed"] for r in range(REPS)]
        stats = group["statistics"]
        assert stats["turnaround.p90"]["mean"] == pytest.approx(statistics.mean(throughput), rel=1e-12)
        assert stats["samples_completed"]["mean"] == pytest.approx(statistics.mean(completed), rel=1e-12)
        half = T_975_DF3 * statistics.stdev(throughput) / math.sqrt(REPS)
        assert stats["turnaround.p90"]["ci95_low"] == pytest.approx(
            statistics.mean(throughput) - half, rel=1e-9
        )
        assert stats["turnaround.p90"]["ci95_high"] == pytest.approx(
            statistics.mean(throughput) + half, rel=1e-9
        )
        mean_row = next(row for row in table if row[:2] == [SCENARIOS[k], "mean"])
        assert float(mean_row[6]) == pytest.approx(statistics.mean(throughput), rel=1e-12)
    # Stored in GridFS with the outputs, once each.
    files = operator_env.files["fs.files"]
    for name in ("summary.json", "summary.csv"):
        stored = files.find_one({"_id": summary_file_id(sid, name)})
        assert stored is not None and stored["metadata"]["kind"] == "summary"
    assert status["summary"]["json_file_id"] == str(summary_file_id(sid, "summary.json"))
    # The operator's own status on the resource lists the scenarios too.
    resource_status = operator_env.analytics_status(sid)
    assert [(s["name"], s["firstRun"], s["succeeded"]) for s in resource_status["scenarios"]] == [
        (name, k * REPS, REPS) for k, name in enumerate(SCENARIOS)
    ]


def test_the_ana_path_is_unchanged_beside_studies(operator_env: OperatorEnv, api: httpx.Client) -> None:
    """An `ana` ondemand launch is still one Job `ana-<sid>` whose index is the run, without SCENARIO,
    without scenarios or a summary in its status."""
    with operator_env.scheduling_paused():
        launched = api.post(
            "/service/launch", json={"image": IMAGE, "ana": {"job_type": "ondemand", "reps": 2}}
        )
        assert launched.status_code == 202, launched.text
        sid = launched.json()["id"]
        pods = pending_pods(operator_env, sid, 2)
        assert [j["metadata"]["name"] for j in operator_env.list("jobs", f"{SERVICE_ID_LABEL}={sid}")] == [
            f"ana-{sid}"
        ]
        for pod in pods:
            env = env_of(pod)
            assert "SCENARIO" not in env
            mounts = {m["mountPath"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
            assert mounts["/input"]["subPath"] == f"{sid}/input"
            index = int(pod["metadata"]["annotations"][COMPLETION_INDEX])
            assert output_dir_of(pod, operator_env.output_root) == operator_env.run_dir(sid, index)
            (output_dir_of(pod, operator_env.output_root) / "kpis.json").write_text(
                json.dumps({"run": index})
            )
    status = eventually(
        lambda: (s := api.get(f"/service/{sid}/status").json())["status"] == "ok" and s, 120, "the runs"
    )
    assert (status["scenarios"], status["summary"]) == (None, None)
    assert "SummaryWritten" not in {c["type"] for c in status["conditions"]}
    assert [api.get(f"/service/{sid}/output/{run}").json() for run in (0, 1)] == [{"run": 0}, {"run": 1}]
    missing = api.get(f"/service/{sid}/summary")
    assert missing.status_code == 404 and "not a study" in missing.json()["detail"]
    assert "scenarios" not in operator_env.analytics_status(sid)


@pytest.mark.parametrize(
    ("study", "reps", "words"),
    [
        (
            {"reps": 4, "scenarios": [{"name": "a"}, {"name": "b"}]},
            6,
            "study.reps times the number of scenarios",
        ),
        ({"reps": 1, "scenarios": [{"name": "a"}, {"name": "a"}]}, 2, "scenario names must be unique"),
        ({"reps": 1, "scenarios": [{"name": "Not_A_Label"}]}, 1, "should match"),
        ({"reps": 1, "scenarios": []}, 0, "should have at least 1 items"),
    ],
)
def test_kubernetes_refuses_an_inconsistent_study(
    operator_env: OperatorEnv, study: dict[str, Any], reps: int, words: str
) -> None:
    """The CRD's own rules (no operator needed): what the API would refuse, made by hand, is refused."""
    manifest = {
        "apiVersion": "eng.cam.ac.uk/v1alpha1",
        "kind": "Analytics",
        "metadata": {"name": "669a52d1364a1b751c550d56"},
        "spec": {"image": IMAGE, "jobType": "ondemand", "reps": reps, "study": study},
    }
    refused = operator_env.kubectl("apply", "-f", "-", input=json.dumps(manifest), check=False)
    assert refused.returncode != 0
    assert words in refused.stderr, refused.stderr


def test_a_study_changed_before_its_runs_start_is_made_again_whole(operator_env: OperatorEnv) -> None:
    """A study's Jobs are one workload: a spec update before any run started deletes all of them (the
    third scenario's Job too, which the new spec no longer has) and makes the new ones."""
    operator_env.start_operator()
    sid = operator_env.insert_record(image=IMAGE, reps=3)
    three = {"reps": 1, "scenarios": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}
    two = {"reps": 2, "scenarios": [{"name": "a"}, {"name": "d", "env": {"X": "1"}}]}
    selector = f"{SERVICE_ID_LABEL}={sid}"

    def job_names() -> list[str]:
        return sorted(j["metadata"]["name"] for j in operator_env.list("jobs", selector))

    with operator_env.scheduling_paused():
        operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 3, "study": three})
        eventually(lambda: job_names() == [f"ana-{sid}-{k}" for k in range(3)], 30, "three Jobs")
        first = {j["metadata"]["name"]: j["metadata"]["uid"] for j in operator_env.list("jobs", selector)}
        operator_env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 4, "study": two})

        def remade() -> list[dict[str, Any]] | None:
            jobs = operator_env.list("jobs", selector)
            names = sorted(j["metadata"]["name"] for j in jobs)
            fresh = all(j["metadata"]["uid"] != first.get(j["metadata"]["name"]) for j in jobs)
            return jobs if names == [f"ana-{sid}-0", f"ana-{sid}-1"] and fresh else None

        jobs = eventually(remade, 60, "the study's Jobs made again from the new spec")
        assert sorted(j["spec"]["completions"] for j in jobs) == [2, 2]
        labels = {j["metadata"]["labels"]["orchestrator.eng.cam.ac.uk/scenario"] for j in jobs}
        assert labels == {"a", "d"}
    status = operator_env.wait_phase(sid, "Succeeded", timeout=90)
    assert (status["succeeded"], [s["name"] for s in status["scenarios"]]) == (4, ["a", "d"])
    assert operator_env.condition(sid, "SummaryWritten")["status"] == "True"
