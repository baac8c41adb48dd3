"""The app as a whole: health, readiness, OpenAPI, CORS, JSON errors, no token configured, and a
MongoDB outage (a private FerretDB stopped and restarted on the same port) with recovery."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from localdev.ferretdb import FerretDB
from services.api.settings import ApiSettings
from services.shared.mongo import MongoSettings

from .conftest import AUTH, BASE_PATH, make_settings, running

ENDPOINTS = {
    ("get", "/healthz"),
    ("get", "/service/"),
    ("post", "/service/launch"),
    ("get", "/service/{id}/status"),
    ("get", "/service/{id}/output/{idx}"),
    ("get", "/service/{id}/logs"),
    ("get", "/service/{id}/events"),
    ("delete", "/service/{id}/terminate"),
    ("get", "/files/"),
    ("post", "/files/upload"),
    ("get", "/files/{file_id}"),
    ("delete", "/files/{file_id}"),
}


async def test_healthz_needs_no_backend(away_kubeconfig) -> None:
    # MongoDB on a closed port and Kubernetes away: the process is still alive.
    settings = make_settings("mongodb://127.0.0.1:9/", away_kubeconfig)
    async with running(settings) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.mongo
async def test_readyz_reports_what_is_away(client) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    # Open to anyone: which backend is away, never the exception (it names hosts, ports, addresses).
    assert body == {
        "status": "unavailable",
        "mongodb": "ok",
        "kubernetes": "unreachable",
        "detail": "not ready: Kubernetes unreachable",
    }


async def test_openapi_lists_the_twelve_endpoints_under_the_base_path(away_kubeconfig) -> None:
    async with running(make_settings("mongodb://127.0.0.1:9/", away_kubeconfig)) as client:
        response = await client.get("/openapi.json")
        docs = await client.get("/docs")
    assert response.status_code == 200
    assert docs.status_code == 200
    spec = response.json()
    operations = {
        (method, path.removeprefix(BASE_PATH)) for path, item in spec["paths"].items() for method in item
    }
    assert operations >= ENDPOINTS
    assert spec["paths"][f"{BASE_PATH}/service/launch"]["post"]["security"] == [{"HTTPBearer": []}]
    assert spec["paths"][f"{BASE_PATH}/service/"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in spec["paths"][f"{BASE_PATH}/healthz"]["get"]
    launch = spec["components"]["schemas"]["LaunchRequest"]
    assert {"image", "version", "description", "port", "env", "mount_files", "ana", "sim"} <= set(
        launch["properties"]
    )


async def test_unknown_routes_and_methods_answer_json(away_kubeconfig) -> None:
    async with running(make_settings("mongodb://127.0.0.1:9/", away_kubeconfig)) as client:
        missing = await client.get("/nowhere")
        wrong_method = await client.put("/files/upload")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}
    assert wrong_method.status_code == 405
    assert "detail" in wrong_method.json()


async def test_cors_allows_only_the_configured_origins(away_kubeconfig) -> None:
    settings = make_settings(
        "mongodb://127.0.0.1:9/", away_kubeconfig, cors_origins=["https://dt.example.org"]
    )
    async with running(settings) as client:
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        }
        allowed = await client.options(
            "/service/launch", headers={"Origin": "https://dt.example.org", **preflight}
        )
        refused = await client.options(
            "/service/launch", headers={"Origin": "https://evil.example", **preflight}
        )
        simple = await client.get("/healthz", headers={"Origin": "https://dt.example.org"})
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://dt.example.org"
    assert "authorization" in allowed.headers["Access-Control-Allow-Headers"].lower()
    assert refused.status_code == 400
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert simple.headers["Access-Control-Allow-Origin"] == "https://dt.example.org"


def test_a_wildcard_cors_origin_is_refused() -> None:
    with pytest.raises(ValueError, match="API_CORS_ORIGINS"):
        ApiSettings(cors_origins=["*"])
    with pytest.raises(ValueError, match="API_CORS_ORIGINS"):
        ApiSettings(cors_origins=["https://*.example.org"])


async def test_without_a_configured_token_mutations_are_refused(away_kubeconfig) -> None:
    settings = ApiSettings(
        token=None,
        kubeconfig=away_kubeconfig,
        mongo=MongoSettings(url="mongodb://127.0.0.1:9/", timeout_ms=500),
    )
    async with running(settings) as client:
        response = await client.post("/files/upload", files={"file": ("a", b"a")}, headers=AUTH)
    assert response.status_code == 503
    assert "API_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/files/%0A", "/service/%0A", "/healthz%0A", "/files/%00", "/readyz%0D"])
async def test_paths_with_control_characters_are_404(away_kubeconfig, path) -> None:
    # Found by `make fuzz`: Starlette's `$` also matched before a trailing newline (/files/\n listed files).
    async with running(make_settings("mongodb://127.0.0.1:9/", away_kubeconfig)) as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_settings_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("API_TOKEN", "s3cret")
    monkeypatch.setenv("API_NAMESPACE", "dt")
    monkeypatch.setenv("API_MAX_UPLOAD_BYTES", "1048576")
    monkeypatch.setenv("API_CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    monkeypatch.setenv("MONGODB_HOST", "mongo.dt.svc")
    monkeypatch.setenv("MONGODB_USERNAME", "root")
    monkeypatch.setenv("MONGODB_PASSWORD", "p@ss")
    settings = ApiSettings()
    assert settings.token is not None and settings.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.namespace == "dt"
    assert settings.max_upload_bytes == 1048576
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.mongo.connection_url() == "mongodb://root:p%40ss@mongo.dt.svc:27017/"
    assert settings.port == 8000


def test_credentials_from_mounted_secret_files(monkeypatch, tmp_path) -> None:
    # The platform mounts the Secrets as files (kept out of the environment); a trailing newline is dropped.
    for name, value in (("token", "s3cret\n"), ("username", "root"), ("password", "p@ss\n")):
        (tmp_path / name).write_text(value)
    monkeypatch.setenv("API_TOKEN_FILE", str(tmp_path / "token"))
    monkeypatch.setenv("MONGODB_USERNAME_FILE", str(tmp_path / "username"))
    monkeypatch.setenv("MONGODB_PASSWORD_FILE", str(tmp_path / "password"))
    settings = ApiSettings()
    assert settings.token is not None and settings.token.get_secret_value() == "s3cret"
    assert settings.mongo.connection_url() == "mongodb://root:p%40ss@mongodb:27017/"
    monkeypatch.setenv("API_TOKEN", "from-env")  # a value given directly wins over the file
    assert ApiSettings().token.get_secret_value() == "from-env"


def test_an_empty_token_is_no_token(monkeypatch) -> None:
    monkeypatch.setenv("API_TOKEN", "")
    assert ApiSettings().token is None


@pytest.mark.mongo
async def test_mongodb_outage_is_503_then_recovers(tools, tmp_path, away_kubeconfig) -> None:
    server = FerretDB.start(tools, tmp_path / "ferretdb")
    try:
        async with running(make_settings(server.url, away_kubeconfig)) as client:
            before = {f"before-{i}.txt": f"written before the outage {i}".encode() for i in range(5)}
            stored = {}
            for name, content in before.items():
                response = await client.post("/files/upload", files={"file": (name, content)}, headers=AUTH)
                assert response.status_code == 201
                stored[response.json()["id"]] = content

            # Requests keep arriving while the database goes away: each one is answered, never hangs.
            async def traffic() -> list[httpx.Response]:
                """Reads and uploads, until both have been refused (bounded)."""
                answers: list[httpx.Response] = []
                for i in range(200):
                    answers.append(await client.get("/files/"))
                    answers.append(
                        await client.post(
                            "/files/upload", files={"file": (f"during-{i}.txt", b"during")}, headers=AUTH
                        )
                    )
                    if answers[-1].status_code == answers[-2].status_code == 503:
                        break
                return answers

            during = asyncio.create_task(traffic())
            await asyncio.sleep(0.05)
            server.stop()
            answers = await during
            assert {r.status_code for r in answers} <= {200, 201, 503}
            assert answers[-1].status_code == 503  # the last ones certainly came after the stop
            accepted_during = {
                r.json()["id"] for r in answers if r.status_code == 201 and r.request.method == "POST"
            }

            for response in (
                await client.get("/files/"),
                await client.get(f"/files/{next(iter(stored))}"),
                await client.post("/files/upload", files={"file": ("b.txt", b"during")}, headers=AUTH),
                await client.post("/service/launch", json={"image": "x", "sim": {}}, headers=AUTH),
            ):
                assert response.status_code == 503, response.text
                assert response.json() == {"detail": "MongoDB is unreachable; try again shortly"}
                assert response.headers["Retry-After"]
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["mongodb"].startswith("unreachable")

            # Back on the same port and data: the same API process serves again, and nothing is lost or
            # half-written (exactly what was accepted is listed, byte for byte).
            server = FerretDB.start(tools, tmp_path / "ferretdb", port=server.port)
            listed = await client.get("/files/", params={"limit": 1000})
            assert listed.status_code == 200
            assert {f["id"] for f in listed.json()} == set(stored) | accepted_during
            for file_id, content in stored.items():
                download = await client.get(f"/files/{file_id}")
                assert download.status_code == 200 and download.content == content
            again = await client.post("/files/upload", files={"file": ("b.txt", b"after")}, headers=AUTH)
            assert again.status_code == 201
            assert (await client.get("/readyz")).json()["mongodb"] == "ok"
    finally:
        server.stop()
