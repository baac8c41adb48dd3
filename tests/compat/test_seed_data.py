"""Data the original platform wrote, inserted as it wrote it, then read by this platform: its GridFS
files (MD5 `metadata.hash`, 255 KiB chunks, no SHA-256) and its services records (`env` and
`mount_files` null, `reps` null or absent, `created_at` in epoch seconds, `output_files` a
`{file_id: name}` map). Through the live API in both versions, and by the real operator."""

from __future__ import annotations

import hashlib
import json
import os
import time

import httpx
from bson import ObjectId

from localdev.cluster import LocalCluster
from services.shared import crd
from services.shared.names import SERVICE_ID_LABEL
from tests.polling import eventually
from tests.services.api.conftest import READ_AUTH, LiveApi
from tests.services.operator.conftest import OperatorEnv, OperatorProcess

from .seed import FILE_ITEM, SERVICE_ITEM, STATUS, assert_shape, md5, service_record, store_file

BETA = "/api/orchestrator/v1beta1"


def beta(live_api: LiveApi) -> httpx.Client:
    """The platform's own version, read as the frontend reads: with the read token."""
    return httpx.Client(base_url=live_api.url + BETA, timeout=60, headers=READ_AUTH)


def test_the_originals_files_are_listed_downloaded_found_again_and_deleted(
    seed_client: httpx.Client, live_api: LiveApi, files_db
) -> None:
    contents = {"a.csv": b"ward,beds\nA,12\n", "big.bin": os.urandom(600_000), "c.json": b'{"k": 1}'}
    ids = {name: store_file(files_db, name, content) for name, content in contents.items()}

    listed = seed_client.get("/files").json()
    for item in listed:
        assert_shape(item, FILE_ITEM)
    assert [(f["file_id"], f["filename"], f["length"]) for f in listed] == [
        (str(ids[name]), name, len(content)) for name, content in contents.items()
    ]
    assert [f["metadata"] for f in listed] == [{"hash": md5(content)} for content in contents.values()]
    for name, content in contents.items():
        download = seed_client.get(f"/files/{ids[name]}")
        assert download.status_code == 200 and download.content == content
        assert download.headers["Content-Disposition"].startswith(f'attachment; filename="{name}"')

    # The same content uploaded again is that file; its SHA-256 is computed from the stored chunks once.
    again = seed_client.post("/files/upload", files={"file": ("big-again.bin", contents["big.bin"])})
    assert again.status_code == 200
    assert again.json()["file_id"] == str(ids["big.bin"])
    assert again.json()["message"] == "File already exists"
    assert files_db["fs.files"].count_documents({}) == 3
    stored = files_db["fs.files"].find_one({"_id": ids["big.bin"]})
    assert stored["metadata"] == {
        "hash": md5(contents["big.bin"]),
        "sha256": hashlib.sha256(contents["big.bin"]).hexdigest(),
    }
    with beta(live_api) as client:
        listing = {f["id"]: f for f in client.get("/files/").json()}
        assert listing[str(ids["big.bin"])]["sha256"] == hashlib.sha256(contents["big.bin"]).hexdigest()
        assert listing[str(ids["a.csv"])]["sha256"] is None
        duplicate = client.post(
            "/files/upload", files={"file": ("x.csv", contents["a.csv"])}, headers=seed_client.headers
        )
        assert (duplicate.status_code, duplicate.json()["id"]) == (200, str(ids["a.csv"]))

    deleted = seed_client.delete(f"/files/{ids['c.json']}")
    assert deleted.json() == {"message": "File deleted successfully", "file_id": str(ids["c.json"])}
    assert files_db["fs.chunks"].count_documents({"files_id": ids["c.json"]}) == 0


def test_an_md5_match_alone_is_not_a_duplicate(seed_client: httpx.Client, files_db) -> None:
    # A stored file whose recorded MD5 is another content's (a collision, as an attacker could make):
    # uploading that other content must store it, not hand out the stored file.
    wanted, other = b"the content being uploaded", b"what is stored under the same MD5"
    impostor = store_file(files_db, "impostor.bin", other)
    files_db["fs.files"].update_one({"_id": impostor}, {"$set": {"metadata.hash": md5(wanted)}})
    files_db["fs.files"].update_one({"_id": impostor}, {"$set": {"length": len(wanted)}})
    files_db["fs.chunks"].update_one({"files_id": impostor}, {"$set": {"data": other[: len(wanted)]}})

    response = seed_client.post("/files/upload", files={"file": ("real.bin", wanted)})
    assert response.status_code == 200
    assert "message" not in response.json()
    assert response.json()["file_id"] != str(impostor)
    assert seed_client.get(f"/files/{response.json()['file_id']}").content == wanted


def test_the_originals_records_are_listed_with_status_and_outputs(
    seed_client: httpx.Client, live_api: LiveApi, cluster: LocalCluster, records, files_db
) -> None:
    an_hour_ago = time.time() - 3600
    outputs = {
        "669a52d1364a1b751c550d56-abcde.json": b'{"run": 0, "tat": 31.5}',
        "669a52d1364a1b751c550d56-fghij.json": b'{"run": 1, "tat": 29.0}',
    }
    output_ids = [str(store_file(files_db, name, content)) for name, content in outputs.items()]
    input_id = str(store_file(files_db, "input.xlsx", b"cells"))
    ondemand = records.insert_one(
        service_record(
            "ghcr.io/cam-digital-hospitals/digital-hosp-des",
            description="DES",
            mount_files={input_id: "input.xlsx"},
            reps=2,
            env={"SIM_HOURS": "1176"},
            output_files=dict(zip(output_ids, outputs, strict=True)),
            created_at=an_hour_ago,
        )
    ).inserted_id
    persistent_record = service_record("example.org/dashboard", created_at=an_hour_ago)
    del persistent_record["reps"]  # a record written by hand, as the docs' example
    persistent = records.insert_one(persistent_record).inserted_id
    # The Analytics resource of the first, applied by hand as the original's docs show (no labels).
    manifest = {
        "apiVersion": crd.API_VERSION,
        "kind": crd.KIND,
        "metadata": {"name": str(ondemand)},
        "spec": {
            "image": "ghcr.io/cam-digital-hospitals/digital-hosp-des:latest",
            "jobType": "ondemand",
            "reps": 2,
        },
    }
    cluster.kubectl("apply", "-n", live_api.namespace, "-f", "-", input=json.dumps(manifest))

    listed = {s["id"]: s for s in seed_client.get("/service/").json()}
    assert set(listed) == {str(ondemand), str(persistent)}
    for item in listed.values():
        assert_shape(item, SERVICE_ITEM)
    first = listed[str(ondemand)]
    assert abs(first["created_at"] - an_hour_ago) < 0.001
    assert (first["reps"], first["status"], first["total_runs"]) == (2, "pending", 0)
    assert first["mount_files"] == {input_id: "input.xlsx"}
    assert first["output_files"] == dict(zip(output_ids, outputs, strict=True))
    second = listed[str(persistent)]
    assert (second["reps"], second["mount_files"], second["output_files"]) == (None, {}, {})
    assert second["status"] == "error"  # an hour old, and no Analytics resource

    status = seed_client.get(f"/service/{ondemand}/status")
    assert status.status_code == 200
    assert_shape(status.json(), STATUS)
    assert status.json()["output_files"] == output_ids
    for idx, content in enumerate(outputs.values()):
        assert seed_client.get(f"/service/{ondemand}/output/{idx}").json() == json.loads(content)
    with beta(live_api) as client:
        body = client.get(f"/service/{ondemand}/status").json()
        assert [(o["run"], o["file_id"]) for o in body["output_files"]] == [
            (0, output_ids[0]),
            (1, output_ids[1]),
        ]
        assert client.get(f"/service/{ondemand}/output/1").json() == json.loads(outputs[list(outputs)[1]])
        assert client.get(f"/service/{persistent}/status").json()["reps"] is None

    terminated = seed_client.delete(f"/service/{ondemand}/terminate")
    assert terminated.status_code == 200
    assert terminated.json()["message"] == "Service terminated successfully"
    assert records.find_one({"_id": ondemand}) is None


def test_the_operator_runs_a_record_the_original_wrote(
    seed_client: httpx.Client, operator_env: OperatorEnv, operator: OperatorProcess, records, files_db
) -> None:
    """The docs' flow: a record in MongoDB, then `kubectl apply` of the Analytics YAML. The record is as
    the original's API and operator left it: env null, created_at a float, one output already
    collected in the original's map; the input is a file the original stored (several chunks)."""
    workbook = os.urandom(700_000)
    input_id = str(store_file(files_db, "input.xlsx", workbook))
    old_output = str(store_file(files_db, "earlier.json", b'{"run": "before the switch"}'))
    sid = str(
        records.insert_one(
            service_record(
                "ghcr.io/cam-digital-hospitals/digital-hosp-des",
                description="DES",
                mount_files={input_id: "input.xlsx"},
                reps=2,
                env=None,
                output_files={old_output: "earlier.json"},
            )
        ).inserted_id
    )
    with operator_env.scheduling_paused():
        operator_env.create_analytics(
            sid,
            {
                "image": "ghcr.io/cam-digital-hospitals/digital-hosp-des:latest",
                "jobType": "ondemand",
                "reps": 2,
                "env": {"INPUT_EXCEL_FILE": "/input/input.xlsx", "OUTPUT_FOLDER": "/output"},
            },
        )
        eventually(lambda: len(operator_env.pods(sid)) == 2, 30, "the two runs' pods")
        assert (operator_env.output_root / sid / "input" / "input.xlsx").read_bytes() == workbook
        for run in range(2):
            (operator_env.run_dir(sid, run) / f"{sid}-{run}.json").write_text(json.dumps({"run": run}))
    operator_env.wait_phase(sid, "Succeeded", 90)
    eventually(lambda: len(operator_env.record(sid).get("output_files") or ()) == 3, 30, "three outputs")

    record = operator_env.record(sid)
    assert isinstance(record["output_files"], list)  # converted once, nothing lost
    assert {o["file_id"] for o in record["output_files"]} >= {old_output}
    status = seed_client.get(f"/service/{sid}/status").json()
    assert status["status"] == "ok" and len(status["output_files"]) == 3
    assert old_output in status["output_files"]
    assert [p["metadata"]["labels"][SERVICE_ID_LABEL] for p in operator_env.pods(sid)] == [sid, sid]
    assert ObjectId.is_valid(sid)
