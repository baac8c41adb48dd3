"""The commands against a live API (no operator here: launched services stay pending)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from localdev.cluster import LocalCluster
from services.shared import crd
from tests.live_api import LiveApi

from .conftest import Dtpoc, api_bytes

pytestmark = [pytest.mark.cluster, pytest.mark.mongo]


def test_upload_shows_progress_then_says_the_content_was_already_stored(dtpoc: Dtpoc, tmp_path: Path) -> None:
    data = tmp_path / "scenario.xlsx"
    data.write_bytes(os.urandom(3_000_000))

    first = dtpoc.ok("files", "upload", data)
    stored_id = first.stdout.split()[1]
    assert first.stdout.strip() == f"stored {stored_id} (scenario.xlsx, 3.0 MB)"
    assert "upload scenario.xlsx" in first.stderr and "3.0/3.0 MB" in first.stderr  # the finished bar
    assert api_bytes(dtpoc.url, stored_id) == data.read_bytes()

    again = dtpoc.ok("files", "upload", data)
    assert again.stdout.startswith(f"already stored: {stored_id} has the same content")
    answer = dtpoc.json("files", "upload", data)
    assert (answer["id"], answer["duplicate"], answer["length"]) == (stored_id, True, 3_000_000)


def test_files_ls_get_and_rm(dtpoc: Dtpoc, tmp_path: Path) -> None:
    data = tmp_path / "my input [v2].csv"
    data.write_bytes(b"a,b\n1,2\n" * 1000)
    file_id = dtpoc.json("files", "upload", data)["id"]

    listed = dtpoc.json("files", "ls", "--limit", "1000")
    mine = next(item for item in listed if item["id"] == file_id)
    assert (mine["filename"], mine["length"]) == ("my input [v2].csv", 8000)
    table = dtpoc.ok("files", "ls", "--limit", "1000").stdout
    assert any(file_id in line and "my input [v2].csv" in line for line in table.splitlines())

    # Into a folder: the stored name; to a path: that path.
    folder = tmp_path / "downloads"
    folder.mkdir()
    got = dtpoc.json("files", "get", file_id, "-o", folder)
    assert Path(got["path"]) == folder / "my input [v2].csv"
    assert (folder / "my input [v2].csv").read_bytes() == data.read_bytes()
    dtpoc.ok("files", "get", file_id, "-o", tmp_path / "copy.csv")
    assert (tmp_path / "copy.csv").read_bytes() == data.read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["my input [v2].csv"]  # no partial file left

    assert dtpoc.ok("files", "rm", file_id).stdout.strip() == f"deleted {file_id}"
    assert file_id not in {item["id"] for item in dtpoc.json("files", "ls", "--limit", "1000")}


def test_launch_from_a_yaml_spec_then_ls_status_and_terminate(
    dtpoc: Dtpoc, cli_api: LiveApi, cluster: LocalCluster, tmp_path: Path
) -> None:
    data = tmp_path / "input.xlsx"
    data.write_bytes(os.urandom(10_000))
    file_id = dtpoc.json("files", "upload", data)["id"]
    spec = tmp_path / "study.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "image": "example.org/hospital-lab",
                "version": "1.2",
                "description": "baseline scenario",
                "mount_files": {file_id: "input.xlsx"},
                "env": {"SCENARIO": "baseline"},
                "ana": {"job_type": "ondemand", "reps": 2},
            }
        )
    )
    launched = dtpoc.ok("launch", "-f", spec, "--env", "SEED=7")
    service_id = launched.stdout.split()[1]
    assert launched.stdout.strip() == f"launched {service_id}"

    listed = dtpoc.json("ls", "--limit", "1000")
    mine = next(item for item in listed if item["id"] == service_id)
    assert (mine["image"], mine["version"], mine["reps"], mine["status"]) == (
        "example.org/hospital-lab",
        "1.2",
        2,
        "pending",
    )
    assert any(service_id in line and "pending" in line for line in dtpoc.ok("ls").stdout.splitlines())

    status = dtpoc.json("status", service_id)
    assert (status["id"], status["job_type"], status["total"], status["output_files"]) == (
        service_id,
        "ondemand",
        2,
        [],
    )
    view = dtpoc.ok("status", service_id).stdout
    assert service_id in view and "baseline scenario" in view and "example.org/hospital-lab:1.2" in view

    # The spec's env and the flag's, as the cluster got them.
    resource = json.loads(
        cluster.kubectl("get", crd.PLURAL, service_id, "-n", cli_api.namespace, "-o", "json").stdout
    )
    assert resource["spec"]["env"] == {"SCENARIO": "baseline", "SEED": "7"}

    terminated = dtpoc.json("terminate", service_id)
    assert terminated == {"id": service_id, "resource_deleted": True, "record_deleted": True}
    assert service_id not in {item["id"] for item in dtpoc.json("ls", "--limit", "1000")}


def test_launch_from_flags(dtpoc: Dtpoc, cli_api: LiveApi, cluster: LocalCluster, tmp_path: Path) -> None:
    data = tmp_path / "beds.csv"
    data.write_bytes(b"ward,beds\nA,12\n")
    file_id = dtpoc.json("files", "upload", data)["id"]
    launched = dtpoc.json(
        "launch", "--image", "example.org/probe", "--version", "3", "--env", "MODE=fast",
        "--mount", f"{file_id}=beds.csv", "--job-type", "scheduled", "--reps", "1",
        "--schedule", "*/5 * * * *",
    )  # fmt: skip
    resource = json.loads(
        cluster.kubectl("get", crd.PLURAL, launched["id"], "-n", cli_api.namespace, "-o", "json").stdout
    )
    spec = resource["spec"]
    assert (spec["image"], spec["jobType"], spec["reps"], spec["schedule"], spec["env"]) == (
        "example.org/probe:3",
        "scheduled",
        1,
        "*/5 * * * *",
        {"MODE": "fast"},
    )
    dtpoc.ok("terminate", launched["id"])


def test_wait_gives_up_with_exit_code_2(dtpoc: Dtpoc) -> None:
    # No operator runs for this API: the service stays pending.
    service_id = dtpoc.json("launch", "--image", "example.org/probe", "--reps", "1")["id"]
    result = dtpoc("wait", service_id, "--timeout", "1", "--interval", "0.2")
    assert result.returncode == 2, result.stderr
    assert result.stdout.strip().startswith(f"{service_id} pending")
    assert result.stderr.strip() == "timed out after 1 s; the service is pending"
    dtpoc.ok("terminate", service_id)
