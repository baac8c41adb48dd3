"""Property-based: whatever schemathesis sends from the OpenAPI document (valid and invalid input, with
and without the token), a real `dtpoc-api` process on FerretDB and the local kube-apiserver never
answers 5xx, never lets Kubernetes refuse what it accepted, and answers as its OpenAPI document says.
Every case of a secured operation (all but health: every read needs a token too) is sent first without
a token: 401, and for a change (POST, DELETE) nothing stored changes (records, files and chunks counted
before and after); then with the admin token (changes) or the read token (reads).

Every case is counted (operation and status, see `FuzzTally`); the last test checks the run made at
least `FUZZ_MIN_CASES` of them. In the suite: `FUZZ_EXAMPLES` examples per operation (default 120,
over 1,000 cases in well under a minute); `make fuzz` runs a longer one and prints the counts."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import MongoClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from localdev.cluster import LocalCluster
from localdev.ferretdb import FerretDB
from localdev.tools import Tools
from services.api.main import create_app
from services.api.models import IMAGE_PATTERN, TAG_PATTERN
from services.api.settings import BASE_PATH, ApiSettings
from services.shared import crd
from services.shared.crd import ENV_NAME_PATTERN
from services.shared.names import FILES_DATABASE, RECORDS_DATABASE, SERVICES_COLLECTION

from .conftest import AUTH, READ_AUTH, LiveApi

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.mongo]

schema = schemathesis.openapi.from_dict(create_app(ApiSettings()).openapi())

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))
MIN_CASES = int(os.environ.get("FUZZ_MIN_CASES", "1000"))


class FuzzTally:
    """Cases sent per operation and answers per status class, for the closing check and the summary."""

    cases: ClassVar[Counter[str]] = Counter()
    statuses: ClassVar[Counter[str]] = Counter()
    server_errors: ClassVar[list[str]] = []
    # Answers to the secured cases sent without a token, per (operation, status).
    anonymous: ClassVar[Counter[tuple[str, int]]] = Counter()

    @classmethod
    def add(cls, operation: str, status: int, body: str, *, token: bool = True) -> None:
        if not token:
            cls.anonymous[(operation, status)] += 1
            operation = f"{operation} without token"
        cls.cases[operation] += 1
        cls.statuses[f"{status // 100}xx"] += 1
        if status >= 500:
            cls.server_errors.append(f"{operation} -> {status}: {body[:200]}")

    @classmethod
    def summary(cls) -> str:
        lines = [f"fuzz: {sum(cls.cases.values())} cases, answers {dict(sorted(cls.statuses.items()))}"]
        lines += [f"  {n:5d}  {op}" for op, n in sorted(cls.cases.items())]
        lines += [f"  5xx: {e}" for e in cls.server_errors]
        anonymous = sorted(cls.anonymous.items())
        lines += [f"  without token: {op} -> {status}: {n}" for (op, status), n in anonymous]
        return "\n".join(lines)


MUTATING = ("POST", "DELETE")  # the operations that need the admin token; the read token reads
OPEN_PATHS = ("/healthz", "/readyz")  # per version: the only operations without a token


def secured_operations() -> set[tuple[str, str]]:
    """(method, path) of every operation whose OpenAPI document names a `security`."""
    return {
        (method.upper(), path)
        for path, operations in create_app(ApiSettings()).openapi()["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    }


@pytest.fixture(scope="module")
def ferretdb(tools: Tools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerretDB]:
    """A FerretDB of this module's own (the live API uses it): `stored` counts GridFS chunks around
    every change, and FerretDB reads every chunk's bytes to count them, so the big files earlier tests
    leave in the session's server would make each count take seconds."""
    server = FerretDB.start(tools, tmp_path_factory.mktemp("fuzz-ferretdb"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stored(ferretdb: FerretDB) -> Iterator[Callable[[], dict[str, int]]]:
    """What the API has written: services records, GridFS files and chunks, counted."""
    with MongoClient(ferretdb.url) as client:
        files = client[FILES_DATABASE]

        def counts() -> dict[str, int]:
            return {
                "records": client[RECORDS_DATABASE][SERVICES_COLLECTION].count_documents({}),
                "files": files["fs.files"].count_documents({}),
                # collStats: FerretDB counts the rows without reading every chunk's bytes (seconds).
                "chunks": int(files.command("collStats", "fs.chunks")["count"]),
            }

        yield counts


def refused_by_the_http_server(response: Any) -> bool:
    """uvicorn's own answer to a request that is not valid HTTP (checked by hand: a NUL byte in a header
    value, a raw control character in the query): it never reaches the app, so it is not the app's to
    answer as documented. Seen once in three runs of this test (a generated `Last-Event-ID`, most likely).
    Exactly that text, as plain text, nothing else."""
    return (
        response.status_code == 400
        and response.text == "Invalid HTTP request received."
        and response.headers.get("content-type", "").startswith("text/plain")
    )


def refused_before_authentication(response: Any) -> bool:
    """What is refused before the token is looked at, with or without it: a path that reaches no
    operation (the router's own 404), and a body that cannot be decoded at all (FastAPI decodes it before
    any dependency runs, the token check included: not JSON, 422 json_invalid; not multipart, 400)."""
    if response.status_code not in (400, 404, 422):
        return False
    detail = response.json().get("detail")
    if response.status_code == 404:
        return detail == "Not Found"
    if response.status_code == 422:
        return isinstance(detail, list) and all(error.get("type") == "json_invalid" for error in detail)
    return response.status_code == 400 and detail == "There was an error parsing the body"


def test_every_operation_but_health_needs_a_token() -> None:
    """The operations sent without a token below (those with an OpenAPI `security`) are every operation
    but health and readiness, in every version: reads included, not only the mutating ones."""
    paths = create_app(ApiSettings()).openapi()["paths"]
    everything = {(method.upper(), path) for path, operations in paths.items() for method in operations}
    secured = secured_operations()
    assert {method for method, _ in secured} == {"GET", *MUTATING}
    assert everything - secured == {(m, p) for m, p in everything if p.endswith(OPEN_PATHS)}
    assert all(not path.endswith(OPEN_PATHS) for _, path in secured)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_server_errors_and_answers_as_documented(
    case, live_api: LiveApi, stored: Callable[[], dict[str, int]]
) -> None:
    operation = f"{case.method.upper()} {case.path}"
    with_token = case.method.upper() in MUTATING
    # The operation as documented (schemathesis also sends other methods to a path: those get 405).
    secured = case.method.upper() == case.operation.method.upper() and case.operation.definition.raw.get(
        "security"
    )
    if secured:
        # What is stored is counted around the changes only: a read that is refused has nothing to write.
        before = stored() if with_token else None
        anonymous = case.call(base_url=live_api.url, timeout=60)
        FuzzTally.add(operation, anonymous.status_code, anonymous.text, token=False)
        assert (
            anonymous.status_code == 401
            or refused_before_authentication(anonymous)
            or refused_by_the_http_server(anonymous)
        ), anonymous.text
        if before is not None:
            assert stored() == before, f"{operation} without the token changed what is stored"
    # Changes with the admin token, reads with the read token (test_auth.py covers who may do what).
    response = case.call(base_url=live_api.url, headers=AUTH if with_token else READ_AUTH, timeout=60)
    FuzzTally.add(operation, response.status_code, response.text)
    if refused_by_the_http_server(response):
        return
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
        ],
    )
    if response.status_code >= 400:
        content_type = {k.lower(): v for k, v in response.headers.items()}["content-type"]
        assert content_type[0].startswith("application/json"), response.text
        assert response.json()["detail"], response.text
    assert "Kubernetes refused" not in response.text, "the API accepted what the CRD's rules refuse"


def test_the_run_made_enough_cases_and_no_server_error() -> None:
    """Runs after the generated cases above (pytest keeps the module's order)."""
    print("\n" + FuzzTally.summary())
    total = sum(FuzzTally.cases.values())
    assert total >= MIN_CASES, FuzzTally.summary()
    assert FuzzTally.server_errors == []
    # Every secured operation was sent without a token, and answered 401 (not only refused unread).
    refused = {op for (op, status) in FuzzTally.anonymous if status == 401}
    assert refused == {f"{method} {path}" for method, path in secured_operations()}, FuzzTally.summary()


# Every launch the API accepts, Kubernetes accepts too (the CRD's schema and CEL rules): generate
# valid requests of every kind and check each becomes an Analytics object with the spec we sent.

CRONS = ["*/5 * * * *", "0 6 * * 1-5", "15,45 8-18 * * *", "0 0 1 * *", "@daily", "@hourly", "30 2 * 1,7 SUN"]
reps = st.integers(min_value=1, max_value=100)
kinds = st.one_of(
    st.builds(lambda r: {"sim": {"reps": r}}, reps),
    st.just({"sim": {}}),
    st.builds(lambda r: {"ana": {"job_type": "ondemand", "reps": r}}, reps),
    st.builds(
        lambda r, c, p: {"ana": {"job_type": "scheduled", "reps": r, "schedule": c}, **p},
        reps,
        st.sampled_from(CRONS),
        st.one_of(st.just({}), st.builds(lambda p: {"port": p}, st.integers(1, 65535))),
    ),
    st.builds(
        lambda p: {"ana": {"job_type": "persistent"}, **p},
        st.one_of(st.just({}), st.builds(lambda p: {"port": p}, st.integers(1, 65535))),
    ),
)
launches = st.builds(
    lambda image, version, description, env, kind: {
        "image": image,
        "version": version,
        "description": description,
        "env": env,
        **kind,
    },
    st.from_regex(IMAGE_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 255),
    st.from_regex(TAG_PATTERN, fullmatch=True),
    st.text(max_size=200),
    st.dictionaries(
        st.from_regex(ENV_NAME_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 256),
        st.text(max_size=50),
        max_size=5,
    ),
    kinds,
)


@given(body=launches)
@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
def test_what_the_api_accepts_kubernetes_accepts(
    body: dict, live_api: LiveApi, cluster: LocalCluster
) -> None:
    response = httpx.post(f"{live_api.url}{BASE_PATH}/service/launch", json=body, headers=AUTH, timeout=60)
    assert response.status_code == 202, response.text
    made = json.loads(
        cluster.kubectl(
            "get", f"{crd.PLURAL}.{crd.GROUP}", response.json()["id"], "-n", live_api.namespace, "-o", "json"
        ).stdout
    )
    assert made["spec"]["image"] == f"{body['image']}:{body['version']}"
    assert made["spec"]["env"] == body["env"]
    assert made["spec"]["description"] == body["description"]
