"""The original's other example bodies, launched as its clients send them: the docs' service object,
its example as its docs page fills it in (with an empty `sim`), and its port on a persistent module."""

from __future__ import annotations

import httpx

from tests.polling import eventually
from tests.services.operator.conftest import OperatorEnv, OperatorProcess

from .seed import DOCS_SERVICE, LAUNCH_EXAMPLE, LAUNCH_EXAMPLE_FROM_DOCS_PAGE, SERVICE_ITEM, assert_shape


def test_the_other_example_bodies(
    seed_client: httpx.Client, operator_env: OperatorEnv, operator: OperatorProcess
) -> None:
    api = seed_client
    uploaded = api.post("/files/upload", files={"file": ("input.xlsx", b"workbook of the docs' example")})
    file_id = uploaded.json()["file_id"]

    # The docs' own service object, launched: two runs with its env.
    docs_body = {**DOCS_SERVICE, "mount_files": {file_id: "input.xlsx"}}
    docs = api.post("/service/launch", json=docs_body)
    assert docs.status_code == 202, docs.text
    assert docs.json()["warnings"] == []
    job = eventually(lambda: operator_env.get("jobs", f"ana-{docs.json()['id']}"), 30, "the Job")
    assert job["spec"]["completions"] == 2

    # The example as the original's docs page sends it (`"sim": {}` next to `ana`).
    page = api.post(
        "/service/launch", json={**LAUNCH_EXAMPLE_FROM_DOCS_PAGE, "mount_files": {file_id: "in.xlsx"}}
    )
    assert page.status_code == 202, page.text
    assert any(w.startswith("sim:") for w in page.json()["warnings"])

    # Its port where it means something: a persistent module, exposed.
    exposed = api.post(
        "/service/launch",
        json={**LAUNCH_EXAMPLE, "mount_files": None, "env": None, "ana": {"job_type": "persistent"}},
    )
    assert exposed.status_code == 202, exposed.text
    assert exposed.json()["warnings"] == []
    sid = exposed.json()["id"]
    service = eventually(lambda: operator_env.get("services", f"ana-{sid}"), 30, "the module's Service")
    assert service["spec"]["ports"][0]["targetPort"] in (8000, "http")

    listed = api.get("/service/")
    assert [s["id"] for s in listed.json()] == [docs.json()["id"], page.json()["id"], sid]
    for item in listed.json():
        assert_shape(item, SERVICE_ITEM)
    persistent = listed.json()[2]
    assert persistent["reps"] is None and persistent["mount_files"] == {}
    for launched in (docs, page, exposed):
        assert api.delete(f"/service/{launched.json()['id']}/terminate").status_code == 200
