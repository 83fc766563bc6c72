"""`evaluate --tasks`: an estimator measured against tasks people have put a time range on.

A task file is JSON Lines, one task a line (blank lines are skipped):

    {"id": "…", "task_text": "what was asked", "answer_text": "the answer",
     "human_minutes_low": 15, "human_minutes_high": 60}

`human_minutes_high` is null for an open range ("more than 4 hours"); minutes run from
1 (the product's floor) to 4800; other fields are ignored. Each task becomes a two-message conversation, the ask and the answer five
minutes later (an answer that is a bare unified diff is shown as a fenced ``diff``
block, as a chat answer would carry it), and is digested and redacted exactly as the
analyzer digests a real conversation (`shared.digest.build_digest` with the configured
token budget, PII regions and digest mode). The configured estimator estimates each
digest; a task it fails on is counted as failed, never given a number. The figures are
the calibration report's own (`functions.calibration_stats.range_agreement`). Nothing
is stored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.calibration_stats import DEFAULT_RESAMPLES, RangeAgreement, RangedPair, range_agreement
from shared.config import Settings
from shared.conversation import Conversation, Message, TranscriptDigest
from shared.digest import build_digest
from shared.errors import PermanentError, RetryableError
from shared.estimators.base import Estimate, Estimator
from shared.estimators.validation import MAX_ESTIMATE_MINUTES, MIN_ESTIMATE_MINUTES

__all__ = [
    "ANSWER_DELAY",
    "LabelledTask",
    "TaskEvaluation",
    "TasksRejected",
    "evaluate_tasks",
    "read_tasks",
    "render_text",
    "task_conversation",
    "task_digest",
]

ANSWER_DELAY = timedelta(minutes=5)  # the answer follows the ask by this much
_ASKED_AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # any fixed moment: timing is not measured here
_DIFF_STARTS = ("diff --git ", "--- ")
_FAILURES_SHOWN = 5


class TasksRejected(ValueError):
    """A task file that cannot be used; the message names the line."""


@dataclass(frozen=True, slots=True)
class LabelledTask:
    """One task: what was asked, the answer, and the human time range in minutes (high None = open)."""

    line: int
    task_id: str
    task_text: str
    answer_text: str
    human_low: float
    human_high: float | None


def _minutes(value: Any, field: str, line: int, *, nullable: bool) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        kind = "a number or null" if nullable else "a number"
        raise TasksRejected(f"line {line}: {field} must be {kind}")
    if not MIN_ESTIMATE_MINUTES <= value <= MAX_ESTIMATE_MINUTES:
        raise TasksRejected(
            f"line {line}: {field} must be between {MIN_ESTIMATE_MINUTES} and {MAX_ESTIMATE_MINUTES}"
        )
    return float(value)


def _task(line: int, raw: str) -> LabelledTask:
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TasksRejected(f"line {line}: not valid JSON ({exc.msg})") from exc
    if not isinstance(record, dict):
        raise TasksRejected(f"line {line}: expected a JSON object")
    for field in ("task_text", "answer_text"):
        if not isinstance(record.get(field), str) or not record[field].strip():
            raise TasksRejected(f"line {line}: {field} must be a non-empty string")
    low = _minutes(record.get("human_minutes_low"), "human_minutes_low", line, nullable=False)
    if "human_minutes_high" not in record:
        raise TasksRejected(f"line {line}: human_minutes_high is missing (null for an open range)")
    high = _minutes(record["human_minutes_high"], "human_minutes_high", line, nullable=True)
    assert low is not None
    if high is not None and high < low:
        raise TasksRejected(f"line {line}: human_minutes_high is below human_minutes_low")
    task_id = record.get("id", f"line {line}")
    if not isinstance(task_id, str | int):
        raise TasksRejected(f"line {line}: id must be a string")
    return LabelledTask(line, str(task_id), record["task_text"], record["answer_text"], low, high)


def read_tasks(text: str) -> list[LabelledTask]:
    """The tasks of a JSON Lines text, or `TasksRejected` naming the first bad line."""
    tasks = [_task(number, raw) for number, raw in enumerate(text.splitlines(), start=1) if raw.strip()]
    if not tasks:
        raise TasksRejected("no tasks: the file has no JSON lines")
    return tasks


def _answer_message_text(answer: str) -> str:
    """A bare unified diff as a fenced ``diff`` block (how a chat answer carries one); other text as is."""
    if answer.lstrip().startswith(_DIFF_STARTS):
        return f"```diff\n{answer.rstrip()}\n```"
    return answer


def task_conversation(task: LabelledTask) -> Conversation:
    """The task as a conversation: the ask, then the answer `ANSWER_DELAY` later."""
    messages = (
        Message(id=f"{task.task_id}:ask", role="user", text=task.task_text, timestamp=_ASKED_AT),
        Message(
            id=f"{task.task_id}:answer",
            role="assistant",
            text=_answer_message_text(task.answer_text),
            timestamp=_ASKED_AT + ANSWER_DELAY,
        ),
    )
    return Conversation(
        conversation_id=task.task_id,
        user_id="evaluate-tasks",
        source_updated_at=_ASKED_AT + ANSWER_DELAY,
        messages=messages,
    )


def task_digest(task: LabelledTask, settings: Settings) -> TranscriptDigest:
    """The digest the analyzer would give the estimator for this task's conversation."""
    return build_digest(
        task_conversation(task),
        settings.digest_token_budget,
        regions=settings.pii_regions,
        mode=settings.digest_mode,
    )


@dataclass(frozen=True, slots=True)
class TaskEvaluation:
    """What `evaluate --tasks` reports."""

    estimator: str
    version: str
    tasks: int
    failed: tuple[tuple[str, str], ...]  # (task id, why)
    figures: RangeAgreement

    def as_json(self) -> dict[str, Any]:
        figures = self.figures
        return {
            "estimator": self.estimator,
            "version": self.version,
            "tasks": self.tasks,
            "n": figures.count,
            "failed": len(self.failed),
            "failures": [{"id": task_id, "reason": reason} for task_id, reason in self.failed],
            "spearman": {
                "rho": _rounded(figures.spearman_rho),
                "interval": [_rounded(v) for v in figures.rho_interval] if figures.rho_interval else None,
            },
            "in_range": _rounded(figures.in_range),
            "band_overlap": _rounded(figures.band_overlap),
            "median_estimate": figures.median_estimate,
            "bins": [
                {
                    "human_minutes_low": item.human_low,
                    "human_minutes_high": item.human_high,
                    "middle": item.middle,
                    "n": item.count,
                    "median_estimate": item.median_estimate,
                    "bias": _rounded(item.bias),
                }
                for item in figures.bins
            ],
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def evaluate_tasks(
    tasks: list[LabelledTask],
    estimator: Estimator,
    digest_of: Callable[[LabelledTask], TranscriptDigest],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> TaskEvaluation:
    """Estimate every task's digest and compare with the human ranges; failures are counted, not guessed."""
    pairs: list[RangedPair] = []
    failed: list[tuple[str, str]] = []
    for task in tasks:
        try:
            estimate: Estimate = estimator.estimate(digest_of(task))
        except (RetryableError, PermanentError) as exc:
            failed.append((task.task_id, f"{type(exc).__name__}: {exc}"[:300]))
            continue
        pairs.append(
            RangedPair(task.human_low, task.human_high, estimate.low, estimate.most_likely, estimate.high)
        )
    return TaskEvaluation(
        estimator=estimator.name,
        version=estimator.prompt_version,
        tasks=len(tasks),
        failed=tuple(failed),
        figures=range_agreement(pairs, resamples=resamples, seed=seed),
    )


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _range(low: float, high: float | None) -> str:
    return f"> {low:g} min" if high is None else f"{low:g}–{high:g} min"


def render_text(evaluation: TaskEvaluation) -> str:
    """The evaluation as lines for a terminal."""
    figures = evaluation.figures
    rho = "–" if figures.spearman_rho is None else f"{figures.spearman_rho:.2f}"
    interval = (
        f" (95 % bootstrap interval {figures.rho_interval[0]:.2f}–{figures.rho_interval[1]:.2f})"
        if figures.rho_interval
        else ""
    )
    lines = [
        f"estimator {evaluation.estimator} ({evaluation.version}): {figures.count} of {evaluation.tasks} "
        f"tasks estimated, {len(evaluation.failed)} failed",
        f"Spearman ρ against the human ranges' middles: {rho}{interval}",
        f"most likely inside the human range: {_percent(figures.in_range)}; "
        f"band overlapping it: {_percent(figures.band_overlap)}; "
        f"median estimate: {'–' if figures.median_estimate is None else f'{figures.median_estimate:g} min'}",
    ]
    if figures.bins:
        lines.append("bias per human range (median estimate ÷ middle; above 1 over-estimates):")
        lines.extend(
            f"  {_range(item.human_low, item.human_high)}: n {item.count}, middle {item.middle:g}, "
            f"median estimate {item.median_estimate:g}, bias {item.bias:.2f}"
            for item in figures.bins
        )
    for task_id, reason in evaluation.failed[:_FAILURES_SHOWN]:
        lines.append(f"failed: {task_id}: {reason}")
    if len(evaluation.failed) > _FAILURES_SHOWN:
        lines.append(f"… and {len(evaluation.failed) - _FAILURES_SHOWN} more failed")
    return "\n".join(lines)
