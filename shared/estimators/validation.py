"""Parse and check a model's answer before it becomes an `Estimate`.

Numbers are never repaired: a wrong number is reported back so the caller can ask
the model once more. Only the two free-text fields are tidied (folded to one line,
shortened to their limit), because rejecting a long explanation would cost a
request without making any number more trustworthy.

Bounds: estimates are whole minutes with 1 ≤ low ≤ most_likely ≤ high ≤
`MAX_ESTIMATE_MINUTES` (4800 = 10 working days of 8 hours). A single conversation
that would take a person longer than two working weeks is beyond what a chat
transcript can support, so such an answer is treated as a model error.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from shared.errors import InvalidAnswerError
from shared.estimators.base import TASK_CATEGORIES

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "MAX_ESTIMATE_MINUTES",
    "MAX_REASONING_CHARS",
    "MIN_ESTIMATE_MINUTES",
    "EstimateAnswer",
    "InvalidAnswerError",
    "parse_answer",
]

MAX_ESTIMATE_MINUTES = 4800  # 10 working days × 8 h × 60 min
MIN_ESTIMATE_MINUTES = 1  # the floor: no task takes less than a minute
MAX_DESCRIPTION_CHARS = 160
MAX_REASONING_CHARS = 400

_CODE_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def _whole_number(value: Any) -> Any:
    """Accept ints and integral floats (60.0); reject bools, strings and fractions."""
    if isinstance(value, bool):
        raise ValueError(f"must be an integer, not a boolean ({value!r})")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"must be a whole number, got {value!r}")
    raise ValueError(f"must be an integer, got {type(value).__name__} {value!r}")


def _one_line(limit: int) -> BeforeValidator:
    def tidy(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = _WHITESPACE.sub(" ", value).strip()
        return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"

    return BeforeValidator(tidy)


def _category(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


_Minutes = Annotated[
    int, BeforeValidator(_whole_number), Field(ge=MIN_ESTIMATE_MINUTES, le=MAX_ESTIMATE_MINUTES)
]


class EstimateAnswer(BaseModel):
    """The model's answer, checked: whole minutes in order, known category, bounded text."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    low: _Minutes
    most_likely: _Minutes
    high: _Minutes
    confidence: Annotated[int, BeforeValidator(_whole_number), Field(ge=0, le=100)]
    task_category: Annotated[str, BeforeValidator(_category)]
    task_description: Annotated[str, _one_line(MAX_DESCRIPTION_CHARS), Field(min_length=1)]
    reasoning: Annotated[str, _one_line(MAX_REASONING_CHARS)]

    @model_validator(mode="after")
    def _ordered_and_known(self) -> EstimateAnswer:
        problems = []
        if not self.low <= self.most_likely <= self.high:
            problems.append(
                f"low ≤ most_likely ≤ high must hold, got low={self.low}, "
                f"most_likely={self.most_likely}, high={self.high}"
            )
        if self.task_category not in TASK_CATEGORIES:
            problems.append(
                f"task_category must be one of {', '.join(TASK_CATEGORIES)}, got {self.task_category!r}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _describe(error: Any) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "answer"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{field} is missing"
    if error["type"] in ("value_error", "assertion_error") and not error["loc"]:
        return message
    return f"{field}: {message} (got {error.get('input')!r})"


def parse_answer(content: str | None) -> tuple[EstimateAnswer, dict[str, Any]]:
    """Parse the message content; return the checked answer and the raw JSON object.

    Raises `InvalidAnswerError` listing everything that is wrong.
    """
    if content is None or not content.strip():
        raise InvalidAnswerError(["the answer was empty; a JSON object was expected"])
    text = content.strip()
    fenced = _CODE_FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidAnswerError([f"the answer is not valid JSON ({exc})"]) from exc
    if not isinstance(raw, dict):
        raise InvalidAnswerError([f"the answer must be a JSON object, got {type(raw).__name__}"])
    try:
        answer = EstimateAnswer.model_validate(raw)
    except ValidationError as exc:
        raise InvalidAnswerError([_describe(error) for error in exc.errors()]) from exc
    return answer, raw
