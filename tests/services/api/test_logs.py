"""GET /service/{id}/logs: checked before anything is read (404, 422, tokens); the live path's reads of a
pod's log against the real kube-apiserver (kwok's simulated kubelet serving the container's log, see
tests/kwok_logs.py), alone and through the endpoint with the real operator noting the run's pod; and a
followed log's lines arriving as they are printed, through a real `dtpoc-api` process.

The stored path (a collected run's log, served after its pod is gone) is in
tests/services/operator/test_logs.py, where the real operator stores it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bson import ObjectId

from localdev.cluster import LocalCluster
from services.api.kube import open_api_client
from services.api.pod_logs import LogUnavailable, PodLogs
from tests.kwok_logs import SimulatedLogs, printed
from tests.live_api import ApiTokens, serve_api
from tests.polling import eventually
from tests.services.operator.conftest import OperatorEnv
from tests.services.operator.test_runs import pending_pods

from .conftest import AUTH, BASE_PATH, LIVE_MAX_UPLOAD, READ_AUTH, READ_TOKEN, TOKEN, make_settings, running

IMAGE = "example.org/live-view:1"


# -- checked before anything is read --------------------------------------------------------------
async def test_an_unknown_service_is_a_404(client: httpx.AsyncClient) -> None:
    missing = str(ObjectId())
    response = await client.get(f"/service/{missing}/logs")
    assert response.status_code == 404
    assert response.json()["detail"] == f"no service {missing}"


@pytest.mark.parametrize(
    "params",
    [{"run": "-1"}, {"run": "one"}, {"run": "1000001"}, {"tail": "0"}, {"tail": "x"}, {"follow": "maybe"}],
)
async def test_bad_parameters_are_a_422_naming_them(client: httpx.AsyncClient, params: dict) -> None:
    response = await client.get(f"/service/{ObjectId()}/logs", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", *params]


async def test_a_bad_id_is_a_422_and_a_token_is_needed(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    assert (await client.get("/service/not-an-id/logs")).status_code == 422
    assert (await anonymous.get(f"/service/{ObjectId()}/logs")).status_code == 401


# -- reading a pod's log through the API server ---------------------------------------------------
def bare_pod(cluster: LocalCluster, namespace: str, name: str) -> None:
    """A pod placed on the simulated node (running there, as kwok has it)."""
    node = json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"][0]["metadata"]["name"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "containers": [{"name": "module", "image": IMAGE}],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))


def namespaced(cluster: LocalCluster, namespace: str):  # type: ignore[no-untyped-def]
    return lambda *args, **kwargs: cluster.kubectl("-n", namespace, *args, **kwargs)


async def read_all(pod_logs: PodLogs, pod: str, **options: object) -> bytes:
    opened = await pod_logs.open(pod, follow=bool(options.get("follow")), tail=options.get("tail"))  # type: ignore[arg-type]
    return b"".join([chunk async for chunk in opened.chunks()])


async def test_pod_logs_reads_tails_and_maps_what_the_api_server_answers(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    logs = SimulatedLogs(namespaced(cluster, namespace), namespace, tmp_path / "logs")
    bare_pod(cluster, namespace, "printer")
    bare_pod(cluster, namespace, "silent")
    lines = [f"tick {i}" for i in range(5)]
    logs.serve("printer", lines)
    logs.wait_served()
    api_client, problem = await open_api_client(cluster.kubeconfig)
    assert api_client is not None, problem
    try:
        pod_logs = PodLogs(api_client, namespace, timeout_seconds=5)
        assert await read_all(pod_logs, "printer") == printed(lines).encode()
        assert await read_all(pod_logs, "printer", tail=2) == printed(lines[-2:]).encode()
        with pytest.raises(LogUnavailable) as gone:
            await pod_logs.open("no-such-pod", follow=False, tail=None)
        assert gone.value.status == 404 and "pod no-such-pod is gone" in gone.value.detail
        # The kubelet (kwok's here) has no log for the container: 400 from the API server, 409 from us.
        with pytest.raises(LogUnavailable) as none:
            await pod_logs.open("silent", follow=False, tail=None)
        assert none.value.status == 409 and "no logs found" in none.value.detail

        # Followed: what is printed later arrives on the same stream.
        opened = await pod_logs.open("printer", follow=True, tail=None)
        chunks = opened.chunks()
        received = b""
        while received != printed(lines).encode():
            received += await anext(chunks)
        logs.append("printer", ["tick 5", "tick 6"])
        while not received.endswith(b"tick 6\n"):
            received += await anext(chunks)
        assert received == printed([*lines, "tick 5", "tick 6"]).encode()
        await chunks.aclose()
    finally:
        await api_client.close()


# -- through the endpoint, with the real operator ------------------------------------------------
def persistent_service(env: OperatorEnv) -> tuple[str, str]:
    """A persistent service running on kwok; (its id, the pod the operator noted for run 0)."""
    sid = env.insert_record(image=IMAGE)
    env.create_analytics(sid, {"image": IMAGE, "jobType": "persistent"})
    record = eventually(
        lambda: ((r := env.record(sid)).get("run_pods") or {}).get("0", {}).get("node") and r,
        60,
        "the operator to note the service's running pod",
    )
    return sid, record["run_pods"]["0"]["pod"]


async def test_a_running_runs_log_is_read_live_from_the_pod_the_operator_noted(
    operator_env: OperatorEnv, tmp_path: Path
) -> None:
    env = operator_env
    env.start_operator()
    logs = SimulatedLogs(env.kubectl, env.namespace, tmp_path / "logs")
    sid, pod = persistent_service(env)
    assert [p["metadata"]["name"] for p in env.pods(sid)] == [pod]
    lines = [f"serving request {i}" for i in range(4)]
    logs.serve(pod, lines)
    logs.wait_served()
    settings = make_settings(env.mongo_url, env.cluster.kubeconfig, env.namespace)
    async with running(settings) as api:
        answer = await api.get(f"/service/{sid}/logs")  # run 0 by default; the read token
        assert answer.status_code == 200, answer.text
        assert answer.text == printed(lines)
        assert (answer.headers["x-log-source"], answer.headers["x-log-pod"]) == ("live", pod)
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"
        tail = await api.get(f"/service/{sid}/logs", params={"run": 0, "tail": 1}, headers=AUTH)
        assert tail.text == printed(lines[-1:])
        other = await api.get(f"/service/{sid}/logs", params={"run": 1})
        assert other.status_code == 404
        assert other.json()["detail"] == f"service {sid} is persistent: it has one run, 0"


async def test_runs_not_started_are_a_409_and_runs_the_service_lacks_a_404(operator_env: OperatorEnv) -> None:
    env = operator_env
    env.start_operator()
    sid = env.insert_record(image=IMAGE, reps=2)
    settings = make_settings(env.mongo_url, env.cluster.kubeconfig, env.namespace)
    with env.scheduling_paused():
        env.create_analytics(sid, {"image": IMAGE, "jobType": "ondemand", "reps": 2})
        pods = pending_pods(env, sid, 2)
        eventually(lambda: len(env.record(sid).get("run_pods") or {}) == 2, 30, "both pods noted")
        async with running(settings) as api:
            waiting = await api.get(f"/service/{sid}/logs", params={"run": 1, "follow": "true"})
            assert waiting.status_code == 409
            assert waiting.json()["detail"].startswith(f"run 1 of service {sid} is waiting for a node (pod ")
            assert waiting.json()["detail"].removesuffix(")").rsplit(" ", 1)[1] in {
                p["metadata"]["name"] for p in pods
            }
            beyond = await api.get(f"/service/{sid}/logs", params={"run": 2})
            assert beyond.status_code == 404
            assert beyond.json()["detail"] == f"service {sid} has 2 runs (0 to 1); there is no run 2"


@pytest.fixture
def operated_live_api(operator_env: OperatorEnv, tmp_path: Path) -> Iterator[str]:
    """The real operator and a real `dtpoc-api` process on one namespace; the API's base URL."""
    operator_env.start_operator()
    with serve_api(
        operator_env.mongo_url,
        operator_env.cluster.kubeconfig,
        operator_env.namespace,
        tmp_path / "api.log",
        ApiTokens(TOKEN, READ_TOKEN),
        LIVE_MAX_UPLOAD,
    ) as api:
        yield f"{api.url}{BASE_PATH}"


def test_a_followed_log_streams_lines_as_the_module_prints_them(
    operator_env: OperatorEnv, operated_live_api: str, tmp_path: Path
) -> None:
    env = operator_env
    logs = SimulatedLogs(env.kubectl, env.namespace, tmp_path / "logs")
    sid, pod = persistent_service(env)
    logs.serve(pod, ["started"])
    logs.wait_served()
    url = f"{operated_live_api}/service/{sid}/logs"
    with httpx.stream("GET", url, params={"follow": "true"}, headers=READ_AUTH, timeout=60) as response:
        assert response.status_code == 200
        assert (response.headers["x-log-source"], response.headers["x-accel-buffering"]) == ("live", "no")
        lines = response.iter_lines()
        assert next(lines) == "started"
        for i in range(3):  # each line is printed only after the one before it has arrived
            logs.append(pod, [f"request {i} served"])
            assert next(lines) == f"request {i} served"
