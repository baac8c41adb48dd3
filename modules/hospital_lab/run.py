"""The module's entry point under the platform's contract: settings from the environment, the lab from the
Excel file named by INPUT_EXCEL_FILE, KPI JSON files into OUTPUT_FOLDER.

    INPUT_EXCEL_FILE  the workbook (default /input/input.xlsx)
    OUTPUT_FOLDER     where the JSON files go (default /output)
    SIM_HOURS         simulated hours per replication (default 168, one week)
    NUM_REPS          replications inside this run (default 1), averaged in kpis.json
    RUN_INDEX         this run's index, set by the platform (else JOB_COMPLETION_INDEX, else 0): the
                      random streams derive from it, so the runs of one launch differ

Outputs: kpis.json (the run's KPIs, averaged over its replications) and replication_<k>.json (each
replication's own). Exit status 2 with a one-line reason on stderr for bad settings or a bad workbook.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .lab_config import LabConfigError, load_lab_config
from .model import simulate

MODULE = "hospital_lab"
VERSION = "1.0.0"
BAD_INPUT = 2


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class RunSettings:
    input_file: Path = Path("/input/input.xlsx")
    output_folder: Path = Path("/output")
    sim_hours: float = 168.0
    num_reps: int = 1
    run_index: int = 0
    run_id: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RunSettings:
        index = environ.get("RUN_INDEX") or environ.get("JOB_COMPLETION_INDEX") or "0"
        return cls(
            input_file=Path(environ.get("INPUT_EXCEL_FILE") or cls.input_file),
            output_folder=Path(environ.get("OUTPUT_FOLDER") or cls.output_folder),
            sim_hours=_parse(environ, "SIM_HOURS", float, cls.sim_hours, 0.01, 24 * 366 * 10),
            num_reps=_parse(environ, "NUM_REPS", int, cls.num_reps, 1, 1000),
            run_index=_parse({"RUN_INDEX": index}, "RUN_INDEX", int, 0, 0, 10**9),
            run_id=environ.get("RUN_ID") or None,
        )


def _parse(environ: Mapping[str, str], name: str, kind: Any, default: Any, low: float, high: float) -> Any:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a {kind.__name__}, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {raw!r}")
    return value


def seed_for(run_index: int, replication: int) -> int:
    """A random seed per (run, replication), far apart for neighbouring indexes."""
    digest = hashlib.sha256(f"{MODULE}:{run_index}:{replication}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def average(trees: list[Any]) -> Any:
    """The mean of KPI trees of the same shape, leaf by leaf (None where no replication had a value)."""
    first = trees[0]
    if isinstance(first, dict):
        return {key: average([t[key] for t in trees]) for key in first}
    values = [v for v in trees if v is not None]
    return sum(values) / len(values) if values else None


def rounded(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {key: rounded(value) for key, value in tree.items()}
    return round(tree, 4) if isinstance(tree, float) else tree


def run_lab(settings: RunSettings) -> dict[str, Any]:
    """The documents this run writes, by file name (raises LabConfigError for a bad workbook)."""
    lab = load_lab_config(settings.input_file)
    seeds = [seed_for(settings.run_index, k) for k in range(settings.num_reps)]
    replications = [simulate(lab, settings.sim_hours, seed) for seed in seeds]
    run = {
        "module": MODULE,
        "version": VERSION,
        "run_index": settings.run_index,
        "run_id": settings.run_id,
        "input_file": settings.input_file.name,
        "sim_hours": settings.sim_hours,
        "num_reps": settings.num_reps,
    }
    documents = {"kpis.json": {**run, "seeds": seeds, "kpis": rounded(average(replications))}}
    for k, (seed, kpis) in enumerate(zip(seeds, replications, strict=True)):
        documents[f"replication_{k}.json"] = {**run, "replication": k, "seed": seed, "kpis": rounded(kpis)}
    return documents


def write_outputs(folder: Path, documents: dict[str, Any]) -> None:
    """Each file appears whole (written beside, then renamed), never half-written."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        partial = folder / f".{name}.partial"
        partial.write_text(json.dumps(document, indent=2) + "\n")
        partial.replace(folder / name)


def main(environ: Mapping[str, str] | None = None) -> int:
    try:
        settings = RunSettings.from_env(os.environ if environ is None else environ)
        documents = run_lab(settings)
    except (SettingsError, LabConfigError) as e:
        print(f"{MODULE}: error: {e}", file=sys.stderr)
        return BAD_INPUT
    write_outputs(settings.output_folder, documents)
    kpis = documents["kpis.json"]["kpis"]
    print(
        f"{MODULE}: run {settings.run_index}: {settings.num_reps} replication(s) of {settings.sim_hours} h, "
        f"{kpis['samples_completed']} samples completed, turnaround p90 {kpis['turnaround_hours']['p90']} h; "
        f"wrote {', '.join(documents)} to {settings.output_folder}"
    )
    return 0
