"""Who may read and change what (issue 11, H3): without a token nothing is readable but health and
readiness; the read token reads everything and changes nothing (403); the admin token does both. Against
the real FerretDB and kube-apiserver, with the data a hospital would upload."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from bson import ObjectId

from services.api.settings import ApiSettings

from .conftest import AUTH, READ_AUTH, running

pytestmark = [pytest.mark.cluster, pytest.mark.mongo]

PATIENT_DATA = b"mrn,ward,diagnosis\n0012345,H2,confidential\n"
IMAGE = "ghcr.io/cam-digital-hospitals/digital-hosp-des"


@pytest.fixture
async def anonymous_kube(kube_settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(kube_settings, reads_with_token=False) as c:
        yield c


@pytest.fixture
async def hospital(anonymous_kube: httpx.AsyncClient, records) -> dict[str, str]:
    """What an admin made: an uploaded input, a launched service, a collected output."""
    upload = await anonymous_kube.post(
        "/files/upload", files={"file": ("admissions.csv", PATIENT_DATA)}, headers=AUTH
    )
    assert upload.status_code == 201, upload.text
    file_id = upload.json()["id"]
    launch = await anonymous_kube.post(
        "/service/launch",
        json={"image": IMAGE, "mount_files": {file_id: "admissions.csv"}, "sim": {"reps": 1}},
        headers=AUTH,
    )
    assert launch.status_code == 202, launch.text
    service_id = launch.json()["id"]
    # As the operator records a collected output.
    output = {"run": 0, "file_id": file_id, "filename": "admissions.csv"}
    records.update_one({"_id": ObjectId(service_id)}, {"$set": {"output_files": [output]}})
    return {"file": file_id, "service": service_id}


def reads(ids: dict[str, str]) -> list[str]:
    return [
        "/files/",
        "/files",
        f"/files/{ids['file']}",
        "/service/",
        "/service",
        f"/service/{ids['service']}/status",
        f"/service/{ids['service']}/output/0",
    ]


async def changes(client: httpx.AsyncClient, ids: dict[str, str], headers: dict[str, str]) -> list[int]:
    answers = [
        await client.post("/files/upload", files={"file": ("x.csv", b"forged")}, headers=headers),
        await client.delete(f"/files/{ids['file']}", headers=headers),
        await client.post("/service/launch", json={"image": IMAGE, "sim": {}}, headers=headers),
        await client.delete(f"/service/{ids['service']}/terminate", headers=headers),
    ]
    return [a.status_code for a in answers]


async def test_without_a_token_nothing_is_readable(anonymous_kube, hospital) -> None:
    for path in reads(hospital):
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YTpi"}):
            response = await anonymous_kube.get(path, headers=headers)
            assert response.status_code == 401, (path, headers, response.text)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert b"confidential" not in response.content and hospital["file"] not in response.text
    assert (await anonymous_kube.get("/healthz")).json() == {"status": "ok"}
    assert (await anonymous_kube.get("/readyz")).status_code == 200  # readiness stays open


async def test_the_read_token_reads_everything_and_changes_nothing(anonymous_kube, hospital, records) -> None:
    for path in reads(hospital):
        response = await anonymous_kube.get(path, headers=READ_AUTH)
        assert response.status_code == 200, (path, response.text)
    download = await anonymous_kube.get(f"/files/{hospital['file']}", headers=READ_AUTH)
    assert download.content == PATIENT_DATA
    listed = await anonymous_kube.get("/service/", headers=READ_AUTH)
    assert [s["id"] for s in listed.json()] == [hospital["service"]]

    assert await changes(anonymous_kube, hospital, READ_AUTH) == [403, 403, 403, 403]
    denied = await anonymous_kube.delete(f"/files/{hospital['file']}", headers=READ_AUTH)
    assert denied.json() == {"detail": "the read token cannot change anything; use the admin token"}
    # Nothing changed: the file, the service and its resource are all still there.
    assert (await anonymous_kube.get(f"/files/{hospital['file']}", headers=READ_AUTH)).content == PATIENT_DATA
    assert records.count_documents({}) == 1
    status = await anonymous_kube.get(f"/service/{hospital['service']}/status", headers=READ_AUTH)
    assert status.status_code == 200


async def test_without_a_token_nothing_changes_either(anonymous_kube, hospital, records) -> None:
    assert await changes(anonymous_kube, hospital, {}) == [401, 401, 401, 401]
    assert records.count_documents({}) == 1


async def test_the_admin_token_reads_and_changes(anonymous_kube, hospital) -> None:
    for path in reads(hospital):
        assert (await anonymous_kube.get(path, headers=AUTH)).status_code == 200, path
    terminated = await anonymous_kube.delete(f"/service/{hospital['service']}/terminate", headers=AUTH)
    assert terminated.status_code == 200, terminated.text


async def test_openapi_names_the_token_on_every_data_endpoint(anonymous_kube) -> None:
    spec = (await anonymous_kube.get("/openapi.json")).json()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            public = path.endswith(("/healthz", "/readyz"))
            assert ("security" in operation) is not public, (method, path)
            if not public:
                assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_the_two_tokens_must_differ() -> None:
    with pytest.raises(ValueError, match="must differ"):
        ApiSettings(token="same-token-0123456789", read_token="same-token-0123456789")
