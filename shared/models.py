"""SQLAlchemy 2 models of the analytics schema.

`migrations/` is the source of truth; these classes mirror it for typed queries,
and `tests/test_schema.py` fails when the two drift apart.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "PROCESSING_VERSION",
    "AnalysisClaim",
    "Base",
    "Calibration",
    "CalibrationConfirmation",
    "CalibrationDate",
    "CalibrationFactor",
    "ConversationAnalysis",
    "ConversationModelUsage",
    "DailyAggregate",
    "DailyBreakdown",
    "FeedbackAnswerDay",
    "GroupMember",
    "ProcessingLog",
    "RunOutcome",
    "RunTask",
    "SchemaMigration",
    "TimeConfirmation",
    "UserGroup",
    "ValueRate",
]

PROCESSING_VERSION = "2.0"
"""The version of the processing stamped on every analysis (the column's default, migration 001)."""

_NOW = text("now()")
_TS = DateTime(timezone=True)


class Base(DeclarativeBase):
    pass


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()"))


def _count(*, big: bool = False) -> Mapped[int]:
    return mapped_column(BigInteger if big else Integer, nullable=False, server_default=text("0"))


def _usd() -> Mapped[Decimal]:
    return mapped_column(Numeric(12, 6), nullable=False, server_default=text("0"))


class SchemaMigration(Base):
    __tablename__ = "schema_migrations"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(255))
    checksum: Mapped[str] = mapped_column(String(64))
    applied_at: Mapped[datetime] = mapped_column(_TS, server_default=_NOW)


class ProcessingLog(Base):
    __tablename__ = "processing_log"

    id: Mapped[uuid.UUID] = _uuid_pk()
    run_date: Mapped[date] = mapped_column(Date)
    started_at: Mapped[datetime] = mapped_column(_TS, server_default=_NOW)
    completed_at: Mapped[datetime | None] = mapped_column(_TS)
    status: Mapped[str] = mapped_column(String(20), server_default=text("'running'"))
    trigger: Mapped[str] = mapped_column(String(20), server_default=text("'scheduler'"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    force_reestimate: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    conversations_expected: Mapped[int] = _count()
    conversations_deferred: Mapped[int] = _count()
    late_arrivals: Mapped[int] = _count()  # planned by id: never seen, dated before the run's window
    conversations_processed: Mapped[int] = _count()
    conversations_skipped: Mapped[int] = _count()
    conversations_failed: Mapped[int] = _count()
    estimates_reused: Mapped[int] = _count()
    estimates_flagged: Mapped[int] = _count()  # migration 010
    estimate_flags: Mapped[dict[str, int]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    same_answer_share: Mapped[Decimal | None] = mapped_column(Numeric(5, 4))

    total_llm_requests: Mapped[int] = _count()
    total_prompt_tokens: Mapped[int] = _count(big=True)
    total_completion_tokens: Mapped[int] = _count(big=True)
    total_cached_tokens: Mapped[int] = _count(big=True)
    total_llm_cost_usd: Mapped[Decimal] = _usd()
    processing_duration_seconds: Mapped[int | None] = mapped_column(Integer)
    aggregation_requested_at: Mapped[datetime | None] = mapped_column(_TS)

    error_message: Mapped[str | None] = mapped_column(Text)
    error_details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(_TS, server_default=_NOW)

    __table_args__ = (
        Index("idx_processing_log_run_date", "run_date"),
        Index("idx_processing_log_started_at", text("started_at DESC")),
        Index(
            "idx_processing_log_one_open_run",
            "run_date",
            unique=True,
            postgresql_where=text("status IN ('running', 'aggregating')"),
        ),
        Index(
            "idx_processing_log_idempotency_key",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    @property
    def conversations_finished(self) -> int:
        return self.conversations_processed + self.conversations_skipped + self.conversations_failed


class ConversationAnalysis(Base):
    __tablename__ = "conversation_analysis"

    id: Mapped[uuid.UUID] = _uuid_pk()
    conversation_id: Mapped[str] = mapped_column(String(255))
    user_id_hash: Mapped[str] = mapped_column(String(64))
    group_ids: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))

    status: Mapped[str] = mapped_column(String(20))
    skip_reason: Mapped[str | None] = mapped_column(String(64))
    skip_detail: Mapped[str | None] = mapped_column(Text)

    analysis_date: Mapped[date | None] = mapped_column(Date)
    first_message_at: Mapped[datetime | None] = mapped_column(_TS)
    last_message_at: Mapped[datetime | None] = mapped_column(_TS)
    total_duration_minutes: Mapped[int | None] = mapped_column(Integer)
    active_duration_minutes: Mapped[int | None] = mapped_column(Integer)
    idle_time_minutes: Mapped[int | None] = mapped_column(Integer)

    manual_time_low: Mapped[int | None] = mapped_column(Integer)
    manual_time_most_likely: Mapped[int | None] = mapped_column(Integer)
    manual_time_high: Mapped[int | None] = mapped_column(Integer)
    confidence_level: Mapped[int | None] = mapped_column(Integer)
    time_saved_minutes: Mapped[int | None] = mapped_column(Integer)
    task_category: Mapped[str | None] = mapped_column(String(32))
    task_description: Mapped[str | None] = mapped_column(Text)

    estimator: Mapped[str | None] = mapped_column(String(20))
    estimator_model: Mapped[str | None] = mapped_column(String(128))
    estimate_flag: Mapped[str | None] = mapped_column(String(32))  # migration 010: why not trusted
    prompt_version: Mapped[str | None] = mapped_column(String(64))
    processing_version: Mapped[str] = mapped_column(
        String(20), server_default=text(f"'{PROCESSING_VERSION}'")
    )

    message_count: Mapped[int] = _count()
    user_message_count: Mapped[int] = _count()
    regeneration_count: Mapped[int] = _count()
    side_by_side_count: Mapped[int] = _count()  # migration 006
    rated_down: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    confirmed_no_help: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    confirmed_new_work: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))  # migration 011
    models_used: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    primary_model: Mapped[str | None] = mapped_column(String(255))
    source_updated_at: Mapped[datetime] = mapped_column(_TS)
    content_fingerprint: Mapped[str] = mapped_column(String(64))

    llm_requests: Mapped[int] = _count()
    prompt_tokens: Mapped[int] = _count()
    completion_tokens: Mapped[int] = _count()
    cached_tokens: Mapped[int] = _count()
    llm_cost_usd: Mapped[Decimal] = _usd()

    conversation_summary: Mapped[str | None] = mapped_column(Text)
    llm_response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    run_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("processing_log.id", ondelete="SET NULL")
    )
    processed_at: Mapped[datetime] = mapped_column(_TS, server_default=_NOW)

    __table_args__ = (
        Index("idx_conversation_analysis_conversation_id", "conversation_id", unique=True),
        Index(
            "idx_conversation_analysis_date",
            "analysis_date",
            postgresql_where=text("status = 'analyzed'"),
        ),
        Index("idx_conversation_analysis_user_date", "user_id_hash", "analysis_date"),
        Index("idx_conversation_analysis_processed_at", "processed_at"),
        Index("idx_conversation_analysis_run", "run_id"),
    )


class RunOutcome(Base):
    __tablename__ = "run_outcomes"

    run_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("processing_log.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(64))
    analysis_date: Mapped[date | None] = mapped_column(Date)
    previous_analysis_date: Mapped[date | None] = mapped_column(Date)
    estimate_reused: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    llm_requests: Mapped[int] = _count()
    prompt_tokens: Mapped[int] = _count()
    completion_tokens: Mapped[int] = _count()
    cached_tokens: Mapped[int] = _count()
    llm_cost_usd: Mapped[Decimal] = _usd()
    recorded_at: Mapped[datetime] = mapped_column(_TS, server_default=_NOW)


class _AggregateMetrics:
    """Columns shared by daily aggregates and breakdowns."""

    conversation_count: Mapped[int] = _count()
    message_count: Mapped[int] = _count()
    total_active_time: Mapped[int] = _count()
    total_manual_time_estimated: Mapped[int] = _count()
    total_manual_time_low: Mapped[int] = _count()
    total_manual_time_high: Mapped[int] = _count()
    total_time_saved: Mapped[int] = _count()
    total_time_saved_low: Mapped[int] = _count()
    total_time_saved_high: Mapped[int] = _count()
    total_time_saved_successful: Mapped[int] = _count()  # migration 006
    unsuccessful_count: Mapped[int] = _count()  # migration 006
    confidence_sum: Mapped[int] = _count()
    estimator_counts: Mapped[dict[str, int]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    ai_input_tokens: Mapped[int] = _count(big=True)
    ai_output_tokens: Mapped[int] = _count(big=True)
    ai_cached_tokens: Mapped[int] = _count(big=True)
    ai_unpriced_tokens: Mapped[int] = _count(big=True)
    ai_cost_micro_usd: Mapped[int] = _count(big=True)
    analysis_cost_micro_usd: Mapped[int] = _count(big=True)
    value_saved_milli: Mapped[int] = _count(big=True)
    value_saved_low_milli: Mapped[int] = _count(big=True)
    value_saved_high_milli: Mapped[int] = _count(big=True)
    value_rate_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("value_rates.id", ondelete="SET NULL")
    )
    total_manual_time_calibrated: Mapped[int] = _count()  # migration 008
    total_time_saved_calibrated: Mapped[int] = _count()
    total_time_saved_calibrated_low: Mapped[int] = _count()
    total_time_saved_calibrated_high: Mapped[int] = _count()
    calibrated_count: Mapped[int] = _count()
    calibration_version: Mapped[int | None] = mapped_column(Integer, ForeignKey("calibrations.version"))
    flagged_count: Mapped[int] = _count()  # migration 010
    flagged_time_saved: Mapped[int] = _count()
    new_work_conversations: Mapped[int] = _count()  # migration 011
    new_work_active_minutes: Mapped[int] = _count()
    updated_at: Mapped[datetime] = mapped_column(_TS, server_default=_NOW)


class DailyAggregate(_AggregateMetrics, Base):
    __tablename__ = "daily_aggregates"

    id: Mapped[uuid.UUID] = _uuid_pk()
    analysis_date: Mapped[date] = mapped_column(Date)
    user_id_hash: Mapped[str | None] = mapped_column(String(64))
    avg_time_saved_per_conversation: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    avg_confidence_level: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    created_at: Mapped[datetime] = mapped_column(_TS, server_default=_NOW)

    __table_args__ = (
        Index(
            "idx_daily_aggregates_date_user",
            "analysis_date",
            "user_id_hash",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
        Index(
            "idx_daily_aggregates_user_date",
            "user_id_hash",
            "analysis_date",
            postgresql_where=text("user_id_hash IS NOT NULL"),
        ),
    )


class DailyBreakdown(_AggregateMetrics, Base):
    __tablename__ = "daily_breakdowns"

    analysis_date: Mapped[date] = mapped_column(Date, primary_key=True)
    group_id: Mapped[str] = mapped_column(String(255), primary_key=True, server_default=text("''"))
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    dimension_value: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_count: Mapped[int] = _count()

    __table_args__ = (Index("idx_daily_breakdowns_lookup", "dimension", "group_id", "analysis_date"),)


class UserGroup(Base):
    __tablename__ = "user_groups"

    group_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    member_count: Mapped[int] = _count()
    refreshed_at: Mapped[datetime] = mapped_column(_TS, server_default=_NOW)


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("user_groups.group_id", ondelete="CASCADE"), primary_key=True
    )
    user_id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("idx_group_members_user", "user_id_hash"),)


class TaskRejection(Base):
    __tablename__ = "task_rejections"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(_TS, server_default=_NOW)
    function_name: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    body_bytes: Mapped[int] = mapped_column(Integer)
    body_sha256: Mapped[str] = mapped_column(String(64))
    task_name: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index("idx_task_rejections_received_at", "received_at"),)


class RunTask(Base):
    __tablename__ = "run_tasks"

    run_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("processing_log.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[str] = mapped_column(String(255), primary_key=True)

    __table_args__ = (Index("idx_run_tasks_conversation", "conversation_id"),)


class AnalysisClaim(Base):
    __tablename__ = "analysis_claims"

    run_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("processing_log.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    claimed_until: Mapped[datetime] = mapped_column(_TS)


class DashboardSession(Base):
    __tablename__ = "dashboard_sessions"

    session_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(_TS)
    expires_at: Mapped[datetime] = mapped_column(_TS)
    last_seen_at: Mapped[datetime] = mapped_column(_TS)
    revoked_at: Mapped[datetime | None] = mapped_column(_TS)

    __table_args__ = (Index("idx_dashboard_sessions_expires_at", "expires_at"),)


class TimeConfirmation(Base):
    """A person's own answer to "how long would this have taken you without AI?"."""

    __tablename__ = "time_confirmations"

    conversation_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[str | None] = mapped_column(String(255))
    confirmed_minutes: Mapped[int | None] = mapped_column(Integer)
    did_not_help: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    new_work: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))  # migration 011
    preset: Mapped[str | None] = mapped_column(String(16))
    seen_low: Mapped[int | None] = mapped_column(Integer)
    seen_most_likely: Mapped[int | None] = mapped_column(Integer)
    seen_high: Mapped[int | None] = mapped_column(Integer)
    seen_estimator: Mapped[str | None] = mapped_column(String(20))
    seen_model: Mapped[str | None] = mapped_column(String(128))
    seen_prompt_version: Mapped[str | None] = mapped_column(String(64))
    seen_task_category: Mapped[str | None] = mapped_column(String(32))
    answer_count: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(_TS, server_default=_NOW)
    updated_at: Mapped[datetime] = mapped_column(_TS, server_default=_NOW)

    __table_args__ = (Index("idx_time_confirmations_updated", "updated_at"),)


class FeedbackAnswerDay(Base):
    """How many answers one person gave on one local day (the feedback endpoint's daily limit)."""

    __tablename__ = "feedback_answer_days"

    user_id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    answer_date: Mapped[date] = mapped_column(Date, primary_key=True)
    answers: Mapped[int] = mapped_column(Integer)


class ConversationModelUsage(Base):
    """Tokens one model used in one conversation (kept answers and regenerations), priced."""

    __tablename__ = "conversation_model_usage"

    conversation_id: Mapped[str] = mapped_column(
        String(255),
        ForeignKey("conversation_analysis.conversation_id", ondelete="CASCADE"),
        primary_key=True,
    )
    model: Mapped[str] = mapped_column(String(255), primary_key=True)
    answers: Mapped[int] = _count()
    input_tokens: Mapped[int] = _count(big=True)
    output_tokens: Mapped[int] = _count(big=True)
    cached_tokens: Mapped[int] = _count(big=True)
    generation_seconds: Mapped[Decimal] = mapped_column(
        Numeric(12, 3), nullable=False, server_default=text("0")
    )
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(14, 6))  # None: unpriced
    priced_at: Mapped[datetime] = mapped_column(_TS, server_default=_NOW)


class ValueRate(Base):
    """Hourly rates in effect for analysis dates from `effective_from` on."""

    __tablename__ = "value_rates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date, unique=True)
    currency: Mapped[str | None] = mapped_column(String(3))
    hourly_rate: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    group_hourly_rates: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'"))
    recorded_at: Mapped[datetime] = mapped_column(_TS, server_default=_NOW)


class Calibration(Base):
    """One calibration version: when, with which minimum, from which confirmations (fingerprint)."""

    __tablename__ = "calibrations"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(_TS, server_default=_NOW)
    min_confirmations: Mapped[int] = mapped_column(Integer)
    min_people: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    confirmations: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64))
    pending: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))  # migration 011


class CalibrationFactor(Base):
    """A version's bias factor and band for one estimator and task category (1 when not calibrated)."""

    __tablename__ = "calibration_factors"

    version: Mapped[int] = mapped_column(
        Integer, ForeignKey("calibrations.version", ondelete="CASCADE"), primary_key=True
    )
    estimator: Mapped[str] = mapped_column(String(20), primary_key=True)
    task_category: Mapped[str] = mapped_column(String(32), primary_key=True)
    confirmations: Mapped[int] = mapped_column(Integer)
    calibrated: Mapped[bool] = mapped_column(Boolean)
    factor: Mapped[Decimal] = mapped_column(Numeric(10, 4))
    factor_low: Mapped[Decimal] = mapped_column(Numeric(10, 4))
    factor_high: Mapped[Decimal] = mapped_column(Numeric(10, 4))
    unbounded_factor: Mapped[Decimal | None] = mapped_column(Numeric(10, 4))  # migration 011


class CalibrationConfirmation(Base):
    """A confirmation a calibration version was computed from, with the estimate it was compared with."""

    __tablename__ = "calibration_confirmations"

    version: Mapped[int] = mapped_column(
        Integer, ForeignKey("calibrations.version", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    estimator: Mapped[str] = mapped_column(String(20))
    task_category: Mapped[str] = mapped_column(String(32))
    confirmed_minutes: Mapped[int] = mapped_column(Integer)
    most_likely: Mapped[int] = mapped_column(Integer)


class CalibrationDate(Base):
    """The calibration version an analysis date is calibrated with."""

    __tablename__ = "calibration_dates"

    analysis_date: Mapped[date] = mapped_column(Date, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, ForeignKey("calibrations.version"))
    assigned_at: Mapped[datetime] = mapped_column(_TS, server_default=_NOW)


class SourceHistory(Base):
    """A chat dated before the first late-arrival sweep's window and never analysed: history, not an import."""

    __tablename__ = "source_history"

    conversation_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(_TS, server_default=_NOW)


class SourceBaseline(Base):
    """That the first late-arrival sweep ran (and how many chats it recorded as history)."""

    __tablename__ = "source_baselines"

    taken_at: Mapped[datetime] = mapped_column(_TS, primary_key=True, server_default=_NOW)
    history_chats: Mapped[int] = mapped_column(Integer)
