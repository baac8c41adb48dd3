"""What a module (untrusted code) gets from the operator: its files and nothing else. No database
credentials or address, no service account token, no Secret at all; its folders open to the platform's
group only; its pods fit Pod Security "restricted"."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from services.operator import layout, workloads
from services.operator.settings import OperatorSettings
from services.operator.workloads import AnalyticsSpec

SID = "669a52d1364a1b751c550d56"

SPECS = {
    "ondemand": {"image": "ghcr.io/x/m:1", "jobType": "ondemand", "reps": 2},
    "scheduled": {"image": "ghcr.io/x/m:1", "jobType": "scheduled", "reps": 1, "schedule": "*/5 * * * *"},
    "persistent": {"image": "ghcr.io/x/m:1", "jobType": "persistent", "port": 8080},
}


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> OperatorSettings:
    # The environment an operator deployed before this change still has: it must no longer matter.
    monkeypatch.setenv("OPERATOR_MONGODB_SECRET", "mongodb-credentials")
    return OperatorSettings(output_root=tmp_path, data_pvc="data")


def pod_specs(manifest: dict) -> list[dict]:
    spec = manifest["spec"]
    spec = spec.get("jobTemplate", {}).get("spec", spec)
    return [spec["template"]["spec"]] if "template" in spec else []


@pytest.mark.parametrize("job_type", sorted(SPECS))
def test_run_pods_get_no_database_credentials_and_no_secret(
    settings: OperatorSettings, job_type: str
) -> None:
    spec = AnalyticsSpec.parse(SPECS[job_type])
    pods = [p for m in workloads.children(SID, spec, settings) for p in pod_specs(m)]
    assert pods
    for pod in pods:
        assert pod["automountServiceAccountToken"] is False
        assert all("secret" not in v and "projected" not in v for v in pod["volumes"])
        for container in pod["containers"]:
            names = {e["name"] for e in container["env"]}
            assert not {n for n in names if n.startswith("MONGODB")}, names
            assert "secretKeyRef" not in str(container["env"])
            assert "envFrom" not in container


def restricted_violations(pod: dict) -> list[str]:
    """The Pod Security "restricted" profile's rules that a pod spec breaks (the ones a spec can show)."""
    problems = []
    pod_ctx = pod.get("securityContext") or {}
    if (pod_ctx.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append("seccompProfile")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        problems.append("host namespaces")
    if any("hostPath" in v for v in pod.get("volumes") or []):
        problems.append("hostPath volume")
    for c in pod["containers"]:
        ctx = c.get("securityContext") or {}
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append("allowPrivilegeEscalation")
        if (ctx.get("capabilities") or {}).get("drop") != ["ALL"]:
            problems.append("capabilities")
        if not (ctx.get("runAsNonRoot") or pod_ctx.get("runAsNonRoot")):
            problems.append("runAsNonRoot")
        if ctx.get("privileged"):
            problems.append("privileged")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            problems.append("hostPort")
    return problems


@pytest.mark.parametrize("job_type", sorted(SPECS))
def test_run_pods_fit_pod_security_restricted(settings: OperatorSettings, job_type: str) -> None:
    spec = AnalyticsSpec.parse(SPECS[job_type])
    for manifest in workloads.children(SID, spec, settings):
        for pod in pod_specs(manifest):
            assert restricted_violations(pod) == []


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_run_folders_are_open_to_the_shared_group_only(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        layout.prepare_runs(tmp_path, SID, range(2))
        layout.prepare_runs(tmp_path, SID, range(1), "job-1")
    finally:
        os.umask(old)
    for run in (layout.run_dir(tmp_path, SID, 0), layout.run_dir(tmp_path, SID, 0, "job-1")):
        # Owner and group (the operator's and the modules' shared group) only; new files keep the group.
        assert mode(run) == 0o2770, oct(mode(run))


async def test_inputs_are_readable_by_the_shared_group_only(mongo_url: str, tmp_path: Path) -> None:
    import gridfs
    from pymongo import AsyncMongoClient, MongoClient

    from services.operator.inputs import stage_inputs
    from services.shared.files import FileStore
    from services.shared.names import FILES_DATABASE

    with MongoClient(mongo_url) as sync:
        file_id = str(gridfs.GridFSBucket(sync[FILES_DATABASE]).upload_from_stream("in.csv", b"a,b\n"))
    client: AsyncMongoClient = AsyncMongoClient(mongo_url)
    old = os.umask(0)
    try:
        directory = layout.input_dir(tmp_path, SID)
        await stage_inputs(FileStore(client), directory, {file_id: "in.csv"})
    finally:
        os.umask(old)
        await client.close()
    assert mode(directory) == 0o750, oct(mode(directory))
    assert mode(directory / "in.csv") == 0o640, oct(mode(directory / "in.csv"))
