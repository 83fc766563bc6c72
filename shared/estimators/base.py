"""The estimator interface: a redacted digest in, a manual-time estimate out.

An estimator either returns an `Estimate` the model (or formula) really produced,
or raises: `RetryableError` for transient trouble, `EstimationFailed` when retrying
cannot help. It never invents numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from shared.conversation import TranscriptDigest

__all__ = ["TASK_CATEGORIES", "Estimate", "EstimateUsage", "Estimator"]

# The fixed task categories, in the order the dashboard lists them.
TASK_CATEGORIES: tuple[str, ...] = (
    "coding",
    "writing",
    "analysis",
    "research",
    "translation",
    "learning",
    "other",
)


@dataclass(frozen=True, slots=True)
class EstimateUsage:
    """What producing an estimate cost: `cost_usd` is None when its model has no price (unpriced).

    The default, no request, costs exactly 0 (the heuristic is free, not unpriced).
    """

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal | None = Decimal("0")


@dataclass(frozen=True, slots=True)
class Estimate:
    """Minutes a person would need without AI, with the estimator's own uncertainty."""

    low: int
    most_likely: int
    high: int
    confidence: int  # 0-100
    task_category: str  # one of TASK_CATEGORIES
    task_description: str  # one line, redacted
    reasoning: str
    estimator: str  # "llm" or "heuristic"
    model: str | None  # None for the heuristic
    prompt_version: str  # prompt (or formula) version
    usage: EstimateUsage = field(default_factory=EstimateUsage)
    raw_response: dict[str, Any] | None = None  # what the model answered, for debugging


class Estimator(Protocol):
    """Anything that turns a digest into an estimate."""

    name: str
    model: str | None
    prompt_version: str

    def estimate(self, digest: TranscriptDigest) -> Estimate: ...
