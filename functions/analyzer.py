"""The analyzer: one conversation per task — read, measure, redact, estimate, upsert, count once.

Outcomes:
* analysed: the analysis row is upserted by `conversation_id` and counted on the run;
* skipped (cannot be measured) or failed (the estimator refused, or transient errors
  outlasted the queue's attempts): recorded with a reason and acknowledged;
* transient trouble before the last attempt: `RetryableError`, so the queue retries.

Estimates are reused, at no cost, when the stored analysis has the same content
fingerprint, estimator, model and prompt version (unless the run is forced). A
failure never overwrites an earlier good analysis of the same conversation.
"""

from __future__ import annotations

import logging
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection, Engine, Row

from functions import runs, success, wiring
from functions.value import record_usage
from shared.config import Settings, get_settings
from shared.conversation import Conversation, Timing
from shared.db import analytics_engine, source_engine
from shared.digest import build_digest
from shared.errors import (
    EstimationFailed,
    ReasonCode,
    RequestRejected,
    RetryableError,
    SkipConversation,
    validation_problems,
)
from shared.estimators.base import Estimate, EstimateUsage, Estimator
from shared.estimators.flags import answer_flag
from shared.openwebui import reader
from shared.openwebui.document import primary_model
from shared.pseudonym import pseudonymise
from shared.queue import TaskQueue
from shared.tables import PROCESSING_VERSION, conversation_analysis
from shared.timing import attribution_date, measure

__all__ = ["DUPLICATE", "PROCESSING_VERSION", "AnalyzePayload", "AnalyzeResult", "analyze", "parse_payload"]

_log = logging.getLogger(__name__)
DUPLICATE = "duplicate"  # the result of a delivery whose conversation another delivery counted first


class AnalyzePayload(BaseModel):
    """The body of an analyzer task: ids only, never conversation content."""

    model_config = ConfigDict(extra="forbid", strict=False)

    run_id: uuid.UUID
    conversation_id: str = Field(min_length=1, max_length=255)
    force: bool = False


@dataclass(frozen=True, slots=True)
class AnalyzeResult:
    run_id: uuid.UUID
    conversation_id: str
    outcome: str  # a `runs.Outcome`, or DUPLICATE
    reason: ReasonCode | None = None
    estimate_reused: bool = False


def parse_payload(body: dict[str, Any]) -> AnalyzePayload:
    try:
        return AnalyzePayload.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(map(str, validation_problems(exc, whole="body")))
        raise RequestRejected(f"invalid analyzer payload: {problems}") from exc


def _stored(connection: Connection, conversation_id: str) -> Row[Any] | None:
    """The stored analysis row of the conversation, if any."""
    table = conversation_analysis
    return connection.execute(sa.select(table).where(table.c.conversation_id == conversation_id)).first()


def _reusable(stored: Row[Any] | None, conversation: Conversation, estimator: Estimator, force: bool) -> bool:
    return (
        not force
        and stored is not None
        and stored.status == runs.Outcome.ANALYZED
        and stored.content_fingerprint == conversation.fingerprint
        and stored.estimator == estimator.name
        and stored.estimator_model == estimator.model
        and stored.prompt_version == estimator.prompt_version
    )


def _estimate_from_row(row: Row[Any]) -> Estimate:
    return Estimate(
        low=row.manual_time_low or 0,
        most_likely=row.manual_time_most_likely or 0,
        high=row.manual_time_high or 0,
        confidence=row.confidence_level or 0,
        task_category=row.task_category or "other",
        task_description=row.task_description or "",
        reasoning="",
        estimator=row.estimator or "",
        model=row.estimator_model,
        prompt_version=row.prompt_version or "",
        usage=EstimateUsage(),
        raw_response=row.llm_response,
    )


def _upsert(connection: Connection, values: dict[str, Any]) -> None:
    statement = insert(conversation_analysis).values(**values)
    updates: dict[str, Any] = {name: statement.excluded[name] for name in values if name != "conversation_id"}
    updates["processed_at"] = sa.func.now()
    connection.execute(statement.on_conflict_do_update(index_elements=["conversation_id"], set_=updates))


def _analysis_values(
    conversation: Conversation,
    timing: Timing,
    estimate: Estimate,
    *,
    run_id: uuid.UUID,
    settings: Settings,
    user_hash: str,
    group_ids: list[str],
    summary: str | None,
) -> dict[str, Any]:
    usage = estimate.usage
    return {
        "conversation_id": conversation.conversation_id,
        "user_id_hash": user_hash,
        "group_ids": group_ids,
        "status": runs.Outcome.ANALYZED.value,
        "skip_reason": None,
        "skip_detail": None,
        "analysis_date": attribution_date(timing.last_message_at, settings.zone),
        "first_message_at": timing.first_message_at,
        "last_message_at": timing.last_message_at,
        "total_duration_minutes": timing.total_minutes,
        "active_duration_minutes": timing.active_minutes,
        "idle_time_minutes": timing.idle_minutes,
        "manual_time_low": estimate.low,
        "manual_time_most_likely": estimate.most_likely,
        "manual_time_high": estimate.high,
        "confidence_level": estimate.confidence,
        "time_saved_minutes": max(0, estimate.most_likely - timing.active_minutes),
        "task_category": estimate.task_category,
        "task_description": estimate.task_description,
        "estimator": estimate.estimator,
        "estimator_model": estimate.model,
        "prompt_version": estimate.prompt_version,
        # low confidence or a band too wide; the run's completion adds `same_answer` (flags.py)
        "estimate_flag": answer_flag(
            estimate,
            min_confidence=settings.flag_min_confidence,
            max_band_ratio=settings.flag_max_band_ratio,
        ),
        "processing_version": PROCESSING_VERSION,
        **_message_counts(conversation),
        "regeneration_count": conversation.regenerations,
        "side_by_side_count": conversation.side_by_side_answers,
        "models_used": list(conversation.models),
        "tags": list(conversation.tags),
        "primary_model": primary_model(conversation),
        "source_updated_at": conversation.source_updated_at,
        "content_fingerprint": conversation.fingerprint,
        "llm_requests": usage.requests,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "llm_cost_usd": usage.cost_usd,
        "conversation_summary": summary,
        "llm_response": estimate.raw_response,
        "run_id": run_id,
    }


def _message_counts(conversation: Conversation | None) -> dict[str, int]:
    """The kept branch's message counts; 0 only when the chat could not be read as a conversation."""
    messages = conversation.messages if conversation is not None else ()
    return {
        "message_count": len(messages),
        "user_message_count": sum(1 for m in messages if m.role == "user"),
    }


def _not_analysed_values(
    conversation_id: str,
    *,
    status: str,
    reason: ReasonCode,
    detail: str,
    run_id: uuid.UUID,
    user_hash: str,
    source_updated_at: datetime,
    fingerprint: str,
    conversation: Conversation | None,
) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        # a skipped or failed chat keeps its real size (a 6-message chat without timestamps is not empty)
        **_message_counts(conversation),
        "user_id_hash": user_hash,
        "status": status,
        "skip_reason": reason,
        "skip_detail": detail[:2000],
        "source_updated_at": source_updated_at,
        "content_fingerprint": fingerprint,
        "run_id": run_id,
        "tags": [],
        # clear every measured and estimated field of an earlier row
        **dict.fromkeys(
            (
                "analysis_date",
                "first_message_at",
                "last_message_at",
                "total_duration_minutes",
                "active_duration_minutes",
                "idle_time_minutes",
                "manual_time_low",
                "manual_time_most_likely",
                "manual_time_high",
                "confidence_level",
                "time_saved_minutes",
                "task_category",
                "task_description",
                "estimator",
                "estimator_model",
                "prompt_version",
                "estimate_flag",
                "primary_model",
                "conversation_summary",
                "llm_response",
            )
        ),
    }


class _Context:
    """Everything one analysis needs, resolved once per call."""

    def __init__(
        self,
        payload: AnalyzePayload,
        *,
        attempt: int,
        settings: Settings,
        engine: Engine,
        estimator: Estimator,
        queue: TaskQueue,
    ) -> None:
        self.payload = payload
        self.run_id = payload.run_id
        self.conversation_id = payload.conversation_id
        self.attempt = attempt
        self.settings = settings
        self.engine = engine
        self.estimator = estimator
        self.queue = queue
        self.key = settings.hmac_key.get_secret_value()

    @property
    def source(self) -> Engine:
        """Open WebUI's database, opened only once the task is known to be worth reading."""
        return source_engine(self.settings)

    @property
    def lease_seconds(self) -> float:
        """How long a claim protects an estimate in progress: two LLM requests and some room.

        Only an optimisation (the database counts each outcome once anyway), so it errs
        short: a holder that died blocks the task's retries for no longer than this.
        """
        return 2 * self.settings.llm_timeout_seconds + 10

    @property
    def last_attempt(self) -> bool:
        return self.attempt + 1 >= self.settings.task_max_attempts

    def result(
        self, outcome: str, reason: ReasonCode | None = None, *, reused: bool = False
    ) -> AnalyzeResult:
        return AnalyzeResult(self.run_id, self.conversation_id, outcome, reason, reused)


def _outcome(
    ctx: _Context, outcome: runs.Outcome, usage: EstimateUsage | None, **fields: Any
) -> runs.OutcomeRecord:
    """The run outcome of this conversation, carrying what its estimate cost."""
    return runs.OutcomeRecord(ctx.conversation_id, outcome, usage=usage or EstimateUsage(), **fields)


def _owner(ctx: _Context, conversation: Conversation | None) -> tuple[str, datetime, str] | None:
    """Owner, source `updated_at` and fingerprint of the chat; None when the row is gone."""
    if conversation is not None:
        return conversation.user_id, conversation.source_updated_at, conversation.fingerprint
    ref = reader.load_conversation_ref(ctx.source, ctx.conversation_id)
    return None if ref is None else (ref.user_id, ref.updated_at, "")


def _record_not_analysed(
    ctx: _Context,
    stored: Row[Any] | None,
    *,
    outcome: runs.Outcome,
    reason: ReasonCode,
    detail: str,
    conversation: Conversation | None,
    usage: EstimateUsage | None = None,
) -> AnalyzeResult:
    """Count a skip or failure (with what a failed estimate cost); never overwrite a good analysis."""
    keep_existing = (
        stored is not None and stored.status == runs.Outcome.ANALYZED and outcome is runs.Outcome.FAILED
    )
    owner = None if keep_existing else _owner(ctx, conversation)
    write = None
    if owner is not None:
        user_id, source_updated_at, fingerprint = owner
        values = _not_analysed_values(
            ctx.conversation_id,
            status=outcome.value,
            reason=reason,
            detail=detail,
            run_id=ctx.run_id,
            user_hash=pseudonymise(user_id, ctx.key),
            source_updated_at=source_updated_at,
            fingerprint=fingerprint,
            conversation=conversation,
        )

        def write(connection: Connection) -> None:
            _upsert(connection, values)

    previous = stored.analysis_date if stored is not None and not keep_existing else None
    record = _outcome(ctx, outcome, usage, reason=reason, previous_analysis_date=previous)
    counted = runs.commit_outcome(ctx.engine, ctx.queue, ctx.run_id, record, write=write)
    _log.info("run %s: conversation %s %s (%s)", ctx.run_id, ctx.conversation_id, outcome, reason)
    return ctx.result(outcome if counted else DUPLICATE, reason)


def _estimate(
    ctx: _Context, conversation: Conversation, stored: Row[Any] | None
) -> tuple[Estimate, str | None, bool]:
    """The estimate and the stored digest; (reused estimate, stored summary) when nothing changed."""
    if _reusable(stored, conversation, ctx.estimator, ctx.payload.force):
        assert stored is not None
        return _estimate_from_row(stored), stored.conversation_summary, True
    digest = build_digest(
        conversation,
        ctx.settings.digest_token_budget,
        known_names=_known_names(ctx.source),
        regions=ctx.settings.pii_regions,
        mode=ctx.settings.digest_mode,
    )
    return ctx.estimator.estimate(digest), digest.text, False


def _run(ctx: _Context) -> AnalyzeResult:
    with ctx.engine.connect() as connection:
        status = runs.run_status(connection, ctx.run_id)
        if status is None:
            raise RequestRejected(f"run {ctx.run_id} does not exist")
        if runs.outcome_exists(connection, ctx.run_id, ctx.conversation_id):
            if status is runs.RunStatus.AGGREGATING:
                # the delivery that finished the run may have died before starting the
                # aggregator; asking again is harmless (named task, idempotent aggregator)
                runs.request_aggregation(ctx.queue, ctx.run_id)
            return ctx.result(DUPLICATE)
        stored = _stored(connection, ctx.conversation_id)
    with ctx.engine.begin() as connection:
        if not runs.claim(connection, ctx.run_id, ctx.conversation_id, ctx.lease_seconds):
            # another delivery of this task is estimating it right now: come back when it is done
            raise RetryableError("another delivery is analysing this conversation", retry_after_seconds=2)
    try:
        return _analyse_claimed(ctx, stored)
    except BaseException:
        _release_claim(ctx)  # a failed attempt must not block its own retry until the lease ends
        raise


def _release_claim(ctx: _Context) -> None:
    try:
        with ctx.engine.begin() as connection:
            runs.release(connection, ctx.run_id, ctx.conversation_id)
    except sa.exc.DBAPIError:
        _log.warning("run %s: could not release the claim on %s; it expires", ctx.run_id, ctx.conversation_id)


def _analyse_claimed(ctx: _Context, stored: Row[Any] | None) -> AnalyzeResult:
    """Measure, estimate and record a conversation this delivery holds the claim on."""
    conversation: Conversation | None = None
    try:
        conversation = reader.load_conversation(ctx.source, ctx.conversation_id)
        timing = measure(conversation.messages, ctx.settings.idle_threshold_minutes)
    except SkipConversation as skip:
        if skip.reason_code is ReasonCode.NOT_FOUND:
            # deleted in Open WebUI: count it, keep any earlier analysis
            record = runs.OutcomeRecord(
                ctx.conversation_id, runs.Outcome.SKIPPED, reason=ReasonCode.NOT_FOUND
            )
            counted = runs.commit_outcome(ctx.engine, ctx.queue, ctx.run_id, record)
            return ctx.result(runs.Outcome.SKIPPED if counted else DUPLICATE, ReasonCode.NOT_FOUND)
        return _record_not_analysed(
            ctx,
            stored,
            outcome=runs.Outcome.SKIPPED,
            reason=skip.reason_code,
            detail=str(skip),
            conversation=conversation,
        )

    try:
        estimate, summary, reused = _estimate(ctx, conversation, stored)
    except EstimationFailed as failure:
        return _record_not_analysed(
            ctx,
            stored,
            outcome=runs.Outcome.FAILED,
            reason=failure.reason_code,
            detail=str(failure),
            conversation=conversation,
            usage=failure.usage,
        )
    except RetryableError as error:
        if not ctx.last_attempt:
            raise
        return _record_not_analysed(
            ctx,
            stored,
            outcome=runs.Outcome.FAILED,
            reason=ReasonCode.TRANSIENT_ERROR,
            detail=f"gave up after {ctx.attempt + 1} attempts: {error}",
            conversation=conversation,
            usage=error.usage,
        )

    values = _analysis_values(
        conversation,
        timing,
        estimate,
        run_id=ctx.run_id,
        settings=ctx.settings,
        user_hash=pseudonymise(conversation.user_id, ctx.key),
        group_ids=sorted(
            {group.id for group in reader.load_user_groups_of(ctx.source, conversation.user_id)}
        ),
        summary=summary,
    )
    previous = (
        stored.analysis_date
        if stored is not None and stored.analysis_date != values["analysis_date"]
        else None
    )
    record = _outcome(
        ctx,
        runs.Outcome.ANALYZED,
        estimate.usage,
        analysis_date=values["analysis_date"],
        previous_analysis_date=previous,
        estimate_reused=reused,
    )

    values["rated_down"] = success.rated_down(
        conversation.kept_answer_ids, reader.load_ratings(ctx.source, conversation.conversation_id)
    )

    def write(connection: Connection) -> None:
        values["confirmed_no_help"] = success.confirmed_no_help(connection, conversation.conversation_id)
        values["confirmed_new_work"] = success.confirmed_new_work(connection, conversation.conversation_id)
        _upsert(connection, values)
        record_usage(connection, ctx.conversation_id, conversation.usage, ctx.settings)

    counted = runs.commit_outcome(ctx.engine, ctx.queue, ctx.run_id, record, write=write)
    return ctx.result(runs.Outcome.ANALYZED if counted else DUPLICATE, reused=reused)


_NAMES_TTL_SECONDS = 600.0
_names_cache: weakref.WeakKeyDictionary[Engine, tuple[float, list[str]]] = weakref.WeakKeyDictionary()


def _known_names(source: Engine) -> list[str]:
    """Open WebUI users' names, to scrub from the digest; re-read every ten minutes per process."""
    cached = _names_cache.get(source)
    now = time.monotonic()
    if cached is None or now - cached[0] > _NAMES_TTL_SECONDS:
        cached = _names_cache[source] = (now, reader.load_known_names(source))
    return cached[1]


def analyze(
    body: dict[str, Any],
    *,
    attempt: int = 0,
    settings: Settings | None = None,
    estimator: Estimator | None = None,
    queue: TaskQueue | None = None,
) -> AnalyzeResult:
    """Analyse the conversation a task names; see the module docstring for the outcomes."""
    settings = settings or get_settings()
    payload = parse_payload(body)
    if queue is None:
        queue = wiring.queue(settings)
    ctx = _Context(
        payload,
        attempt=attempt,
        settings=settings,
        engine=analytics_engine(settings),
        estimator=estimator or wiring.estimator(settings),
        queue=queue,
    )
    return _run(ctx)
