"""/service without the cluster: every bad launch is a 4xx that writes nothing; outputs (which need
only MongoDB); Kubernetes unreachable is a 503 that leaves no half-made service; ids and auth."""

from __future__ import annotations

import json
import time

import pytest
from bson import ObjectId

from .conftest import AUTH

pytestmark = pytest.mark.mongo

GOOD = {
    "image": "ghcr.io/cam-digital-hospitals/digital-hosp-des",
    "version": "latest",
    "description": "sample flow",
    "env": {"SIM_HOURS": "1176"},
    "sim": {"reps": 2},
}


def with_(**changes: object) -> dict[str, object]:
    body = {**GOOD, **changes}
    return {k: v for k, v in body.items() if v is not None}


ANA_PERSISTENT = {"job_type": "persistent"}
ANA_ONDEMAND = {"job_type": "ondemand", "reps": 3}
ANA_SCHEDULED = {"job_type": "scheduled", "reps": 1, "schedule": "*/5 * * * *"}

BAD_LAUNCHES = {
    # image and version
    "image with a tag": with_(image="ubuntu:22.04"),
    "image with a digest": with_(image="ubuntu@sha256:" + "a" * 64),
    "image upper case": with_(image="GHCR.io/Org/Module"),
    "image empty": with_(image=""),
    "image double slash": with_(image="ghcr.io//module"),
    "image with space": with_(image="my image"),
    "image missing": {k: v for k, v in GOOD.items() if k != "image"},
    "version with space": with_(version="1 0"),
    "version starting with dash": with_(version="-rc"),
    "version empty": with_(version=""),
    "version too long": with_(version="v" * 129),
    "description too long": with_(description="d" * 4097),
    # env
    "env name starts with digit": with_(env={"1ABC": "x"}),
    "env name with dash": with_(env={"MY-VAR": "x"}),
    "env name with space": with_(env={"MY VAR": "x"}),
    "env name empty": with_(env={"": "x"}),
    "env name shell": with_(env={"A;rm -rf /": "x"}),
    "env value not a string": with_(env={"A": 1}),
    "env name with newline": with_(env={"A\nB": "x"}),
    "env name trailing newline": with_(env={"A\n": "x"}),
    "env name with equals": with_(env={"A=B": "x"}),
    "env name subshell": with_(env={"$(reboot)": "x"}),
    "env name backtick": with_(env={"`id`": "x"}),
    "env name overrides run identity": with_(env={"RUN_ID": "x"}),
    "env name overrides run index": with_(env={"RUN_INDEX": "0"}),
    "env name overrides mongodb password": with_(env={"MONGODB_PASSWORD": "x"}),
    "env value too long": with_(env={"A": "x" * 32769}),
    # mount_files
    "mount name with slash": with_(mount_files={str(ObjectId()): "dir/input.xlsx"}),
    "mount name dot dot": with_(mount_files={str(ObjectId()): ".."}),
    "mount name traversal": with_(mount_files={str(ObjectId()): "../etc/passwd"}),
    "mount name absolute": with_(mount_files={str(ObjectId()): "/etc/passwd"}),
    "mount name newline": with_(mount_files={str(ObjectId()): "a\nb"}),
    "mount name trailing newline": with_(mount_files={str(ObjectId()): "input.xlsx\n"}),
    "mount name dollar": with_(mount_files={str(ObjectId()): "a$HOME"}),
    "mount name and": with_(mount_files={str(ObjectId()): "a&&b"}),
    "mount name redirect": with_(mount_files={str(ObjectId()): "a>b"}),
    "mount name with dots inside": with_(mount_files={str(ObjectId()): "a..b"}),
    "mount name semicolon": with_(mount_files={str(ObjectId()): "a;rm"}),
    "mount name subshell": with_(mount_files={str(ObjectId()): "$(reboot)"}),
    "mount name backtick": with_(mount_files={str(ObjectId()): "`id`"}),
    "mount name pipe": with_(mount_files={str(ObjectId()): "a|b"}),
    "mount name space": with_(mount_files={str(ObjectId()): "my input.xlsx"}),
    "mount name hidden": with_(mount_files={str(ObjectId()): ".bashrc"}),
    "mount name empty": with_(mount_files={str(ObjectId()): ""}),
    "mount id malformed": with_(mount_files={"not-an-id": "input.xlsx"}),
    "mount names collide": with_(mount_files={str(ObjectId()): "a.txt", str(ObjectId()): "a.txt"}),
    # ana / sim
    "neither ana nor sim": with_(sim=None),
    "both ana and sim": with_(ana=ANA_ONDEMAND),
    "unknown job type": with_(sim=None, ana={"job_type": "forever"}),
    "persistent with reps": with_(sim=None, ana={"job_type": "persistent", "reps": 2}),
    "persistent with schedule": with_(sim=None, ana={"job_type": "persistent", "schedule": "@daily"}),
    "scheduled without schedule": with_(sim=None, ana={"job_type": "scheduled", "reps": 1}),
    "scheduled without reps": with_(sim=None, ana={"job_type": "scheduled", "schedule": "@daily"}),
    "scheduled cron three fields": with_(sim=None, ana={**ANA_SCHEDULED, "schedule": "* * *"}),
    "scheduled cron out of range": with_(sim=None, ana={**ANA_SCHEDULED, "schedule": "61 * * * *"}),
    "scheduled cron words": with_(sim=None, ana={**ANA_SCHEDULED, "schedule": "every day"}),
    "scheduled cron newline": with_(sim=None, ana={**ANA_SCHEDULED, "schedule": "* * * * *\n* * * * *"}),
    "ondemand without reps": with_(sim=None, ana={"job_type": "ondemand"}),
    "ondemand with schedule": with_(sim=None, ana={**ANA_ONDEMAND, "schedule": "@daily"}),
    "ondemand with port": with_(sim=None, ana=ANA_ONDEMAND, port=8080),
    "sim with port": with_(port=8080),
    "sim with schedule": with_(sim={"reps": 1, "schedule": "@daily"}),
    # ranges
    "reps zero": with_(sim={"reps": 0}),
    "reps 101": with_(sim={"reps": 101}),
    "ana reps 101": with_(sim=None, ana={"job_type": "ondemand", "reps": 101}),
    "reps not a number": with_(sim={"reps": "two"}),
    "port zero": with_(sim=None, ana=ANA_PERSISTENT, port=0),
    "port 65536": with_(sim=None, ana=ANA_PERSISTENT, port=65536),
    # shape
    "unknown field": with_(mount_file={}),
    "body not an object": ["image"],
}


@pytest.mark.parametrize("body", BAD_LAUNCHES.values(), ids=BAD_LAUNCHES.keys())
async def test_bad_launch_is_422_and_writes_nothing(client, records, body) -> None:
    response = await client.post("/service/launch", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail and all("msg" in d and "loc" in d for d in detail)
    assert records.count_documents({}) == 0


async def test_error_messages_name_the_problem(client) -> None:
    cases = {
        "ubuntu:22.04": with_(image="ubuntu:22.04"),
        "not a valid environment variable name": with_(env={"1X": "y"}),
        "not a safe file name": with_(mount_files={str(ObjectId()): "../x"}),
        "not a valid cron schedule": with_(sim=None, ana={**ANA_SCHEDULED, "schedule": "61 * * * *"}),
        "exactly one of `ana` or `sim`": with_(sim=None),
        "a scheduled job needs a schedule": with_(sim=None, ana={"job_type": "scheduled", "reps": 1}),
    }
    for expected, body in cases.items():
        response = await client.post("/service/launch", json=body, headers=AUTH)
        messages = " ".join(d["msg"] for d in response.json()["detail"])
        assert expected in messages, (expected, messages)


async def test_invalid_json_is_422(client, records) -> None:
    response = await client.post(
        "/service/launch", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert records.count_documents({}) == 0


async def test_unknown_mount_file_is_422_naming_it(client, records) -> None:
    uploaded = await client.post("/files/upload", files={"file": ("in.xlsx", b"cells")}, headers=AUTH)
    known, unknown = uploaded.json()["id"], str(ObjectId())
    body = with_(mount_files={known: "input.xlsx", unknown: "other.csv"})
    response = await client.post("/service/launch", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"type": "value_error", "loc": ["body", "mount_files", unknown], "msg": "no stored file has this id"}
    ]
    assert records.count_documents({}) == 0


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Token " + "x"}])
async def test_launch_needs_the_token(client, records, headers) -> None:
    response = await client.post("/service/launch", json=GOOD, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert records.count_documents({}) == 0


async def test_terminate_needs_the_token(client) -> None:
    response = await client.delete(f"/service/{ObjectId()}/terminate")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_kubernetes_unreachable_launch_is_503_and_leaves_no_record(client, records) -> None:
    started = time.monotonic()
    response = await client.post("/service/launch", json=GOOD, headers=AUTH)
    assert response.status_code == 503
    assert response.json()["detail"].startswith("Kubernetes is unreachable")
    assert response.headers["Retry-After"]
    assert records.count_documents({}) == 0
    assert time.monotonic() - started < 10


async def test_kubernetes_unreachable_reads_are_503(client, records) -> None:
    service_id = ObjectId()
    records.insert_one({"_id": service_id, "image": "x", "version": "1"})
    for path in ("/service/", f"/service/{service_id}/status"):
        response = await client.get(path)
        assert response.status_code == 503, path
        assert "Kubernetes is unreachable" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/service/123/status"),
        ("GET", "/service/zzzzzzzzzzzzzzzzzzzzzzzz/status"),
        ("GET", "/service/123/output/0"),
        ("DELETE", "/service/0123456789abcdef0123456/terminate"),
    ],
)
async def test_malformed_service_id_is_422(client, method, path) -> None:
    response = await client.request(method, path, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "id"]


async def test_unknown_service_status_is_404(client) -> None:
    response = await client.get(f"/service/{ObjectId()}/status")
    assert response.status_code == 404
    assert response.json()["detail"].startswith("no service")


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"skip": -5}])
async def test_list_paging_bounds(client, params) -> None:
    assert (await client.get("/service/", params=params)).status_code == 422


# Outputs: the operator stores a run's files in GridFS and lists them in the record.


@pytest.fixture
async def service_with_outputs(client, records):
    async def store(name: str, content: bytes) -> str:
        response = await client.post(
            "/files/upload", files={"file": (name, content, "application/octet-stream")}, headers=AUTH
        )
        return response.json()["id"]

    report = await store("report.json", json.dumps({"kpi": 0.93, "runs": [1, 2]}).encode())
    table = await store("table.csv", b"a,b\n1,2\n")
    log = await store("run.log", b"log of run 1")
    broken = await store("broken.json", b"{not json")
    service_id = ObjectId()
    records.insert_one(
        {
            "_id": service_id,
            "image": "ghcr.io/x/y",
            "version": "1",
            "reps": 3,
            "output_files": [
                {"run": 0, "file_id": report, "filename": "report.json"},
                {"run": 1, "file_id": log, "filename": "run.log"},
                {"run": 1, "file_id": table, "filename": "table.csv"},
                {"run": 2, "file_id": broken, "filename": "broken.json"},
            ],
        }
    )
    return str(service_id)


async def test_json_output_is_the_json_body(client, service_with_outputs) -> None:
    response = await client.get(f"/service/{service_with_outputs}/output/0")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"kpi": 0.93, "runs": [1, 2]}


async def test_other_output_is_a_file_first_by_name(client, service_with_outputs) -> None:
    response = await client.get(f"/service/{service_with_outputs}/output/1")
    assert response.status_code == 200
    assert response.content == b"log of run 1"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="run.log"')
    named = await client.get(f"/service/{service_with_outputs}/output/1", params={"name": "table.csv"})
    assert named.content == b"a,b\n1,2\n"
    assert named.headers["Content-Length"] == "8"


async def test_a_json_output_comes_as_the_module_wrote_it(client, service_with_outputs) -> None:
    # Never parsed by the API (see the crafted case below): broken JSON comes back byte for byte.
    response = await client.get(f"/service/{service_with_outputs}/output/2")
    assert response.status_code == 200
    assert response.content == b"{not json"
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment")


async def test_unknown_output_is_404(client, service_with_outputs) -> None:
    assert (await client.get(f"/service/{service_with_outputs}/output/3")).status_code == 404
    response = await client.get(f"/service/{service_with_outputs}/output/1", params={"name": "nope.txt"})
    assert response.status_code == 404
    assert "nope.txt" in response.json()["detail"]
    assert (await client.get(f"/service/{ObjectId()}/output/0")).status_code == 404


async def test_negative_output_index_is_422(client, service_with_outputs) -> None:
    response = await client.get(f"/service/{service_with_outputs}/output/-1")
    assert response.status_code == 422
    assert (await client.get(f"/service/{service_with_outputs}/output/first")).status_code == 422


async def test_output_whose_file_is_gone_is_404(client, service_with_outputs, files_db) -> None:
    files_db["fs.files"].delete_many({"filename": "report.json"})
    response = await client.get(f"/service/{service_with_outputs}/output/0")
    assert response.status_code == 404
    assert "no longer stored" in response.json()["detail"]


async def test_output_stored_by_the_operator_gets_a_content_type_from_its_name(
    client, records, files_db
) -> None:
    import gridfs

    from services.shared.files import CHUNK_SIZE, output_file_id

    service_id = ObjectId()
    file_id = output_file_id(str(service_id), 0, "plots/flow.png")
    content = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 5000
    bucket = gridfs.GridFSBucket(files_db, chunk_size_bytes=CHUNK_SIZE)
    bucket.upload_from_stream_with_id(
        file_id,
        "plots/flow.png",
        content,
        metadata={"service_id": str(service_id), "run": 0, "kind": "output"},
    )
    records.insert_one(
        {
            "_id": service_id,
            "image": "x",
            "output_files": [{"run": 0, "file_id": str(file_id), "filename": "plots/flow.png"}],
        }
    )
    response = await client.get(f"/service/{service_id}/output/0")
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Disposition"].endswith("filename*=UTF-8''plots%2Fflow.png")


async def test_a_json_output_is_streamed_as_written_never_parsed(client, records) -> None:
    # Found by review (issue 11, M6): outputs were parsed with json.loads, up to 16 MiB. A crafted file (here
    # 100,000 nested arrays) made it a 500, and a long flat list took hundreds of MiB per request.
    crafted = b"[" * 100_000 + b"]" * 100_000
    upload = await client.post("/files/upload", files={"file": ("kpis.json", crafted)}, headers=AUTH)
    file_id = upload.json()["id"]
    service_id = ObjectId()
    records.insert_one(
        {
            "_id": service_id,
            "image": "ghcr.io/x/y",
            "output_files": [{"run": 0, "file_id": file_id, "filename": "kpis.json"}],
        }
    )
    response = await client.get(f"/service/{service_id}/output/0")
    assert response.status_code == 200, response.text[:200]
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Length"] == str(len(crafted))
    assert response.content == crafted
