"""Test helpers for releases: completed runs for dates, and publishing what is due."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions.read.releases import publish_due
from shared.config import Settings


def complete_runs(engine: Engine, first: date, last: date, completed_at: datetime) -> None:
    """A completed nightly run for every date from `first` to `last` (the ledger releases wait for)."""
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO processing_log (run_date, status, trigger, completed_at) "
                "VALUES (:day, 'completed', 'scheduler', :at)"
            ),
            [{"day": day, "at": completed_at} for day in days],
        )


def publish(engine: Engine, settings: Settings, now: datetime, *, audited: bool = True) -> dict[str, int]:
    with engine.begin() as connection:
        return publish_due(connection, settings, now, audited=audited)
