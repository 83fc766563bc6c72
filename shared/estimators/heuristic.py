"""The heuristic estimator: a fixed formula, used offline when no LLM is configured.

Formula (minutes a person would need without AI), over the digest's counts:

    base = 2.0 × user turns            understanding and framing each request
         + user words / 200            reading the material the user supplied (200 wpm)
         + assistant words / 40        writing the answers, thinking included (40 wpm)
         + 5 × code^0.7                writing and checking code (code = effective code lines)
         + 5 × tables                  building a table
         + 5 × attachments             reading an attached file
         + 3 × regenerated answers     trying an alternative
    most_likely = round(base × category factor), at least 1, at most 4800
    low  = round(0.5 × most_likely), at least 1
    high = round(2 × most_likely), at most 4800
    confidence = 25 (fixed: this is a rough guess)

Effective code lines: every fenced code line the assistant produced, except that a
``diff`` block counts 0.3 per line: in a unified diff only about 3 lines in 10 are
added or removed, the rest are unchanged context and headers, already written. The
code term grows slower than the line count (exponent 0.7): 10 lines 25 min, 50 lines
77, 100 lines 126, 200 lines 204 (heuristic-1 had a flat 1.5 min a line: 15 / 75 /
150 / 300); a small fix is mostly finding the place, not typing. The scale and the
exponent were chosen on a development set of bug-fix tasks with human time ranges
(the fix as a diff), 5-fold cross-validated with `bench/bench_estimator.py`, from a
grid of general shapes; among shapes the tasks cannot tell apart, the one closest to
heuristic-1 for a plain 50-line code block. No task, project or name is part of the
formula. Measured there: Spearman ρ 0.52 (unchanged: volume ranks these fixes no
better), most likely inside the human range 66 % (heuristic-1: 48 %), band
overlapping it 96 % (86 %); it still compresses — fixes under 15 minutes are
over-estimated about 2×, those of 1–4 hours under-estimated about 3×.

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
Every analysis it produces is labelled `heuristic` with version `heuristic-2`
(`heuristic-2+counts` on a counts-only digest, `ANALYTICS_DIGEST_MODE=counts`: the
formula is the same, but with no text to search the category comes from code
alone — `coding` when there is code, else `other`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from shared.conversation import DigestFeatures, TranscriptDigest
from shared.estimators.base import TASK_CATEGORIES, Estimate
from shared.estimators.prompt import COUNTS_ONLY_SUFFIX
from shared.estimators.validation import MAX_ESTIMATE_MINUTES, MIN_ESTIMATE_MINUTES

__all__ = [
    "CODE_TERM",
    "HEURISTIC_VERSION",
    "CodeTerm",
    "HeuristicEstimator",
    "detect_category",
    "manual_minutes",
]

HEURISTIC_VERSION = "heuristic-2"  # stored with each analysis: a new formula re-estimates old ones

MINUTES_PER_USER_TURN = 2.0
READING_WORDS_PER_MINUTE = 200.0
WRITING_WORDS_PER_MINUTE = 40.0
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


@dataclass(frozen=True, slots=True)
class CodeTerm:
    """Minutes for the code produced: scale × effective lines ^ exponent (see the module documentation)."""

    scale: float = 5.0
    exponent: float = 0.7
    diff_line_weight: float = 0.3  # a unified diff line is mostly context: ~3 in 10 are changed

    def effective_lines(self, features: DigestFeatures) -> float:
        by_language = features.code_lines_by_language
        diff_lines = by_language.get("diff", 0)
        return features.code_lines - diff_lines + self.diff_line_weight * diff_lines

    def minutes(self, features: DigestFeatures) -> float:
        lines = self.effective_lines(features)
        return self.scale * lines**self.exponent if lines > 0 else 0.0


CODE_TERM = CodeTerm()


def _terms(features: DigestFeatures, code: CodeTerm = CODE_TERM) -> dict[str, float]:
    return {
        "requests": MINUTES_PER_USER_TURN * features.user_turns,
        "reading": features.user_words / READING_WORDS_PER_MINUTE,
        "writing": features.assistant_words / WRITING_WORDS_PER_MINUTE,
        "code": code.minutes(features),
        "tables": MINUTES_PER_TABLE * features.tables,
        "attachments": MINUTES_PER_ATTACHMENT * features.attachments,
        "regenerations": MINUTES_PER_REGENERATION * features.regenerations,
    }


def manual_minutes(
    features: DigestFeatures, category: str, code: CodeTerm = CODE_TERM
) -> tuple[int, int, int]:
    """(low, most_likely, high) by the documented formula (`code`: another code term, for the benchmark)."""
    base = sum(_terms(features, code).values())
    most_likely = min(
        max(_round_half_up(base * CATEGORY_FACTORS[category]), MIN_ESTIMATE_MINUTES), MAX_ESTIMATE_MINUTES
    )
    low = max(_round_half_up(most_likely * LOW_FACTOR), MIN_ESTIMATE_MINUTES)
    high = min(max(_round_half_up(most_likely * HIGH_FACTOR), most_likely), MAX_ESTIMATE_MINUTES)
    return low, most_likely, high


def _version(counts_only: bool) -> str:
    return HEURISTIC_VERSION + COUNTS_ONLY_SUFFIX if counts_only else HEURISTIC_VERSION


class HeuristicEstimator:
    """Deterministic estimates from counts and keywords; needs no network."""

    name = "heuristic"
    model: str | None = None

    def __init__(self, *, counts_only: bool = False, code: CodeTerm = CODE_TERM) -> None:
        self.prompt_version = _version(counts_only)
        self.code = code  # the product's own unless a benchmark tries another shape

    def estimate(self, digest: TranscriptDigest) -> Estimate:
        features = digest.features
        category = detect_category(digest.text, features)
        low, most_likely, high = manual_minutes(features, category, self.code)
        terms = _terms(features, self.code)
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
