"""The probe module (tests/modules/probe) does what each PROBE_MODE promises, run as its image runs it."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

PROBE = Path(__file__).with_name("probe") / "probe.py"


def run_probe(tmp_path: Path, mode: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PROBE_MODE": mode, "OUTPUT_FOLDER": str(tmp_path / "out"), "INPUT_FOLDER": str(tmp_path / "in")}
    return subprocess.run(
        [sys.executable, str(PROBE)], env={**base, **env}, capture_output=True, text=True, timeout=60
    )


def written(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "out" / "probe.json").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_write_reports_the_run_its_environment_and_inputs(tmp_path: Path) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "input.xlsx").write_bytes(b"workbook")
    (tmp_path / "in" / "sub" / "b.csv").write_bytes(b"a,b\n")
    done = run_probe(
        tmp_path, "write", RUN_ID="job-1", RUN_INDEX="1", MONGODB_PASSWORD="s3cret-value", X="$(Y)"
    )
    assert done.returncode == 0, done.stderr
    report = written(tmp_path)
    assert (report["run_id"], report["run_index"]) == ("job-1", "1")
    assert report["env"]["X"] == "$(Y)"
    assert report["env"]["MONGODB_PASSWORD"] == "sha256:" + hashlib.sha256(b"s3cret-value").hexdigest()
    assert "s3cret-value" not in (tmp_path / "out" / "probe.json").read_text()
    assert report["inputs"] == {
        "input.xlsx": {"size": 8, "sha256": hashlib.sha256(b"workbook").hexdigest()},
        "sub/b.csv": {"size": 4, "sha256": hashlib.sha256(b"a,b\n").hexdigest()},
    }


def test_fail_exits_1_with_its_message_on_stderr(tmp_path: Path) -> None:
    done = run_probe(tmp_path, "fail", PROBE_MESSAGE="the model diverged")
    assert done.returncode == 1
    assert "the model diverged" in done.stderr
    assert not (tmp_path / "out").exists()


def test_many_writes_the_files_asked_for_some_in_subfolders(tmp_path: Path) -> None:
    assert run_probe(tmp_path, "many", PROBE_FILES="40", RUN_INDEX="3").returncode == 0
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert len(files) == 40
    assert len({p.parent for p in files}) == 8  # the folder itself and part_0..part_6
    assert len({p.read_text() for p in files}) == 40


def test_sleep_writes_after_its_pause(tmp_path: Path) -> None:
    assert run_probe(tmp_path, "sleep", PROBE_SECONDS="0.1", RUN_INDEX="2").returncode == 0
    assert written(tmp_path)["run_index"] == "2"


def test_lines_prints_its_lines_one_by_one_then_writes(tmp_path: Path) -> None:
    env = {"PROBE_MODE": "lines", "PROBE_LINES": "3", "PROBE_INTERVAL": "0.1", "RUN_INDEX": "1",
           "OUTPUT_FOLDER": str(tmp_path / "out"), "INPUT_FOLDER": str(tmp_path / "in")}  # fmt: skip
    printer = subprocess.Popen([sys.executable, str(PROBE)], env=env, stdout=subprocess.PIPE, text=True)
    assert printer.stdout is not None
    assert printer.stdout.readline().startswith("probe: mode lines")
    assert printer.stdout.readline() == "probe: line 1 of 3\n"
    assert printer.stdout.read() == "probe: line 2 of 3\nprobe: line 3 of 3\n"
    assert printer.wait(timeout=30) == 0
    assert written(tmp_path)["run_index"] == "1"


def test_serve_answers_get_with_json(tmp_path: Path) -> None:
    port = free_port()
    env = {"PROBE_MODE": "serve", "PORT": str(port), "RUN_ID": "web-0"}
    server = subprocess.Popen([sys.executable, str(PROBE)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert "serving on port" in server.stdout.readline() + server.stdout.readline()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/some/path", timeout=10) as answer:
            assert answer.headers["Content-Type"] == "application/json"
            body = json.loads(answer.read())
        assert (body["run_id"], body["path"]) == ("web-0", "/some/path")
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_connect_reports_which_targets_answered(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        open_target = f"127.0.0.1:{listener.getsockname()[1]}"
        closed_target = f"localhost:{free_port()}"
        done = run_probe(
            tmp_path, "connect", PROBE_TARGET=f"{open_target}, {closed_target}", PROBE_ATTEMPTS="2"
        )
    assert done.returncode == 0, done.stderr
    targets = written(tmp_path)["targets"]
    assert targets[open_target]["ok"] is True
    assert targets[closed_target]["ok"] is False
    assert "ConnectionRefused" in targets[closed_target]["error"]
    assert targets[closed_target]["address"] == "127.0.0.1"


def test_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    done = run_probe(tmp_path, "dance")
    assert done.returncode == 2
    assert "unknown PROBE_MODE 'dance'" in done.stderr
