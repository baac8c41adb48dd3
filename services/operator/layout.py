"""Where a service's files live on the platform's data volume.

The operator mounts the data volume (PVC `OPERATOR_DATA_PVC`) at `OPERATOR_OUTPUT_ROOT`; run pods
mount sub-paths of the same PVC. A DT solution other than the default has a PVC of that name in its own
namespace whose root is the folder `solutions/<name>` of the volume: `root` below is that folder as the
operator sees it (`Runtime.output_root`), and the sub-paths are relative to it. Per service (`<sid>` =
the Analytics resource's name, the services record's `_id`):

    <sid>/input/<filename>              mount_files, downloaded from GridFS by the operator before
                                        the workload is made; run pods see it read-only at /input
    <sid>/runs/<idx>/...                ondemand: run idx's /output (subPathExpr
                                        `<sid>/runs/$(RUN_INDEX)`, RUN_INDEX = the Job's completion
                                        index); collected as run idx
    <sid>/runs/<job-name>/<idx>/...     scheduled: /output of index idx of the Job <job-name> that
                                        the CronJob started; collected as run `base(job) + idx`, where
                                        each Job gets the next free block of run numbers in the record
                                        (`run_bases`), in the order the Jobs finish (one at a time:
                                        concurrencyPolicy Forbid)
    <sid>/runs/0/...                    persistent: its /output, kept across pod restarts; a
                                        persistent service never finishes a run, so nothing is
                                        collected from it
    <sid>/input/<scenario>/<filename>   study: each scenario's inputs (the service's mount_files
                                        and the scenario's own), at /input of its runs
    <sid>/runs/<job-name>/<r>/...       study: /output of replication r of the scenario whose Job
                                        is <job-name> (`ana-<sid>-<k>`, the scheduled layout);
                                        collected as run k*reps + r

The directories are made by the operator before the pods that use them exist, except for the Jobs of
a CronJob, whose directories the operator makes as soon as it sees the Job. They are open to the
operator's user and group only (run folders 2770: the setgid bit keeps what modules write in the
group; inputs 0750 / 0640): run pods run with that group (OPERATOR_RUN_GROUP, also their fsGroup),
so a module can write its output and read its inputs, and nothing else on the node can. The volume's contents
are left in place when a resource is deleted: collected outputs live on in GridFS, and what was not
collected can still be inspected.
"""

from __future__ import annotations

import os
from pathlib import Path

INPUT = "input"
RUNS = "runs"
PERSISTENT_RUN = 0


def service_dir(root: Path, sid: str) -> Path:
    return root / sid


def input_dir(root: Path, sid: str) -> Path:
    return root / sid / INPUT


def scenario_input_dir(root: Path, sid: str, scenario: str) -> Path:
    return root / sid / INPUT / scenario


def run_dir(root: Path, sid: str, index: int, job_name: str | None = None) -> Path:
    """The output directory of run `index` (of the Job `job_name` for a scheduled service)."""
    runs = root / sid / RUNS
    return (runs / job_name / str(index)) if job_name else runs / str(index)


def input_sub_path(sid: str) -> str:
    return f"{sid}/{INPUT}"


def scenario_input_sub_path(sid: str, scenario: str) -> str:
    return f"{sid}/{INPUT}/{scenario}"


def ondemand_output_sub_path_expr(sid: str) -> str:
    return f"{sid}/{RUNS}/$(RUN_INDEX)"


def scheduled_output_sub_path_expr(sid: str) -> str:
    """Also a study's: each of its Jobs has its own folder of runs, like each Job of a CronJob."""
    return f"{sid}/{RUNS}/$(JOB_NAME)/$(RUN_INDEX)"


def persistent_output_sub_path(sid: str) -> str:
    return f"{sid}/{RUNS}/{PERSISTENT_RUN}"


RUN_DIR_MODE = 0o2770  # owner and the shared group; new files and folders inherit the group
INPUT_DIR_MODE = 0o750
INPUT_FILE_MODE = 0o640


def make_writable_dir(path: Path) -> None:
    """Make `path` (and its parents) writable by the operator's group, which run pods share."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, RUN_DIR_MODE)


def prepare_runs(root: Path, sid: str, indexes: range, job_name: str | None = None) -> None:
    """Make the output directories of the given runs before their pods start."""
    for index in indexes:
        make_writable_dir(run_dir(root, sid, index, job_name))
