"""The pipeline in-process (inline queue) against the embedded Postgres: accounting, idempotency, attribution."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions import aggregator, analyzer, dispatcher
from functions.runs import close_stale_runs
from infra.local_queues import inline_queue
from infra.openwebui_fixture import ChatBuilder
from shared.config import Settings, get_settings, reset_settings_cache
from shared.db import reset_engines
from shared.queue import EnqueueReport
from tests.pipeline_support import BUDAPEST, Dataset, assert_books_balance, build_dataset, rows

DAYS = [date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)]


@pytest.fixture
def dataset(tmp_path: Path, analytics_url: str, monkeypatch: pytest.MonkeyPatch) -> Dataset:
    data = build_dataset(tmp_path / "webui.db", days=DAYS, chats_per_day=12)
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", data.url)
    monkeypatch.setenv("ANALYTICS_QUEUE_BACKEND", "inline")
    reset_settings_cache()
    reset_engines()
    return data


def _run(day: date, settings: Settings | None = None, **options: object) -> dispatcher.DispatchResult:
    settings = settings or get_settings()
    return dispatcher.dispatch(target_date=day, settings=settings, queue=inline_queue(settings), **options)


def _figures(engine: Engine) -> list[dict[str, object]]:
    return rows(
        engine,
        "SELECT analysis_date, user_id_hash, conversation_count, total_time_saved, total_time_saved_low, "
        "total_time_saved_high, confidence_sum FROM daily_aggregates ORDER BY analysis_date, user_id_hash NULLS FIRST",
    )


def test_every_conversation_ends_analysed_or_skipped_and_the_books_balance(
    dataset: Dataset, analytics_engine: Engine
) -> None:
    results = [_run(day) for day in DAYS]
    assert all(
        r["status"] == "completed" for r in rows(analytics_engine, "SELECT status FROM processing_log")
    )
    assert sum(r.expected for r in results) == len(dataset.chat_ids)

    analyses = {
        a["conversation_id"]: a for a in rows(analytics_engine, "SELECT * FROM conversation_analysis")
    }
    assert set(analyses) == set(dataset.chat_ids)
    skipped = [a for a in analyses.values() if a["status"] == "skipped"]
    assert {a["skip_reason"] for a in skipped} == {"too_few_timestamps"}
    assert len(skipped) == len(DAYS)  # one unmeasurable chat per day
    assert all(a["estimator"] == "heuristic" for a in analyses.values() if a["status"] == "analyzed")
    assert_books_balance(analytics_engine)


def test_no_raw_user_id_name_or_email_is_stored(dataset: Dataset, analytics_engine: Engine) -> None:
    for day in DAYS:
        _run(day)
    with analytics_engine.connect() as connection:
        dump = "\n".join(
            str(row)
            for table in ("conversation_analysis", "daily_aggregates", "group_members", "run_outcomes")
            for row in connection.execute(sa.text(f"SELECT * FROM {table}"))
        )
    for user_id in dataset.users:
        assert user_id not in dump
    assert "@corp.example" not in dump
    assert "Person " not in dump


def test_duplicate_dispatches_at_once_open_one_run(dataset: Dataset, analytics_engine: Engine) -> None:
    settings = get_settings()
    results: list[dispatcher.DispatchResult] = []

    def call() -> None:
        results.append(_run(DAYS[0], settings, idempotency_key="scheduler:2026-11-21T00:30:00Z"))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.run_id for r in results}) == 1
    assert sum(not r.joined_existing for r in results) == 1
    assert len(rows(analytics_engine, "SELECT id FROM processing_log")) == 1
    assert_books_balance(analytics_engine)


def test_a_scheduler_retry_after_completion_joins_the_finished_run(
    dataset: Dataset, analytics_engine: Engine
) -> None:
    first = _run(DAYS[0], idempotency_key="scheduler:x")
    again = _run(DAYS[0], idempotency_key="scheduler:x")
    assert again.run_id == first.run_id and again.joined_existing
    assert len(rows(analytics_engine, "SELECT id FROM processing_log")) == 1


def test_aggregating_twice_changes_nothing(dataset: Dataset, analytics_engine: Engine) -> None:
    result = _run(DAYS[1])
    before = _figures(analytics_engine)
    again = aggregator.aggregate_run(result.run_id, engine=analytics_engine)
    assert again.completed_now is False
    with analytics_engine.begin() as connection:
        aggregator.recompute_dates(connection, DAYS)
    assert _figures(analytics_engine) == before


def test_an_unchanged_day_is_not_estimated_again(dataset: Dataset, analytics_engine: Engine) -> None:
    _run(DAYS[0])
    again = _run(DAYS[0])
    assert again.expected == 0 and again.status == "completed"


def test_an_archive_bump_reuses_the_estimate(dataset: Dataset, analytics_engine: Engine) -> None:
    _run(DAYS[0])
    chat_id = dataset.chats_by_date[DAYS[0]][0]
    bumped = int(datetime(2026, 11, 20, 22, 0, tzinfo=BUDAPEST).timestamp())
    with dataset.fixture.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE chat SET archived = 1, updated_at = :t WHERE id = :id"),
            {"t": bumped, "id": chat_id},
        )
    again = _run(DAYS[0])
    assert again.expected == 1
    run = rows(analytics_engine, "SELECT * FROM processing_log WHERE id = :r", r=again.run_id)[0]
    assert run["estimates_reused"] == 1 and run["conversations_processed"] == 1
    assert_books_balance(analytics_engine)


def _attributed_date(engine: Engine, conversation_id: str) -> date:
    query = "SELECT analysis_date FROM conversation_analysis WHERE conversation_id = :c"
    return rows(engine, query, c=conversation_id)[0]["analysis_date"]


def _global_count(engine: Engine, day: date) -> int:
    query = (
        "SELECT conversation_count FROM daily_aggregates WHERE analysis_date = :d AND user_id_hash IS NULL"
    )
    return rows(engine, query, d=day)[0]["conversation_count"]


def test_a_continued_conversation_moves_to_its_new_date(dataset: Dataset, analytics_engine: Engine) -> None:
    start = datetime(2026, 11, 20, 9, 0, tzinfo=BUDAPEST)
    chat = ChatBuilder(start, chat_id="continued")
    chat.turn("Draft the project plan", "Here is a plan " * 50, think=0)
    chat.turn("Add milestones", "Milestones " * 30)
    user = dataset.users[0]
    dataset.fixture.add_chat(user, chat)
    _run(DAYS[0])
    assert _attributed_date(analytics_engine, "continued") == DAYS[0]
    count_day0 = _global_count(analytics_engine, DAYS[0])

    chat.clock = datetime(2026, 11, 22, 10, 0, tzinfo=BUDAPEST).timestamp()
    chat.turn("One more section, please", "Section " * 40, think=0)
    with dataset.fixture.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM chat WHERE id = 'continued'"))
    dataset.fixture.add_chat(user, chat)
    _run(DAYS[2])

    assert _attributed_date(analytics_engine, "continued") == DAYS[2]
    assert _global_count(analytics_engine, DAYS[0]) == count_day0 - 1
    assert_books_balance(analytics_engine)


def test_the_per_run_limit_defers_the_rest_to_the_next_run(
    dataset: Dataset, analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANALYTICS_MAX_CONVERSATIONS", "5")
    reset_settings_cache()
    first = _run(DAYS[0])
    assert first.expected == 5 and first.deferred == len(dataset.chats_by_date[DAYS[0]]) - 5
    second = _run(DAYS[1])  # the lookback picks up the deferred backlog first
    assert second.expected == 5
    done = {
        a["conversation_id"]
        for a in rows(analytics_engine, "SELECT conversation_id FROM conversation_analysis")
    }
    assert len(done) == 10
    assert done <= set(dataset.chats_by_date[DAYS[0]])  # oldest first: the backlog drains before new work
    assert_books_balance(analytics_engine)


def test_an_empty_day_completes_at_once(dataset: Dataset, analytics_engine: Engine) -> None:
    result = _run(date(2026, 11, 10))
    assert result.expected == 0 and result.status == "completed"
    run = rows(analytics_engine, "SELECT status, completed_at FROM processing_log")[0]
    assert run["status"] == "completed" and run["completed_at"] is not None


def test_a_stale_run_is_closed_by_the_next_dispatch(dataset: Dataset, analytics_engine: Engine) -> None:
    with analytics_engine.begin() as connection:
        stale_id = connection.execute(
            sa.text(
                "INSERT INTO processing_log (run_date, started_at, conversations_expected) "
                "VALUES (:d, :t, 3) RETURNING id"
            ),
            {"d": date(2026, 11, 1), "t": datetime.now(UTC) - timedelta(hours=5)},
        ).scalar_one()
    _run(DAYS[0])
    stale = rows(
        analytics_engine, "SELECT status, error_message FROM processing_log WHERE id = :r", r=stale_id
    )[0]
    assert stale["status"] == "stale"
    assert "3 of 3 conversations never reported" in stale["error_message"]


def test_a_long_run_that_keeps_reporting_is_not_stale(dataset: Dataset, analytics_engine: Engine) -> None:
    with analytics_engine.begin() as connection:
        run_id = connection.execute(
            sa.text(
                "INSERT INTO processing_log (run_date, started_at, conversations_expected) "
                "VALUES (:d, :t, 5) RETURNING id"
            ),
            {"d": date(2026, 11, 2), "t": datetime.now(UTC) - timedelta(hours=5)},
        ).scalar_one()
        connection.execute(
            sa.text(
                "INSERT INTO run_outcomes (run_id, conversation_id, outcome) VALUES (:r, 'c1', 'skipped')"
            ),
            {"r": run_id},
        )
    _run(DAYS[0])  # its stale check must leave the run alone: an outcome arrived just now
    run = rows(analytics_engine, "SELECT status FROM processing_log WHERE id = :r", r=run_id)[0]
    assert run["status"] == "running"


def test_a_straggler_after_a_stale_close_still_reaches_the_aggregates(
    dataset: Dataset, analytics_engine: Engine
) -> None:
    settings = get_settings()
    result = dispatcher.dispatch(target_date=DAYS[0], settings=settings, queue=_NoDelivery())
    with analytics_engine.begin() as connection:  # the run went quiet long ago and was closed
        connection.execute(
            sa.text("UPDATE processing_log SET started_at = now() - interval '5 hours' WHERE id = :r"),
            {"r": result.run_id},
        )
        assert close_stale_runs(connection, settings) == [result.run_id]
    straggler = dataset.chats_by_date[DAYS[0]][0]
    outcome = analyzer.analyze(
        {"run_id": str(result.run_id), "conversation_id": straggler},
        settings=settings,
        queue=inline_queue(settings),
    )
    assert outcome.outcome == "analyzed"
    assert_books_balance(analytics_engine)  # the daily aggregates include the late analysis


class _NoDelivery:
    """A queue that accepts tasks and never delivers them (they are lost)."""

    def enqueue(self, target: str, payload: dict[str, object], *, name: str) -> bool:
        return True

    def enqueue_many(self, target: str, tasks: Iterable[tuple[str, dict[str, object]]]) -> EnqueueReport:
        return EnqueueReport(created=len(list(tasks)))
