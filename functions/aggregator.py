"""The aggregator: daily aggregates and breakdowns as a pure function of `conversation_analysis`.

For each date a run touched, the rows of `daily_aggregates` (global and per user)
and `daily_breakdowns` (model, category, group) are deleted and rebuilt from the
analysed conversations, in one transaction under an advisory lock, so running it
twice changes nothing and two aggregators never interleave. Before that, the configured
rates are recorded (`value.py`), the answers people gave since the last run are brought
into the analyses ("AI did not help", new work: `success.sync_confirmations`, their dates
rebuilt) and, unless `ANALYTICS_CALIBRATION=off`, a new calibration
version when the confirmations changed (`calibrated.py`). Then the run is
completed with its duration, counts, LLM requests, tokens and cost, and other runs
that made no progress past the stale limit are closed (the ledger's sweep). Last, the
releases of closed periods that are due are published for viewers (`functions/read/releases.py`).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.engine import Engine

from functions import runs
from functions.aggregates import recompute_dates
from functions.calibrated import record_calibration
from functions.read.releases import publish_due
from functions.success import sync_confirmations
from functions.value import record_rates
from shared.config import CalibrationMode, get_settings
from shared.db import analytics_engine

__all__ = ["AggregateResult", "aggregate_run", "recompute_dates"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AggregateResult:
    run_id: uuid.UUID
    dates: tuple[date, ...]
    completed_now: bool  # False when the run was already completed (a duplicate delivery)


def aggregate_run(run_id: uuid.UUID, *, engine: Engine | None = None) -> AggregateResult:
    """Recompute every date the run touched and complete it; a no-op for a completed run."""
    engine = engine or analytics_engine()
    with engine.begin() as connection:
        status = runs.run_status(connection, run_id)
        ready = status is runs.RunStatus.AGGREGATING or (
            status is runs.RunStatus.RUNNING and runs.all_outcomes_in(connection, run_id)
        )
        if not ready:  # completed already, closed as stale, or still waiting for outcomes
            return AggregateResult(run_id, (), completed_now=False)
        assert status is not None
        settings = get_settings()
        revalued = record_rates(connection, settings, datetime.now(settings.zone).date())
        revalued += sync_confirmations(connection)  # answers since the last run ("AI did not help", new work)
        if settings.calibration is not CalibrationMode.OFF:  # a new version when the confirmations changed
            revalued += record_calibration(connection, settings)
        dates, completed = runs.complete_run(connection, run_id, from_status=status, settings=settings)
        recompute_dates(connection, set(revalued) - set(dates))
    _log.info("run %s aggregated: %d dates", run_id, len(dates))
    with engine.begin() as connection:  # the pipeline, not a read, closes runs that went stale
        closed = runs.close_stale_runs(connection)
    if closed:
        _log.warning("closed %d stale run(s) after aggregating %s: %s", len(closed), run_id, closed)
    try:  # the closed periods that are complete now are published for viewers (audited, frozen)
        with engine.begin() as connection:
            publish_due(connection, settings, datetime.now(settings.zone))
    except Exception:  # the run stays completed; the next run's aggregation publishes what is due
        _log.exception("publishing releases after run %s failed", run_id)
    return AggregateResult(run_id, dates, completed_now=completed)
