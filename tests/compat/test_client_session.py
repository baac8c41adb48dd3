"""A client of the original platform, session as its docs and code describe it: upload an input, list
and fetch files, launch with the original's example bodies, follow the status, fetch the output,
terminate, delete. Against the live API and the real operator; the module's run is simulated (kwok),
its output written where the module would write it."""

from __future__ import annotations

import json
import time

import httpx

from tests.polling import eventually
from tests.services.operator.conftest import OperatorEnv, OperatorProcess
from tests.services.operator.test_runs import pending_pods

from .seed import (
    DUPLICATE,
    FILE_DELETED,
    FILE_ITEM,
    HEALTH,
    LAUNCH_EXAMPLE,
    LAUNCHED,
    SERVICE_ITEM,
    STATES,
    STATUS,
    TERMINATED,
    UPLOADED,
    assert_shape,
    md5,
    parse_upload_date,
)

WORKBOOK = b"PK\x03\x04 stand-in for hpath_sim_input.xlsx " * 100


def test_a_seed_client_session(
    seed_client: httpx.Client, operator_env: OperatorEnv, operator: OperatorProcess
) -> None:
    api = seed_client
    health = api.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert_shape(health.json(), HEALTH)

    # Upload the input; the same content again is found, under the name sent the second time.
    uploaded = api.post("/files/upload", files={"file": ("hpath_sim_input.xlsx", WORKBOOK)})
    assert uploaded.status_code == 200, uploaded.text
    assert_shape(uploaded.json(), UPLOADED)
    assert "message" not in uploaded.json()
    file_id = uploaded.json()["file_id"]
    assert uploaded.json()["filename"] == "hpath_sim_input.xlsx"
    again = api.post("/files/upload", files={"file": ("copy.xlsx", WORKBOOK)})
    assert again.status_code == 200
    assert_shape(again.json(), DUPLICATE)
    assert again.json() | {"filename": "copy.xlsx", "message": "File already exists"} == again.json()
    assert again.json()["file_id"] == file_id

    # List (the original's path has no trailing slash) and fetch.
    listed = api.get("/files")
    assert listed.status_code == 200
    [item] = listed.json()
    assert_shape(item, FILE_ITEM)
    assert (item["file_id"], item["filename"], item["length"]) == (
        file_id,
        "hpath_sim_input.xlsx",
        len(WORKBOOK),
    )
    assert item["metadata"]["hash"] == md5(WORKBOOK)
    assert abs(time.time() - parse_upload_date(item["uploadDate"]).timestamp() + time.timezone) < 600
    assert api.get("/files", params={"skip": 1, "limit": 10}).json() == []
    download = api.get(f"/files/{file_id}")
    assert download.status_code == 200 and download.content == WORKBOOK
    assert download.headers["Content-Disposition"].startswith('attachment; filename="hpath_sim_input.xlsx"')

    # Launch the original's example: ondemand without reps, with a port it ignores.
    body = {**LAUNCH_EXAMPLE, "mount_files": {file_id: "hpath_sim_input.xlsx"}}
    with operator_env.scheduling_paused():
        launched = api.post("/service/launch", json=body)
        assert launched.status_code == 202, launched.text
        assert_shape(launched.json(), LAUNCHED)
        sid = launched.json()["id"]
        assert any(w.startswith("port:") for w in launched.json()["warnings"])
        [pod] = pending_pods(operator_env, sid, 1)

        # The module finds what it relied on: its input at /input/<name>, /output, RUN_ID, its env.
        container = pod["spec"]["containers"][0]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/input", "/output"} <= mounts
        env = {e["name"]: e for e in container["env"]}
        assert {name: env[name]["value"] for name in body["env"]} == body["env"]
        assert "RUN_ID" in env
        staged = operator_env.output_root / sid / "input" / "hpath_sim_input.xlsx"
        assert staged.read_bytes() == WORKBOOK

        status = api.get(f"/service/{sid}/status")
        assert status.status_code == 200
        assert_shape(status.json(), STATUS)
        assert status.json()["status"] in STATES and status.json()["output_files"] == []
        # What the module writes to /output (the original's modules named their files by RUN_ID).
        run_dir = operator_env.run_dir(sid, 0)
        (run_dir / f"{sid}-0.json").write_text(json.dumps({"tat_hours": 31.5, "samples": 1176}))

    def finished() -> dict | None:
        answer = api.get(f"/service/{sid}/status").json()
        return answer if answer["status"] == "ok" and answer["output_files"] else None

    status_body = eventually(finished, 90, "the run to finish and its output to be collected")
    assert_shape(status_body, STATUS)
    assert (status_body["succeeded_runs"], status_body["failed_runs"], status_body["total_runs"]) == (1, 0, 1)
    [output_id] = status_body["output_files"]
    output = api.get(f"/service/{sid}/output/0")
    assert output.status_code == 200
    assert output.json() == {"tat_hours": 31.5, "samples": 1176}
    assert api.get(f"/service/{sid}/output/1").status_code == 404

    services = api.get("/service/")
    assert services.status_code == 200
    [service] = [s for s in services.json() if s["id"] == sid]
    assert_shape(service, SERVICE_ITEM)
    assert service["status"] == "ok" and service["reps"] == 1
    assert service["mount_files"] == {file_id: "hpath_sim_input.xlsx"}
    assert service["output_files"] == {output_id: f"{sid}-0.json"}
    assert abs(service["created_at"] - time.time()) < 600
    assert api.get(f"/files/{output_id}").status_code == 200

    terminated = api.delete(f"/service/{sid}/terminate")
    assert terminated.status_code == 200
    assert_shape(terminated.json(), TERMINATED)
    assert terminated.json()["message"] == "Service terminated successfully"
    assert api.get(f"/service/{sid}/status").status_code == 404

    deleted = api.delete(f"/files/{file_id}")
    assert deleted.status_code == 200
    assert_shape(deleted.json(), FILE_DELETED)
    assert deleted.json()["message"] == "File deleted successfully"
    assert api.get(f"/files/{file_id}").status_code == 404
