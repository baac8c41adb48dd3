"""The discrete-event model (simpy): samples of each type arrive at random, pass the stages in order, waiting
for the stage's resource (lower priority number first), and are done when the last stage ends. Time runs in
minutes; the KPIs report hours where a lab manager thinks in hours."""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import simpy

from .lab_config import LabConfig, SampleType


@dataclass
class TimeAverage:
    """The time-weighted mean and the peak of a level that changes at events (queue length, busy servers)."""

    level: float = 0.0
    since: float = 0.0
    area: float = 0.0
    peak: float = 0.0

    def set(self, now: float, level: float) -> None:
        self.area += self.level * (now - self.since)
        self.since, self.level = now, level
        self.peak = max(self.peak, level)

    def mean(self, now: float) -> float:
        return (self.area + self.level * (now - self.since)) / now if now > 0 else 0.0


@dataclass
class Station:
    """One resource of the lab with what is measured about it."""

    resource: simpy.PriorityResource
    busy: TimeAverage = field(default_factory=TimeAverage)
    queue: TimeAverage = field(default_factory=TimeAverage)
    waits: list[float] = field(default_factory=list)

    def record(self, now: float) -> None:
        self.busy.set(now, self.resource.count)
        self.queue.set(now, len(self.resource.queue))


class LabModel:
    def __init__(self, lab: LabConfig, seed: int) -> None:
        self.lab = lab
        self.rng = random.Random(seed)  # noqa: S311 (a simulation stream, reproducible by design)
        self.env = simpy.Environment()
        self.stations = {
            r.name: Station(simpy.PriorityResource(self.env, capacity=r.capacity)) for r in lab.resources
        }
        self.arrived: dict[str, int] = {t.name: 0 for t in lab.sample_types}
        self.turnarounds: dict[str, list[float]] = {t.name: [] for t in lab.sample_types}

    def run(self, sim_hours: float) -> dict[str, Any]:
        for sample_type in self.lab.sample_types:
            if sample_type.arrivals_per_hour > 0:
                self.env.process(self._arrivals(sample_type))
        self.env.run(until=sim_hours * 60)
        return self._kpis(sim_hours)

    def _arrivals(self, sample_type: SampleType) -> Generator[simpy.Event, Any, None]:
        per_minute = sample_type.arrivals_per_hour / 60
        while True:
            yield self.env.timeout(self.rng.expovariate(per_minute))
            self.arrived[sample_type.name] += 1
            self.env.process(self._sample(sample_type))

    def _sample(self, sample_type: SampleType) -> Generator[simpy.Event, Any, None]:
        env = self.env
        arrived = env.now
        for stage in self.lab.stages:
            station = self.stations[stage.resource]
            request = station.resource.request(priority=sample_type.priority)
            station.record(env.now)
            queued = env.now
            yield request
            station.waits.append(env.now - queued)
            station.record(env.now)
            yield env.timeout(self.rng.triangular(stage.min_minutes, stage.max_minutes, stage.mode_minutes))
            station.resource.release(request)
            station.record(env.now)
        self.turnarounds[sample_type.name].append((env.now - arrived) / 60)

    def _kpis(self, sim_hours: float) -> dict[str, Any]:
        now = self.env.now
        completed = sum(len(t) for t in self.turnarounds.values())
        arrived = sum(self.arrived.values())
        return {
            "samples_arrived": arrived,
            "samples_completed": completed,
            "samples_in_progress_at_end": arrived - completed,
            "completed_per_day": completed / (sim_hours / 24),
            "turnaround_hours": distribution([t for ts in self.turnarounds.values() for t in ts]),
            "turnaround_hours_by_type": {name: distribution(ts) for name, ts in self.turnarounds.items()},
            "resources": {
                r.name: {
                    "capacity": r.capacity,
                    "utilisation": self.stations[r.name].busy.mean(now) / r.capacity,
                    "mean_queue_length": self.stations[r.name].queue.mean(now),
                    "max_queue_length": self.stations[r.name].queue.peak,
                    "mean_wait_minutes": mean(self.stations[r.name].waits),
                }
                for r in self.lab.resources
            },
        }


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def distribution(values: list[float]) -> dict[str, float | int | None]:
    return {
        "count": len(values),
        "mean": mean(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "max": max(values) if values else None,
    }


def simulate(lab: LabConfig, sim_hours: float, seed: int) -> dict[str, Any]:
    """One replication's KPIs: the same lab, hours and seed always give the same figures."""
    return LabModel(lab, seed).run(sim_hours)
