"""The compatibility suite runs against a real `dtpoc-api` process (the live_api fixture of the API
tests: uvicorn over a real socket, FerretDB, the local kube-apiserver) and, where runs must finish, the
real operator (the operator tests' fixtures) watching the API's namespace."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.services.api import conftest as api_tests
from tests.services.api.conftest import AUTH, LiveApi
from tests.services.operator import conftest as operator_tests

from .seed import PATH

# The fixtures of the API and operator tests, reused here (and the hook that shows the operator's log
# when a test fails).
live_api = api_tests.live_api
mongo = api_tests.mongo
records = api_tests.records
files_db = api_tests.files_db
operator_env = operator_tests.operator_env
operator = operator_tests.operator
pytest_runtest_makereport = operator_tests.pytest_runtest_makereport


@pytest.fixture
def namespace(live_api: LiveApi) -> str:
    """The operator watches the namespace the live API launches into."""
    return live_api.namespace


@pytest.fixture
def seed_client(live_api: LiveApi, mongo_url: str) -> Iterator[httpx.Client]:
    """A client of the original's API path, on emptied databases, sending the admin token as the
    platform now requires on every request but health (reads could use the read token)."""
    with httpx.Client(base_url=live_api.url + PATH, headers=AUTH, timeout=60) as client:
        yield client
