"""Student's t from the standard library, held to published table values (two-sided 95%: the 0.975
quantile; NIST/SEMATECH e-Handbook, table 1.3.6.7.2, and any statistics text's t table)."""

from __future__ import annotations

import math

import pytest

from services.operator.student_t import central_probability, interval_factor, quantile

# df -> t(0.975, df), as tables print them (three decimals).
TABLE_975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    11: 2.201,
    15: 2.131,
    19: 2.093,
    20: 2.086,
    25: 2.060,
    29: 2.045,
    30: 2.042,
    40: 2.021,
    60: 2.000,
    99: 1.984,
}
# Other levels, from the same tables: (p, df) -> t.
TABLE_OTHER = {(0.95, 1): 6.314, (0.95, 10): 1.812, (0.99, 5): 3.365, (0.995, 20): 2.845, (0.9, 30): 1.310}


@pytest.mark.parametrize(("df", "expected"), TABLE_975.items(), ids=[f"df{d}" for d in TABLE_975])
def test_975_quantiles_match_the_table(df: int, expected: float) -> None:
    assert round(quantile(0.975, df), 3) == expected


@pytest.mark.parametrize(("level", "expected"), TABLE_OTHER.items(), ids=[str(k) for k in TABLE_OTHER])
def test_other_quantiles_match_the_table(level: tuple[float, int], expected: float) -> None:
    p, df = level
    assert round(quantile(p, df), 3) == expected


def test_closed_forms_where_they_exist() -> None:
    # df = 1 is the Cauchy distribution: t = tan(pi (p - 1/2)); df = 2: t = (2p - 1) sqrt(2 / (4p(1 - p))).
    for p in (0.6, 0.9, 0.975, 0.999):
        assert quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-12)
        assert quantile(p, 2) == pytest.approx((2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p))), rel=1e-12)


def test_large_df_approaches_the_normal_quantile() -> None:
    assert quantile(0.975, 100_000) == pytest.approx(1.959964, abs=1e-4)


def test_the_distribution_function_is_the_inverse() -> None:
    for df in (1, 2, 3, 8, 31):
        assert central_probability(quantile(0.975, df), df) == pytest.approx(0.95, abs=1e-12)
    assert quantile(0.5, 7) == 0.0 and central_probability(0.0, 7) == 0.0


def test_interval_factor_uses_n_minus_one_degrees_of_freedom() -> None:
    assert interval_factor(0.95, 4) == quantile(0.975, 3)
    with pytest.raises(ValueError):
        interval_factor(0.95, 1)
    with pytest.raises(ValueError):
        quantile(1.0, 3)
