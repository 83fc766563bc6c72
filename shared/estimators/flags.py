"""Estimates the estimator did not know: the flag rules, defined once.

An analysed conversation's estimate is flagged, with one reason, when

- `low_confidence`: its confidence (0–100) is below `ANALYTICS_FLAG_MIN_CONFIDENCE` (a 0–1
  share, so 0.2 means a confidence under 20);
- `wide_band`: its band is wider than `ANALYTICS_FLAG_MAX_BAND_RATIO` (high ÷ low);
- `same_answer`: one answer (low, most likely, high) went to at least
  `ANALYTICS_FLAG_SAME_ANSWER_SHARE` of a run's different conversations (different content
  fingerprints, at least `SAME_ANSWER_MIN_CONVERSATIONS` of them). An estimator that answers
  everything alike is not measuring anything, however confident it says it is.

The first two depend on the answer alone and are set by the analyzer with the row. The third
needs the whole run: the ledger evaluates it when the run closes, before the run's dates are
aggregated (`functions.runs.settle_flags`), and only fills rows not flagged already. Flagged
estimates are stored and counted like any other; `ANALYTICS_FLAGGED_ESTIMATES` decides whether
the headline figures include them (`functions/metrics.py`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from shared.estimators.base import Estimate

__all__ = [
    "SAME_ANSWER_MIN_CONVERSATIONS",
    "Answer",
    "EstimateFlag",
    "SameAnswer",
    "answer_flag",
    "describe_flags",
    "same_answer",
]

# Below this many different conversations a shared answer can be coincidence: no same_answer flag.
SAME_ANSWER_MIN_CONVERSATIONS = 10

Answer = tuple[int, int, int]  # (low, most_likely, high), minutes


class EstimateFlag(StrEnum):
    """`conversation_analysis.estimate_flag` (migration 010 lists the same values)."""

    LOW_CONFIDENCE = "low_confidence"
    WIDE_BAND = "wide_band"
    SAME_ANSWER = "same_answer"


_LABELS = {
    EstimateFlag.LOW_CONFIDENCE: "low confidence",
    EstimateFlag.WIDE_BAND: "band too wide",
    EstimateFlag.SAME_ANSWER: "same answer as most others",
}


def answer_flag(estimate: Estimate, *, min_confidence: float, max_band_ratio: float) -> EstimateFlag | None:
    """The flag an answer earns on its own (confidence first, then the band), or None."""
    if estimate.confidence < min_confidence * 100:
        return EstimateFlag.LOW_CONFIDENCE
    if estimate.high > max_band_ratio * max(estimate.low, 1):
        return EstimateFlag.WIDE_BAND
    return None


@dataclass(frozen=True, slots=True)
class SameAnswer:
    """The most common answer of a run and the share of its different conversations that got it."""

    answer: Answer | None
    conversations: int  # different conversations (content fingerprints) with an answer
    share: float | None  # None when there were no conversations
    flagged: bool  # the share reached the threshold with enough conversations


def same_answer(answers: Iterable[tuple[str, Answer]], *, threshold: float) -> SameAnswer:
    """Evaluate the same-answer rule over (content fingerprint, answer) pairs of one run.

    A conversation seen twice (the same fingerprint) counts once, with its first answer.
    """
    by_conversation: dict[str, Answer] = {}
    for fingerprint, answer in answers:
        by_conversation.setdefault(fingerprint, answer)
    if not by_conversation:
        return SameAnswer(None, 0, None, flagged=False)
    answer, count = Counter(by_conversation.values()).most_common(1)[0]
    total = len(by_conversation)
    share = count / total
    return SameAnswer(
        answer, total, share, flagged=total >= SAME_ANSWER_MIN_CONVERSATIONS and share >= threshold
    )


def describe_flags(
    flagged: int, analysed: int, by_reason: dict[str, int], same_answer_share: float | None
) -> str | None:
    """One sentence for health and the dashboard, e.g. "the estimator gave the same answer to 95 %
    of conversations; 16 of 16 estimates flagged (low confidence 16)"; None when nothing was flagged.

    `same_answer_share` is the run's, recorded only when the same-answer rule fired."""
    parts = []
    if same_answer_share is not None:
        parts.append(
            f"the estimator gave the same answer to {same_answer_share * 100:.0f} % of conversations"
        )
    if flagged:
        reasons = ", ".join(
            f"{_LABELS[flag]} {by_reason[flag]}" for flag in EstimateFlag if by_reason.get(flag, 0)
        )
        parts.append(f"{flagged} of {analysed} estimates flagged ({reasons})")
    return "; ".join(parts) if parts else None
