"""Estimators: how long a conversation's task would take a person without AI.

`build_estimator(settings)` returns the LLM estimator when an API key or base URL
is configured (or `ANALYTICS_ESTIMATOR=llm`), else the offline heuristic. Every
estimator is registered once in `registry.py` (name, label, settings, price source).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.config import Settings
from shared.errors import ConfigurationError
from shared.estimators import registry
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
    """The estimator these settings select (`settings.effective_estimator`), built by its registry entry."""
    spec = registry.get(settings.effective_estimator.value)
    if (
        spec is None
    ):  # the setting's names are checked against the registry (tests/test_estimator_registry.py)
        raise ConfigurationError(f"no estimator {settings.effective_estimator.value!r} is registered")
    return spec.build(settings)


def __getattr__(name: str) -> Any:
    """`LlmEstimator` is imported on first use: the openai SDK is slow to import."""
    if name == "LlmEstimator":
        from shared.estimators.llm import LlmEstimator

        return LlmEstimator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
