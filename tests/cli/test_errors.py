"""Failures as a user meets them: one line on stderr naming the problem, a non-zero exit, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from localdev import processes

from .conftest import READ_TOKEN, TOKEN, Dtpoc, one_error_line

pytestmark = [pytest.mark.cluster, pytest.mark.mongo]

UNKNOWN_ID = "0123456789abcdef01234567"


def test_a_wrong_token_is_not_authorised(dtpoc: Dtpoc, tmp_path: Path) -> None:
    data = tmp_path / "input.csv"
    data.write_bytes(b"x,y\n" * 100_000)
    # Reads need a token as much as changes do (the CLI sends it on every request).
    commands = [
        ("launch", "--image", "example.org/probe"),
        ("files", "rm", UNKNOWN_ID),
        ("files", "upload", data),
        ("ls",),
        ("files", "ls"),
        ("status", UNKNOWN_ID),
    ]
    for command in commands:
        line = one_error_line(dtpoc(*command, DTPOC_TOKEN="not-the-token"))
        assert line.startswith("dtpoc: error: not authorised: set DTPOC_TOKEN"), line


def test_the_read_token_reads_but_may_not_change(dtpoc: Dtpoc) -> None:
    reader = Dtpoc(dtpoc.url, dtpoc.home, token=READ_TOKEN)
    assert isinstance(reader.json("ls"), list)
    assert isinstance(reader.json("files", "ls"), list)
    for command in (("launch", "--image", "example.org/probe"), ("files", "rm", UNKNOWN_ID)):
        result = reader(*command)
        assert result.returncode == 3
        assert one_error_line(result).startswith("dtpoc: error: forbidden: the token may not do this"), result


def test_no_token_at_all_is_not_authorised(dtpoc: Dtpoc) -> None:
    line = one_error_line(Dtpoc(dtpoc.url, dtpoc.home, token=None)("launch", "--image", "example.org/probe"))
    assert "not authorised" in line and "a bearer token is required" in line


def test_an_unknown_id_is_not_found(dtpoc: Dtpoc) -> None:
    for command, what in (("status", "service"), ("terminate", "service"), ("outputs", "service")):
        result = dtpoc(command, UNKNOWN_ID)
        assert result.returncode == 3
        assert one_error_line(result) == f"dtpoc: error: not found: no {what} {UNKNOWN_ID}"
    for command in ("get", "rm"):
        assert (
            one_error_line(dtpoc("files", command, UNKNOWN_ID))
            == f"dtpoc: error: not found: no file {UNKNOWN_ID}"
        )


def test_a_bad_launch_names_the_field(dtpoc: Dtpoc, tmp_path: Path) -> None:
    line = one_error_line(dtpoc("launch", "--image", "example.org/probe", "--reps", "0"))
    assert line.startswith("dtpoc: error: invalid request: ana.reps: "), line
    line = one_error_line(dtpoc("launch", "--image", "example.org/probe:1"))
    assert line.startswith("dtpoc: error: invalid request: image: "), line
    spec = tmp_path / "typo.json"
    spec.write_text('{"image": "example.org/probe", "sim": {"reps": 2}, "enviroment": {}}')
    line = one_error_line(dtpoc("launch", "-f", spec))
    assert "invalid request" in line and "enviroment" in line, line


def test_the_api_down_names_its_url(dtpoc: Dtpoc) -> None:
    url = f"http://127.0.0.1:{processes.free_port()}/api/orchestrator/v1beta1"
    result = dtpoc("ls", DTPOC_URL=url)
    assert result.returncode == 3
    line = one_error_line(result)
    assert line.startswith(f"dtpoc: error: cannot reach the API at {url}: "), line
    assert "refused" in line.lower()


def test_bad_usage_is_one_line_with_exit_code_4(dtpoc: Dtpoc, tmp_path: Path) -> None:
    assert "NAME=VALUE" in one_error_line(dtpoc("launch", "--image", "x.org/m", "--env", "NOEQUALS"))
    missing = one_error_line(dtpoc("launch", "-f", tmp_path / "nowhere.yaml"))
    assert "nowhere.yaml" in missing
    assert dtpoc("launch", "-f", tmp_path / "nowhere.yaml").returncode == 4
    assert "No such command" in one_error_line(dtpoc("lunch"))


def test_settings_flags_over_environment_over_config_file(dtpoc: Dtpoc, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    config = tmp_path / "config.toml"
    config.write_text(f'url = "{dtpoc.url}"\ntoken_file = "{token_file}"\n')
    bare = Dtpoc(None, dtpoc.home, token=None, extra_env={"DTPOC_CONFIG": str(config)})
    # Whether a token was sent and which: with the right one, terminating an unknown id is a 404.
    right, wrong = "not found", "not authorised"
    # The config file alone (DTPOC_CONFIG).
    assert right in one_error_line(bare("terminate", UNKNOWN_ID))
    # The environment beats the config file; a flag beats the environment.
    assert wrong in one_error_line(bare("terminate", UNKNOWN_ID, DTPOC_TOKEN="wrong"))
    assert right in one_error_line(bare("--token", TOKEN, "terminate", UNKNOWN_ID, DTPOC_TOKEN="wrong"))
    assert wrong in one_error_line(bare("--token", "wrong", "terminate", UNKNOWN_ID))
    # A URL without a path gets the v1beta1 path.
    host = (dtpoc.url or "").removesuffix("/api/orchestrator/v1beta1")
    assert bare.ok("--url", host, "ls", DTPOC_URL="http://127.0.0.1:1")
    assert "127.0.0.1:1/" in one_error_line(bare("ls", DTPOC_URL="http://127.0.0.1:1"))
    # The default place of the config file: $XDG_CONFIG_HOME/dtpoc/config.toml.
    bare.extra_env = {}
    assert wrong in one_error_line(bare("terminate", UNKNOWN_ID, DTPOC_URL=dtpoc.url or ""))
    (dtpoc.home / ".config" / "dtpoc").mkdir(parents=True)
    (dtpoc.home / ".config" / "dtpoc" / "config.toml").write_text(config.read_text())
    assert right in one_error_line(bare("terminate", UNKNOWN_ID))
    (dtpoc.home / ".config" / "dtpoc" / "config.toml").write_text('url = "http://x"\ntokn = "typo"\n')
    assert "tokn" in one_error_line(bare("ls"))
