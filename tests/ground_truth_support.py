"""Test helpers for ground truth: analysed conversations and confirmations written straight to the tables."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.tables import conversation_analysis, time_confirmations

__all__ = ["add_analysis", "add_confirmation", "confirmation_rows"]

_START = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)


def add_analysis(
    engine: Engine,
    conversation_id: str,
    *,
    user_id_hash: str = "f" * 64,
    low: int = 30,
    most_likely: int = 60,
    high: int = 120,
    active: int = 10,
    category: str = "coding",
    estimator: str = "llm",
    model: str | None = "gpt-4o-mini",
    prompt_version: str = "2026-11-28.1",
    day: date = date(2026, 6, 10),
    **extra: Any,
) -> None:
    """One analysed conversation with the given estimate."""
    values: dict[str, Any] = {
        "conversation_id": conversation_id,
        "user_id_hash": user_id_hash,
        "status": "analyzed",
        "analysis_date": day,
        "first_message_at": _START,
        "last_message_at": _START + timedelta(minutes=active),
        "total_duration_minutes": active,
        "active_duration_minutes": active,
        "idle_time_minutes": 0,
        "manual_time_low": low,
        "manual_time_most_likely": most_likely,
        "manual_time_high": high,
        "confidence_level": 60,
        "time_saved_minutes": max(0, most_likely - active),
        "task_category": category,
        "estimator": estimator,
        "estimator_model": model,
        "prompt_version": prompt_version,
        "message_count": 4,
        "user_message_count": 2,
        "source_updated_at": _START,
        "content_fingerprint": "0" * 64,
        **extra,
    }
    with engine.begin() as connection:
        connection.execute(sa.insert(conversation_analysis).values(values))


def add_confirmation(engine: Engine, conversation_id: str, user_id_hash: str, **values: Any) -> None:
    """One confirmation row (no `seen_*` unless given)."""
    with engine.begin() as connection:
        connection.execute(
            sa.insert(time_confirmations).values(
                conversation_id=conversation_id, user_id_hash=user_id_hash, **values
            )
        )


def confirmation_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [
            dict(row._mapping)
            for row in connection.execute(
                sa.select(time_confirmations).order_by(time_confirmations.c.conversation_id)
            )
        ]
