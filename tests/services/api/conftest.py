"""The API under test, in-process (httpx over ASGI, lifespan run), against the real FerretDB and, for
the tests that ask for `kube_api`, the real local kube-apiserver with the Analytics CRD installed.

Every endpoint but health needs a token. The `client` and `kube_api` fixtures send the read token with
each GET that names no token of its own (`ReadToken`), so the tests of what the API reads stay about that;
changes are sent with `headers=AUTH` (the admin token) as before. `anonymous` sends nothing by itself: the
tests of who may read and change what (test_auth.py) use it.

Tests without the cluster get a kubeconfig that points at a closed port: Kubernetes is then really
unreachable, which is what the 503 tests want and what validation tests never get to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

from localdev import processes
from localdev.cluster import LocalCluster
from localdev.ferretdb import FerretDB
from services.api.main import create_app
from services.api.settings import V1BETA1_PATH, ApiSettings
from services.shared.mongo import MongoSettings
from services.shared.names import FILES_DATABASE, RECORDS_DATABASE, SERVICES_COLLECTION
from tests.live_api import ApiTokens, LiveApi, api_in_own_namespace
from tests.services.operator.conftest import operator_env  # noqa: F401 (a fixture: logs and events tests)

# These tests speak the platform's own shapes (v1beta1); tests/compat speaks the original's (v1alpha1).
# Both versions are one implementation (services.api.contracts).
BASE_PATH = V1BETA1_PATH
TOKEN = "test-token-0123456789"
READ_TOKEN = "test-read-token-0123456789"
LIVE_MAX_UPLOAD = 16 * 1024 * 1024
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READ_AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}


class ReadToken(httpx.Auth):
    """The read token on GET and HEAD requests that carry no Authorization header of their own."""

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        if request.method in ("GET", "HEAD") and "Authorization" not in request.headers:
            request.headers["Authorization"] = READ_AUTH["Authorization"]
        yield request


def unreachable_kubeconfig(path: Path, port: int) -> Path:
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: away
  cluster:
    server: https://127.0.0.1:{port}
    insecure-skip-tls-verify: true
users:
- name: nobody
  user:
    token: not-a-real-token
contexts:
- name: away
  context: {{cluster: away, user: nobody}}
current-context: away
"""
    )
    return path


def make_settings(
    mongo_url: str, kubeconfig: Path, namespace: str = "default", **overrides: object
) -> ApiSettings:
    return ApiSettings(
        token=TOKEN,
        read_token=READ_TOKEN,
        namespace=namespace,
        kubeconfig=kubeconfig,
        kube_timeout_seconds=5,
        mongo=MongoSettings(url=mongo_url, timeout_ms=1500),
        **overrides,
    )


@asynccontextmanager
async def running(settings: ApiSettings, reads_with_token: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the app for `settings`, its lifespan run around it; the base URL carries the
    API's base path, so tests write `client.get("/service/")`. GETs carry the read token unless
    `reads_with_token` is False or the request names its own Authorization."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url=f"http://api.test{BASE_PATH}",
            timeout=120,
            auth=ReadToken() if reads_with_token else None,
        ) as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


@pytest.fixture
def away_kubeconfig(tmp_path: Path) -> Path:
    return unreachable_kubeconfig(tmp_path / "away-kubeconfig.yaml", processes.free_port())


@pytest.fixture
def settings(mongo_url: str, away_kubeconfig: Path) -> ApiSettings:
    """Settings for the Mongo-side tests: real FerretDB, Kubernetes unreachable."""
    return make_settings(mongo_url, away_kubeconfig)


@pytest.fixture
async def client(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(settings) as c:
        yield c


@pytest.fixture
async def anonymous(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The API as someone without a token meets it (a request may still name a token itself)."""
    async with running(settings, reads_with_token=False) as c:
        yield c


@pytest.fixture
def kube_settings(mongo_url: str, cluster: LocalCluster, analytics_crd: str, namespace: str) -> ApiSettings:
    """Settings for the cluster tests: real FerretDB and the local kube-apiserver, a fresh namespace."""
    return make_settings(mongo_url, cluster.kubeconfig, namespace)


@pytest.fixture
async def kube_api(kube_settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(kube_settings) as c:
        yield c


@pytest.fixture
def mongo(mongo_url: str) -> Iterator[MongoClient]:
    """A plain client, to look at what the API wrote."""
    with MongoClient(mongo_url) as c:
        yield c


@pytest.fixture
def records(mongo: MongoClient):
    return mongo[RECORDS_DATABASE][SERVICES_COLLECTION]


@pytest.fixture
def files_db(mongo: MongoClient):
    return mongo[FILES_DATABASE]


@pytest.fixture(scope="module")
def live_api(
    ferretdb: FerretDB, cluster: LocalCluster, analytics_crd: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    """A real `dtpoc-api` process (tests/live_api.py) on FerretDB and the local cluster, in a namespace
    of its own; stopped by pid. Its log must hold no traceback."""
    log = tmp_path_factory.mktemp("api") / "api.log"
    with api_in_own_namespace(
        ferretdb.url, cluster, "live", log, ApiTokens(TOKEN, READ_TOKEN), LIVE_MAX_UPLOAD
    ) as api:
        yield api
