"""Means with 95 % intervals over a few repeats (seeds, folds): what every score in mrmp is reported with.

Student's t interval of the mean, `mean ± t(0.975, n-1) · s / √n`, with `s` the sample standard deviation
(ddof = 1). With one value there is no spread: std and interval are None, never 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# t(0.975, df) for df = 1..30, then a few anchors (interpolated in 1/df), and the normal limit.
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]  # fmt: skip
_T975_TAIL = [(40, 2.021), (60, 2.000), (120, 1.980), (math.inf, 1.960)]


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom (df ≥ 1)."""
    if df < 1:
        raise ValueError(f"t quantile needs df >= 1, got {df}")
    if df <= 30:
        return _T975[df - 1]
    lo_df, lo_t = 30, _T975[-1]
    for hi_df, hi_t in _T975_TAIL:
        if df <= hi_df:
            w = (1 / df - 1 / hi_df) / (1 / lo_df - 1 / hi_df)  # linear in 1/df; 1/inf = 0
            return hi_t + (lo_t - hi_t) * w
        lo_df, lo_t = hi_df, hi_t
    return _T975_TAIL[-1][1]


@dataclass(frozen=True)
class Estimate:
    """The mean of `n` values, their sample std and the 95 % t interval of the mean (None for n = 1)."""

    mean: float
    n: int
    std: float | None = None
    lo: float | None = None
    hi: float | None = None

    def overlaps(self, other: Estimate) -> bool:
        """Whether the two intervals overlap (a value without an interval is a point)."""
        a_lo, a_hi = (self.lo, self.hi) if self.lo is not None else (self.mean, self.mean)
        b_lo, b_hi = (other.lo, other.hi) if other.lo is not None else (other.mean, other.mean)
        return a_lo <= b_hi and b_lo <= a_hi

    def format(self, scale: float = 100.0, digits: int = 1) -> str:
        """`81.2 ± 3.4` (the half-width of the interval), the mean alone for one value; see `interval_text`."""
        return interval_text(self.mean, self.lo, self.hi, scale, digits)


def interval_text(
    mean: float,
    lo: float | None,
    hi: float | None,
    scale: float = 100.0,
    digits: int = 1,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> str:
    """`81.2 ± 3.4`: a mean and the half-width of its 95 % interval, scaled (accuracies in %). An interval that
    runs past `bounds` (an accuracy's 0–1; a t interval over 3 repeats can) is shown clipped to them instead,
    `41.3 [0.0, 100.0]`, since no value outside them is possible; the mean alone without an interval."""
    m = f"{mean * scale:.{digits}f}"
    if lo is None or hi is None:
        return m
    if lo < bounds[0] or hi > bounds[1]:
        a, b = max(lo, bounds[0]) * scale, min(hi, bounds[1]) * scale
        return f"{m} [{a:.{digits}f}, {b:.{digits}f}]"
    return f"{m} ± {(hi - lo) / 2 * scale:.{digits}f}"


def estimate(values: Sequence[float]) -> Estimate:
    """Mean, sample std and 95 % t interval of `values` (at least one)."""
    n = len(values)
    if n == 0:
        raise ValueError("estimate needs at least one value")
    mean = sum(values) / n
    if n == 1:
        return Estimate(mean, 1)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t975(n - 1) * std / math.sqrt(n)
    return Estimate(mean, n, std, mean - half, mean + half)
