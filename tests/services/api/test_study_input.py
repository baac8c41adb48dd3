"""Studies (`sim` with `scenarios`) without the cluster: every bad study is a 422 naming its field and
writes nothing; a scenario's unknown input is named where it is; a file a scenario mounts cannot be
deleted; the summary endpoint's answers (the record as the operator leaves it, written here: these
tests are about what the API serves, tests/services/operator/test_study.py proves the operator's part)."""

from __future__ import annotations

import csv
import io
import json

import gridfs
import pytest
from bson import ObjectId

from services.shared.files import summary_file_id

from .conftest import AUTH

pytestmark = pytest.mark.mongo

SCENARIOS = [
    {"name": "baseline"},
    {"name": "more-staff", "env": {"STAFF": "12"}},
    {"name": "night-shift", "env": {"SHIFT": "night"}},
]
GOOD = {
    "image": "ghcr.io/cam-digital-hospitals/hospital-lab",
    "version": "1",
    "env": {"SIM_HOURS": "168"},
    "sim": {"reps": 4, "scenarios": SCENARIOS},
}


def study(**sim: object) -> dict[str, object]:
    return {**GOOD, "sim": {**GOOD["sim"], **sim}}  # type: ignore[dict-item]


def scenario(index: int, **fields: object) -> list[dict[str, object]]:
    changed = [dict(s) for s in SCENARIOS]
    changed[index] = {**changed[index], **fields}
    return changed


def at(index: int, field: str) -> list[object]:
    """Where a 422 about scenario `index`'s `field` points."""
    return ["body", "sim", "scenarios", index, field]


BAD_NAME = "not a scenario name"
# name -> (body, where the 422 points, words of its message)
BAD_STUDIES = {
    "no scenarios": (study(scenarios=[]), ["body", "sim", "scenarios"], "at least 1 item"),
    "scenarios not a list": (study(scenarios={"name": "a"}), ["body", "sim", "scenarios"], "valid list"),
    "repeated name": (
        study(scenarios=[*SCENARIOS, {"name": "baseline"}]),
        ["body", "sim", "scenarios"],
        "unique; repeated: baseline",
    ),
    "upper-case name": (study(scenarios=scenario(1, name="MoreStaff")), at(1, "name"), BAD_NAME),
    "name with a dot": (study(scenarios=scenario(0, name="a.b")), at(0, "name"), BAD_NAME),
    "name with a slash": (study(scenarios=scenario(0, name="../x")), at(0, "name"), BAD_NAME),
    "name ending in a dash": (study(scenarios=scenario(0, name="a-")), at(0, "name"), BAD_NAME),
    "name too long": (study(scenarios=scenario(0, name="a" * 64)), at(0, "name"), "at most 63"),
    "name missing": (study(scenarios=[{"env": {}}]), at(0, "name"), "Field required"),
    "unknown scenario field": (study(scenarios=scenario(2, files={})), at(2, "files"), "Extra inputs"),
    "reps zero": (study(reps=0), ["body", "sim", "reps"], "greater than or equal to 1"),
    "too many runs": (study(reps=34), ["body", "sim"], "3 scenarios * 34 reps = 102 runs; a study"),
    "scenario sets SCENARIO": (
        study(scenarios=scenario(1, env={"SCENARIO": "x"})),
        at(1, "env"),
        "SCENARIO is set by the platform",
    ),
    "scenario sets RUN_INDEX": (
        study(scenarios=scenario(1, env={"RUN_INDEX": "3"})),
        at(1, "env"),
        "RUN_INDEX is set by the platform",
    ),
    "scenario env name bad": (
        study(scenarios=scenario(0, env={"A-B": "1"})),
        at(0, "env"),
        "not a valid environment variable name",
    ),
    "scenario mount name unsafe": (
        study(scenarios=scenario(2, mount_files={str(ObjectId()): "../lab.xlsx"})),
        at(2, "mount_files"),
        "not a safe file name",
    ),
    "service env sets SCENARIO": ({**GOOD, "env": {"SCENARIO": "x"}}, ["body"], "env: SCENARIO is set by"),
    "study with ana": ({**GOOD, "ana": {"job_type": "ondemand", "reps": 1}}, ["body"], "exactly one of"),
    "study with a port": ({**GOOD, "port": 8080}, ["body"], "port"),
}  # fmt: skip


@pytest.mark.parametrize(("body", "where", "words"), BAD_STUDIES.values(), ids=BAD_STUDIES.keys())
async def test_a_bad_study_is_422_naming_the_field_and_writes_nothing(
    client, records, files_db, body, where, words
) -> None:
    response = await client.post("/service/launch", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(d["loc"] == where and words in d["msg"] for d in detail), detail
    assert records.count_documents({}) == 0
    assert files_db["fs.files"].count_documents({}) == 0


async def test_the_run_cap_is_the_batch_cap(client, records) -> None:
    """At most 100 runs, as a batch: 4 x 25 is accepted by validation (then Kubernetes is away here)."""
    response = await client.post(
        "/service/launch", json=study(reps=25, scenarios=[{"name": f"s{i}"} for i in range(4)]), headers=AUTH
    )
    assert response.status_code == 503  # past validation: the cluster is unreachable in these tests
    assert records.count_documents({}) == 0


async def test_an_unknown_scenario_input_is_named_where_it_is(client, records) -> None:
    uploaded = await client.post("/files/upload", files={"file": ("lab.xlsx", b"cells")}, headers=AUTH)
    known, unknown = uploaded.json()["id"], str(ObjectId())
    body = {
        **GOOD,
        "mount_files": {known: "lab.xlsx"},
        "sim": {"reps": 2, "scenarios": scenario(2, mount_files={unknown: "night.xlsx"})},
    }
    response = await client.post("/service/launch", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "type": "value_error",
            "loc": ["body", "sim", "scenarios", 2, "mount_files", unknown],
            "msg": "no stored file has this id",
        }
    ]
    assert records.count_documents({}) == 0


async def test_a_file_a_scenario_mounts_cannot_be_deleted(client, records) -> None:
    uploaded = await client.post("/files/upload", files={"file": ("night.xlsx", b"night")}, headers=AUTH)
    file_id = uploaded.json()["id"]
    service_id = ObjectId()
    records.insert_one(
        {
            "_id": service_id,
            "image": "x",
            "study": {
                "reps": 1,
                "scenarios": [{"name": "a"}, {"name": "b", "mount_files": {file_id: "n.xlsx"}}],
            },
        }
    )
    response = await client.delete(f"/files/{file_id}", headers=AUTH)
    assert response.status_code == 409
    assert str(service_id) in response.json()["detail"]
    records.delete_one({"_id": service_id})
    assert (await client.delete(f"/files/{file_id}", headers=AUTH)).status_code == 204


def study_record(service_id: ObjectId, **fields: object) -> dict[str, object]:
    return {
        "_id": service_id,
        "image": "ghcr.io/x/hospital-lab",
        "version": "1",
        "reps": 4,
        "study": {"reps": 2, "scenarios": [{"name": "a"}, {"name": "b"}]},
        "output_files": [
            {"run": run, "file_id": str(ObjectId()), "filename": "kpis.json"} for run in (0, 1, 3)
        ],
        **fields,
    }


async def test_summary_of_a_service_that_is_not_a_study_is_404(client, records) -> None:
    service_id = ObjectId()
    records.insert_one({"_id": service_id, "image": "x", "reps": 2})
    response = await client.get(f"/service/{service_id}/summary")
    assert response.status_code == 404
    assert "not a study" in response.json()["detail"]
    assert (await client.get(f"/service/{ObjectId()}/summary")).status_code == 404


async def test_summary_before_it_is_written_is_404(client, records) -> None:
    service_id = ObjectId()
    records.insert_one(study_record(service_id))
    response = await client.get(f"/service/{service_id}/summary", params={"format": "csv"})
    assert response.status_code == 404
    assert "not written yet" in response.json()["detail"]


async def test_summary_format_must_be_json_or_csv(client, records) -> None:
    service_id = ObjectId()
    records.insert_one(study_record(service_id))
    response = await client.get(f"/service/{service_id}/summary", params={"format": "xlsx"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "format"]


async def test_summary_is_served_as_json_and_csv(client, records, files_db) -> None:
    service_id = ObjectId()
    sid = str(service_id)
    summary = {"format": "dtpoc.study-summary/1", "service_id": sid, "runs": []}
    table = b"scenario,replication,run,status,source,x\na,0,0,succeeded,kpis.json,1\n"
    bucket = gridfs.GridFSBucket(files_db)
    for name, content in (("summary.json", json.dumps(summary).encode()), ("summary.csv", table)):
        bucket.upload_from_stream_with_id(
            summary_file_id(sid, name), name, content, metadata={"kind": "summary"}
        )
    files = {
        "json_file_id": str(summary_file_id(sid, "summary.json")),
        "csv_file_id": str(summary_file_id(sid, "summary.csv")),
        "created_at": "2026-01-01T00:00:00Z",
    }
    records.insert_one(study_record(service_id, study_summary=files))

    as_json = await client.get(f"/service/{sid}/summary")
    assert as_json.status_code == 200
    assert as_json.headers["Content-Type"] == "application/json"
    assert as_json.json() == summary
    as_csv = await client.get(f"/service/{sid}/summary", params={"format": "csv"})
    assert as_csv.status_code == 200
    assert as_csv.headers["Content-Type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(as_csv.text)))[1] == ["a", "0", "0", "succeeded", "kpis.json", "1"]
    assert f"summary-{sid}.csv" in as_csv.headers["Content-Disposition"]
