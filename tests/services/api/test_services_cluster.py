"""/service against the real kube-apiserver (Analytics CRD installed, a fresh namespace per test) and
the real FerretDB: launch, status, list, terminate, and a Kubernetes outage with recovery."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from bson import ObjectId

from localdev import processes
from localdev.cluster import LocalCluster
from services.shared import crd
from services.shared.names import SERVICE_ID_LABEL
from services.shared.solutions import DEFAULT_SOLUTION

from ...kubectl import get_object
from .conftest import AUTH, BASE_PATH, make_settings, running

pytestmark = [pytest.mark.cluster, pytest.mark.mongo]

IMAGE = "ghcr.io/cam-digital-hospitals/digital-hosp-des"


def resource(cluster: LocalCluster, namespace: str, name: str) -> dict | None:
    return get_object(cluster.kubectl, f"{crd.PLURAL}.{crd.GROUP}", name, "-n", namespace)


def set_status(cluster: LocalCluster, namespace: str, name: str, status: dict) -> None:
    """What the operator does: write the resource's status subresource."""
    cluster.kubectl(
        "patch", f"{crd.PLURAL}.{crd.GROUP}", name, "-n", namespace,
        "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}),
    )  # fmt: skip


async def launch(client, **body) -> str:
    response = await client.post("/service/launch", json={"image": IMAGE, **body}, headers=AUTH)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def spec(job_type: str, tag: str = "latest", description: str = "", env: dict | None = None, **extra) -> dict:
    return {
        "image": f"{IMAGE}:{tag}",
        "description": description,
        "jobType": job_type,
        "env": env or {},
        **extra,
    }


LAUNCHES = {
    "sim": (
        {"version": "1.4.2", "description": "DES", "env": {"SIM_HOURS": "1176"}, "sim": {"reps": 2}},
        spec("ondemand", "1.4.2", "DES", {"SIM_HOURS": "1176"}, reps=2),
    ),
    "sim default reps": ({"sim": {}}, spec("ondemand", reps=1)),
    "ondemand": (
        {"ana": {"job_type": "ondemand", "reps": 5}, "env": {"A": "1", "_B2": ""}},
        spec("ondemand", env={"A": "1", "_B2": ""}, reps=5),
    ),
    "scheduled": (
        {"ana": {"job_type": "scheduled", "reps": 1, "schedule": "*/15 6-18 * * 1-5"}},
        spec("scheduled", reps=1, schedule="*/15 6-18 * * 1-5"),
    ),
    "persistent with port": (
        {"ana": {"job_type": "persistent"}, "port": 8050, "description": "dashboard"},
        spec("persistent", description="dashboard", port=8050),
    ),
    "persistent": ({"ana": {"job_type": "persistent"}}, spec("persistent")),
}


@pytest.mark.parametrize(("body", "expected"), LAUNCHES.values(), ids=LAUNCHES.keys())
async def test_launch_creates_the_record_and_a_matching_resource(
    kube_api, cluster, namespace, records, body, expected
) -> None:
    service_id = await launch(kube_api, **body)
    made = resource(cluster, namespace, service_id)
    assert made is not None
    assert made["apiVersion"] == crd.API_VERSION
    assert made["kind"] == crd.KIND
    assert made["metadata"]["labels"] == {"app.kubernetes.io/part-of": "dtpoc", SERVICE_ID_LABEL: service_id}
    assert made["spec"] == expected

    record = records.find_one({"_id": ObjectId(service_id)})
    assert record["image"] == IMAGE
    assert record["version"] == body.get("version", "latest")
    assert record["description"] == body.get("description", "")
    assert record["env"] == body.get("env", {})
    assert record["mount_files"] == {}
    assert record["reps"] == expected.get("reps")
    assert record["output_files"] == []
    assert abs(record["created_at"] - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=1)


async def test_launch_with_mount_files(kube_api, cluster, namespace, records) -> None:
    uploaded = await kube_api.post("/files/upload", files={"file": ("in.xlsx", b"cells")}, headers=AUTH)
    file_id = uploaded.json()["id"]
    service_id = await launch(
        kube_api,
        env={"INPUT_EXCEL_FILE": "/input/input.xlsx"},
        mount_files={file_id: "input.xlsx"},
        sim={"reps": 2},
    )
    assert records.find_one({"_id": ObjectId(service_id)})["mount_files"] == {file_id: "input.xlsx"}
    assert resource(cluster, namespace, service_id)["spec"]["env"] == {
        "INPUT_EXCEL_FILE": "/input/input.xlsx"
    }


async def test_status_is_pending_until_the_operator_reports(kube_api, cluster, namespace) -> None:
    service_id = await launch(kube_api, ana={"job_type": "ondemand", "reps": 3})
    response = await kube_api.get(f"/service/{service_id}/status")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "pending"
    assert body["phase"] is None
    assert (body["active"], body["succeeded"], body["failed"], body["total"]) == (0, 0, 0, 3)
    assert body["job_type"] == "ondemand"
    assert body["output_files"] == []

    # kopf keeps its own progress in the status before the operator writes a phase.
    set_status(cluster, namespace, service_id, {"kopf": {"progress": {}}})
    assert (await kube_api.get(f"/service/{service_id}/status")).json()["status"] == "pending"


async def test_status_follows_the_operator(kube_api, cluster, namespace, records) -> None:
    service_id = await launch(kube_api, sim={"reps": 3})
    set_status(
        cluster, namespace, service_id, {"phase": "Running", "active": 2, "succeeded": 1, "outputs": 1}
    )
    records.update_one(
        {"_id": ObjectId(service_id)},
        {"$push": {"output_files": {"run": 0, "file_id": str(ObjectId()), "filename": "report.json"}}},
    )
    body = (await kube_api.get(f"/service/{service_id}/status")).json()
    assert body["status"] == "running"
    assert body["phase"] == "Running"
    assert (body["active"], body["succeeded"], body["failed"], body["total"], body["outputs"]) == (
        2,
        1,
        0,
        3,
        1,
    )
    assert [o["filename"] for o in body["output_files"]] == ["report.json"]

    set_status(
        cluster, namespace, service_id, {"phase": "Succeeded", "active": 0, "succeeded": 3, "outputs": 3}
    )
    body = (await kube_api.get(f"/service/{service_id}/status")).json()
    assert (body["status"], body["succeeded"], body["total"]) == ("ok", 3, 3)

    failed = {
        "phase": "Failed",
        "succeeded": 2,
        "failed": 1,
        "conditions": [
            {"type": "Failed", "status": "True", "reason": "InputMissing", "message": "input.xlsx missing"}
        ],
    }
    set_status(cluster, namespace, service_id, failed)
    body = (await kube_api.get(f"/service/{service_id}/status")).json()
    assert (body["status"], body["failed"], body["message"]) == ("error", 1, "input.xlsx missing")
    assert body["conditions"][0]["reason"] == "InputMissing"


async def test_unreadable_status_is_not_a_500(kube_api, cluster, namespace) -> None:
    service_id = await launch(kube_api, sim={})
    set_status(cluster, namespace, service_id, {"phase": "Exploded", "active": "many"})
    response = await kube_api.get(f"/service/{service_id}/status")
    assert response.status_code == 200
    assert response.json()["message"] == "the resource's status is not readable"


async def test_list_reads_kubernetes_once_per_page(kube_api, cluster, namespace) -> None:
    ids = [await launch(kube_api, sim={"reps": 1 + i % 3}) for i in range(12)]
    set_status(cluster, namespace, ids[0], {"phase": "Succeeded", "succeeded": 1, "outputs": 2})

    analytics = kube_api.app.state.solutions[DEFAULT_SOLUTION].analytics
    calls = {"list": 0, "get": 0}
    real_list, real_get = analytics.list, analytics.get

    async def counted_list(names=None):
        assert names is not None and len(names) <= 5  # selected by label, not the whole namespace
        calls["list"] += 1
        return await real_list(names)

    async def counted_get(name):
        calls["get"] += 1
        return await real_get(name)

    analytics.list, analytics.get = counted_list, counted_get
    seen, url = [], "/service/?limit=5"
    while url:
        response = await kube_api.get(url)
        assert response.status_code == 200
        seen += response.json()
        link = response.headers.get("Link")
        url = link[link.index("<") + 1 : link.index(">")].removeprefix(BASE_PATH) if link else None
    assert calls == {"list": 3, "get": 0}

    assert [s["id"] for s in seen] == ids  # in launch order
    first = next(s for s in seen if s["id"] == ids[0])
    assert (first["status"], first["succeeded"], first["outputs"], first["total"]) == ("ok", 1, 2, 1)
    assert all(s["status"] == "pending" and s["job_type"] == "ondemand" for s in seen if s["id"] != ids[0])
    assert {s["total"] for s in seen} == {1, 2, 3}


async def test_list_matches_hand_made_resources_and_reports_missing_ones(
    kube_api, cluster, namespace, records
) -> None:
    # The seed's documented flow: a record, and a resource applied by hand, without our labels.
    hand_made = ObjectId()
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    records.insert_one({"_id": hand_made, "image": IMAGE, "reps": 2, "created_at": an_hour_ago})
    manifest = {
        "apiVersion": crd.API_VERSION,
        "kind": crd.KIND,
        "metadata": {"name": str(hand_made)},
        "spec": {"image": f"{IMAGE}:latest", "jobType": "ondemand", "reps": 2},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    set_status(cluster, namespace, str(hand_made), {"phase": "Running", "active": 2})
    orphan = ObjectId()
    records.insert_one({"_id": orphan, "image": IMAGE, "created_at": an_hour_ago})
    fresh = ObjectId()
    records.insert_one({"_id": fresh, "image": IMAGE, "created_at": datetime.now(UTC)})

    for limit in (100, 1000):  # a small page selects by label then falls back; a big one lists all at once
        listed = {s["id"]: s for s in (await kube_api.get("/service", params={"limit": limit})).json()}
        assert (listed[str(hand_made)]["status"], listed[str(hand_made)]["active"]) == ("running", 2)
        assert listed[str(orphan)]["status"] == "error"
        assert listed[str(orphan)]["message"] == "the Analytics resource is missing"
        assert listed[str(fresh)]["status"] == "pending"


async def test_terminate_removes_resource_and_record(kube_api, cluster, namespace, records) -> None:
    service_id = await launch(kube_api, sim={"reps": 2})
    keep = await launch(kube_api, sim={"reps": 1})
    response = await kube_api.delete(f"/service/{service_id}/terminate", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"id": service_id, "resource_deleted": True, "record_deleted": True}
    assert resource(cluster, namespace, service_id) is None
    assert records.find_one({"_id": ObjectId(service_id)}) is None
    assert resource(cluster, namespace, keep) is not None
    assert records.find_one({"_id": ObjectId(keep)}) is not None

    again = await kube_api.delete(f"/service/{service_id}/terminate", headers=AUTH)
    assert again.status_code == 404
    assert (await kube_api.get(f"/service/{service_id}/status")).status_code == 404


async def test_terminate_without_token_keeps_everything(kube_api, cluster, namespace, records) -> None:
    service_id = await launch(kube_api, sim={})
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = await kube_api.delete(f"/service/{service_id}/terminate", headers=headers)
        assert response.status_code == 401
    assert resource(cluster, namespace, service_id) is not None
    assert records.count_documents({}) == 1


async def test_terminate_a_resource_without_record(kube_api, cluster, namespace) -> None:
    name = str(ObjectId())
    manifest = {
        "apiVersion": crd.API_VERSION,
        "kind": crd.KIND,
        "metadata": {"name": name},
        "spec": {"image": "x:1", "jobType": "persistent"},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    response = await kube_api.delete(f"/service/{name}/terminate", headers=AUTH)
    assert response.json() == {"id": name, "resource_deleted": True, "record_deleted": False}
    assert resource(cluster, namespace, name) is None


async def test_unknown_service_terminate_is_404(kube_api) -> None:
    response = await kube_api.delete(f"/service/{ObjectId()}/terminate", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["detail"].startswith("no service")


async def test_refused_resource_leaves_no_record(mongo_url, cluster, analytics_crd, records) -> None:
    settings = make_settings(mongo_url, cluster.kubeconfig, namespace="no-such-namespace")
    async with running(settings) as client:
        response = await client.post("/service/launch", json={"image": IMAGE, "sim": {}}, headers=AUTH)
    assert response.status_code == 502
    assert "Kubernetes refused the request" in response.json()["detail"]
    assert records.count_documents({}) == 0


async def test_readyz_with_everything_up(kube_api) -> None:
    response = await kube_api.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "mongodb": "ok", "kubernetes": "ok"}


# A Kubernetes outage: the API reaches the API server through a TCP relay that the test cuts and
# restores on the same port (the session's cluster keeps running for the other tests).


class Relay:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = processes.free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def stop(self) -> None:
        """Close the listening socket and cut every open connection (pooled ones included)."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


@pytest.fixture
async def relay(cluster: LocalCluster) -> AsyncIterator[Relay]:
    relay = Relay(cluster.apiserver_port)
    await relay.start()
    yield relay
    with contextlib.suppress(Exception):
        await relay.stop()


def relayed_kubeconfig(cluster: LocalCluster, relay: Relay, path: Path) -> Path:
    kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
    for entry in kubeconfig["clusters"]:
        server = entry["cluster"]["server"]
        entry["cluster"]["server"] = server.replace(f":{cluster.apiserver_port}", f":{relay.port}")
        assert entry["cluster"]["server"] != server
    path.write_text(yaml.safe_dump(kubeconfig))
    return path


async def test_kubernetes_outage_is_503_then_recovers(
    mongo_url, cluster, analytics_crd, namespace, records, relay, tmp_path
) -> None:
    kubeconfig = relayed_kubeconfig(cluster, relay, tmp_path / "relayed.yaml")
    async with running(make_settings(mongo_url, kubeconfig, namespace)) as client:
        before = await launch(client, sim={})
        assert (await client.get(f"/service/{before}/status")).status_code == 200

        await relay.stop()
        for response in (
            await client.get(f"/service/{before}/status"),
            await client.get("/service/"),
            await client.post("/service/launch", json={"image": IMAGE, "sim": {}}, headers=AUTH),
            await client.delete(f"/service/{before}/terminate", headers=AUTH),
        ):
            assert response.status_code == 503, response.text
            assert response.json()["detail"].startswith("Kubernetes is unreachable")
        assert records.count_documents({}) == 1  # the failed launch left nothing; terminate kept the record
        assert (await client.get("/readyz")).json()["kubernetes"].startswith("unreachable")

        await relay.start()
        assert (await client.get(f"/service/{before}/status")).status_code == 200
        after = await launch(client, sim={})
        assert resource(cluster, namespace, after) is not None
        assert len((await client.get("/service/")).json()) == 2
        assert (await client.get("/readyz")).status_code == 200


async def test_records_written_by_hand_never_break_a_listing(kube_api, records) -> None:
    old_id = ObjectId.from_datetime(datetime.now(UTC) - timedelta(hours=2))
    records.insert_many(
        [
            {"_id": old_id, "image": IMAGE},  # no created_at: the id's time counts
            {
                "_id": ObjectId(),
                "reps": "two",
                "output_files": [{"run": "x"}, {"run": 0, "file_id": "f", "filename": "a"}],
            },
        ]
    )
    response = await kube_api.get("/service/")
    assert response.status_code == 200
    listed = {s["id"]: s for s in response.json()}
    assert listed[str(old_id)]["status"] == "error"  # its resource has been missing for two hours
    assert listed[str(old_id)]["created_at"].startswith(old_id.generation_time.strftime("%Y-%m-%dT%H:%M"))
    broken = next(s for s in listed.values() if s["id"] != str(old_id))
    assert broken["message"] == "the services record is not readable"
    status = await kube_api.get(f"/service/{broken['id']}/status")
    assert status.status_code == 200
    assert [o["filename"] for o in status.json()["output_files"]] == ["a"]


async def test_kubernetes_list_selects_by_label_or_lists_all_for_big_pages(
    kube_api, cluster, namespace
) -> None:
    from services.api.kube import MAX_SELECTED

    launched = [await launch(kube_api, sim={}) for _ in range(3)]
    analytics = kube_api.app.state.solutions[DEFAULT_SOLUTION].analytics
    assert set(await analytics.list(launched[:2])) == set(launched[:2])
    assert await analytics.list([]) == {}
    many = [str(ObjectId()) for _ in range(MAX_SELECTED)] + launched[:1]
    assert set(await analytics.list(many)) == set(launched)  # the whole namespace, in one call
    assert set(await analytics.list()) == set(launched)
