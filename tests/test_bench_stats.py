"""bench/stats.py: the one percentile every benchmark reports, and how a goal reads."""

from __future__ import annotations

import pytest

from bench.stats import Goal, Spread, percentile


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5  # the median of an even count
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0
    assert percentile([float(v) for v in range(1, 22)], 95) == 20.0
    assert percentile([1.0, 3.0], 95) == pytest.approx(2.9)
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_a_spread() -> None:
    spread = Spread.of([0.3, 0.1, 0.2, 0.4])
    assert (spread.n, spread.p50, spread.max) == (4, pytest.approx(0.25), 0.4)
    assert spread.p95 == pytest.approx(0.385)


def test_goals_read_met_or_not_met() -> None:
    assert Goal("p95", 80, 100, "ms").met
    assert Goal("p95", 120, 100, "ms").line() == "p95: 120 ms (goal <= 100 ms) NOT MET"
    assert Goal("ratio", 0.85, 0.8, at_most=False).line() == "ratio: 0.85 (goal >= 0.8) met"
    assert not Goal("ratio", 0.7, 0.8, at_most=False).met
