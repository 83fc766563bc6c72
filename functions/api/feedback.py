"""Confirmations from the people who did the work: the feedback endpoint of the api function.

Open WebUI's time-savings Action (`integrations/openwebui/time_savings_feedback.py`)
asks a person "How long would this have taken you without AI?" and posts the answer
here with the chat id and the person's Open WebUI user id. Before anything is stored
the chat is looked up in Open WebUI's database (read only): it must exist and belong
to that user. The user id is pseudonymised at once; only the pseudonym is stored.

One confirmation per (conversation, person): a later answer replaces the earlier one.
An answer is minutes by hand (or a preset), "AI did not help", or "I would not have done
this without AI" (`new_work`: the task is new work, counted apart and never as time saved).
Each person may answer `ANALYTICS_FEEDBACK_DAILY_LIMIT` times per local day; beyond it the
endpoint answers 429 with `Retry-After` (the next local midnight) and stores nothing. The
request rebuilds no aggregates: the next run brings the answer into the figures.
The estimate the person was shown (low / most likely / high, estimator, model, prompt
version, category) is copied from the conversation's current analysis; a confirmation
that arrives before the conversation is analysed is kept without one and joined to the
analysis by conversation id when there is one (see `functions/calibration.py`).

Who may call: the `feedback` role (`ANALYTICS_FEEDBACK_TOKEN`, a bearer token that opens
these two routes and nothing else) and admins (`shared.roles.FEEDBACK_WRITERS`).
"""

from __future__ import annotations

import hmac
import math
from datetime import datetime, time, timedelta
from typing import Annotated, Any, Literal

import flask
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from functions.api.services import ApiServices
from functions.calibration import MAX_CONFIRMED_MINUTES
from functions.read.schemas import PRINTABLE
from shared.errors import InvalidParameter, RequestRejected
from shared.openwebui.reader import load_conversation_ref
from shared.pseudonym import pseudonymise_with_settings
from shared.tables import conversation_analysis, time_confirmations

__all__ = [
    "ERRORS",
    "MAX_CONFIRMED_MINUTES",
    "PRESET_MINUTES",
    "SUBMIT_ERRORS",
    "AnswerLimitReached",
    "ChatNotFound",
    "FeedbackBody",
    "FeedbackQuery",
    "FeedbackReceipt",
    "FeedbackState",
    "NotTheOwner",
    "feedback_state",
    "submit_feedback",
]

PRESET_MINUTES: dict[str, int | None] = {
    "under_15": 10,  # "< 15 min"
    "15_60": 30,  # "15–60 min": the geometric centre of the range
    "1_4h": 120,  # "1–4 h": the geometric centre of the range
    "more": None,  # "more": the person types the minutes (over 4 h)
}
"""The Action's presets and the minutes stored for them; `more` needs `minutes` above 240."""

_MORE_THAN = 240
_ID = Annotated[str, Field(min_length=1, max_length=255, pattern=PRINTABLE)]
Minutes = Annotated[int, Field(strict=True, ge=1, le=MAX_CONFIRMED_MINUTES)]


ERRORS = (
    (403, "The chat belongs to another user than `user_id` (error `not_chat_owner`)."),
    (404, "No chat with this id in Open WebUI."),
)
"""The feedback routes' own error statuses (for the OpenAPI document)."""
SUBMIT_ERRORS = (
    *ERRORS,
    (429, "This person's answers for today reached `ANALYTICS_FEEDBACK_DAILY_LIMIT`; see `Retry-After`."),
)
"""The submit route's: also the daily limit."""


class ChatNotFound(RequestRejected):
    """The chat id is not a chat in Open WebUI's database (404)."""

    status_code = 404


class NotTheOwner(RequestRejected):
    """The chat belongs to someone else (403, error code `not_chat_owner`)."""

    status_code = 403
    error_code = "not_chat_owner"  # tells the Action this is no credential problem


class AnswerLimitReached(RequestRejected):
    """The person gave today's allowed number of answers (429 with `Retry-After`); nothing is stored."""

    status_code = 429

    def __init__(self, limit: int, retry_after_seconds: int) -> None:
        super().__init__(f"at most {limit} answers per person and day; retry in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


# --- request and response models -----------------------------------------------------------


class FeedbackQuery(BaseModel):
    """Which conversation, asked by whom."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chat_id: _ID = Field(description="Open WebUI chat id.")
    user_id: _ID = Field(description="Open WebUI user id of the person asking (the chat's owner).")


class FeedbackBody(FeedbackQuery):
    """A person's answer: minutes by hand, a preset, "AI did not help", or new work."""

    message_id: _ID | None = Field(None, description="The assistant message the answer was given under.")
    minutes: Minutes | None = Field(
        None, description=f"Minutes the task would have taken by hand (1–{MAX_CONFIRMED_MINUTES})."
    )
    preset: Literal["under_15", "15_60", "1_4h", "more"] | None = Field(
        None,
        description="A preset answer: `under_15` (< 15 min, stored as 10), `15_60` (stored as 30), "
        "`1_4h` (stored as 120), or `more` (with `minutes` over 240).",
    )
    did_not_help: bool = Field(False, description="The person says the AI did not help.")
    new_work: StrictBool = Field(
        False,
        description='"I would not have done this without AI": new work, counted apart, never as time saved.',
    )

    @model_validator(mode="after")
    def _one_answer(self) -> FeedbackBody:
        if self.did_not_help and self.new_work:
            raise ValueError("did_not_help and new_work are different answers: give one")
        for flag in ("did_not_help", "new_work"):
            if getattr(self, flag):
                if self.minutes is not None or self.preset is not None:
                    raise ValueError(f"{flag} takes neither minutes nor a preset")
                return self
        if self.preset == "more":
            if self.minutes is None or self.minutes <= _MORE_THAN:
                raise ValueError(f"the preset 'more' needs minutes over {_MORE_THAN}")
        elif self.preset is not None:
            if self.minutes is not None and self.minutes != PRESET_MINUTES[self.preset]:
                raise ValueError(
                    f"the preset {self.preset!r} stands for {PRESET_MINUTES[self.preset]} minutes"
                )
        elif self.minutes is None:
            raise ValueError("give minutes, a preset, or did_not_help")
        return self

    @property
    def confirmed_minutes(self) -> int | None:
        if self.did_not_help or self.new_work:
            return None
        if self.preset is not None and self.preset != "more":
            return PRESET_MINUTES[self.preset]
        return self.minutes


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ShownEstimate(_Out):
    """The conversation's current estimate, as the Action shows it."""

    low: int = Field(description="Minutes by hand, low.")
    most_likely: int = Field(description="Minutes by hand, most likely.")
    high: int = Field(description="Minutes by hand, high.")
    estimator: str = Field(description="`llm` or `heuristic`.")
    model: str | None = Field(description="The estimator's model (LLM estimates).")
    prompt_version: str | None = Field(description="Version of the estimator's prompt or rules.")
    task_category: str | None = Field(description="Task category of the conversation.")


class Confirmation(_Out):
    """What the person answered last."""

    confirmed_minutes: int | None = Field(
        description="Minutes by hand; null when the AI did not help or the task is new work."
    )
    did_not_help: bool = Field(description="The person said the AI did not help.")
    new_work: bool = Field(description="The person said they would not have done this without AI.")
    preset: str | None = Field(description="The preset chosen, if any.")
    answer_count: int = Field(description="How often this person answered for this conversation.")
    updated_at: datetime = Field(description="When the last answer arrived.")


class FeedbackState(_Out):
    """A conversation's estimate and the asking person's confirmation, if any."""

    chat_id: str
    estimate: ShownEstimate | None = Field(description="Null while the conversation is not analysed.")
    confirmation: Confirmation | None = Field(description="Null before the person answered.")


class FeedbackReceipt(FeedbackState):
    """The stored confirmation and the estimate recorded with it."""


# --- handlers ------------------------------------------------------------------------------


def _owner_hash(services: ApiServices, query: FeedbackQuery) -> str:
    """The pseudonym of the chat's owner, after checking the chat exists and is theirs.

    The raw Open WebUI user id must come in the JSON body: a query string is part of the URL,
    which load balancers and Cloud Run's request logs record.
    """
    if flask.request.args:
        raise InvalidParameter(
            next(iter(flask.request.args)),
            "send the feedback's fields in the JSON body, not in the URL (request URLs are logged)",
        )
    ref = load_conversation_ref(services.source_engine, query.chat_id)
    if ref is None:
        raise ChatNotFound(f"no chat with id {query.chat_id!r} in Open WebUI")
    if not hmac.compare_digest(ref.user_id.encode(), query.user_id.encode()):
        raise NotTheOwner("this chat belongs to another user")
    return pseudonymise_with_settings(query.user_id, services.settings)


def _estimate(connection: Connection, chat_id: str) -> ShownEstimate | None:
    analysis = conversation_analysis
    row = connection.execute(
        sa.select(
            analysis.c.manual_time_low,
            analysis.c.manual_time_most_likely,
            analysis.c.manual_time_high,
            analysis.c.estimator,
            analysis.c.estimator_model,
            analysis.c.prompt_version,
            analysis.c.task_category,
        ).where(analysis.c.conversation_id == chat_id, analysis.c.status == "analyzed")
    ).first()
    if row is None:
        return None
    return ShownEstimate(
        low=row.manual_time_low,
        most_likely=row.manual_time_most_likely,
        high=row.manual_time_high,
        estimator=row.estimator,
        model=row.estimator_model,
        prompt_version=row.prompt_version,
        task_category=row.task_category,
    )


def _confirmation(connection: Connection, chat_id: str, user_hash: str) -> Confirmation | None:
    table = time_confirmations
    row = connection.execute(
        sa.select(
            table.c.confirmed_minutes,
            table.c.did_not_help,
            table.c.new_work,
            table.c.preset,
            table.c.answer_count,
            table.c.updated_at,
        ).where(table.c.conversation_id == chat_id, table.c.user_id_hash == user_hash)
    ).first()
    return Confirmation.model_validate(dict(row._mapping)) if row is not None else None


def feedback_state(services: ApiServices, query: FeedbackQuery) -> FeedbackState:
    """GET: the estimate the Action shows, and what the person answered before."""
    user_hash = _owner_hash(services, query)
    with services.engine.connect() as connection:
        return FeedbackState(
            chat_id=query.chat_id,
            estimate=_estimate(connection, query.chat_id),
            confirmation=_confirmation(connection, query.chat_id, user_hash),
        )


_COUNT_ANSWER = sa.text(
    "INSERT INTO feedback_answer_days AS days (user_id_hash, answer_date, answers) VALUES (:person, :day, 1) "
    "ON CONFLICT (user_id_hash, answer_date) DO UPDATE SET answers = days.answers + 1 "
    "WHERE days.answers < :limit RETURNING answers"
)


def _count_answer(connection: Connection, services: ApiServices, user_hash: str) -> None:
    """Count one answer of the person today; `AnswerLimitReached` (the caller rolls back) beyond the limit."""
    limit = services.settings.feedback_daily_limit
    now = services.now()
    counted = connection.execute(
        _COUNT_ANSWER, {"person": user_hash, "day": now.date(), "limit": limit}
    ).scalar_one_or_none()
    if counted is None:
        midnight = datetime.combine(now.date() + timedelta(days=1), time(), now.tzinfo)
        raise AnswerLimitReached(limit, max(1, math.ceil((midnight - now).total_seconds())))


def submit_feedback(services: ApiServices, body: FeedbackBody) -> FeedbackReceipt:
    """POST: store (or replace) the person's confirmation with the estimate they were shown.

    Counted against the person's daily limit first (429, nothing stored, beyond it). Nothing
    is rebuilt here: the next run brings the answer into the figures.
    """
    user_hash = _owner_hash(services, body)
    table = time_confirmations
    with services.engine.begin() as connection:
        _count_answer(connection, services, user_hash)
        shown = _estimate(connection, body.chat_id)
        answer: dict[str, Any] = {
            "message_id": body.message_id,
            "confirmed_minutes": body.confirmed_minutes,
            "did_not_help": body.did_not_help,
            "new_work": body.new_work,
            "preset": body.preset,
            "seen_low": shown.low if shown else None,
            "seen_most_likely": shown.most_likely if shown else None,
            "seen_high": shown.high if shown else None,
            "seen_estimator": shown.estimator if shown else None,
            "seen_model": shown.model if shown else None,
            "seen_prompt_version": shown.prompt_version if shown else None,
            "seen_task_category": shown.task_category if shown else None,
        }
        statement = insert(time_confirmations).values(
            conversation_id=body.chat_id, user_id_hash=user_hash, **answer
        )
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.conversation_id, table.c.user_id_hash],
                set_={
                    **{name: statement.excluded[name] for name in answer},
                    "answer_count": table.c.answer_count + 1,
                    "updated_at": sa.func.now(),
                },
            )
        )
        return FeedbackReceipt(
            chat_id=body.chat_id,
            estimate=shown,
            confirmation=_confirmation(connection, body.chat_id, user_hash),
        )
