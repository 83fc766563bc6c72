"""The analytics tables that deployed code builds statements for, as SQLAlchemy Core tables.

`migrations/` is the schema; these are the column lists (and types, for binding JSON,
arrays and UUIDs) of the two tables the product writes through SQLAlchemy statements
instead of SQL text: `conversation_analysis` (the analyzer's upsert) and
`time_confirmations` (the feedback route). Every other table is read and written with
SQL text. Core tables, not ORM classes: an entry point imports them in microseconds,
where the ORM's declarative machinery cost a cold start about 150 ms.
`tests/test_schema.py` fails when a table here and its migrated form drift apart.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

__all__ = ["METADATA", "PROCESSING_VERSION", "conversation_analysis", "time_confirmations"]

PROCESSING_VERSION = "2.0"
"""The version of the processing stamped on every analysis (the column's default, migration 001)."""

METADATA = MetaData()

_NOW = text("now()")


def _timestamp(name: str, **options: object) -> Column[object]:
    return Column(name, DateTime(timezone=True), **options)  # type: ignore[arg-type]


def _count(name: str, *, big: bool = False) -> Column[int]:
    return Column(name, BigInteger if big else Integer, nullable=False, server_default=text("0"))


# processing_log is referenced by a foreign key; only its key is declared here.
_processing_log = Table("processing_log", METADATA, Column("id", UUID(as_uuid=True), primary_key=True))

conversation_analysis = Table(
    "conversation_analysis",
    METADATA,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("conversation_id", String(255), nullable=False),
    Column("user_id_hash", String(64), nullable=False),
    Column("group_ids", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("status", String(20), nullable=False),
    Column("skip_reason", String(64)),
    Column("skip_detail", Text),
    Column("analysis_date", Date),
    _timestamp("first_message_at"),
    _timestamp("last_message_at"),
    Column("total_duration_minutes", Integer),
    Column("active_duration_minutes", Integer),
    Column("idle_time_minutes", Integer),
    Column("manual_time_low", Integer),
    Column("manual_time_most_likely", Integer),
    Column("manual_time_high", Integer),
    Column("confidence_level", Integer),
    Column("time_saved_minutes", Integer),
    Column("task_category", String(32)),
    Column("task_description", Text),
    Column("estimator", String(20)),
    Column("estimator_model", String(128)),
    Column("prompt_version", String(64)),
    Column("processing_version", String(20), nullable=False, server_default=text(f"'{PROCESSING_VERSION}'")),
    _count("message_count"),
    _count("user_message_count"),
    _count("regeneration_count"),
    _count("side_by_side_count"),
    Column("rated_down", Boolean, nullable=False, server_default=text("false")),
    Column("confirmed_no_help", Boolean, nullable=False, server_default=text("false")),
    Column("confirmed_new_work", Boolean, nullable=False, server_default=text("false")),  # migration 011
    Column("models_used", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("tags", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("primary_model", String(255)),
    _timestamp("source_updated_at", nullable=False),
    Column("content_fingerprint", String(64), nullable=False),
    _count("llm_requests"),
    _count("prompt_tokens"),
    _count("completion_tokens"),
    _count("cached_tokens"),
    Column("llm_cost_usd", Numeric(12, 6), server_default=text("0")),  # migration 013: NULL = unpriced
    Column("conversation_summary", Text),
    Column("llm_response", JSONB),
    Column("estimate_flag", String(32)),  # migration 010: why the estimate is not trusted
    Column("run_id", UUID(as_uuid=True), ForeignKey("processing_log.id", ondelete="SET NULL")),
    _timestamp("processed_at", nullable=False, server_default=_NOW),
    Index("idx_conversation_analysis_conversation_id", "conversation_id", unique=True),
    Index("idx_conversation_analysis_date", "analysis_date", postgresql_where=text("status = 'analyzed'")),
    Index("idx_conversation_analysis_user_date", "user_id_hash", "analysis_date"),
    Index("idx_conversation_analysis_processed_at", "processed_at"),
    Index("idx_conversation_analysis_run", "run_id"),
)

time_confirmations = Table(
    "time_confirmations",
    METADATA,
    Column("conversation_id", String(255), primary_key=True),
    Column("user_id_hash", String(64), primary_key=True),
    Column("message_id", String(255)),
    Column("confirmed_minutes", Integer),
    Column("did_not_help", Boolean, nullable=False, server_default=text("false")),
    Column("new_work", Boolean, nullable=False, server_default=text("false")),  # migration 011
    Column("preset", String(16)),
    Column("seen_low", Integer),
    Column("seen_most_likely", Integer),
    Column("seen_high", Integer),
    Column("seen_estimator", String(20)),
    Column("seen_model", String(128)),
    Column("seen_prompt_version", String(64)),
    Column("seen_task_category", String(32)),
    Column("answer_count", Integer, nullable=False, server_default=text("1")),
    _timestamp("created_at", nullable=False, server_default=_NOW),
    _timestamp("updated_at", nullable=False, server_default=_NOW),
    Index("idx_time_confirmations_updated", "updated_at"),
)
"""A person's own answer to "how long would this have taken you without AI?"."""
