"""A study as the operator runs it: one Indexed Job per scenario, all children of one Analytics resource.

Why a Job per scenario and not one Job for every run: a Job's pods share one template, and Kubernetes
gives a pod nothing per index but the index itself, so one Job cannot give run k*reps + r the env
SCENARIO=<name of k> and RUN_INDEX=r, nor scenario k's files at /input, without code in the module's
image. One Job per scenario can: scenario k's Job `ana-<sid>-<k>` has `completions = reps`, SCENARIO
set to its name, its own /input, and its completion index is the replication (RUN_INDEX and
JOB_COMPLETION_INDEX both). The service's run number of replication r of scenario k is k*reps + r
(services.shared.study); each pod carries the first run number of its Job in an annotation so that a
finished pod is collected as the right run without reading anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.shared.crd import MAX_REPS
from services.shared.study import SCENARIO_ENV, is_scenario_name, run_number
from services.shared.validation import RESERVED_ENV_NAMES, is_env_name

# On a study's Jobs and pods: the scenario's name (select one scenario's pods with `-l`).
SCENARIO_LABEL = "orchestrator.eng.cam.ac.uk/scenario"
# On a study's pods: the service's run number of the Job's index 0.
FIRST_RUN_ANNOTATION = "orchestrator.eng.cam.ac.uk/first-run"


class InvalidStudy(ValueError):
    """spec.study asks for something the operator will not run."""


@dataclass(frozen=True)
class Scenario:
    name: str
    env: dict[str, str]


@dataclass(frozen=True)
class Study:
    reps: int
    scenarios: tuple[Scenario, ...]

    @property
    def runs(self) -> int:
        return self.reps * len(self.scenarios)

    def first_run(self, scenario_index: int) -> int:
        return run_number(scenario_index, 0, self.reps)

    @classmethod
    def parse(cls, study: Any, total_reps: Any, service_env: dict[str, str]) -> Study:
        """spec.study, checked again (the CRD and the API check it too): `total_reps` is spec.reps."""
        if not isinstance(study, dict):
            raise InvalidStudy("spec.study must be an object")
        reps, scenarios = study.get("reps"), study.get("scenarios")
        if not isinstance(reps, int) or isinstance(reps, bool) or not 1 <= reps <= MAX_REPS:
            raise InvalidStudy(f"spec.study.reps must be between 1 and {MAX_REPS}")
        if not isinstance(scenarios, list) or not scenarios:
            raise InvalidStudy("spec.study.scenarios must list at least one scenario")
        if total_reps != reps * len(scenarios):
            raise InvalidStudy(
                f"spec.reps must be study.reps * scenarios = {reps * len(scenarios)}, not {total_reps}"
            )
        if SCENARIO_ENV in service_env:
            raise InvalidStudy(f"env {SCENARIO_ENV} is set by the platform in every run of a study")
        parsed: list[Scenario] = []
        for index, scenario in enumerate(scenarios):
            where = f"spec.study.scenarios[{index}]"
            name = scenario.get("name") if isinstance(scenario, dict) else None
            if not is_scenario_name(name):
                raise InvalidStudy(f"{where}.name {name!r} is not a DNS label")
            assert isinstance(name, str)  # is_scenario_name made sure
            if any(name == seen.name for seen in parsed):
                raise InvalidStudy(f"{where}.name {name!r} is used twice")
            env = dict(scenario.get("env") or {})
            for key, value in env.items():
                if not is_env_name(key) or key in RESERVED_ENV_NAMES or key == SCENARIO_ENV:
                    raise InvalidStudy(f"{where}.env: {key!r} is not a name a scenario may set")
                if not isinstance(value, str):
                    raise InvalidStudy(f"{where}.env {key} must be a string")
            parsed.append(Scenario(name, env))
        return cls(reps, tuple(parsed))


def job_name(sid: str, scenario_index: int) -> str:
    """Scenario k's Job: `ana-<sid>-<k>` (by index: a name may be 63 characters, a Job's name too)."""
    return f"ana-{sid}-{scenario_index}"
