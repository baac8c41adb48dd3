"""GET /service/{id}/events: Server-Sent Events of a service's status, through a real `dtpoc-api` process
(a stream needs a real server) with the real operator running the service's pods on kwok. No test
polls the status while it reads the stream: each change arrives on it.

kwok runs a Job's pods to completion as soon as they are placed. The tests hold them on cordoned nodes
(pending), mark one run's pod finished as its kubelet would when the module exits 0 (a run done, the
other waiting: running), then let the other run (ok).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId

from tests.live_api import ApiTokens, serve_api
from tests.polling import eventually
from tests.services.operator.conftest import OperatorEnv
from tests.services.operator.test_runs import pending_pods

from .conftest import AUTH, BASE_PATH, LIVE_MAX_UPLOAD, READ_AUTH, READ_TOKEN, TOKEN

pytestmark = [pytest.mark.cluster, pytest.mark.mongo]

IMAGE = "example.org/simulation"
ORDER = {"pending": 0, "running": 1, "ok": 2}
KEEPALIVE_SECONDS = "0.5"


@dataclass
class Sse:
    """One thing read from an event stream: an event (kind, id, data) or a comment."""

    kind: str | None = None
    id: str | None = None
    data: dict[str, Any] | None = None
    comment: str | None = None
    retry: int | None = None


def read_sse(response: httpx.Response) -> Iterator[Sse]:
    """The events and comments of a text/event-stream response, as they arrive."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            yield Sse(comment=line[1:].strip())
        elif line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        elif fields:
            data = json.loads(fields["data"]) if "data" in fields else None
            retry = int(fields["retry"]) if "retry" in fields else None
            yield Sse(fields.get("event"), fields.get("id"), data, retry=retry)
            fields = {}


def next_event(stream: Iterator[Sse]) -> Sse:
    """The next event, past comments and the `retry` advice."""
    return next(item for item in stream if item.kind is not None)


@dataclass
class Platform:
    env: OperatorEnv
    url: str
    http: httpx.Client

    def launch(self, reps: int) -> str:
        body = {"image": IMAGE, "version": "2", "sim": {"reps": reps}}
        response = self.http.post(f"{self.url}/service/launch", json=body, headers=AUTH)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def events(self, sid: str, last_event_id: str | None = None) -> contextlib.AbstractContextManager[Any]:
        headers = {**READ_AUTH, **({"Last-Event-ID": last_event_id} if last_event_id else {})}
        return self.http.stream("GET", f"{self.url}/service/{sid}/events", headers=headers)

    def status(self, sid: str) -> dict[str, Any]:
        return dict(self.http.get(f"{self.url}/service/{sid}/status", headers=READ_AUTH).json())

    def finish_run(self, pod: dict[str, Any]) -> None:
        """What a kubelet reports when the module exits 0."""
        done = {"phase": "Succeeded", "reason": "Completed"}
        self.env.kubectl(
            "patch", "pod", pod["metadata"]["name"], "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": done}),
        )  # fmt: skip


@pytest.fixture
def platform(operator_env: OperatorEnv, tmp_path: Path) -> Iterator[Platform]:
    operator_env.start_operator()
    with (
        serve_api(
            operator_env.mongo_url,
            operator_env.cluster.kubeconfig,
            operator_env.namespace,
            tmp_path / "api.log",
            ApiTokens(TOKEN, READ_TOKEN),
            LIVE_MAX_UPLOAD,
            API_EVENTS_KEEPALIVE_SECONDS=KEEPALIVE_SECONDS,
        ) as api,
        httpx.Client(timeout=120) as http,  # a read timeout is a safety net against a hang, not a check
    ):
        yield Platform(operator_env, f"{api.url}{BASE_PATH}", http)


def by_run(pods: list[dict[str, Any]], run: int) -> dict[str, Any]:
    index = "batch.kubernetes.io/job-completion-index"
    return next(p for p in pods if p["metadata"]["annotations"][index] == str(run))


def test_a_client_sees_pending_running_ok_in_order_and_the_stream_ends(platform: Platform) -> None:
    env = platform.env
    with contextlib.ExitStack() as stack:
        with env.scheduling_paused():
            sid = platform.launch(reps=2)
            pods = pending_pods(env, sid, 2, timeout=60)
            response = stack.enter_context(platform.events(sid))
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            stream = read_sse(response)
            assert next(stream).retry == 3000
            events = [next_event(stream)]
            first = events[0]
            assert (first.kind, first.data["id"], first.data["status"]) == ("status", sid, "pending")

            platform.finish_run(by_run(pods, 0))  # one run done, the other still waiting: running
            while events[-1].data["status"] != "running":
                events.append(next_event(stream))
            assert events[-1].data["succeeded"] == 1
        # The nodes take pods again: the other run runs and the service settles; the server ends the stream.
        events += [item for item in stream if item.kind is not None]

    statuses = [event.data["status"] for event in events]
    assert statuses[-1] == "ok" and events[-1].data["succeeded"] == 2
    assert [ORDER[s] for s in statuses] == sorted(ORDER[s] for s in statuses)
    assert set(statuses) == {"pending", "running", "ok"}
    assert {event.kind for event in events} == {"status"}
    assert len({event.id for event in events}) == len(events)  # a change each, none repeated
    # Each event is the answer GET /status gives (the last one: what it gives now).
    assert events[-1].data == platform.status(sid)


def test_a_dropped_connection_resumes_from_last_event_id_without_a_duplicate(platform: Platform) -> None:
    env = platform.env
    with env.scheduling_paused():
        sid = platform.launch(reps=2)
        pods = pending_pods(env, sid, 2, timeout=60)
        with platform.events(sid) as response:
            pending = next_event(read_sse(response))
        assert pending.data["status"] == "pending"

        # While nobody listens, a run finishes.
        platform.finish_run(by_run(pods, 0))
        eventually(lambda: platform.status(sid)["succeeded"] == 1, 60, "the finished run to be counted")
        # Back with the last id seen: the current status first (the change missed), not pending again.
        with platform.events(sid, pending.id) as response:
            missed = next_event(read_sse(response))
        assert (missed.data["status"], missed.data["succeeded"]) == ("running", 1)
        assert missed.id != pending.id

        # Back with that id: nothing has changed since, so nothing is repeated; keep-alives meanwhile.
        with contextlib.ExitStack() as stack:
            response = stack.enter_context(platform.events(sid, missed.id))
            stream = read_sse(response)
            assert next(stream).retry == 3000
            assert next(stream) == Sse(comment="keep-alive")  # before any event: none is due
            resumed = stack.pop_all()
    # The nodes take pods again: only what changes from here on arrives, up to ok and the end.
    with resumed:
        rest = [item for item in stream if item.kind is not None]
    assert rest and rest[-1].data["status"] == "ok"
    assert missed.id not in {event.id for event in rest}
    assert missed.data not in [event.data for event in rest]


def test_a_terminated_service_ends_the_stream_with_a_terminated_event(platform: Platform) -> None:
    env = platform.env
    with env.scheduling_paused():
        sid = platform.launch(reps=1)
        pending_pods(env, sid, 1, timeout=60)
        with platform.events(sid) as response:
            stream = read_sse(response)
            assert next_event(stream).data["status"] == "pending"
            terminated = platform.http.delete(f"{platform.url}/service/{sid}/terminate", headers=AUTH)
            assert terminated.status_code == 200
            rest = [item for item in stream if item.kind is not None]
    assert rest[-1].kind == "terminated"
    assert rest[-1].data == {"id": sid, "status": "terminated"}


# -- checked before the stream starts (in-process; Kubernetes unreachable) ----------------------------
async def test_an_unknown_service_is_a_404_and_a_token_is_needed(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    missing = str(ObjectId())
    response = await client.get(f"/service/{missing}/events")
    assert response.status_code == 404 and response.json()["detail"] == f"no service {missing}"
    old = await client.get(f"http://api.test/api/orchestrator/v1alpha1/service/{missing}/events")
    assert old.status_code == 404 and old.json()["detail"] == f"no service {missing}"  # there too
    assert (await client.get("/service/not-an-id/events")).status_code == 422
    assert (await anonymous.get(f"/service/{missing}/events")).status_code == 401
