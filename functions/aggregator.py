"""The aggregator: daily aggregates and breakdowns as a pure function of `conversation_analysis`.

For each date a run touched, the rows of `daily_aggregates` (global and per user)
and `daily_breakdowns` (model, category, group) are deleted and rebuilt from the
analysed conversations, in one transaction under an advisory lock, so running it
twice changes nothing and two aggregators never interleave. Then the run is
completed with its duration, counts, LLM requests, tokens and cost.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from functions import runs
from functions.aggregates import recompute_dates
from shared.db import analytics_engine

__all__ = ["AggregateResult", "aggregate_run", "recompute_dates"]

_log = logging.getLogger(__name__)
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


@dataclass(frozen=True, slots=True)
class AggregateResult:
    run_id: uuid.UUID
    dates: tuple[date, ...]
    completed_now: bool  # False when the run was already completed (a duplicate delivery)


def _finish(connection: Connection, run_id: uuid.UUID, from_status: str) -> tuple[tuple[date, ...], bool]:
    dates = tuple(runs.touched_dates(connection, run_id))
    recompute_dates(connection, dates)
    completed = connection.execute(sa.text(_COMPLETE_RUN), {"run": run_id, "from_status": from_status})
    return dates, completed.first() is not None


def aggregate_run(run_id: uuid.UUID, *, engine: Engine | None = None) -> AggregateResult:
    """Recompute every date the run touched and complete it; a no-op for a completed run."""
    engine = engine or analytics_engine()
    with engine.begin() as connection:
        status = runs.run_status(connection, run_id)
        if status not in ("aggregating", "running"):
            return AggregateResult(run_id, (), completed_now=False)
        dates, completed = _finish(connection, run_id, status)
    _log.info("run %s aggregated: %d dates", run_id, len(dates))
    return AggregateResult(run_id, dates, completed_now=completed)
