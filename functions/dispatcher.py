"""The dispatcher: pick the conversations a run must analyse, open the run, enqueue one task each.

Selection for target date D (a local date in the configured zone):

* every chat whose `updated_at` lies in D — the day's new and continued work;
* plus chats changed in the `lookback_days` before D that still have no current
  analysis (deferred by `ANALYTICS_MAX_CONVERSATIONS`, or failed transiently);
* minus chats whose stored analysis already has the same source `updated_at`
  (nothing changed). `force` re-plans every chat of D regardless.

Late arrivals (nightly runs only): an Open WebUI import keeps the export's
`created_at`/`updated_at`, so a chat imported tonight can be dated months ago and
no window will ever list it. The nightly run therefore also pages through every
chat id (keyset pages over Open WebUI's primary key: ids only, no document read)
and anti-joins each page against `conversation_analysis`'s unique index in the
analytics database; the few ids left (never analysed nor recorded, not in flight)
are read with the listings' filters and the ones dated before the window are
planned as late arrivals. The very first sweep finds the deployment's past instead
(chats older than the first backfill): it records them as history
(`source_history`) and plans none, so installing the product never starts
analysing years of chats unasked (a backfill of their dates does that on purpose).
The analyzer attributes each late arrival to the local date of its own last message
and the aggregator rebuilds those dates. The run's window comes
first; late arrivals fill the rest of `ANALYTICS_MAX_CONVERSATIONS`, oldest
first, and the remainder is deferred (found again by the next night's sweep).
Only a bounded heap of them is held, whatever their number.

A chat whose `updated_at` moved but whose content did not (archiving, pinning) is
still planned: the analyzer compares content fingerprints and reuses the stored
estimate, so it costs no estimator call.

Idempotency: a run is unique per open date (and per scheduler execution); a
duplicate dispatch joins the open run and re-enqueues its planned tasks that have
no outcome yet, under the same deterministic task names, so nothing is doubled.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from functions import runs, wiring
from functions.aggregator import aggregate_run
from functions.value import ensure_rates
from shared.config import Settings, get_settings
from shared.db import analytics_engine, source_engine
from shared.errors import RETRIED_BY_NEXT_RUN, ReasonCode
from shared.openwebui import reader
from shared.pseudonym import pseudonymise
from shared.queue import TaskQueue

__all__ = ["DispatchResult", "backfill", "dispatch", "task_name", "yesterday"]

_log = logging.getLogger(__name__)
_TASK_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_ID_BATCH = 5000  # ids per ANY(:ids) query
_GROUPS_LOCK_KEY = 7_291_042_120


@dataclass(frozen=True, slots=True)
class DispatchResult:
    run_id: uuid.UUID
    run_date: date
    status: str
    expected: int
    deferred: int
    joined_existing: bool
    enqueued: int = 0
    enqueue_failed: int = 0
    late_arrivals: int = 0


@dataclass(frozen=True, slots=True, order=True)
class _Candidate:
    updated_at: datetime
    conversation_id: str


@dataclass(frozen=True, slots=True)
class _Selection:
    """What a run plans: its window's conversations, then late arrivals, within the per-run limit."""

    planned: list[_Candidate]
    late_arrivals: int  # how many of `planned` are late arrivals
    deferred: int  # over the limit: left for the next run


def yesterday(settings: Settings) -> date:
    return datetime.now(settings.zone).date() - timedelta(days=1)


def task_name(run_id: uuid.UUID, conversation_id: str) -> str:
    """Deterministic per run and conversation; a hash prefix spreads Cloud Tasks' name index."""
    prefix = hashlib.sha256(conversation_id.encode()).hexdigest()[:8]
    return f"{prefix}-{run_id.hex}-{_TASK_NAME_UNSAFE.sub('_', conversation_id)[:300]}"


def _stored_versions(
    connection: Connection, ids: Sequence[str]
) -> dict[str, tuple[datetime, str, str | None]]:
    stored: dict[str, tuple[datetime, str, str | None]] = {}
    for offset in range(0, len(ids), _ID_BATCH):
        rows = connection.execute(
            sa.text(
                "SELECT conversation_id, source_updated_at, status, skip_reason "
                "FROM conversation_analysis WHERE conversation_id = ANY(:ids)"
            ),
            {"ids": list(ids[offset : offset + _ID_BATCH])},
        )
        for row in rows:
            stored[row.conversation_id] = (row.source_updated_at, row.status, row.skip_reason)
    return stored


def _needs_analysis(candidate: _Candidate, stored: tuple[datetime, str, str | None] | None) -> bool:
    if stored is None:
        return True
    source_updated_at, status, reason = stored
    if source_updated_at != candidate.updated_at:
        return True
    return status == runs.Outcome.FAILED and reason in RETRIED_BY_NEXT_RUN


_RETRIED = ", ".join(f"'{reason.value}'" for reason in sorted(RETRIED_BY_NEXT_RUN))
_UNSEEN = sa.text(
    # the ids travel as one JSON text (an array parameter costs ~15 µs per id to encode), and
    # LATERAL ... LIMIT 1 keeps one index probe per id and table: a hash anti-join would scan
    # the whole table once per page. A failure that says nothing about the conversation
    # (RETRIED_BY_NEXT_RUN) does not count as seen: a late arrival is outside every window,
    # so the sweep is the only thing that would ever plan it again.
    "SELECT t.id FROM json_array_elements_text(CAST(:ids AS json)) AS t(id) "
    "LEFT JOIN LATERAL (SELECT 1 AS seen FROM conversation_analysis a "
    "WHERE a.conversation_id = t.id "
    f"AND NOT (a.status = 'failed' AND a.skip_reason IN ({_RETRIED}) "
    # ...as often as a failure in the window is retried (a night per lookback day), not forever
    "AND (SELECT count(*) FROM run_tasks rt WHERE rt.conversation_id = t.id) <= :retries) "
    "LIMIT 1) AS analysed ON true "
    "LEFT JOIN LATERAL (SELECT 1 AS seen FROM source_history h "
    "WHERE h.conversation_id = t.id LIMIT 1) AS history ON true "
    "WHERE analysed.seen IS NULL AND history.seen IS NULL"
)
_RECORD_HISTORY = sa.text(
    "INSERT INTO source_history (conversation_id) "
    "SELECT id FROM json_array_elements_text(CAST(:ids AS json)) AS t(id) ON CONFLICT DO NOTHING"
)


def _unseen(connection: Connection, ids: Sequence[str], retries: int) -> list[str]:
    """The ids of `ids` neither analysed nor recorded as history: an anti-join on the two unique indexes.

    A transient failure planned at most `retries` times does not count as analysed."""
    return [row[0] for row in connection.execute(_UNSEEN, {"ids": json.dumps(list(ids)), "retries": retries})]


def _baseline_taken(connection: Connection) -> bool:
    return connection.execute(sa.text("SELECT EXISTS (SELECT 1 FROM source_baselines)")).scalar_one()


def _unseen_refs(
    connection: Connection, source: Engine, before: datetime, in_flight: set[str], retries: int
) -> Iterator[list[_Candidate]]:
    """Per page of chat ids: the chats never analysed nor recorded, not in flight, dated before `before`."""
    for page in reader.iter_chat_id_batches(source):
        unseen = [cid for cid in _unseen(connection, page, retries) if cid not in in_flight]
        if unseen:
            yield [
                _Candidate(ref.updated_at, ref.id) for ref in reader.load_refs(source, unseen, until=before)
            ]


def _late_arrivals(
    source: Engine, analytics: Engine, before: datetime, in_flight: set[str], room: int, retries: int
) -> tuple[list[_Candidate], int]:
    """Chats never analysed nor recorded and dated before `before`: the `room` oldest, and how many in all.

    The first sweep ever finds the deployment's past instead (everything older than the
    first backfill): it records those chats as history (`source_history`) and plans none
    of them, so installing the product never starts analysing years of chats unasked;
    a backfill of their dates analyses them on purpose. From the next night on, a chat
    that was not there before is a late arrival whatever its dates.
    """
    with analytics.connect() as connection:
        pages = _unseen_refs(connection, source, before, in_flight, retries)
        if not _baseline_taken(connection):
            _record_history(connection, pages, before)
            return [], 0
        oldest: list[_Candidate] = []  # the `room` oldest so far: memory bounded by the per-run limit
        total = 0
        for found in pages:
            total += len(found)
            oldest = heapq.nsmallest(room, [*oldest, *found]) if room > 0 else []
    return sorted(oldest), total


def _record_history(connection: Connection, pages: Iterable[list[_Candidate]], before: datetime) -> None:
    """The first sweep: every unseen chat is the deployment's past, recorded page by page."""
    total = 0
    for found in pages:
        connection.execute(_RECORD_HISTORY, {"ids": json.dumps([c.conversation_id for c in found])})
        connection.commit()
        total += len(found)
    connection.execute(sa.text("INSERT INTO source_baselines (history_chats) VALUES (:n)"), {"n": total})
    connection.commit()
    _log.info(
        "first late-arrival sweep: %d chats dated before %s recorded as history, not planned "
        "(backfill their dates to analyse them)",
        total,
        before.date().isoformat(),
    )


def _select(
    settings: Settings,
    source: Engine,
    analytics: Engine,
    run_date: date,
    force: bool,
    *,
    late_arrivals: bool,
) -> _Selection:
    day_start, day_end = reader.local_day_bounds(run_date, settings.zone)
    since = day_start if force else day_start - timedelta(days=settings.lookback_days)
    candidates = [
        _Candidate(ref.updated_at, ref.id) for ref in reader.list_changed_since(source, since, until=day_end)
    ]
    with analytics.connect() as connection:
        in_flight = runs.in_flight(connection)
        stored = {} if force else _stored_versions(connection, [c.conversation_id for c in candidates])
    # oldest first, so a backlog deferred by the per-run limit drains before newer work
    window = sorted(
        c
        for c in candidates
        if c.conversation_id not in in_flight and (force or _needs_analysis(c, stored.get(c.conversation_id)))
    )
    limit = settings.max_conversations_per_run
    late: list[_Candidate] = []
    late_total = 0
    if late_arrivals:
        late, late_total = _late_arrivals(
            source, analytics, since, in_flight, max(0, limit - len(window)), settings.lookback_days
        )
    planned = [*window[:limit], *late]
    return _Selection(
        planned=planned, late_arrivals=len(late), deferred=len(window) + late_total - len(planned)
    )


def refresh_groups(settings: Settings, source: Engine, analytics: Engine) -> int:
    """Copy Open WebUI's groups (names, sizes, pseudonymous members) into the analytics DB."""
    key = settings.hmac_key.get_secret_value()
    groups = reader.load_user_groups(source)
    with analytics.begin() as connection:
        # concurrent dispatches refresh one after the other, never interleaved
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _GROUPS_LOCK_KEY})
        connection.execute(sa.text("DELETE FROM group_members"))
        connection.execute(sa.text("DELETE FROM user_groups"))
        for group in groups:
            members = sorted({pseudonymise(user_id, key) for user_id in group.member_ids})
            connection.execute(
                sa.text("INSERT INTO user_groups (group_id, name, member_count) VALUES (:g, :n, :c)"),
                {"g": group.id, "n": group.name, "c": len(members)},
            )
            if members:
                connection.execute(
                    sa.text(
                        "INSERT INTO group_members (group_id, user_id_hash) "
                        "SELECT :g, unnest(CAST(:members AS varchar[]))"
                    ),
                    {"g": group.id, "members": members},
                )
    return len(groups)


def _enqueue(
    engine: Engine, queue: TaskQueue, run_id: uuid.UUID, conversation_ids: Iterable[str], force: bool
) -> tuple[int, int]:
    by_name = {task_name(run_id, cid): cid for cid in conversation_ids}
    report = queue.enqueue_many(
        "analyze",
        (
            (name, {"run_id": str(run_id), "conversation_id": cid, "force": force})
            for name, cid in by_name.items()
        ),
    )
    for name, error in report.failed:
        record = runs.OutcomeRecord(by_name[name], runs.Outcome.FAILED, reason=ReasonCode.ENQUEUE_FAILED)
        runs.commit_outcome(engine, queue, run_id, record)
        _log.error("run %s: conversation %s not enqueued: %s", run_id, by_name[name], error)
    return report.enqueued, len(report.failed)


def dispatch(
    *,
    target_date: date | None = None,
    trigger: str = "scheduler",
    force: bool = False,
    idempotency_key: str | None = None,
    settings: Settings | None = None,
    queue: TaskQueue | None = None,
    refresh_user_groups: bool = True,
) -> DispatchResult:
    """Open (or join) the run for `target_date` (default: yesterday) and enqueue its tasks.

    `refresh_user_groups=False` skips copying Open WebUI's groups (a backfill copies them once).
    """
    settings = settings or get_settings()
    if queue is None:
        queue = wiring.queue(settings)
    run_date = target_date or yesterday(settings)
    analytics, source = analytics_engine(settings), source_engine(settings)

    ensure_rates(analytics, settings, datetime.now(settings.zone).date())  # new rates value history now
    with analytics.begin() as connection:
        closed = runs.close_stale_runs(connection, settings)
    if closed:
        _log.warning("closed %d stale run(s) before dispatching: %s", len(closed), closed)

    if refresh_user_groups:
        refresh_groups(settings, source, analytics)
    selection = _select(
        settings, source, analytics, run_date, force, late_arrivals=trigger == runs.RunTrigger.SCHEDULER
    )
    planned, deferred = selection.planned, selection.deferred
    with analytics.begin() as connection:
        opened = runs.open_run(
            connection,
            run_date=run_date,
            trigger=trigger,
            force=force,
            idempotency_key=idempotency_key,
            expected=len(planned),
            deferred=deferred,
            late_arrivals=selection.late_arrivals,
        )
        if not opened.joined_existing:
            runs.plan(connection, opened.run_id, [c.conversation_id for c in planned])

    if opened.joined_existing:
        if opened.status is not runs.RunStatus.RUNNING:
            _log.info(
                "dispatch for %s joined run %s (%s): nothing to do", run_date, opened.run_id, opened.status
            )
            return _result(opened)
        with analytics.connect() as connection:
            todo = runs.unfinished_tasks(connection, opened.run_id)
        enqueued, failed = _enqueue(analytics, queue, opened.run_id, todo, force)
        _log.info("dispatch for %s joined open run %s; re-enqueued %d", run_date, opened.run_id, enqueued)
        return _result(opened, enqueued, failed)

    try:
        if opened.expected == 0:
            aggregate_run(opened.run_id, engine=analytics)
            _log.info("run %s for %s: nothing to analyse; completed", opened.run_id, run_date)
            return _result(opened, status=runs.RunStatus.COMPLETED)
        enqueued, failed = _enqueue(
            analytics, queue, opened.run_id, (c.conversation_id for c in planned), force
        )
    except Exception as exc:
        # the run is open but its tasks may never come: say so now rather than at the stale limit
        with analytics.begin() as connection:
            runs.fail_run(connection, opened.run_id, f"dispatch failed: {type(exc).__name__}: {exc}")
        _log.exception("run %s for %s: dispatch failed", opened.run_id, run_date)
        raise
    _log.info(
        "run %s for %s: %d planned (%d late arrivals), %d enqueued, %d failed to enqueue, "
        "%d deferred to the next run",
        opened.run_id,
        run_date,
        opened.expected,
        opened.run.late_arrivals,
        enqueued,
        failed,
        deferred,
    )
    return _result(opened, enqueued, failed)


def _result(
    opened: runs.OpenedRun, enqueued: int = 0, failed: int = 0, status: str | None = None
) -> DispatchResult:
    return DispatchResult(
        run_id=opened.run_id,
        run_date=opened.run_date,
        status=status or opened.status,
        expected=opened.expected,
        deferred=opened.deferred,
        joined_existing=opened.joined_existing,
        enqueued=enqueued,
        enqueue_failed=failed,
        late_arrivals=opened.run.late_arrivals,
    )


def backfill(
    start_date: date,
    end_date: date,
    *,
    force: bool = False,
    trigger: str = "backfill",
    settings: Settings | None = None,
    queue: TaskQueue | None = None,
) -> list[DispatchResult]:
    """Dispatch every date from `start_date` to `end_date`, oldest first."""
    if end_date < start_date:
        raise ValueError("end_date is before start_date")
    days = (end_date - start_date).days + 1
    return [
        dispatch(
            target_date=start_date + timedelta(days=offset),
            trigger=trigger,
            force=force,
            settings=settings,
            queue=queue,
            refresh_user_groups=offset == 0,
        )
        for offset in range(days)
    ]
