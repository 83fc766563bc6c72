"""Run bookkeeping in `processing_log` and `run_outcomes`: open, count once, finish, close stale.

The accounting rule: a run knows how many conversations it expects when it opens;
every conversation's outcome is inserted once into `run_outcomes` (primary key run +
conversation) and, in the same transaction, counted on the run. The transaction
whose outcome makes the counts reach the expected number flips the run from
`running` to `aggregating` with a conditional UPDATE, so exactly one caller gets to
enqueue the aggregator.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from functions.aggregates import recompute_dates
from shared.config import Settings, get_settings

__all__ = [
    "OpenedRun",
    "OutcomeRecord",
    "all_outcomes_in",
    "claim",
    "close_stale_runs",
    "complete_run",
    "mark_stale",
    "open_run",
    "outcome_exists",
    "record_outcome",
    "release",
    "run_status",
    "stale_runs",
    "touched_dates",
]

_log = logging.getLogger(__name__)

OUTCOME_COLUMN = {
    "analyzed": "conversations_processed",
    "skipped": "conversations_skipped",
    "failed": "conversations_failed",
}


@dataclass(frozen=True, slots=True)
class OpenedRun:
    run_id: uuid.UUID
    run_date: date
    status: str
    expected: int
    deferred: int
    joined_existing: bool  # a duplicate dispatch found this run already open (or done)


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """One conversation's outcome on one run."""

    conversation_id: str
    outcome: str  # analyzed | skipped | failed
    reason: str | None = None
    analysis_date: date | None = None
    previous_analysis_date: date | None = None
    estimate_reused: bool = False
    llm_requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    llm_cost_usd: Decimal = Decimal("0")


_COMPLETE_RUN = """
UPDATE processing_log SET
    status = 'completed',
    completed_at = now(),
    processing_duration_seconds = EXTRACT(EPOCH FROM now() - started_at)::int,
    total_llm_requests = totals.requests,
    total_prompt_tokens = totals.prompt_tokens,
    total_completion_tokens = totals.completion_tokens,
    total_cached_tokens = totals.cached_tokens,
    total_llm_cost_usd = totals.cost
FROM (
    SELECT coalesce(sum(llm_requests), 0) AS requests,
           coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
           coalesce(sum(completion_tokens), 0) AS completion_tokens,
           coalesce(sum(cached_tokens), 0) AS cached_tokens,
           coalesce(sum(llm_cost_usd), 0) AS cost
    FROM run_outcomes WHERE run_id = :run
) AS totals
WHERE processing_log.id = :run AND processing_log.status = :from_status
RETURNING processing_log.id
"""

_RUN_COLUMNS = "id, run_date, status, conversations_expected, conversations_deferred"


def _existing_run(connection: Connection, run_date: date, idempotency_key: str | None) -> Any:
    if idempotency_key is not None:
        row = connection.execute(
            sa.text(f"SELECT {_RUN_COLUMNS} FROM processing_log WHERE idempotency_key = :key"),
            {"key": idempotency_key},
        ).first()
        if row is not None:
            return row
    return connection.execute(
        sa.text(
            f"SELECT {_RUN_COLUMNS} FROM processing_log "
            "WHERE run_date = :d AND status IN ('running', 'aggregating')"
        ),
        {"d": run_date},
    ).first()


def open_run(
    connection: Connection,
    *,
    run_date: date,
    trigger: str,
    force: bool,
    idempotency_key: str | None,
    expected: int,
    deferred: int,
) -> OpenedRun:
    """Open a run, or join the one a concurrent or earlier duplicate dispatch opened."""
    row = connection.execute(
        sa.text(
            "INSERT INTO processing_log (run_date, trigger, force_reestimate, idempotency_key, "
            "conversations_expected, conversations_deferred) "
            "VALUES (:d, :trigger, :force, :key, :expected, :deferred) "
            f"ON CONFLICT DO NOTHING RETURNING {_RUN_COLUMNS}"
        ),
        {
            "d": run_date,
            "trigger": trigger,
            "force": force,
            "key": idempotency_key,
            "expected": expected,
            "deferred": deferred,
        },
    ).first()
    joined = row is None
    if row is None:
        row = _existing_run(connection, run_date, idempotency_key)
        if row is None:  # the conflicting run finished between our insert and select
            raise RuntimeError(f"could not open or find a run for {run_date}")
    return OpenedRun(
        run_id=row.id,
        run_date=row.run_date,
        status=row.status,
        expected=row.conversations_expected,
        deferred=row.conversations_deferred,
        joined_existing=joined,
    )


def outcome_exists(connection: Connection, run_id: uuid.UUID, conversation_id: str) -> bool:
    return (
        connection.execute(
            sa.text("SELECT 1 FROM run_outcomes WHERE run_id = :run AND conversation_id = :conv"),
            {"run": run_id, "conv": conversation_id},
        ).first()
        is not None
    )


def run_status(connection: Connection, run_id: uuid.UUID) -> str | None:
    return connection.execute(
        sa.text("SELECT status FROM processing_log WHERE id = :run"), {"run": run_id}
    ).scalar_one_or_none()


def record_outcome(connection: Connection, run_id: uuid.UUID, record: OutcomeRecord) -> tuple[bool, bool]:
    """Count `record` on the run once. Returns (counted_now, run_finished_now).

    `counted_now` is False when this conversation already has an outcome on the run
    (a duplicate delivery). `run_finished_now` is True for exactly one caller: the
    one whose outcome completed the expected count.
    """
    inserted = connection.execute(
        sa.text(
            "INSERT INTO run_outcomes (run_id, conversation_id, outcome, reason, analysis_date, "
            "previous_analysis_date, estimate_reused, llm_requests, prompt_tokens, "
            "completion_tokens, cached_tokens, llm_cost_usd) VALUES (:run, :conv, :outcome, "
            ":reason, :d, :prev, :reused, :req, :pt, :ct, :cached, :cost) "
            "ON CONFLICT (run_id, conversation_id) DO NOTHING RETURNING 1"
        ),
        {
            "run": run_id,
            "conv": record.conversation_id,
            "outcome": record.outcome,
            "reason": record.reason,
            "d": record.analysis_date,
            "prev": record.previous_analysis_date,
            "reused": record.estimate_reused,
            "req": record.llm_requests,
            "pt": record.prompt_tokens,
            "ct": record.completion_tokens,
            "cached": record.cached_tokens,
            "cost": record.llm_cost_usd,
        },
    ).first()
    if inserted is None:
        return False, False
    release(connection, run_id, record.conversation_id)
    column = OUTCOME_COLUMN[record.outcome]
    finished = connection.execute(
        sa.text(
            f"UPDATE processing_log SET {column} = {column} + 1, "
            "estimates_reused = estimates_reused + :reused "
            "WHERE id = :run RETURNING status, conversations_processed + conversations_skipped "
            "+ conversations_failed = conversations_expected AS complete"
        ),
        {"run": run_id, "reused": int(record.estimate_reused)},
    ).first()
    if finished is not None and finished.status in ("stale", "completed"):
        # a straggler after the run was closed: no aggregator will come, so rebuild its dates now
        recompute_dates(
            connection, [d for d in (record.analysis_date, record.previous_analysis_date) if d is not None]
        )
        return True, False
    if finished is None or not finished.complete or finished.status != "running":
        return True, False
    flipped = connection.execute(
        sa.text(
            "UPDATE processing_log SET status = 'aggregating', aggregation_requested_at = now() "
            "WHERE id = :run AND status = 'running' RETURNING 1"
        ),
        {"run": run_id},
    ).first()
    return True, flipped is not None


def all_outcomes_in(connection: Connection, run_id: uuid.UUID) -> bool:
    """Whether every conversation the run expects has reported (true at once for an empty run)."""
    return bool(
        connection.execute(
            sa.text(
                "SELECT conversations_processed + conversations_skipped + conversations_failed "
                ">= conversations_expected FROM processing_log WHERE id = :run"
            ),
            {"run": run_id},
        ).scalar_one_or_none()
    )


def claim(connection: Connection, run_id: uuid.UUID, conversation_id: str, lease_seconds: float) -> bool:
    """Take (or take over an expired) lease on estimating this conversation for this run."""
    taken = connection.execute(
        sa.text(
            "INSERT INTO analysis_claims (run_id, conversation_id, claimed_until) "
            "VALUES (:run, :conv, now() + make_interval(secs => :lease)) "
            "ON CONFLICT (run_id, conversation_id) DO UPDATE SET claimed_until = EXCLUDED.claimed_until "
            "WHERE analysis_claims.claimed_until < now() RETURNING 1"
        ),
        {"run": run_id, "conv": conversation_id, "lease": lease_seconds},
    ).first()
    return taken is not None


def release(connection: Connection, run_id: uuid.UUID, conversation_id: str) -> None:
    """Give up the claim on a conversation (its outcome is recorded, or the attempt failed)."""
    connection.execute(
        sa.text("DELETE FROM analysis_claims WHERE run_id = :run AND conversation_id = :conv"),
        {"run": run_id, "conv": conversation_id},
    )


def touched_dates(connection: Connection, run_id: uuid.UUID) -> list[date]:
    """Every date whose aggregates the run's outcomes may have changed."""
    rows = connection.execute(
        sa.text(
            "SELECT analysis_date FROM run_outcomes WHERE run_id = :run AND analysis_date IS NOT NULL "
            "UNION SELECT previous_analysis_date FROM run_outcomes "
            "WHERE run_id = :run AND previous_analysis_date IS NOT NULL ORDER BY 1"
        ),
        {"run": run_id},
    )
    return [row[0] for row in rows]


def stale_runs(connection: Connection, settings: Settings) -> list[uuid.UUID]:
    """Open runs with no progress for `stale_run_minutes`: their missing tasks will not come.

    Progress is the latest outcome (or the start): a long run that keeps reporting is alive.
    """
    rows = connection.execute(
        sa.text(
            "SELECT p.id FROM processing_log p WHERE p.status IN ('running', 'aggregating') "
            "AND GREATEST(p.started_at, (SELECT max(o.recorded_at) FROM run_outcomes o WHERE o.run_id = p.id)) "
            "< now() - make_interval(mins => :minutes) ORDER BY p.started_at"
        ),
        {"minutes": settings.stale_run_minutes},
    )
    return [row[0] for row in rows]


def mark_stale(connection: Connection, run_id: uuid.UUID) -> bool:
    """Close an open run as `stale`, saying how many outcomes never arrived."""
    closed = connection.execute(
        sa.text(
            "UPDATE processing_log SET status = 'stale', completed_at = now(), "
            "processing_duration_seconds = EXTRACT(EPOCH FROM now() - started_at)::int, "
            "error_message = format('%s of %s conversations never reported an outcome', "
            "conversations_expected - conversations_processed - conversations_skipped "
            "- conversations_failed, conversations_expected) "
            "WHERE id = :run AND status IN ('running', 'aggregating') RETURNING id"
        ),
        {"run": run_id},
    ).first()
    if closed is not None:
        _log.warning("closed stale run %s", run_id)
    return closed is not None


def complete_run(
    connection: Connection, run_id: uuid.UUID, *, from_status: str
) -> tuple[tuple[date, ...], bool]:
    """Rebuild every date the run touched and mark it completed with its totals.

    Returns the dates and whether this call completed the run (False if another did).
    """
    dates = tuple(touched_dates(connection, run_id))
    recompute_dates(connection, dates)
    completed = connection.execute(sa.text(_COMPLETE_RUN), {"run": run_id, "from_status": from_status})
    return dates, completed.first() is not None


def close_stale_runs(connection: Connection, settings: Settings | None = None) -> list[uuid.UUID]:
    """Close runs open past their deadline.

    A run whose outcomes all arrived but whose aggregator never ran (`aggregating`)
    is completed here; a run still missing outcomes is closed as `stale`, with the
    outcomes that did arrive aggregated. Returns the ids of the runs closed as stale.
    """
    settings = settings or get_settings()
    closed: list[uuid.UUID] = []
    for run_id in stale_runs(connection, settings):
        if run_status(connection, run_id) == "aggregating":
            complete_run(connection, run_id, from_status="aggregating")
            _log.warning("completed run %s, whose aggregator never ran", run_id)
            continue
        recompute_dates(connection, touched_dates(connection, run_id))
        if mark_stale(connection, run_id):
            closed.append(run_id)
    return closed
