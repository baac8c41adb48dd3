"""DT solutions in the API (issue 13): each solution's routes under `<base>/solutions/{solution}`, its own
tokens, databases and namespace; the base paths stay the default solution's.

Against the real FerretDB and kube-apiserver: solution B holds a file, a launched service (with its
Analytics resource) and a collected output; A's admin token tries everything on B's paths (403) and B's
ids on A's paths (404), and B's files, records and resources are compared before and after.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId
from pymongo import MongoClient

from localdev.cluster import LocalCluster
from services.api.contracts import V1Alpha1, V1Beta1
from services.api.main import create_app, version_document
from services.api.settings import ApiSettings, SolutionAccess
from services.shared import crd
from services.shared.names import SERVICES_COLLECTION
from services.shared.solutions import DEFAULT_SOLUTION, SolutionPlace

from .conftest import AUTH, make_settings, running

IMAGE = "ghcr.io/cam-digital-hospitals/digital-hosp-des"
B_DATA = b"mrn,ward\n0099,lab-B\n"
ANOTHER_SOLUTION = {"detail": "this token belongs to another solution"}


@dataclass(frozen=True)
class Tenant:
    """A solution under test: where it lives and its two tokens (random per test)."""

    place: SolutionPlace
    admin: str
    read: str

    @property
    def name(self) -> str:
        return self.place.name

    @property
    def prefix(self) -> str:
        return f"/solutions/{self.name}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin}"}

    @property
    def read_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.read}"}

    def access(self) -> SolutionAccess:
        return SolutionAccess(
            name=self.name, namespace=self.place.namespace, token=self.admin, read_token=self.read
        )


def new_tenant(cluster: LocalCluster, letter: str) -> Tenant:
    name = f"{letter}-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", f"sol-{name}")
    place = SolutionPlace(name=name, namespace=f"sol-{name}")
    return Tenant(place, secrets.token_urlsafe(24), secrets.token_urlsafe(24))


@pytest.fixture
def tenants(cluster: LocalCluster, mongo: MongoClient, analytics_crd: str) -> Iterator[tuple[Tenant, Tenant]]:
    """Solutions A and B, each in a fresh namespace; their namespaces and databases removed afterwards."""
    made = (new_tenant(cluster, "a"), new_tenant(cluster, "b"))
    yield made
    for tenant in made:
        cluster.kubectl("delete", "namespace", tenant.place.namespace, "--wait=false", check=False)
        mongo.drop_database(tenant.place.records_database)
        mongo.drop_database(tenant.place.files_database)


@pytest.fixture
async def api(
    mongo_url: str, cluster: LocalCluster, namespace: str, tenants: tuple[Tenant, Tenant]
) -> AsyncIterator[httpx.AsyncClient]:
    """The API serving the default solution (in `namespace`, the conftest tokens), A and B."""
    solutions = [tenant.access() for tenant in tenants]
    settings = make_settings(mongo_url, cluster.kubeconfig, namespace, solutions=solutions)
    async with running(settings, reads_with_token=False) as client:
        yield client


@dataclass(frozen=True)
class Holdings:
    file: str
    service: str


@pytest.fixture
async def b_holdings(api: httpx.AsyncClient, tenants: tuple[Tenant, Tenant], mongo: MongoClient) -> Holdings:
    """What B's admin made: an uploaded input, a service launched on it, an output (as the operator
    records one)."""
    b = tenants[1]
    upload = await api.post(f"{b.prefix}/files/upload", files={"file": ("b.csv", B_DATA)}, headers=b.auth)
    assert upload.status_code == 201, upload.text
    file_id = upload.json()["id"]
    launch = await api.post(
        f"{b.prefix}/service/launch",
        json={"image": IMAGE, "mount_files": {file_id: "b.csv"}, "sim": {"reps": 1}},
        headers=b.auth,
    )
    assert launch.status_code == 202, launch.text
    service_id = launch.json()["id"]
    records = mongo[b.place.records_database][SERVICES_COLLECTION]
    output = {"run": 0, "file_id": file_id, "filename": "b.csv"}
    records.update_one({"_id": ObjectId(service_id)}, {"$set": {"output_files": [output]}})
    return Holdings(file_id, service_id)


def holdings_of(tenant: Tenant, mongo: MongoClient, cluster: LocalCluster) -> dict[str, Any]:
    """Everything a solution holds, to compare before and after: its files and chunks, its records and
    its Analytics resources (with their resourceVersion: any write changes it)."""
    files = mongo[tenant.place.files_database]
    kind = f"{crd.PLURAL}.{crd.GROUP}"
    listed = cluster.kubectl("get", kind, "-n", tenant.place.namespace, "-o", "json").stdout
    return {
        "files": list(files["fs.files"].find({})),
        "chunks": list(files["fs.chunks"].find({})),
        "records": list(mongo[tenant.place.records_database][SERVICES_COLLECTION].find({})),
        "resources": [
            (item["metadata"]["name"], item["metadata"]["resourceVersion"], item["spec"])
            for item in json.loads(listed)["items"]
        ],
    }


def attempts(ids: Holdings) -> list[tuple[str, str, dict[str, Any]]]:
    """Every endpoint, as (method, path below a solution's prefix, request arguments)."""
    service = f"/service/{ids.service}"
    return [
        ("GET", "/files/", {}),
        ("GET", f"/files/{ids.file}", {}),
        ("DELETE", f"/files/{ids.file}", {}),
        ("POST", "/files/upload", {"files": {"file": ("x.csv", b"forged")}}),
        ("GET", "/service/", {}),
        (
            "POST",
            "/service/launch",
            {"json": {"image": IMAGE, "mount_files": {ids.file: "in.csv"}, "sim": {}}},
        ),
        ("GET", f"{service}/status", {}),
        ("GET", f"{service}/output/0", {}),
        ("GET", f"{service}/logs", {}),
        ("GET", f"{service}/events", {}),
        ("GET", f"{service}/summary", {}),
        ("DELETE", f"{service}/terminate", {}),
    ]


async def test_a_token_of_another_solution_is_refused_everywhere_and_changes_nothing(
    api, tenants, b_holdings, mongo, cluster
) -> None:
    a, b = tenants
    before = holdings_of(b, mongo, cluster)
    for method, path, arguments in attempts(b_holdings):
        for headers in (a.auth, a.read_auth, AUTH):  # A's admin and read tokens, the default's admin token
            response = await api.request(method, f"{b.prefix}{path}", headers=headers, **arguments)
            assert response.status_code == 403, (method, path, response.text)
            assert response.json() == ANOTHER_SOLUTION
    assert holdings_of(b, mongo, cluster) == before
    assert holdings_of(a, mongo, cluster) == {"files": [], "chunks": [], "records": [], "resources": []}


async def test_ids_of_another_solution_are_not_found(api, tenants, b_holdings, mongo, cluster) -> None:
    a, b = tenants
    before = holdings_of(b, mongo, cluster)
    for prefix, headers in ((a.prefix, a.auth), ("", AUTH)):  # A's paths, and the default solution's
        for method, path, arguments in attempts(b_holdings):
            if path in ("/files/", "/service/", "/files/upload", "/service/launch"):
                continue  # no id in the path: listed and launched below
            response = await api.request(method, f"{prefix}{path}", headers=headers, **arguments)
            assert response.status_code == 404, (prefix, method, path, response.text)
            assert b"lab-B" not in response.content
        # The lists hold nothing of B's.
        assert (await api.get(f"{prefix}/files/", headers=headers)).json() == []
        assert (await api.get(f"{prefix}/service/", headers=headers)).json() == []
        # Mounting B's file: it is not a stored file here (the launch request's usual 422), and nothing
        # is made.
        mount = await api.post(
            f"{prefix}/service/launch",
            json={"image": IMAGE, "mount_files": {b_holdings.file: "in.csv"}, "sim": {}},
            headers=headers,
        )
        assert mount.status_code == 422, mount.text
        assert mount.json()["detail"][0]["msg"] == "no stored file has this id"
    assert holdings_of(b, mongo, cluster) == before
    assert holdings_of(a, mongo, cluster) == {"files": [], "chunks": [], "records": [], "resources": []}


async def test_each_solution_reads_and_changes_its_own(api, tenants, b_holdings, mongo, cluster) -> None:
    a, b = tenants
    # B's read token reads what B's admin made; what A's admin makes lands in A's databases and namespace.
    files = await api.get(f"{b.prefix}/files/", headers=b.read_auth)
    assert [f["id"] for f in files.json()] == [b_holdings.file]
    assert (await api.get(f"{b.prefix}/files/{b_holdings.file}", headers=b.read_auth)).content == B_DATA
    output = await api.get(f"{b.prefix}/service/{b_holdings.service}/output/0", headers=b.read_auth)
    assert output.content == B_DATA
    status = await api.get(f"{b.prefix}/service/{b_holdings.service}/status", headers=b.read_auth)
    assert status.json()["total"] == 1
    assert (await api.delete(f"{b.prefix}/files/{b_holdings.file}", headers=b.read_auth)).status_code == 403

    # The same content uploaded in A is a new file of A's (no duplicate across solutions).
    upload = await api.post(f"{a.prefix}/files/upload", files={"file": ("a.csv", B_DATA)}, headers=a.auth)
    assert upload.status_code == 201 and upload.json()["duplicate"] is False
    launch = await api.post(
        f"{a.prefix}/service/launch",
        json={"image": IMAGE, "mount_files": {upload.json()["id"]: "a.csv"}, "sim": {}},
        headers=a.auth,
    )
    assert launch.status_code == 202, launch.text
    a_now = holdings_of(a, mongo, cluster)
    assert [str(doc["_id"]) for doc in a_now["files"]] == [upload.json()["id"]]
    assert [str(doc["_id"]) for doc in a_now["records"]] == [launch.json()["id"]]
    assert [name for name, _, _ in a_now["resources"]] == [launch.json()["id"]]

    terminated = await api.delete(f"{b.prefix}/service/{b_holdings.service}/terminate", headers=b.auth)
    assert terminated.status_code == 200, terminated.text
    assert holdings_of(b, mongo, cluster)["records"] == holdings_of(b, mongo, cluster)["resources"] == []
    assert [str(doc["_id"]) for doc in holdings_of(a, mongo, cluster)["records"]] == [launch.json()["id"]]


async def test_the_default_solution_is_also_under_solutions_default(api, records) -> None:
    upload = await api.post("/files/upload", files={"file": ("d.csv", b"default")}, headers=AUTH)
    assert upload.status_code == 201
    listed = await api.get(f"/solutions/{DEFAULT_SOLUTION}/files/", headers=AUTH)
    assert [f["id"] for f in listed.json()] == [upload.json()["id"]]
    launch = await api.post(
        f"/solutions/{DEFAULT_SOLUTION}/service/launch", json={"image": IMAGE, "sim": {}}, headers=AUTH
    )
    assert launch.status_code == 202
    assert [str(doc["_id"]) for doc in records.find({})] == [launch.json()["id"]]  # the platform's database


async def test_unknown_and_malformed_solutions(api, tenants) -> None:
    a, _ = tenants
    unknown = await api.get("/solutions/nowhere/files/", headers=a.auth)
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "no solution named 'nowhere'"})
    # Nothing is told without a valid token, not even whether the solution exists.
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        for name in ("nowhere", a.name):
            assert (await api.get(f"/solutions/{name}/files/", headers=headers)).status_code == 401
    malformed = await api.get("/solutions/Not_A_Label/service/", headers=a.auth)
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"] == ["path", "solution"]
    # Health and readiness stay at the base paths only.
    assert (await api.get(f"{a.prefix}/healthz")).status_code == 404
    assert (await api.get("/healthz")).status_code == 200


async def test_each_solution_gets_its_file_indexes_at_start(api, tenants, mongo) -> None:
    for tenant in tenants:
        indexes = mongo[tenant.place.files_database]["fs.files"].index_information()
        assert {tuple(index["key"]) for index in indexes.values()} >= {(("metadata.sha256", 1),)}


async def test_a_solution_without_an_admin_token_refuses_changes(mongo_url, away_kubeconfig) -> None:
    read = secrets.token_urlsafe(24)
    settings = make_settings(
        mongo_url, away_kubeconfig, solutions=[{"name": "ro", "namespace": "ro", "read_token": read}]
    )
    async with running(settings, reads_with_token=False) as client:
        upload = await client.post(
            "/solutions/ro/files/upload",
            files={"file": ("x", b"x")},
            headers={"Authorization": f"Bearer {read}"},
        )
        listed = await client.get("/solutions/ro/files/", headers={"Authorization": f"Bearer {read}"})
    assert upload.status_code == 503
    assert upload.json() == {"detail": "changes are disabled: solution 'ro' has no admin token configured"}
    assert listed.status_code == 200 and listed.json() == []


def test_solutions_from_the_environment_with_mounted_token_files(monkeypatch, tmp_path: Path) -> None:
    for name, value in (("lab-admin", "lab-admin-token\n"), ("lab-read", "lab-read-token\n")):
        (tmp_path / name).write_text(value)
    solutions = [
        {
            "name": "lab",
            "namespace": "dt-lab",
            "token_file": str(tmp_path / "lab-admin"),
            "read_token_file": str(tmp_path / "lab-read"),
        }
    ]
    monkeypatch.setenv("API_SOLUTIONS", json.dumps(solutions))
    monkeypatch.setenv("API_TOKEN", "platform-admin-token")
    monkeypatch.setenv("API_NAMESPACE", "dt")
    settings = ApiSettings()
    default, lab = settings.accesses
    assert (default.name, default.namespace) == (DEFAULT_SOLUTION, "dt")
    assert default.token is not None and default.token.get_secret_value() == "platform-admin-token"
    assert (lab.name, lab.namespace, lab.records_database) == ("lab", "dt-lab", "orchestrator--lab")
    assert lab.token is not None and lab.token.get_secret_value() == "lab-admin-token"
    assert lab.read_token is not None and lab.read_token.get_secret_value() == "lab-read-token"
    assert "lab-admin-token" not in repr(settings)


@pytest.mark.parametrize(
    ("default", "solutions", "refusal"),
    [
        ({"token": "same-0123456789"}, [{"token": "same-0123456789"}], "must differ"),
        ({"read_token": "same-0123456789"}, [{"token": "same-0123456789"}], "must differ"),
        ({}, [{"token": "same-0123456789", "read_token": "same-0123456789"}], "must differ"),
        ({}, [{"token": "one-0123456789"}, {"read_token": "one-0123456789"}], "must differ"),
        ({}, [{"name": DEFAULT_SOLUTION}], "name default is used twice"),
        ({}, [{"namespace": "dt"}], "namespace dt is used twice"),
        ({}, [{"name": "Lab"}], "solution name 'Lab'"),
        ({}, [{"token_file": "/nonexistent/token"}], "cannot read /nonexistent/token"),
    ],
    ids=[
        "admins",
        "read and admin",
        "within a solution",
        "two other solutions",
        "default name",
        "namespace",
        "name",
        "missing file",
    ],
)
def test_settings_refuse_a_token_used_twice_and_clashing_solutions(default, solutions, refusal) -> None:
    others = [
        {"name": f"s{index}", "namespace": f"dt-s{index}", **solution}
        for index, solution in enumerate(solutions)
    ]
    with pytest.raises(ValueError, match=refusal) as refused:
        ApiSettings(namespace="dt", solutions=others, **default)
    assert "0123456789" not in str(refused.value)  # the refusal never prints a token


def test_openapi_documents_the_solution_paths_of_each_version() -> None:
    whole = create_app(ApiSettings()).openapi()
    for contract in (V1Alpha1(), V1Beta1()):
        document = version_document(whole, contract)
        paths = set(document["paths"])
        base = {path for path in paths if "/solutions/" not in path}
        below = {path.replace("/solutions/{solution}", "") for path in paths - base}
        assert below == {path for path in base if not path.endswith(("/healthz", "/readyz"))}
        status = document["paths"][f"{contract.base_path}/solutions/{{solution}}/service/{{id}}/status"][
            "get"
        ]
        parameter = next(p for p in status["parameters"] if p["name"] == "solution")
        assert parameter["in"] == "path" and parameter["required"] is True
        assert parameter["schema"]["pattern"] == "^[a-z]([-a-z0-9]*[a-z0-9])?$"
        assert {"401", "403", "404"} <= set(status["responses"])
