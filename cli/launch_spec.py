"""The launch request (v1beta1 `POST /service/launch`) from a spec file, flags, or both.

The API validates the request (strictly, in v1beta1) and names the field it refuses; the CLI only
shapes what it is given: a spec file as it is, flags over it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import CliError, ExitCode

JOB_TYPES = ("ondemand", "scheduled", "persistent", "sim")


@dataclass
class LaunchFlags:
    """What the flags of `dtpoc launch` give; None and empty mean "not given"."""

    image: str | None = None
    version: str | None = None
    description: str | None = None
    port: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    mounts: dict[str, str] = field(default_factory=dict)
    job_type: str | None = None
    reps: int | None = None
    schedule: str | None = None


def read_spec(path: Path) -> dict[str, Any]:
    """A spec file: JSON when it ends in .json, otherwise YAML (of which JSON is a part)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CliError(f"cannot read the spec file {path}: {exc.strerror}", ExitCode.USAGE) from None
    try:
        spec = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        problem = " ".join(str(exc).split())
        raise CliError(f"the spec file {path} is not valid: {problem}", ExitCode.USAGE) from None
    if not isinstance(spec, dict):
        raise CliError(f"the spec file {path} must hold a mapping (image, version, ana...)", ExitCode.USAGE)
    return spec


def _kind(flags: LaunchFlags, spec: dict[str, Any]) -> dict[str, Any]:
    """The `ana` or `sim` part. A --job-type makes it anew; --reps/--schedule alone amend the spec's."""
    job_type = flags.job_type
    if job_type is None and "ana" not in spec and "sim" not in spec:
        job_type = "ondemand"  # the common case, as the API documents it
    if job_type is not None:
        for name in ("ana", "sim"):
            spec.pop(name, None)
        spec["sim" if job_type == "sim" else "ana"] = {} if job_type == "sim" else {"job_type": job_type}
    kind_name = "sim" if "sim" in spec else "ana"
    kind: Any = spec.get(kind_name)
    if isinstance(kind, dict):
        kind = dict(kind)
        if flags.reps is not None:
            kind["reps"] = flags.reps
        if flags.schedule is not None:
            kind["schedule"] = flags.schedule
    return {kind_name: kind}


def launch_request(flags: LaunchFlags, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """The request body: the spec (if any), the flags given over it (env and mounts merged in)."""
    body = dict(spec or {})
    for name in ("image", "version", "description", "port"):
        value = getattr(flags, name)
        if value is not None:
            body[name] = value
    for name, given in (("env", flags.env), ("mount_files", flags.mounts)):
        if given:
            present = body.get(name)
            body[name] = {**(present if isinstance(present, dict) else {}), **given}
    body.update(_kind(flags, body))
    if "image" not in body:
        raise CliError("give --image, or a spec file (-f) with an image", ExitCode.USAGE)
    return body


def key_values(pairs: tuple[str, ...], flag: str, form: str) -> dict[str, str]:
    """`K=V` pairs (a repeated flag) as a mapping; a pair without `=` is a usage error."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"{flag} {pair!r} is not of the form {form}", ExitCode.USAGE)
        result[key] = value
    return result
