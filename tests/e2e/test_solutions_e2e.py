"""DT solutions on the real node (issue 13): the local stack's example solution `lab` beside the default one.

The same operator and API serve both: the lab's module runs in the lab's namespace from the lab's files;
neither solution's token reaches the other's files, services or outputs; the lab's ResourceQuota holds
its runs (Kubernetes' refusal in the service's status) while the default solution goes on; and the lab's
module pods take no traffic from another solution's pods (enforced on the node).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import httpx

from tests.e2e.conftest import Platform
from tests.e2e.test_platform_e2e import ENFORCER_SYNCED, image_and_version, probe_pod_report
from tests.kubectl import get_object
from tests.polling import eventually

LAB = "lab"
ONE_RUN = {"job_type": "ondemand", "reps": 1}


@dataclass
class SolutionClient:
    """The API as one solution's admin sees it: its paths (`/solutions/<name>/...`) and its token."""

    api: httpx.Client
    prefix: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.api.get(f"{self.prefix}{path}", headers=self.auth, **options)

    def post(self, path: str, **options: Any) -> httpx.Response:
        return self.api.post(f"{self.prefix}{path}", headers=self.auth, **options)

    def delete(self, path: str) -> httpx.Response:
        return self.api.delete(f"{self.prefix}{path}", headers=self.auth)

    def launch(self, body: dict[str, Any]) -> str:
        response = self.post("/service/launch", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def status(self, sid: str) -> dict[str, Any]:
        response = self.get(f"/service/{sid}/status")
        assert response.status_code == 200, response.text
        return dict(response.json())


def solution(platform: Platform, name: str) -> SolutionClient:
    tokens = json.loads((platform.state_dir / "secrets.json").read_text())
    return SolutionClient(platform.api, f"/solutions/{name}", tokens[f"solutionTokens.{name}.admin"])


def default_solution(platform: Platform) -> SolutionClient:
    return SolutionClient(platform.api, "", platform.token)


def lab_namespace(platform: Platform) -> str:
    return str(platform.outputs["solutions"][LAB])


def probe(platform: Platform, **env: str) -> dict[str, Any]:
    image, version = image_and_version(platform.outputs["images"]["probe"])
    return {"image": image, "version": version, "description": "solutions e2e", "env": env}


def test_the_lab_runs_its_module_in_its_namespace_from_its_own_files(platform: Platform) -> None:
    lab = solution(platform, LAB)
    content = b"ward,beds\nA,12\n"
    uploaded = lab.post("/files/upload", files={"file": ("beds.csv", content)})
    assert uploaded.status_code in (200, 201), uploaded.text  # 200: already stored (a rerun)
    file_id = uploaded.json()["id"]
    sid = lab.launch(
        {**probe(platform, PROBE_MODE="write"), "mount_files": {file_id: "beds.csv"}, "ana": ONE_RUN}
    )
    eventually(lambda: lab.status(sid)["status"] == "ok", 180, "the lab's run")
    report = lab.get(f"/service/{sid}/output/0").json()
    # The module read the lab's file from the lab's volume, ran as the platform's uid, in the lab's pods.
    assert report["inputs"]["beds.csv"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert report["service_id"] == sid and report["uid"] == 10001
    assert get_object(platform.kubectl, "analytics", sid) is None  # not in the platform's namespace
    resource = get_object(
        lambda *a, **k: platform.kubectl(*a, namespace=lab_namespace(platform), **k), "analytics", sid
    )
    assert resource is not None and resource["status"]["phase"] == "Succeeded"


def test_one_solutions_token_reaches_nothing_of_anothers(platform: Platform) -> None:
    lab, default = solution(platform, LAB), default_solution(platform)
    lab_file = lab.post("/files/upload", files={"file": ("lab-only.txt", b"lab secret")}).json()["id"]
    default_file = default.post("/files/upload", files={"file": ("mine.txt", b"default's")}).json()["id"]
    lab_sid = lab.launch({**probe(platform, PROBE_MODE="write"), "ana": ONE_RUN})
    eventually(lambda: lab.status(lab_sid)["status"] == "ok", 180, "the lab's run")
    before = (
        lab.get("/files/").json(),
        lab.get("/service/").json(),
        lab.get(f"/service/{lab_sid}/status").json(),
    )

    # The default admin on the lab's paths: 403, whatever the request.
    intruder = SolutionClient(platform.api, f"/solutions/{LAB}", platform.token)
    for response in (
        intruder.get("/files/"),
        intruder.get(f"/files/{lab_file}"),
        intruder.get("/service/"),
        intruder.get(f"/service/{lab_sid}/status"),
        intruder.get(f"/service/{lab_sid}/output/0"),
        intruder.post("/service/launch", json={**probe(platform, PROBE_MODE="write"), "ana": ONE_RUN}),
        intruder.delete(f"/files/{lab_file}"),
        intruder.delete(f"/service/{lab_sid}/terminate"),
    ):
        assert response.status_code == 403, (response.request.url, response.text)
    # The lab's token on the default solution's paths: 403 too.
    lab_on_default = SolutionClient(platform.api, "", lab.token)
    assert lab_on_default.get("/files/").status_code == 403
    assert lab_on_default.get(f"/files/{default_file}").status_code == 403

    # Guessing the lab's ids on the default solution's own paths: nothing there (404), and the lab's file
    # cannot be mounted into a default service (nothing launched).
    assert lab_file not in {f["id"] for f in default.get("/files/").json()}
    for path in (f"/files/{lab_file}", f"/service/{lab_sid}/status", f"/service/{lab_sid}/output/0"):
        assert default.get(path).status_code == 404, path
    assert default.delete(f"/files/{lab_file}").status_code == 404
    assert default.delete(f"/service/{lab_sid}/terminate").status_code == 404
    services_before = len(default.get("/service/", params={"limit": 1000}).json())
    mounted = default.post(
        "/service/launch",
        json={**probe(platform, PROBE_MODE="write"), "mount_files": {lab_file: "x.txt"}, "ana": ONE_RUN},
    )
    assert 400 <= mounted.status_code < 500, mounted.text
    assert len(default.get("/service/", params={"limit": 1000}).json()) == services_before

    # Nothing of the lab's changed.
    after = (
        lab.get("/files/").json(),
        lab.get("/service/").json(),
        lab.get(f"/service/{lab_sid}/status").json(),
    )
    assert after == before
    assert lab.get(f"/files/{lab_file}").content == b"lab secret"


def _quota_full(platform: Platform) -> bool:
    namespace = lab_namespace(platform)
    quota = json.loads(platform.kubectl("get", "resourcequota", "-o", "json", namespace=namespace).stdout)
    for item in quota["items"]:
        status = item.get("status") or {}
        hard, used = status.get("hard") or {}, status.get("used") or {}
        if any(used.get(key) == value for key, value in hard.items() if key.startswith("limits.")):
            return True
    return False


def test_the_labs_quota_holds_its_runs_and_not_the_default_solutions(platform: Platform) -> None:
    """Runs that fill the lab's quota (its limits), then one more: it waits Pending with Kubernetes' refusal
    in its status, never half-made; a default-solution run launched meanwhile completes; once room is
    made, the waiting run runs too."""
    lab, default = solution(platform, LAB), default_solution(platform)
    sleepers: list[str] = []
    while not _quota_full(platform):
        assert len(sleepers) < 6, "the lab's quota should be full after a few runs"
        sid = lab.launch({**probe(platform, PROBE_MODE="sleep", PROBE_SECONDS="45"), "ana": ONE_RUN})
        sleepers.append(sid)
        eventually(
            lambda sid=sid: lab.status(sid)["active"] == 1 or _quota_full(platform), 120, f"{sid} runs"
        )
    extra = lab.launch({**probe(platform, PROBE_MODE="write"), "ana": ONE_RUN})
    mine = default.launch({**probe(platform, PROBE_MODE="write"), "ana": ONE_RUN})

    waiting = eventually(lambda: (s := lab.status(extra))["message"] and s, 90, "the refusal in the status")
    assert waiting["status"] == "pending", waiting
    assert "exceeded quota" in waiting["message"], waiting
    refused = next(c for c in waiting["conditions"] if c["type"] == "PodsCreated")
    assert (refused["status"], refused["reason"]) == ("False", "FailedCreate")
    eventually(lambda: default.status(mine)["status"] == "ok", 180, "the default solution's run")
    assert lab.status(extra)["status"] in ("pending", "running")  # still held while the sleepers run

    eventually(lambda: lab.status(extra)["status"] == "ok", 300, "the held run, once room is made")
    for sid in sleepers:
        eventually(lambda sid=sid: lab.status(sid)["status"] == "ok", 120, f"sleeper {sid}")


def test_the_labs_module_pods_take_no_traffic_from_another_solution(platform: Platform) -> None:
    """A lab module's Service, asked by a bare pod of the default solution's namespace: refused (the lab's
    ingress is closed but to the ingress controller's namespace); asked from that namespace: answered."""
    lab = solution(platform, LAB)
    sid = lab.launch({**probe(platform, PROBE_MODE="serve"), "port": 8080, "ana": {"job_type": "persistent"}})
    eventually(
        lambda: lab.status(sid)["status"] == "running" and lab.status(sid)["active"] == 1, 180, "lab web"
    )
    target = f"ana-{sid}.{lab_namespace(platform)}.svc:8080"
    env = {"PROBE_MODE": "connect", "PROBE_TARGET": target, "PROBE_ATTEMPTS": "2", **ENFORCER_SYNCED}

    from_default = probe_pod_report(platform, "policy-cross-solution", env)["targets"][target]
    assert from_default["address"], from_default  # the name resolves
    assert from_default["ok"] is False, from_default

    controller = platform.outputs.get("ingress_controller_namespace", "ingress-nginx")
    platform.kubectl("create", "namespace", controller, check=False)
    from_controller = probe_pod_report(platform, "policy-from-controller", env, namespace=controller)
    assert from_controller["targets"][target]["ok"] is True, from_controller
    assert lab.delete(f"/service/{sid}/terminate").status_code == 200
