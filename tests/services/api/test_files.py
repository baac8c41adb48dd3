"""/files against the real FerretDB: upload, de-duplication, limits, download, listing, deletion."""

from __future__ import annotations

import hashlib
import os
from urllib.parse import quote

import httpx
import pytest
from bson import ObjectId

from services.api.downloads import content_disposition
from services.api.uploads import clean_content_type, clean_filename

from .conftest import AUTH, make_settings, running

pytestmark = pytest.mark.mongo


def assert_empty(files_db) -> None:
    """No file and no orphan chunk was left behind."""
    assert files_db["fs.files"].count_documents({}) == 0
    assert files_db["fs.chunks"].count_documents({}) == 0


async def upload(
    client: httpx.AsyncClient, content: bytes, name: str = "data.bin", **kwargs
) -> httpx.Response:
    return await client.post(
        "/files/upload", files={"file": (name, content, "application/octet-stream")}, headers=AUTH, **kwargs
    )


async def test_upload_stores_the_file_with_its_sha256(client, files_db) -> None:
    content = b"sensor,value\nlight,42\n" * 1000
    response = await client.post(
        "/files/upload", files={"file": ("readings.csv", content, "text/csv")}, headers=AUTH
    )
    assert response.status_code == 201, response.text
    body = response.json()
    digest = hashlib.sha256(content).hexdigest()
    assert body == {
        "id": body["id"],
        "filename": "readings.csv",
        "length": len(content),
        "sha256": digest,
        "duplicate": False,
    }
    doc = files_db["fs.files"].find_one({"_id": ObjectId(body["id"])})
    assert doc["length"] == len(content)
    assert doc["filename"] == "readings.csv"
    md5 = hashlib.md5(content).hexdigest()  # noqa: S324 - the original platform's `hash`
    assert doc["metadata"] == {"sha256": digest, "hash": md5, "content_type": "text/csv"}
    chunks = list(files_db["fs.chunks"].find({"files_id": doc["_id"]}).sort("n", 1))
    assert b"".join(c["data"] for c in chunks) == content


async def test_chunks_follow_the_shared_chunk_size(client, files_db) -> None:
    from services.shared.files import CHUNK_SIZE

    content = os.urandom(2 * CHUNK_SIZE + 123)
    response = await upload(client, content)
    file_id = ObjectId(response.json()["id"])
    sizes = [len(c["data"]) for c in files_db["fs.chunks"].find({"files_id": file_id}).sort("n", 1)]
    assert sizes == [CHUNK_SIZE, CHUNK_SIZE, 123]
    assert files_db["fs.files"].find_one({"_id": file_id})["chunkSize"] == CHUNK_SIZE


async def test_the_same_content_twice_is_stored_once(client, files_db) -> None:
    content = os.urandom(300_000)
    first = await upload(client, content, "a.bin")
    second = await upload(client, content, "b.bin")
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["duplicate"] is True
    assert second.json()["filename"] == "a.bin"
    assert files_db["fs.files"].count_documents({}) == 1
    assert files_db["fs.chunks"].count_documents({}) == 1


async def test_different_content_is_a_different_file(client, files_db) -> None:
    first = await upload(client, b"one")
    second = await upload(client, b"two")
    assert first.json()["id"] != second.json()["id"]
    assert files_db["fs.files"].count_documents({}) == 2


async def test_raw_body_upload_with_filename_parameter(client) -> None:
    content = os.urandom(5000)
    response = await client.post(
        "/files/upload",
        params={"filename": "model.onnx"},
        content=content,
        headers={**AUTH, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["filename"] == "model.onnx"
    download = await client.get(f"/files/{response.json()['id']}")
    assert download.content == content


async def test_other_form_fields_are_ignored(client) -> None:
    response = await client.post(
        "/files/upload",
        data={"note": "hello"},
        files={"file": ("x.txt", b"payload", "text/plain")},
        headers=AUTH,
    )
    assert response.status_code == 201
    assert (await client.get(f"/files/{response.json()['id']}")).content == b"payload"


async def test_empty_file_is_refused_and_nothing_kept(client, files_db) -> None:
    response = await upload(client, b"")
    assert response.status_code == 422
    assert response.json() == {"detail": "the file is empty"}
    assert_empty(files_db)


async def test_oversized_file_is_refused_and_nothing_kept(mongo_url, away_kubeconfig, files_db) -> None:
    settings = make_settings(mongo_url, away_kubeconfig, max_upload_bytes=3 * 1024 * 1024)
    async with running(settings) as client:
        exact = await upload(client, os.urandom(3 * 1024 * 1024))
        assert exact.status_code == 201
        files_db["fs.files"].delete_many({})
        files_db["fs.chunks"].delete_many({})

        response = await upload(client, os.urandom(3 * 1024 * 1024 + 1))
        assert response.status_code == 413
        assert "larger than the limit" in response.json()["detail"]
        assert_empty(files_db)


async def test_oversized_announced_length_is_refused_before_reading(
    mongo_url, away_kubeconfig, files_db
) -> None:
    settings = make_settings(mongo_url, away_kubeconfig, max_upload_bytes=1024)

    async def endless():
        yield b"x" * 1024
        raise AssertionError("the body should not have been read this far")

    async with running(settings) as client:
        response = await client.post(
            "/files/upload",
            content=endless(),
            headers={**AUTH, "Content-Type": "application/octet-stream", "Content-Length": str(50 * 1024**2)},
        )
    assert response.status_code == 413
    assert_empty(files_db)


async def test_chunked_oversized_body_is_stopped_at_the_limit(mongo_url, away_kubeconfig, files_db) -> None:
    settings = make_settings(mongo_url, away_kubeconfig, max_upload_bytes=2 * 1024 * 1024)

    async def body():
        for _ in range(10):
            yield os.urandom(512 * 1024)

    async with running(settings) as client:
        response = await client.post(
            "/files/upload", content=body(), headers={**AUTH, "Content-Type": "application/octet-stream"}
        )
    assert response.status_code == 413
    assert_empty(files_db)


async def test_multipart_without_file_part(client, files_db) -> None:
    response = await client.post(
        "/files/upload", data={"other": "x"}, files={"other_file": ("a", b"a")}, headers=AUTH
    )
    assert response.status_code == 422
    assert "no `file` part" in response.json()["detail"]
    assert_empty(files_db)


async def test_two_file_parts_are_refused(client, files_db) -> None:
    response = await client.post(
        "/files/upload", files=[("file", ("a.txt", b"aaa")), ("file", ("b.txt", b"bbb"))], headers=AUTH
    )
    assert response.status_code == 422
    assert_empty(files_db)


async def test_malformed_multipart_is_400(client, files_db) -> None:
    response = await client.post(
        "/files/upload",
        content=b'--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
        b"abc\r\n--XYZ-garbage",
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=XYZ"},
    )
    assert response.status_code == 400
    assert "malformed" in response.json()["detail"]
    assert_empty(files_db)


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        # Within python-multipart's own per-line and per-count limits, past ours (16 KiB per part).
        ("".join(f"X-Note-{i}: {'y' * 4000}\r\n" for i in range(6)), "part headers are larger than 16384"),
        # Past the parser's own limits (4,224 bytes a line, 8 lines): refused by it, the same way.
        (f"X-Note: {'x' * 1024 * 1024}\r\n", "malformed"),
        (f"X-{'x' * 1024 * 1024}: 1\r\n", "malformed"),
        ("".join(f"X-Note-{i}: 1\r\n" for i in range(2000)), "malformed"),
    ],
    ids=["many-large-lines", "huge-value", "huge-name", "many-lines"],
)
async def test_oversized_part_headers_are_400(client, files_db, header: str, detail: str) -> None:
    # Reported in review (issue 11, L13): part headers were accumulated without a cap of our own.
    body = (
        f'--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n{header}\r\n'
        "abc\r\n--XYZ--\r\n"
    ).encode()
    response = await client.post(
        "/files/upload", content=body, headers={**AUTH, "Content-Type": "multipart/form-data; boundary=XYZ"}
    )
    assert response.status_code == 400, response.text[:200]
    assert detail in response.json()["detail"]
    assert_empty(files_db)


async def test_url_encoded_form_is_415(client, files_db) -> None:
    response = await client.post("/files/upload", data={"file": "name.txt"}, headers=AUTH)
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]
    assert_empty(files_db)


async def test_multipart_without_boundary_is_400(client, files_db) -> None:
    response = await client.post(
        "/files/upload", content=b"abc", headers={**AUTH, "Content-Type": "multipart/form-data"}
    )
    assert response.status_code == 400
    assert_empty(files_db)


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dXNlcjpwYXNz"}]
)
async def test_upload_needs_the_token(client, files_db, headers) -> None:
    response = await client.post("/files/upload", files={"file": ("a.txt", b"abc")}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "token" in response.json()["detail"]
    assert_empty(files_db)


async def test_download_streams_with_headers(client) -> None:
    content = os.urandom(2_500_000)
    file_id = (await upload(client, content, "Résultats 2024.xlsx")).json()["id"]
    response = await client.get(f"/files/{file_id}")
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["Content-Length"] == str(len(content))
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"R_sultats 2024.xlsx\"; filename*=UTF-8''R%C3%A9sultats%202024.xlsx"
    )
    assert response.headers["ETag"] == f'"{hashlib.sha256(content).hexdigest()}"'
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_download_unknown_and_malformed_ids(client) -> None:
    unknown = await client.get(f"/files/{ObjectId()}")
    assert unknown.status_code == 404
    assert "no file" in unknown.json()["detail"]
    malformed = await client.get("/files/not-an-id")
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"] == ["path", "file_id"]


async def test_list_files_pages_in_storage_order(client) -> None:
    ids = [(await upload(client, f"file {i}".encode(), f"f{i}.txt")).json()["id"] for i in range(5)]
    response = await client.get("/files/", params={"limit": 2})
    assert response.status_code == 200
    assert response.headers["Link"] == '</api/orchestrator/v1beta1/files/?skip=2&limit=2>; rel="next"'
    page = response.json()
    assert [f["id"] for f in page] == [ids[0], ids[1]]
    assert page[1]["filename"] == "f1.txt"
    assert page[1]["length"] == len(b"file 1")
    assert page[1]["sha256"] == hashlib.sha256(b"file 1").hexdigest()
    assert page[1]["metadata"]["content_type"] == "application/octet-stream"
    assert page[1]["upload_date"]
    rest = await client.get("/files", params={"skip": 2, "limit": 10})
    assert [f["id"] for f in rest.json()] == [ids[2], ids[3], ids[4]]
    assert "Link" not in rest.headers


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"skip": -1}, {"limit": "many"}])
async def test_list_files_paging_bounds(client, params) -> None:
    response = await client.get("/files/", params=params)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


async def test_delete_file(client, files_db) -> None:
    file_id = (await upload(client, os.urandom(1_500_000))).json()["id"]
    assert (await client.delete(f"/files/{file_id}")).status_code == 401
    assert files_db["fs.files"].count_documents({}) == 1
    response = await client.delete(f"/files/{file_id}", headers=AUTH)
    assert response.status_code == 204
    assert_empty(files_db)
    again = await client.delete(f"/files/{file_id}", headers=AUTH)
    assert again.status_code == 404
    assert (await client.delete("/files/123", headers=AUTH)).status_code == 422


async def test_a_mounted_file_cannot_be_deleted(client, files_db, records) -> None:
    file_id = (await upload(client, b"input")).json()["id"]
    service_id = ObjectId()
    records.insert_one({"_id": service_id, "image": "x", "mount_files": {file_id: "input.txt"}})
    response = await client.delete(f"/files/{file_id}", headers=AUTH)
    assert response.status_code == 409
    assert str(service_id) in response.json()["detail"]
    records.delete_one({"_id": service_id})
    assert (await client.delete(f"/files/{file_id}", headers=AUTH)).status_code == 204


@pytest.mark.slow
async def test_50_mb_round_trip_byte_for_byte(client, files_db) -> None:
    content = os.urandom(50 * 1024 * 1024)
    response = await upload(client, content, "big.bin")
    assert response.status_code == 201, response.text
    assert response.json()["sha256"] == hashlib.sha256(content).hexdigest()
    download = await client.get(f"/files/{response.json()['id']}")
    assert download.status_code == 200
    assert download.headers["Content-Length"] == str(len(content))
    assert download.content == content
    again = await upload(client, content, "big-again.bin")
    assert again.status_code == 200
    assert again.json()["id"] == response.json()["id"]
    assert files_db["fs.files"].count_documents({}) == 1
    assert files_db["fs.chunks"].count_documents({}) == 50


# Pure helpers.


def test_content_disposition_is_rfc_6266_safe() -> None:
    assert (
        content_disposition("report.json")
        == "attachment; filename=\"report.json\"; filename*=UTF-8''report.json"
    )
    header = content_disposition('a"b\\c;d%e\r\nf.txt')
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="a_b_c_d_e__f.txt"')
    assert header.endswith("filename*=UTF-8''" + quote('a"b\\c;d%e\r\nf.txt', safe=""))
    assert content_disposition("數據.csv").startswith('attachment; filename="__.csv"')


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\data.xlsx", "data.xlsx"),
        ("", "upload"),
        (None, "upload"),
        ("line\nbreak.txt", "linebreak.txt"),
        ("x" * 300, "x" * 255),
        ("résumé.pdf", "résumé.pdf"),
    ],
)
def test_clean_filename(raw, clean) -> None:
    assert clean_filename(raw) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("text/csv", "text/csv"),
        ("Application/JSON; charset=utf-8", "application/json"),
        ("", "application/octet-stream"),
        ("not a type", "application/octet-stream"),
        ("text/html\r\nX-Evil: 1", "application/octet-stream"),
    ],
)
def test_clean_content_type(raw, clean) -> None:
    assert clean_content_type(raw) == clean
