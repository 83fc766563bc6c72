"""The run ledger: the one owner of `processing_log`, `run_tasks`, `run_outcomes` and `analysis_claims`.

Every caller (dispatcher, analyzer, aggregator, health, the CLI) reads and moves
runs through this module and gets one record type back, `Run`. The state machine
(`TRANSITIONS`):

    open ──► running ──(last outcome counted)──► aggregating ──(aggregated)──► completed
                │  └──(nothing planned: aggregated at once)──────────────────► completed
                │  └──(the dispatcher crashed after opening it)──────────────► failed
                └──(no progress for ANALYTICS_STALE_RUN_MINUTES)──────────────► stale
    aggregating ──(aggregator never ran, past the stale limit: completed by the sweep)

`completed`, `stale` and `failed` are final. A failed run gives up its idempotency
key, so the scheduler's retry opens a fresh run. Closing stale runs is the
pipeline's job (the dispatcher and the aggregator sweep, and locally `serve`);
reads (health, the dashboard) only report them.

The accounting rule: a run knows how many conversations it expects when it opens;
every conversation's outcome is inserted once into `run_outcomes` (primary key run +
conversation) and, in the same transaction, counted on the run. The transaction
whose outcome makes the counts reach the expected number flips the run from
`running` to `aggregating` with a conditional UPDATE, so exactly one caller gets to
enqueue the aggregator.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from functions.aggregates import recompute_dates
from shared.config import Settings, get_settings
from shared.errors import AlreadyCounted, ReasonCode
from shared.estimators.base import EstimateUsage
from shared.estimators.flags import EstimateFlag, describe_flags, same_answer
from shared.queue import TaskQueue

__all__ = [
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "TRANSITIONS",
    "OpenedRun",
    "Outcome",
    "OutcomeRecord",
    "Run",
    "RunStatus",
    "RunTrigger",
    "all_outcomes_in",
    "any_open",
    "claim",
    "close_stale_runs",
    "commit_outcome",
    "complete_run",
    "fail_run",
    "get_run",
    "get_runs",
    "in_flight",
    "last_run",
    "latest_run",
    "mark_stale",
    "open_run",
    "open_run_for_date",
    "outcome_exists",
    "plan",
    "record_outcome",
    "release",
    "request_aggregation",
    "run_status",
    "settle_flags",
    "stale_runs",
    "touched_dates",
    "unfinished_tasks",
]

_log = logging.getLogger(__name__)

_ID_BATCH = 5000


class RunStatus(StrEnum):
    """`processing_log.status` (the migration's CHECK lists the same values)."""

    RUNNING = "running"
    AGGREGATING = "aggregating"
    COMPLETED = "completed"
    STALE = "stale"
    FAILED = "failed"


OPEN_STATUSES = (RunStatus.RUNNING, RunStatus.AGGREGATING)
FINAL_STATUSES = (RunStatus.COMPLETED, RunStatus.STALE, RunStatus.FAILED)
TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.RUNNING: frozenset(
        {RunStatus.AGGREGATING, RunStatus.COMPLETED, RunStatus.STALE, RunStatus.FAILED}
    ),
    RunStatus.AGGREGATING: frozenset({RunStatus.COMPLETED, RunStatus.STALE}),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.STALE: frozenset(),
    RunStatus.FAILED: frozenset(),
}


class RunTrigger(StrEnum):
    """Who opened a run (`processing_log.trigger`)."""

    SCHEDULER = "scheduler"  # the nightly schedule
    MANUAL = "manual"  # trigger-processing, or a dispatcher call without a schedule header
    BACKFILL = "backfill"
    CLI = "cli"


class Outcome(StrEnum):
    """A conversation's outcome on a run (`run_outcomes.outcome`, `conversation_analysis.status`)."""

    ANALYZED = "analyzed"
    SKIPPED = "skipped"
    FAILED = "failed"


OUTCOME_COLUMN = {
    Outcome.ANALYZED: "conversations_processed",
    Outcome.SKIPPED: "conversations_skipped",
    Outcome.FAILED: "conversations_failed",
}


@dataclass(frozen=True, slots=True)
class Run:
    """One row of `processing_log`: the one run type every caller gets back."""

    id: uuid.UUID
    run_date: date
    status: RunStatus
    trigger: str
    started_at: datetime
    completed_at: datetime | None
    processing_duration_seconds: int | None
    conversations_expected: int
    conversations_processed: int
    conversations_skipped: int
    conversations_failed: int
    conversations_deferred: int
    late_arrivals: int
    estimates_reused: int
    estimates_flagged: int  # of the run's analysed conversations (shared/estimators/flags.py)
    estimate_flags: dict[str, int]  # flagged estimates per reason
    same_answer_share: Decimal | None  # set when one answer went to most of the run's conversations
    total_llm_requests: int
    total_prompt_tokens: int
    total_completion_tokens: int
    total_cached_tokens: int
    total_llm_cost_usd: Decimal | None  # the priced part; None when none of its tokens was priced
    total_llm_unpriced_tokens: int  # estimator tokens (prompt + completion) of models without a price
    error_message: str | None

    @property
    def run_id(self) -> uuid.UUID:
        return self.id

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def conversations_finished(self) -> int:
        return self.conversations_processed + self.conversations_skipped + self.conversations_failed

    @property
    def flag_note(self) -> str | None:
        """The run's flagged estimates in one sentence (None when none was flagged)."""
        share = float(self.same_answer_share) if self.same_answer_share is not None else None
        return describe_flags(
            self.estimates_flagged, self.conversations_processed, self.estimate_flags, share
        )


_RUN_SELECT = "SELECT " + ", ".join(f.name for f in dataclasses.fields(Run)) + " FROM processing_log "


def _to_run(row: Any) -> Run:
    values = dict(row._mapping)
    values["status"] = RunStatus(values["status"])
    return Run(**values)


@dataclass(frozen=True, slots=True)
class OpenedRun:
    """What `open_run` found: the run, and whether a duplicate dispatch had opened it already."""

    run: Run
    joined_existing: bool

    @property
    def run_id(self) -> uuid.UUID:
        return self.run.id

    @property
    def run_date(self) -> date:
        return self.run.run_date

    @property
    def status(self) -> RunStatus:
        return self.run.status

    @property
    def expected(self) -> int:
        return self.run.conversations_expected

    @property
    def deferred(self) -> int:
        return self.run.conversations_deferred


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """One conversation's outcome on one run."""

    conversation_id: str
    outcome: Outcome
    reason: ReasonCode | None = None
    analysis_date: date | None = None
    previous_analysis_date: date | None = None
    estimate_reused: bool = False
    usage: EstimateUsage = field(default_factory=EstimateUsage)  # what its estimate cost, a failed one too


_COMPLETE_RUN = """
UPDATE processing_log SET
    status = 'completed',
    completed_at = now(),
    processing_duration_seconds = EXTRACT(EPOCH FROM now() - started_at)::int,
    total_llm_requests = totals.requests,
    total_prompt_tokens = totals.prompt_tokens,
    total_completion_tokens = totals.completion_tokens,
    total_cached_tokens = totals.cached_tokens,
    total_llm_cost_usd = CASE WHEN totals.unpriced_tokens > 0 AND totals.priced_tokens = 0 THEN NULL
        ELSE totals.cost END,
    total_llm_unpriced_tokens = totals.unpriced_tokens
FROM (
    SELECT coalesce(sum(llm_requests), 0) AS requests,
           coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
           coalesce(sum(completion_tokens), 0) AS completion_tokens,
           coalesce(sum(cached_tokens), 0) AS cached_tokens,
           coalesce(sum(llm_cost_usd), 0) AS cost,
           coalesce(sum(prompt_tokens + completion_tokens) FILTER (WHERE llm_cost_usd IS NULL), 0)
               AS unpriced_tokens,
           coalesce(sum(prompt_tokens + completion_tokens) FILTER (WHERE llm_cost_usd IS NOT NULL), 0)
               AS priced_tokens
    FROM run_outcomes WHERE run_id = :run
) AS totals
WHERE processing_log.id = :run AND processing_log.status = :from_status
RETURNING processing_log.id
"""

_OPEN_VALUES = ", ".join(f"'{status.value}'" for status in OPEN_STATUSES)
_OPEN = f"status IN ({_OPEN_VALUES})"  # SQL: the run is open (OPEN_STATUSES)


def _open_row(connection: Connection, run_date: date) -> Any:
    return connection.execute(
        sa.text(_RUN_SELECT + f"WHERE run_date = :d AND {_OPEN}"), {"d": run_date}
    ).first()


def _existing_run(connection: Connection, run_date: date, idempotency_key: str | None) -> Any:
    if idempotency_key is not None:
        row = connection.execute(
            sa.text(_RUN_SELECT + "WHERE idempotency_key = :key"), {"key": idempotency_key}
        ).first()
        if row is not None:
            return row
    return _open_row(connection, run_date)


def open_run_for_date(connection: Connection, run_date: date) -> Run | None:
    """The open (running or aggregating) run of `run_date`, if any: there is at most one."""
    row = _open_row(connection, run_date)
    return _to_run(row) if row is not None else None


def get_run(connection: Connection, run_id: uuid.UUID) -> Run | None:
    row = connection.execute(sa.text(_RUN_SELECT + "WHERE id = :run"), {"run": run_id}).first()
    return _to_run(row) if row is not None else None


def get_runs(connection: Connection, run_ids: Sequence[uuid.UUID]) -> list[Run]:
    """The runs of `run_ids`, by date (the CLI polls these until they are final)."""
    rows = connection.execute(
        sa.text(_RUN_SELECT + "WHERE id = ANY(:ids) ORDER BY run_date, started_at"), {"ids": list(run_ids)}
    )
    return [_to_run(row) for row in rows]


def latest_run(connection: Connection, *, status: RunStatus | None = None) -> Run | None:
    """The run started last (optionally: with that status), whatever its trigger."""
    where = "WHERE status = :status " if status is not None else ""
    row = connection.execute(
        sa.text(_RUN_SELECT + where + "ORDER BY started_at DESC LIMIT 1"),
        {"status": status.value} if status is not None else {},
    ).first()
    return _to_run(row) if row is not None else None


def last_run(
    connection: Connection, latest_completed_date: date, *, status: RunStatus | None = None
) -> Run | None:
    """ "The last run" as status reports mean it: the latest nightly (scheduled) run, or the latest
    run of any trigger that covers `latest_completed_date` (yesterday). A manual or backfill run for
    an older date never displaces it, nor does one that found nothing to do (an empty manual run
    for yesterday counts only while no nightly run and no run that planned work exists)."""
    where = "WHERE (trigger = :nightly OR run_date >= :day)"
    params: dict[str, Any] = {"nightly": RunTrigger.SCHEDULER.value, "day": latest_completed_date}
    if status is not None:
        where += " AND status = :status"
        params["status"] = status.value
    substantive = "(trigger = :nightly OR conversations_expected > 0)"
    row = connection.execute(
        sa.text(_RUN_SELECT + where + f" ORDER BY {substantive} DESC, started_at DESC LIMIT 1"), params
    ).first()
    return _to_run(row) if row is not None else None


def recent_runs(connection: Connection, *, limit: int = 5, exclude: uuid.UUID | None = None) -> list[Run]:
    """The latest runs of every trigger (manual and backfill runs are listed as such)."""
    rows = connection.execute(
        sa.text(_RUN_SELECT + "WHERE id IS DISTINCT FROM :exclude ORDER BY started_at DESC LIMIT :limit"),
        {"limit": limit, "exclude": exclude},
    )
    return [_to_run(row) for row in rows]


def open_run(
    connection: Connection,
    *,
    run_date: date,
    trigger: str,
    force: bool,
    idempotency_key: str | None,
    expected: int,
    deferred: int,
    late_arrivals: int = 0,
) -> OpenedRun:
    """Open a run, or join the one a concurrent or earlier duplicate dispatch opened.

    `late_arrivals`: how many of the `expected` conversations were found by id, dated before
    the run's window (see `functions.dispatcher`)."""
    row = connection.execute(
        sa.text(
            "INSERT INTO processing_log (run_date, trigger, force_reestimate, idempotency_key, "
            "conversations_expected, conversations_deferred, late_arrivals) "
            "VALUES (:d, :trigger, :force, :key, :expected, :deferred, :late) "
            "ON CONFLICT DO NOTHING RETURNING id"
        ),
        {
            "d": run_date,
            "trigger": trigger,
            "force": force,
            "key": idempotency_key,
            "expected": expected,
            "deferred": deferred,
            "late": late_arrivals,
        },
    ).first()
    joined = row is None
    if row is None:
        row = _existing_run(connection, run_date, idempotency_key)
        if row is None:  # the conflicting run finished between our insert and select
            raise RuntimeError(f"could not open or find a run for {run_date}")
        return OpenedRun(_to_run(row), joined_existing=True)
    run = get_run(connection, row.id)
    assert run is not None
    return OpenedRun(run, joined_existing=joined)


def outcome_exists(connection: Connection, run_id: uuid.UUID, conversation_id: str) -> bool:
    return (
        connection.execute(
            sa.text("SELECT 1 FROM run_outcomes WHERE run_id = :run AND conversation_id = :conv"),
            {"run": run_id, "conv": conversation_id},
        ).first()
        is not None
    )


def run_status(connection: Connection, run_id: uuid.UUID) -> RunStatus | None:
    status = connection.execute(
        sa.text("SELECT status FROM processing_log WHERE id = :run"), {"run": run_id}
    ).scalar_one_or_none()
    return RunStatus(status) if status is not None else None


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
            "outcome": Outcome(record.outcome).value,
            "reason": record.reason,
            "d": record.analysis_date,
            "prev": record.previous_analysis_date,
            "reused": record.estimate_reused,
            "req": record.usage.requests,
            "pt": record.usage.prompt_tokens,
            "ct": record.usage.completion_tokens,
            "cached": record.usage.cached_tokens,
            "cost": record.usage.cost_usd,
        },
    ).first()
    if inserted is None:
        return False, False
    release(connection, run_id, record.conversation_id)
    column = OUTCOME_COLUMN[Outcome(record.outcome)]
    finished = connection.execute(
        sa.text(
            f"UPDATE processing_log SET {column} = {column} + 1, "
            "estimates_reused = estimates_reused + :reused "
            "WHERE id = :run RETURNING status, conversations_processed + conversations_skipped "
            "+ conversations_failed = conversations_expected AS complete"
        ),
        {"run": run_id, "reused": int(record.estimate_reused)},
    ).first()
    if finished is not None and finished.status in FINAL_STATUSES:
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


def plan(connection: Connection, run_id: uuid.UUID, ids: Sequence[str]) -> None:
    """Record the conversations a new run will analyse (`run_tasks`)."""
    for offset in range(0, len(ids), _ID_BATCH):
        connection.execute(
            sa.text(
                "INSERT INTO run_tasks (run_id, conversation_id) "
                "SELECT :run, unnest(CAST(:ids AS varchar[])) ON CONFLICT DO NOTHING"
            ),
            {"run": run_id, "ids": list(ids[offset : offset + _ID_BATCH])},
        )


def unfinished_tasks(connection: Connection, run_id: uuid.UUID) -> list[str]:
    """Conversations the run planned that have no outcome yet."""
    rows = connection.execute(
        sa.text(
            "SELECT t.conversation_id FROM run_tasks t LEFT JOIN run_outcomes o "
            "ON o.run_id = t.run_id AND o.conversation_id = t.conversation_id "
            "WHERE t.run_id = :run AND o.conversation_id IS NULL ORDER BY t.conversation_id"
        ),
        {"run": run_id},
    )
    return [row[0] for row in rows]


def in_flight(connection: Connection) -> set[str]:
    """Conversations planned by an open run that have not reported yet: not planned twice."""
    rows = connection.execute(
        sa.text(
            "SELECT t.conversation_id FROM run_tasks t "
            "JOIN processing_log p ON p.id = t.run_id AND p.status = 'running' "
            "LEFT JOIN run_outcomes o ON o.run_id = t.run_id AND o.conversation_id = t.conversation_id "
            "WHERE o.conversation_id IS NULL"
        )
    )
    return {row[0] for row in rows}


def request_aggregation(queue: TaskQueue, run_id: uuid.UUID) -> None:
    """Enqueue the run's aggregator task (named, so a repeat is a no-op)."""
    queue.enqueue("aggregate", {"run_id": str(run_id)}, name=f"aggregate-{run_id.hex}")


def commit_outcome(
    engine: Engine,
    queue: TaskQueue,
    run_id: uuid.UUID,
    record: OutcomeRecord,
    *,
    write: Callable[[Connection], None] | None = None,
) -> bool:
    """Write the analysis (if any) and count the outcome in one transaction; start the aggregator
    when it was the last one. Returns False, with nothing written, when it was already counted."""
    try:
        with engine.begin() as connection:
            if write is not None:
                write(connection)
            counted, finished = record_outcome(connection, run_id, record)
            if not counted:
                raise AlreadyCounted(f"run {run_id}: conversation {record.conversation_id} already counted")
    except AlreadyCounted as duplicate:
        _log.info("%s", duplicate)
        return False
    if finished:
        request_aggregation(queue, run_id)
    return True


def fail_run(connection: Connection, run_id: uuid.UUID, error: str) -> bool:
    """`running` → `failed`: the dispatcher could not finish opening the run.

    The run gives up its idempotency key, so the scheduler's retry opens a fresh run.
    """
    failed = connection.execute(
        sa.text(
            "UPDATE processing_log SET status = 'failed', completed_at = now(), idempotency_key = NULL, "
            "processing_duration_seconds = EXTRACT(EPOCH FROM now() - started_at)::int, "
            "error_message = :error WHERE id = :run AND status = 'running' RETURNING id"
        ),
        {"run": run_id, "error": error[:2000]},
    ).first()
    return failed is not None


def any_open(connection: Connection) -> bool:
    """Whether some run is still open (`running` or `aggregating`): its analyses may be written
    while the aggregates of their dates are not rebuilt yet."""
    return bool(
        connection.execute(
            sa.text(f"SELECT EXISTS (SELECT 1 FROM processing_log WHERE {_OPEN})")
        ).scalar_one()
    )


def stale_runs(connection: Connection, settings: Settings) -> list[uuid.UUID]:
    """Open runs with no progress for `stale_run_minutes`: their missing tasks will not come.

    Progress is the latest outcome (or the start): a long run that keeps reporting is alive.
    """
    rows = connection.execute(
        sa.text(
            f"SELECT p.id FROM processing_log p WHERE p.status IN ({_OPEN_VALUES}) "
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
            f"WHERE id = :run AND {_OPEN} RETURNING id"
        ),
        {"run": run_id},
    ).first()
    if closed is not None:
        _log.warning("closed stale run %s", run_id)
    return closed is not None


_RUN_ANSWERS = """
SELECT coalesce(content_fingerprint, conversation_id) AS conversation,
    manual_time_low, manual_time_most_likely, manual_time_high
FROM conversation_analysis WHERE run_id = :run AND status = 'analyzed' ORDER BY conversation_id
"""
_FLAG_SAME_ANSWER = """
UPDATE conversation_analysis SET estimate_flag = :flag
WHERE run_id = :run AND status = 'analyzed' AND estimate_flag IS NULL
    AND (manual_time_low, manual_time_most_likely, manual_time_high) = (:low, :most_likely, :high)
"""
_COUNT_FLAGS = """
UPDATE processing_log SET estimates_flagged = counted.flagged, estimate_flags = counted.by_reason,
    same_answer_share = :share
FROM (
    SELECT coalesce(sum(n), 0) AS flagged, coalesce(jsonb_object_agg(estimate_flag, n), '{}'::jsonb) AS by_reason
    FROM (SELECT estimate_flag, count(*) AS n FROM conversation_analysis
          WHERE run_id = :run AND status = 'analyzed' AND estimate_flag IS NOT NULL
          GROUP BY estimate_flag) AS reasons
) AS counted
WHERE processing_log.id = :run
"""


def settle_flags(connection: Connection, run_id: uuid.UUID, settings: Settings) -> None:
    """Apply the same-answer rule to the run's analysed conversations and count its flagged
    estimates on the run (`shared/estimators/flags.py`); before its dates are aggregated."""
    answers = connection.execute(sa.text(_RUN_ANSWERS), {"run": run_id})
    verdict = same_answer(
        ((row[0], (row[1], row[2], row[3])) for row in answers), threshold=settings.flag_same_answer_share
    )
    if verdict.flagged and verdict.answer is not None:
        low, most_likely, high = verdict.answer
        connection.execute(
            sa.text(_FLAG_SAME_ANSWER),
            {
                "flag": EstimateFlag.SAME_ANSWER.value,
                "run": run_id,
                "low": low,
                "most_likely": most_likely,
                "high": high,
            },
        )
        _log.warning(
            "run %s: the estimator gave the same answer %s to %.0f %% of %d conversations; flagged",
            run_id,
            verdict.answer,
            (verdict.share or 0) * 100,
            verdict.conversations,
        )
    share = round(Decimal(verdict.share), 4) if verdict.flagged and verdict.share is not None else None
    connection.execute(sa.text(_COUNT_FLAGS), {"run": run_id, "share": share})


def complete_run(
    connection: Connection,
    run_id: uuid.UUID,
    *,
    from_status: RunStatus,
    settings: Settings | None = None,
) -> tuple[tuple[date, ...], bool]:
    """Settle the run's flags, rebuild every date the run touched and mark it completed with its totals.

    Returns the dates and whether this call completed the run (False if another did).
    """
    settle_flags(connection, run_id, settings or get_settings())
    dates = tuple(touched_dates(connection, run_id))
    recompute_dates(connection, dates)
    completed = connection.execute(
        sa.text(_COMPLETE_RUN), {"run": run_id, "from_status": RunStatus(from_status).value}
    )
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
        if run_status(connection, run_id) is RunStatus.AGGREGATING:
            complete_run(connection, run_id, from_status=RunStatus.AGGREGATING, settings=settings)
            _log.warning("completed run %s, whose aggregator never ran", run_id)
            continue
        settle_flags(connection, run_id, settings)  # over the outcomes that did arrive
        recompute_dates(connection, touched_dates(connection, run_id))
        if mark_stale(connection, run_id):
            closed.append(run_id)
    return closed
