"""How well estimates agree with what people say: pure statistics, no database, no I/O.

For pairs of (the person's own minutes by hand, the estimate's low / most likely / high):

* **Spearman's ρ** between confirmed and most-likely minutes (Pearson's correlation of
  the ranks, ties sharing their average rank), with a percentile **bootstrap interval**
  (pairs resampled with replacement, a seeded generator: the same input gives the same
  interval);
* the **bias**: the median of confirmed ÷ most likely (1.6 = people say 60 % more than
  the estimate), with its interquartile range; pairs whose most likely is 0 have no ratio
  and are left out of it;
* the **band coverage**: the share of confirmations inside low–high (inclusive).

Below a minimum number of pairs there is no number, only the message
"not enough confirmations (n of minimum)".
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_RESAMPLES",
    "Agreement",
    "Pair",
    "agreement",
    "bootstrap_interval",
    "not_enough",
    "quartiles",
    "ranks",
    "ratio_quartiles",
    "spearman",
]

DEFAULT_RESAMPLES = 1000
_WORK_LIMIT = 2_000_000  # resamples × pairs: with many pairs, fewer resamples (never below 200)
_MIN_RESAMPLES = 200


@dataclass(frozen=True, slots=True)
class Pair:
    """One confirmation and the estimate it is compared with (minutes)."""

    confirmed: float
    low: float
    most_likely: float
    high: float


@dataclass(frozen=True, slots=True)
class Agreement:
    """The agreement figures of a set of pairs; numbers are None below the minimum."""

    confirmations: int
    minimum: int
    spearman_rho: float | None = None
    rho_interval: tuple[float, float] | None = None
    bias: float | None = None
    bias_iqr: tuple[float, float] | None = None
    band_coverage: float | None = None

    @property
    def enough(self) -> bool:
        return self.confirmations >= self.minimum

    @property
    def message(self) -> str | None:
        return None if self.enough else not_enough(self.confirmations, self.minimum)


def not_enough(count: int, minimum: int) -> str:
    """What is shown instead of a number below the minimum."""
    return f"not enough confirmations ({count} of {minimum})"


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks; tied values share the average of their ranks."""
    order = sorted(range(len(values)), key=lambda index: values[index])
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        shared = (start + end) / 2 + 1
        for position in range(start, end + 1):
            result[order[position]] = shared
        start = end + 1
    return result


def _pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    n = len(x)
    if n < 2:
        return None
    mean_x = math.fsum(x) / n
    mean_y = math.fsum(y) / n
    sxx = math.fsum((a - mean_x) ** 2 for a in x)
    syy = math.fsum((b - mean_y) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None  # a constant variable has no correlation
    sxy = math.fsum((a - mean_x) * (b - mean_y) for a, b in zip(x, y, strict=True))
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation; None for fewer than two pairs or a constant side."""
    if len(x) != len(y):
        raise ValueError("x and y differ in length")
    return _pearson(ranks(x), ranks(y))


def _percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    position = fraction * (len(sorted_values) - 1)
    below = math.floor(position)
    above = min(below + 1, len(sorted_values) - 1)
    return sorted_values[below] + (sorted_values[above] - sorted_values[below]) * (position - below)


def bootstrap_interval(
    x: Sequence[float],
    y: Sequence[float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of Spearman's ρ; resamples whose ρ is undefined are dropped."""
    n = len(x)
    if n < 3:
        return None
    resamples = max(_MIN_RESAMPLES, min(resamples, _WORK_LIMIT // n))
    generator = random.Random(seed)
    estimates: list[float] = []
    for _ in range(resamples):
        picks = [generator.randrange(n) for _ in range(n)]
        rho = spearman([x[i] for i in picks], [y[i] for i in picks])
        if rho is not None:
            estimates.append(rho)
    if len(estimates) < resamples // 2:
        return None
    estimates.sort()
    tail = (1 - level) / 2
    return (_percentile(estimates, tail), _percentile(estimates, 1 - tail))


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """First quartile, median, third quartile (inclusive method)."""
    if len(values) == 1:
        return (values[0], values[0], values[0])
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return (q1, q2, q3)


def ratio_quartiles(pairs: Sequence[Pair]) -> tuple[float, float, float] | None:
    """Quartiles of confirmed ÷ most likely (the bias is the median); None when no pair has a ratio."""
    ratios = [pair.confirmed / pair.most_likely for pair in pairs if pair.most_likely > 0]
    return quartiles(ratios) if ratios else None


def agreement(
    pairs: Sequence[Pair], *, minimum: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> Agreement:
    """The agreement figures of `pairs`, or just their count below `minimum`."""
    if len(pairs) < minimum or not pairs:
        return Agreement(confirmations=len(pairs), minimum=minimum)
    confirmed = [pair.confirmed for pair in pairs]
    likely = [pair.most_likely for pair in pairs]
    bias = bias_iqr = None
    spread = ratio_quartiles(pairs)
    if spread is not None:
        q1, median, q3 = spread
        bias, bias_iqr = median, (q1, q3)
    inside = sum(1 for pair in pairs if pair.low <= pair.confirmed <= pair.high)
    return Agreement(
        confirmations=len(pairs),
        minimum=minimum,
        spearman_rho=spearman(confirmed, likely),
        rho_interval=bootstrap_interval(confirmed, likely, resamples=resamples, seed=seed),
        bias=bias,
        bias_iqr=bias_iqr,
        band_coverage=inside / len(pairs),
    )
