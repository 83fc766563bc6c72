"""Estimators: how long a conversation's task would take a person without AI.

`build_estimator(settings)` returns the LLM estimator when an API key or base URL
is configured (or `ANALYTICS_ESTIMATOR=llm`), else the offline heuristic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.config import DigestMode, EstimatorKind, Settings
from shared.estimators.base import TASK_CATEGORIES, Estimate, EstimateUsage, Estimator
from shared.estimators.heuristic import HeuristicEstimator
from shared.estimators.prompt import PROMPT_VERSION

if TYPE_CHECKING:
    from shared.estimators.llm import LlmEstimator

__all__ = [
    "PROMPT_VERSION",
    "TASK_CATEGORIES",
    "Estimate",
    "EstimateUsage",
    "Estimator",
    "HeuristicEstimator",
    "LlmEstimator",
    "build_estimator",
]


def build_estimator(settings: Settings) -> Estimator:
    """The estimator these settings select (`settings.effective_estimator`)."""
    if settings.effective_estimator is EstimatorKind.LLM:
        from shared.estimators.llm import LlmEstimator

        return LlmEstimator(settings)
    return HeuristicEstimator(counts_only=settings.digest_mode is DigestMode.COUNTS)


def __getattr__(name: str) -> Any:
    """`LlmEstimator` is imported on first use: the openai SDK is slow to import."""
    if name == "LlmEstimator":
        from shared.estimators.llm import LlmEstimator

        return LlmEstimator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
