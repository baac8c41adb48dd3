"""Student's t distribution for whole degrees of freedom, from the standard library only.

The lock has no scipy (nor numpy), and a study needs one number per scenario: the t quantile of its
replications' 95% interval. For whole degrees of freedom df the distribution function has a closed
form (Abramowitz & Stegun 26.7.3 and 26.7.4: a finite sum of powers of cos(theta), theta =
atan(t / sqrt(df))); the quantile is found from it by bisection, to double precision, for any df (a
study has at most MAX_REPS - 1). The tests hold it to published table values.
"""

from __future__ import annotations

import math


def central_probability(t: float, df: int) -> float:
    """P(-t <= T <= t) for T ~ Student's t with `df` degrees of freedom (t >= 0)."""
    if df < 1:
        raise ValueError("degrees of freedom must be at least 1")
    if t < 0:
        raise ValueError("t must be at least 0")
    theta = math.atan(t / math.sqrt(df))
    sin, cos2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 1:
        # A&S 26.7.3, c = cos(theta): (2/pi) (theta + sin(theta) (c + 2/3 c^3 + ...
        #     + (2*4*..*(df-3))/(1*3*..*(df-2)) c^(df-2))); just 2 theta / pi for df = 1.
        term = total = math.cos(theta)
        for k in range(1, (df - 1) // 2):
            term *= cos2 * (2 * k) / (2 * k + 1)
            total += term
        return (2 / math.pi) * (theta + (sin * total if df > 1 else 0.0))
    # A&S 26.7.4: sin(theta) (1 + 1/2 c^2 + (1*3)/(2*4) c^4 + ... + (1*3*..*(df-3))/(2*4*..*(df-2)) c^(df-2))
    term = total = 1.0
    for k in range(1, df // 2):
        term *= cos2 * (2 * k - 1) / (2 * k)
        total += term
    return sin * total


def quantile(p: float, df: int) -> float:
    """The t with P(T <= t) = p, for 0.5 <= p < 1 (upper quantiles: an interval's half-width factor)."""
    if not 0.5 <= p < 1:
        raise ValueError("p must be in [0.5, 1)")
    if p == 0.5:
        return 0.0
    central = 2 * p - 1
    low, high = 0.0, 1.0
    while central_probability(high, df) < central:
        low, high = high, high * 2
    # Bisection until the interval stops shrinking in double precision.
    while True:
        middle = (low + high) / 2
        if middle in (low, high):
            return high
        if central_probability(middle, df) < central:
            low = middle
        else:
            high = middle


def interval_factor(confidence: float, n: int) -> float:
    """The factor t of a two-sided `confidence` interval of the mean of n samples: mean ± t·s/√n."""
    if n < 2:
        raise ValueError("an interval needs at least two samples")
    return quantile((1 + confidence) / 2, n - 1)
