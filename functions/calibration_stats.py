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

Against human time *ranges* (a labelled task set, `evaluate --tasks`), `range_agreement`
gives Spearman's ρ between each range's middle (`range_middle`: 7.5 / 30 / 120 / 480 for
the bins < 15 min, 15–60 min, 1–4 h, > 4 h) and the most likely minutes, with the same
bootstrap interval; the share of most likely estimates inside the range; the share of
low–high bands overlapping it; and per range the median estimate ÷ its middle (above 1:
over-estimated, below 1: under-estimated; one figure per bin makes compression visible).
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_RESAMPLES",
    "HUMAN_TIME_BINS",
    "Agreement",
    "BinBias",
    "Pair",
    "RangeAgreement",
    "RangedPair",
    "agreement",
    "bin_biases",
    "bootstrap_interval",
    "not_enough",
    "quartiles",
    "range_agreement",
    "range_middle",
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


# --- Against human time ranges (a labelled task set: `evaluate --tasks`) ----------------------------

# The human bins of a labelled task set, (low, high, middle) in minutes; high None = open-ended. The
# middle is the point value a rank correlation needs (the usual 7.5 / 30 / 120 / 480 of these bins).
HUMAN_TIME_BINS: tuple[tuple[float, float | None, float], ...] = (
    (1, 15, 7.5),
    (15, 60, 30.0),
    (60, 240, 120.0),
    (240, None, 480.0),
)
OPEN_RANGE_FACTOR = 2.0  # the point value of another open-ended range "more than L": L × this


@dataclass(frozen=True, slots=True)
class RangedPair:
    """A human time range (high None = open-ended) and the estimate it is compared with (minutes)."""

    human_low: float
    human_high: float | None
    low: float
    most_likely: float
    high: float

    @property
    def in_range(self) -> bool:
        """The most likely estimate lies inside the human range (inclusive)."""
        return self.human_low <= self.most_likely and (
            self.human_high is None or self.most_likely <= self.human_high
        )

    @property
    def band_overlaps(self) -> bool:
        """The estimate's low–high band shares at least a point with the human range."""
        return self.high >= self.human_low and (self.human_high is None or self.low <= self.human_high)


def range_middle(low: float, high: float | None) -> float:
    """The point value of a human range (low ≥ 1): its bin's middle, else the geometric middle (open: low × 2)."""
    for bin_low, bin_high, middle in HUMAN_TIME_BINS:
        if (low, high) == (bin_low, bin_high):
            return middle
    if low <= 0:
        raise ValueError("a human range starts at 1 minute or more")
    return low * OPEN_RANGE_FACTOR if high is None else math.sqrt(low * high)


@dataclass(frozen=True, slots=True)
class BinBias:
    """One human range: how many pairs, their median most likely estimate, and that ÷ the middle."""

    human_low: float
    human_high: float | None
    middle: float
    count: int
    median_estimate: float
    bias: float  # median estimate ÷ middle: above 1 over-estimates, below 1 under-estimates


@dataclass(frozen=True, slots=True)
class RangeAgreement:
    """The figures of estimates against human ranges; rates and ρ are None without pairs."""

    count: int
    spearman_rho: float | None
    rho_interval: tuple[float, float] | None
    in_range: float | None
    band_overlap: float | None
    median_estimate: float | None
    bins: tuple[BinBias, ...]


def bin_biases(pairs: Sequence[RangedPair]) -> tuple[BinBias, ...]:
    """The median estimate ÷ middle for each human range present, ranges in ascending order."""
    grouped: dict[tuple[float, float | None], list[float]] = {}
    for pair in pairs:
        grouped.setdefault((pair.human_low, pair.human_high), []).append(pair.most_likely)
    result = []
    for (low, high), estimates in sorted(
        grouped.items(), key=lambda item: (item[0][0], math.inf if item[0][1] is None else item[0][1])
    ):
        middle = range_middle(low, high)
        median = statistics.median(estimates)
        result.append(BinBias(low, high, middle, len(estimates), median, median / middle))
    return tuple(result)


def range_agreement(
    pairs: Sequence[RangedPair], *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> RangeAgreement:
    """ρ (with its bootstrap interval) against the ranges' middles, in-range and band-overlap shares, bias per bin."""
    if not pairs:
        return RangeAgreement(0, None, None, None, None, None, ())
    middles = [range_middle(pair.human_low, pair.human_high) for pair in pairs]
    likely = [pair.most_likely for pair in pairs]
    return RangeAgreement(
        count=len(pairs),
        spearman_rho=spearman(middles, likely),
        rho_interval=bootstrap_interval(middles, likely, resamples=resamples, seed=seed),
        in_range=sum(pair.in_range for pair in pairs) / len(pairs),
        band_overlap=sum(pair.band_overlaps for pair in pairs) / len(pairs),
        median_estimate=statistics.median(likely),
        bins=bin_biases(pairs),
    )
