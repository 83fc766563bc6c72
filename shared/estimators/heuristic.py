"""The heuristic estimator: a fixed formula, used offline when no LLM is configured.

Formula (minutes a person would need without AI), over the digest's counts:

    base = 2.0 × user turns            understanding and framing each request
         + user words / 200            reading the material the user supplied (200 wpm)
         + assistant words / 40        writing the answers, thinking included (40 wpm)
         + 1.5 × code lines            writing and checking code
         + 5 × tables                  building a table
         + 5 × attachments             reading an attached file
         + 3 × regenerated answers     trying an alternative
    most_likely = round(base × category factor), at least 1, at most 4800
    low  = round(0.5 × most_likely), at least 1
    high = round(2 × most_likely), at most 4800
    confidence = 25 (fixed: this is a rough guess)

Category factors: coding 1.0, writing 1.0, analysis 1.2, research 1.3,
translation 2.0 (a careful translator is far slower than 40 wpm), learning 0.75
(reading a textbook section replaces much of what was produced), other 1.0. The
category is the one whose keywords (English and Hungarian stems) occur most often
in the digest; code lines count as strong evidence of coding; ties go to the
earlier category in the list above, no hit at all gives `other`. Rounding is
half up.

Limits: it cannot judge difficulty, only volume. A short answer to a hard
question is underestimated, a long generated text that nobody needed is
overestimated; if assistant word counts include code, code is counted twice.
Every analysis it produces is labelled `heuristic` with version `heuristic-1`
(`heuristic-1+counts` on a counts-only digest, `ANALYTICS_DIGEST_MODE=counts`: the
formula is the same, but with no text to search the category comes from code
alone — `coding` when there is code, else `other`).
"""

from __future__ import annotations

import math
import re

from shared.conversation import DigestFeatures, TranscriptDigest
from shared.estimators.base import TASK_CATEGORIES, Estimate
from shared.estimators.prompt import COUNTS_ONLY_SUFFIX
from shared.estimators.validation import MAX_ESTIMATE_MINUTES

__all__ = ["HEURISTIC_VERSION", "HeuristicEstimator", "detect_category", "manual_minutes"]

HEURISTIC_VERSION = "heuristic-1"

MINUTES_PER_USER_TURN = 2.0
READING_WORDS_PER_MINUTE = 200.0
WRITING_WORDS_PER_MINUTE = 40.0
MINUTES_PER_CODE_LINE = 1.5
MINUTES_PER_TABLE = 5.0
MINUTES_PER_ATTACHMENT = 5.0
MINUTES_PER_REGENERATION = 3.0
LOW_FACTOR = 0.5
HIGH_FACTOR = 2.0
HEURISTIC_CONFIDENCE = 25
CODE_EVIDENCE_HITS = 5  # keyword hits that any code in the conversation is worth for `coding`

CATEGORY_FACTORS: dict[str, float] = {
    "coding": 1.0,
    "writing": 1.0,
    "analysis": 1.2,
    "research": 1.3,
    "translation": 2.0,
    "learning": 0.75,
    "other": 1.0,
}

_CATEGORY_KEYWORDS: dict[str, tuple[str, ...]] = {
    "coding": (
        "code", "function", "python", "javascript", "typescript", "java", "sql", "bug", "debug",
        "script", "compile", "exception", "stack trace", "regex", "api", "kód", "függvény", "hibaüzenet",
    ),
    "writing": (
        "write", "draft", "e-mail", "email", "letter", "essay", "blog", "rewrite", "proofread",
        "paragraph", "írj", "írd", "levél", "levelet", "fogalmaz", "szöveg",
    ),
    "analysis": (
        "analy", "compare", "data", "chart", "statistic", "evaluate", "trend", "spreadsheet",
        "excel", "forecast", "elemez", "elemzés", "adat", "összehasonlít", "kimutatás",
    ),
    "research": (
        "research", "sources", "literature", "find out", "overview of", "state of the art",
        "kutat", "forrás", "áttekintés",
    ),
    "translation": (
        "translat", "into english", "into hungarian", "into german", "fordít", "angolra", "magyarra",
        "németre",
    ),
    "learning": (
        "explain", "how does", "why does", "understand", "teach", "learn", "tutorial",
        "what is the difference", "magyaráz", "tanul", "megért",
    ),
}  # fmt: skip

_KEYWORD_PATTERNS = {
    category: re.compile(r"\b(?:" + "|".join(re.escape(word) for word in words) + ")", re.IGNORECASE)
    for category, words in _CATEGORY_KEYWORDS.items()
}


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def detect_category(text: str, features: DigestFeatures) -> str:
    """The task category whose keywords occur most often (code counts for `coding`)."""
    hits = {category: len(pattern.findall(text)) for category, pattern in _KEYWORD_PATTERNS.items()}
    if features.code_lines > 0:
        hits["coding"] += CODE_EVIDENCE_HITS
    best = max(
        TASK_CATEGORIES, key=lambda category: (hits.get(category, 0), -TASK_CATEGORIES.index(category))
    )
    return best if hits.get(best, 0) > 0 else "other"


def _terms(features: DigestFeatures) -> dict[str, float]:
    return {
        "requests": MINUTES_PER_USER_TURN * features.user_turns,
        "reading": features.user_words / READING_WORDS_PER_MINUTE,
        "writing": features.assistant_words / WRITING_WORDS_PER_MINUTE,
        "code": MINUTES_PER_CODE_LINE * features.code_lines,
        "tables": MINUTES_PER_TABLE * features.tables,
        "attachments": MINUTES_PER_ATTACHMENT * features.attachments,
        "regenerations": MINUTES_PER_REGENERATION * features.regenerations,
    }


def manual_minutes(features: DigestFeatures, category: str) -> tuple[int, int, int]:
    """(low, most_likely, high) by the documented formula."""
    base = sum(_terms(features).values())
    most_likely = min(max(_round_half_up(base * CATEGORY_FACTORS[category]), 1), MAX_ESTIMATE_MINUTES)
    low = max(_round_half_up(most_likely * LOW_FACTOR), 1)
    high = min(max(_round_half_up(most_likely * HIGH_FACTOR), most_likely), MAX_ESTIMATE_MINUTES)
    return low, most_likely, high


def _version(counts_only: bool) -> str:
    return HEURISTIC_VERSION + COUNTS_ONLY_SUFFIX if counts_only else HEURISTIC_VERSION


class HeuristicEstimator:
    """Deterministic estimates from counts and keywords; needs no network."""

    name = "heuristic"
    model: str | None = None

    def __init__(self, *, counts_only: bool = False) -> None:
        self.prompt_version = _version(counts_only)

    def estimate(self, digest: TranscriptDigest) -> Estimate:
        features = digest.features
        category = detect_category(digest.text, features)
        low, most_likely, high = manual_minutes(features, category)
        terms = _terms(features)
        shown = ", ".join(f"{name} {minutes:.1f}" for name, minutes in terms.items() if minutes)
        reasoning = (
            f"Heuristic formula: {shown or 'no measurable work'} min; "
            f"× {CATEGORY_FACTORS[category]} for {category}."
        )
        return Estimate(
            low=low,
            most_likely=most_likely,
            high=high,
            confidence=HEURISTIC_CONFIDENCE,
            task_category=category,
            task_description=(
                f"{category} conversation: {features.user_turns} requests, "
                f"{features.assistant_words} words and {features.code_lines} code lines produced"
            ),
            reasoning=reasoning,
            estimator=self.name,
            model=None,
            prompt_version=_version(digest.counts_only),
            raw_response={"category": category, "terms_minutes": {k: round(v, 2) for k, v in terms.items()}},
        )
