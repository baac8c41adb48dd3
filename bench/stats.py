"""What every benchmark reports the same way: percentiles of its samples, and each goal beside its figure
with met / not met."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the two nearest ranks: p50 is the median, and a few
    samples give a value between them rather than snapping to one."""
    if not values:
        raise ValueError("percentile of no samples")
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Spread:
    """Samples summarised: how many, p50, p95 and the largest (in the samples' unit)."""

    n: int
    p50: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(len(values), percentile(values, 50), percentile(values, 95), max(values))


@dataclass(frozen=True)
class Goal:
    """A figure and the goal it is held to: `figure <= limit` (at_most) or `figure >= limit`."""

    what: str
    figure: float
    limit: float
    unit: str = ""
    at_most: bool = True

    @property
    def met(self) -> bool:
        return self.figure <= self.limit if self.at_most else self.figure >= self.limit

    def line(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        sign = "<=" if self.at_most else ">="
        verdict = "met" if self.met else "NOT MET"
        return f"{self.what}: {self.figure:.3g}{unit} (goal {sign} {self.limit:g}{unit}) {verdict}"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def print_goals(goals: Sequence[Goal]) -> None:
    met = sum(goal.met for goal in goals)
    print(f"\nGoals: {met} of {len(goals)} met")
    for goal in goals:
        print(f"  {goal.line()}")


def save_results(name: str, results: dict[str, Any], goals: Sequence[Goal]) -> Path:
    """Writes `results` with the goals to bench/results/<name>-<time>.json; prints the goals and where."""
    results = {**results, "goals": [goal.as_json() for goal in goals]}
    out = RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print_goals(goals)
    print(f"\nwritten to {out.relative_to(RESULTS.parent.parent)}")
    return out
