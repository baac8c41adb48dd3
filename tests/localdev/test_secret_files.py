"""Files holding secrets (the Pulumi passphrase, the generated stack secrets) are the owner's only from the
moment they exist: made with mode 0600, never written first and narrowed after."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from localdev import pulumi as localdev_pulumi
from localdev.pulumi import PulumiWorkspace
from localdev.tools import Tools


@pytest.fixture
def no_chmod(monkeypatch: pytest.MonkeyPatch):
    """Permissions as the file was created: a later chmod (the old way to narrow them) does nothing, as if
    the process had died between the write and the chmod, or someone read the file in between."""
    monkeypatch.setattr(Path, "chmod", lambda *_a, **_k: None)
    monkeypatch.setattr(os, "chmod", lambda *_a, **_k: None)
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_passphrase_file_is_created_private(tmp_path: Path, no_chmod: None) -> None:
    PulumiWorkspace.create(Tools({}), tmp_path)
    passphrase = tmp_path / "passphrase"
    assert mode(passphrase) == 0o600, oct(mode(passphrase))
    assert len(passphrase.read_text()) >= 24
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_write_private_replaces_and_stays_private(tmp_path: Path, no_chmod: None) -> None:
    target = tmp_path / "secrets.json"
    target.write_text("old")  # 0644, as a file written the old way
    localdev_pulumi.write_private(target, '{"apiToken": "x"}')
    assert target.read_text() == '{"apiToken": "x"}'
    assert mode(target) == 0o600
