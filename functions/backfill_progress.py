"""The progress of `serve`'s first backfill, for the dashboard: dates done of total, and an ETA.

Locally `serve` prints the dashboard's URL first and processes the days behind it in
the background. It records what it dispatched in `backfill.json` under
`ANALYTICS_LOCAL_STATE_DIR` (the dates' total, when it started, the run ids so far);
the api reads that file and the run ledger, so the page says how far processing is
and refreshes itself until every run is final. In production there is no such file.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from functions.runs import FINAL_STATUSES
from shared.config import Settings

__all__ = ["BackfillProgress", "clear_backfill", "read_backfill", "write_backfill"]

_FILE_NAME = "backfill.json"


def _path(settings: Settings) -> Path:
    return settings.local_state_dir / _FILE_NAME


def write_backfill(
    settings: Settings, total: int, started_at: datetime, run_ids: Sequence[uuid.UUID]
) -> None:
    """Record (atomically) the backfill `serve` is running: `total` dates, the runs dispatched so far."""
    path = _path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(
        json.dumps(
            {"total": total, "started_at": started_at.isoformat(), "run_ids": [str(r) for r in run_ids]}
        ),
        encoding="utf-8",
    )
    partial.replace(path)


def clear_backfill(settings: Settings) -> None:
    """The backfill is over (finished or stopped): the page no longer shows its progress."""
    _path(settings).unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class BackfillProgress:
    """How far `serve`'s backfill is: `done` of `total` dates final, `eta` (None until one is done)."""

    done: int
    total: int
    eta: timedelta | None

    @property
    def eta_text(self) -> str:
        if self.eta is None:
            return "estimating time left"
        minutes, seconds = divmod(round(self.eta.total_seconds()), 60)
        return f"about {minutes} min {seconds:02d} s left" if minutes else f"about {seconds} s left"


def read_backfill(connection: Connection, settings: Settings, now: datetime) -> BackfillProgress | None:
    """The running backfill's progress, or None (none running, finished, production, unreadable)."""
    if settings.is_production:
        return None
    try:
        recorded = json.loads(_path(settings).read_text(encoding="utf-8"))
        total = int(recorded["total"])
        started_at = datetime.fromisoformat(recorded["started_at"])
        run_ids = [uuid.UUID(str(run_id)) for run_id in recorded["run_ids"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    done = 0
    if run_ids:
        done = int(
            connection.execute(
                sa.text(
                    "SELECT count(*) FROM processing_log WHERE id IN :ids AND status IN :final"
                ).bindparams(sa.bindparam("ids", expanding=True), sa.bindparam("final", expanding=True)),
                {"ids": run_ids, "final": [status.value for status in FINAL_STATUSES]},
            ).scalar_one()
        )
    if done >= total:
        return None
    elapsed = now - started_at
    eta = elapsed * (total - done) / done if done and elapsed > timedelta(0) else None
    return BackfillProgress(done=done, total=total, eta=eta)
