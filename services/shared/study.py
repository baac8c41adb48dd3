"""A study: a `sim` launch with `scenarios`, each run `reps` times (see README "Studies").

Shared by the API (which checks a launch), the operator (which runs it and writes its summary) and the
CRD. Run numbers: the runs of scenario k (its index in `scenarios`, from 0) are `k * reps + r` for
replication r = 0..reps-1, so scenario 0 has runs 0..reps-1, scenario 1 the next `reps`, and so on;
`/service/{id}/output/{run}` takes these numbers.
"""

from __future__ import annotations

import re

# Set by the platform in every run of a study (with RUN_INDEX, the replication): a study's env and its
# scenarios' env may not set it. Outside studies it is an ordinary name.
SCENARIO_ENV = "SCENARIO"
# An RFC 1123 label (what Kubernetes calls a DNS label): it names a folder and a label value.
SCENARIO_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MAX_SCENARIO_NAME = 63
_SCENARIO_NAME = re.compile(SCENARIO_NAME_PATTERN)

# The study summary's two files, stored in GridFS beside the runs' outputs.
SUMMARY_JSON = "summary.json"
SUMMARY_CSV = "summary.csv"
SUMMARY_FORMAT = "dtpoc.study-summary/1"
# A run's KPI JSON: its top-level `kpis.json`, else its only `.json` output (see kpi_file_of).
KPI_FILE = "kpis.json"


def is_scenario_name(name: object) -> bool:
    return isinstance(name, str) and len(name) <= MAX_SCENARIO_NAME and bool(_SCENARIO_NAME.fullmatch(name))


def run_number(scenario_index: int, replication: int, reps: int) -> int:
    return scenario_index * reps + replication


def scenario_of(run: int, reps: int) -> tuple[int, int]:
    """(scenario index, replication) of run number `run`."""
    return divmod(run, reps)


def kpi_file_of(filenames: list[str]) -> str | None:
    """Which of a run's outputs is its KPI JSON: `kpis.json` at the top of /output, else the run's only
    `.json` file (wherever it is); None when neither exists (no file, or several and none is kpis.json)."""
    if KPI_FILE in filenames:
        return KPI_FILE
    documents = [name for name in filenames if name.lower().endswith(".json")]
    return documents[0] if len(documents) == 1 else None
