"""The two API versions without a server: the launch request each accepts, and how each shapes the
same results (services.api.views) into its bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from bson import ObjectId
from pydantic import ValidationError

from services.api.contracts import V1Alpha1, V1Beta1
from services.api.contracts.v1alpha1 import seed_date
from services.api.models import LaunchRequest, SeedLaunchRequest
from services.api.uploads import StoredFile
from services.api.views import ServiceView
from services.shared.crd import JobType
from services.shared.records import OutputFile, ServiceRecord
from services.shared.status import ServiceState

IMAGE = "ghcr.io/cam-digital-hospitals/ana-hpath-sim"
FILE_ID = "668481b1af010b6fdc495b6c"

# What the original accepted and did not use: v1alpha1 takes it with a warning, v1beta1 refuses it.
LENIENT = {
    "port on ondemand": ({"ana": {"job_type": "ondemand", "reps": 1}, "port": 8000}, "port"),
    "port on sim": ({"sim": {"reps": 2}, "port": 8000}, "port"),
    "ondemand without reps": ({"ana": {"job_type": "ondemand"}}, "ana.reps"),
    "schedule on ondemand": (
        {"ana": {"job_type": "ondemand", "reps": 1, "schedule": "@daily"}},
        "ana.schedule",
    ),
    "schedule on persistent": ({"ana": {"job_type": "persistent", "schedule": "@daily"}}, "ana.schedule"),
    "unknown field": ({"sim": {}, "replicas": 3}, "replicas"),
    "unknown ana field": ({"ana": {"job_type": "persistent", "cpu": "2"}}, "ana.cpu"),
    "unknown sim field": ({"sim": {"schedule": "@daily"}}, "sim.schedule"),
    "empty sim next to ana": ({"ana": {"job_type": "persistent"}, "sim": {}}, "sim"),
}


@pytest.mark.parametrize(("body", "field"), LENIENT.values(), ids=LENIENT.keys())
def test_v1alpha1_ignores_with_a_warning_what_v1beta1_refuses(body: dict, field: str) -> None:
    request = SeedLaunchRequest.model_validate({"image": IMAGE, **body})
    assert [w.split(":")[0] for w in request.warnings()] == [field]
    with pytest.raises(ValidationError):
        LaunchRequest.model_validate({"image": IMAGE, **body})


def test_the_seeds_example_becomes_one_run_without_port() -> None:
    body = {
        "image": IMAGE,
        "version": "latest",
        "description": "KPIs",
        "port": 8000,
        "env": {"INPUT_EXCEL_FILE": "/input/hpath_sim_input.xlsx", "OUTPUT_FOLDER": "/output"},
        "mount_files": {FILE_ID: "hpath_sim_input.xlsx"},
        "ana": {"job_type": "ondemand"},
        "sim": {},
    }
    request = SeedLaunchRequest.model_validate(body)
    assert request.analytics_spec() == {
        "image": f"{IMAGE}:latest",
        "description": "KPIs",
        "jobType": "ondemand",
        "env": body["env"],
        "reps": 1,
    }
    record = request.record()
    assert (record.reps, record.mount_files) == (1, {FILE_ID: "hpath_sim_input.xlsx"})
    assert [w.split(":")[0] for w in request.warnings()] == ["sim", "port", "ana.reps"]


@pytest.mark.parametrize("model", [SeedLaunchRequest, LaunchRequest])
def test_null_env_and_mount_files_are_none(model: type[SeedLaunchRequest]) -> None:
    request = model.model_validate({"image": IMAGE, "env": None, "mount_files": None, "sim": {"reps": 1}})
    assert (request.record().env, request.record().mount_files, request.analytics_spec()["env"]) == (
        {},
        {},
        {},
    )
    assert request.warnings() == []


DANGEROUS = {
    "reserved env name": {"env": {"RUN_ID": "x"}, "sim": {}},
    "env name with shell": {"env": {"A;rm": "x"}, "sim": {}},
    "mount name traversal": {"mount_files": {FILE_ID: "../etc/passwd"}, "sim": {}},
    "image with tag": {"image": "ubuntu:22.04", "sim": {}},
    "reps out of range": {"ana": {"job_type": "ondemand", "reps": 101}},
    "persistent with reps": {"ana": {"job_type": "persistent", "reps": 2}},
    "scheduled without schedule": {"ana": {"job_type": "scheduled", "reps": 1}},
    "bad cron": {"ana": {"job_type": "scheduled", "reps": 1, "schedule": "61 * * * *"}},
    "both kinds given": {"ana": {"job_type": "persistent"}, "sim": {"reps": 2}},
    "neither kind": {},
    "port out of range": {"ana": {"job_type": "persistent"}, "port": 70000},
}


@pytest.mark.parametrize("body", DANGEROUS.values(), ids=DANGEROUS.keys())
@pytest.mark.parametrize("model", [SeedLaunchRequest, LaunchRequest])
def test_both_versions_refuse_what_could_harm(model: type[SeedLaunchRequest], body: dict) -> None:
    with pytest.raises(ValidationError):
        model.model_validate({"image": IMAGE, **body})


def view(**changes: object) -> ServiceView:
    record = ServiceRecord(
        image="example.org/m",
        version="2",
        description="d",
        reps=3,
        mount_files={FILE_ID: "input.xlsx"},
        created_at=datetime(2024, 7, 19, 11, 30, 22, 123000, tzinfo=UTC),
        output_files=[
            OutputFile(run=1, file_id="f2", filename="b.json"),
            OutputFile(run=0, file_id="f0", filename="a.json"),
            OutputFile(run=1, file_id="f1", filename="a.json"),
        ],
    )
    fields: dict = {
        "id": str(ObjectId()),
        "record": record,
        "job_type": JobType.ONDEMAND,
        "state": ServiceState.RUNNING,
        "phase": None,
        "active": 1,
        "succeeded": 1,
        "failed": 0,
        "outputs": 3,
        "message": None,
        **changes,
    }
    return ServiceView(**fields)


def test_run_counts_in_each_version() -> None:
    seed = V1Alpha1().status(view()).model_dump()
    assert (seed["active_runs"], seed["succeeded_runs"], seed["failed_runs"], seed["total_runs"]) == (
        1,
        1,
        0,
        2,
    )
    beta = V1Beta1().status(view()).model_dump()
    assert (beta["active"], beta["succeeded"], beta["failed"], beta["total"]) == (1, 1, 0, 3)


def test_outputs_in_each_version() -> None:
    v = view()
    seed = V1Alpha1()
    assert seed.status(v).model_dump()["output_files"] == ["f0", "f1", "f2"]
    assert seed.service(v).model_dump()["output_files"] == {"f0": "a.json", "f1": "a.json", "f2": "b.json"}
    # v1alpha1: idx indexes that list; v1beta1: idx is the run.
    assert [seed.output(v.record, i, None).file_id for i in range(3)] == ["f0", "f1", "f2"]
    assert seed.output(v.record, 3, None) is None
    assert seed.output(v.record, 1, "b.json") is None
    beta = V1Beta1()
    assert [beta.output(v.record, i, None).file_id for i in range(2)] == ["f0", "f1"]
    assert beta.output(v.record, 1, "b.json").file_id == "f2"
    assert beta.output(v.record, 2, None) is None


def test_dates_in_each_version() -> None:
    v = view()
    assert V1Alpha1().service(v).created_at == v.record.created_at.timestamp() == 1721388622.123
    assert V1Beta1().service(v).model_dump(mode="json")["created_at"] == "2024-07-19T11:30:22.123000Z"
    assert seed_date(datetime(2024, 7, 19, 11, 30, 22, 123000, tzinfo=UTC)) == "2024-07-19T11:30:22.123000"
    plus_two = timezone(timedelta(hours=2))
    assert seed_date(datetime(2024, 7, 19, 13, 30, 22, tzinfo=plus_two)) == "2024-07-19T11:30:22"
    assert seed_date(datetime(2024, 7, 19, 11, 30, 22)) == "2024-07-19T11:30:22"


def test_uploads_in_each_version() -> None:
    stored = StoredFile(ObjectId(), "first.csv", "again.csv", 10, "ab" * 32, duplicate=True)
    status, body = V1Alpha1().uploaded(stored)
    assert status == 200
    assert body.model_dump(exclude_none=True) == {
        "file_id": str(stored.id),
        "filename": "again.csv",
        "message": "File already exists",
        "length": 10,
        "sha256": "ab" * 32,
        "duplicate": True,
    }
    new = StoredFile(ObjectId(), "n.csv", "n.csv", 10, "cd" * 32, duplicate=False)
    assert "message" not in V1Alpha1().uploaded(new)[1].model_dump(exclude_none=True)
    assert V1Alpha1().uploaded(new)[0] == 200
    assert V1Beta1().uploaded(new)[0] == 201
    assert V1Beta1().uploaded(stored)[1].model_dump()["filename"] == "first.csv"


def test_file_items_in_each_version() -> None:
    doc = {
        "_id": ObjectId(),
        "filename": "input.xlsx",
        "length": 5,
        "chunkSize": 261120,
        "uploadDate": datetime(2024, 7, 19, 11, 30, 22, 123000, tzinfo=UTC),
        "metadata": {"hash": "0" * 32},
    }
    assert V1Alpha1().file(doc).model_dump() == {
        "file_id": str(doc["_id"]),
        "filename": "input.xlsx",
        "length": 5,
        "uploadDate": "2024-07-19T11:30:22.123000",
        "metadata": {"hash": "0" * 32},
    }
    beta = V1Beta1().file(doc).model_dump()
    assert (beta["id"], beta["sha256"], beta["chunk_size"]) == (str(doc["_id"]), None, 261120)


def test_each_version_documents_only_its_own_operations_and_schemas() -> None:
    from services.api.main import create_app, version_document
    from services.api.settings import ApiSettings

    whole = create_app(ApiSettings()).openapi()
    alpha, beta = (version_document(whole, contract) for contract in (V1Alpha1(), V1Beta1()))
    assert all(path.startswith("/api/orchestrator/v1alpha1/") for path in alpha["paths"])
    assert all(path.startswith("/api/orchestrator/v1beta1/") for path in beta["paths"])
    at_base = [
        {path for path in document["paths"] if "/solutions/{solution}/" not in path}
        for document in (alpha, beta)
    ]
    assert len(at_base[0]) == len(at_base[1]) == 13  # the original's 10, study summary, logs, events
    # And each (but health and readiness) again for any solution (tests/services/api/test_solutions.py).
    assert len(alpha["paths"]) == len(beta["paths"]) == 13 + 11
    seed_file = alpha["components"]["schemas"]["SeedFile"]
    assert set(seed_file["required"]) >= {"file_id", "filename", "length", "uploadDate", "metadata"}
    assert "FileInfo" not in alpha["components"]["schemas"]
    assert "SeedFile" not in beta["components"]["schemas"]
    upload = alpha["paths"]["/api/orchestrator/v1alpha1/files/upload"]["post"]["responses"]
    assert "200" in upload and "201" not in upload
    assert "201" in beta["paths"]["/api/orchestrator/v1beta1/files/upload"]["post"]["responses"]
    assert (alpha["info"]["version"], beta["info"]["version"]) == ("v1alpha1", "v1beta1")
