"""The original dtpoc platform's contract, written down from its developer documentation and its code
(not from this platform's models): what its clients send, what they get back, and how it wrote its
records and files. The compatibility tests hold the platform to this.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime
from types import NoneType
from typing import Any

import gridfs
from bson import ObjectId

PATH = "/api/orchestrator/v1alpha1"

# The launch body of the original's own OpenAPI examples (ServiceLaunchRequest): an ondemand analytics
# job without reps, with the example port (its docs: "ignored for components that are not exposed").
# `mount_files` names a file the test uploads first.
LAUNCH_EXAMPLE: dict[str, Any] = {
    "image": "ghcr.io/cam-digital-hospitals/ana-hpath-sim",
    "version": "latest",
    "description": "An analytics module that uses the Histopathology BIM runner times to simulate "
    "sample flow and reports KPIs",
    "port": 8000,
    "env": {"INPUT_EXCEL_FILE": "/input/hpath_sim_input.xlsx", "OUTPUT_FOLDER": "/output"},
    "mount_files": {"668481b1af010b6fdc495b6c": "hpath_sim_input.xlsx"},
    "ana": {"job_type": "ondemand"},
}
# The same, as the original's docs page (Swagger UI) fills it in: `sim` has no example, so it comes as
# an empty object next to `ana` (the original counted only non-empty ones).
LAUNCH_EXAMPLE_FROM_DOCS_PAGE: dict[str, Any] = {**LAUNCH_EXAMPLE, "sim": {}}

# The service object of the developer documentation ("Expected Service Object"), as a launch body.
DOCS_SERVICE: dict[str, Any] = {
    "image": "ghcr.io/cam-digital-hospitals/digital-hosp-des",
    "version": "latest",
    "description": "An analytics module that uses the Histopathology BIM runner times to simulate sample "
    "flow and reports KPIs",
    "mount_files": {"669a4eee364a1b751c550b02": "input.xlsx"},
    "env": {
        "INPUT_EXCEL_FILE": "/input/input.xlsx",
        "OUTPUT_FOLDER": "/output",
        "SIM_HOURS": "1176",
        "NUM_REPS": "2",
    },
    "ana": {"job_type": "ondemand", "reps": 2},
}

# What each endpoint answers: field → JSON type(s). Additions are allowed; these must be there.
HEALTH = {"status": str}
UPLOADED = {"file_id": str, "filename": str}
DUPLICATE = {"file_id": str, "filename": str, "message": str}
FILE_ITEM = {"file_id": str, "filename": str, "length": int, "uploadDate": str, "metadata": (dict, NoneType)}
FILE_DELETED = {"message": str}
LAUNCHED = {"id": str}
SERVICE_ITEM = {
    "id": str,
    "image": str,
    "version": str,
    "description": str,
    "reps": (int, NoneType),
    "mount_files": (dict, NoneType),
    "output_files": (dict, NoneType),
    "created_at": (float, int),
    "active_runs": int,
    "succeeded_runs": int,
    "failed_runs": int,
    "total_runs": int,
    "status": str,
}
STATUS = {
    "active_runs": int,
    "succeeded_runs": int,
    "failed_runs": int,
    "total_runs": int,
    "status": str,
    "output_files": list,
}
TERMINATED = {"message": str}
# `pending` is this platform's: the original said `error` until a run started.
STATES = {"ok", "running", "error", "pending"}


def assert_shape(body: Any, shape: dict[str, Any]) -> None:
    """`body` is an object with every field of `shape`, each of its JSON type (bool is not an int)."""
    assert isinstance(body, dict), body
    for name, kinds in shape.items():
        assert name in body, f"{name!r} missing from {body}"
        value = body[name]
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        assert isinstance(value, kinds) and not isinstance(value, bool), f"{name}={value!r}: not {kinds}"


def parse_upload_date(value: str) -> datetime:
    """The original's `uploadDate`: ISO 8601, UTC, without an offset (its clients parse it so)."""
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is None, value
    return parsed


# -- as the original wrote its data --------------------------------------------------------------------


def md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()  # noqa: S324 - the original's content key


def store_file(files_db: Any, filename: str, content: bytes) -> ObjectId:
    """A file as the original's upload stored it: GridFS defaults (255 KiB chunks), `metadata.hash` the
    MD5 of the content, nothing else."""
    bucket = gridfs.GridFSBucket(files_db)
    return bucket.upload_from_stream(filename, content, metadata={"hash": md5(content)})


def service_record(
    image: str,
    version: str = "latest",
    description: str = "",
    mount_files: dict[str, str] | None = None,
    reps: int | None = None,
    env: dict[str, str] | None = None,
    output_files: dict[str, str] | None = None,
    created_at: float | None = None,
) -> dict[str, Any]:
    """A services record as the original's launch wrote it (null for what a launch left out, `reps`
    null for persistent, `created_at` from time.time()), with the `{file_id: name}` map its operator
    added once outputs were uploaded (absent before)."""
    record: dict[str, Any] = {
        "image": image,
        "version": version,
        "description": description,
        "mount_files": mount_files,
        "reps": reps,
        "env": env,
        "created_at": time.time() if created_at is None else created_at,
    }
    if output_files is not None:
        record["output_files"] = output_files
    return record
