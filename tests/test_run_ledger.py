"""The run ledger (`functions/runs.py`): its states match the schema, `failed` is reached, the
pipeline (not a read) closes stale runs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions import analyzer, dispatcher, runs
from infra.local_queues import inline_queue
from shared.config import REPO_ROOT, get_settings, reset_settings_cache
from shared.db import reset_engines
from shared.queue import EnqueueReport
from tests.pipeline_support import Dataset, build_dataset, rows

DAYS = [date(2026, 11, 20), date(2026, 11, 21)]


@pytest.fixture
def dataset(tmp_path: Path, analytics_url: str, monkeypatch: pytest.MonkeyPatch) -> Dataset:
    data = build_dataset(tmp_path / "webui.db", days=DAYS, chats_per_day=4)
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", data.url)
    reset_settings_cache()
    reset_engines()
    return data


def _check_values(constraint: str) -> set[str]:
    sql = (REPO_ROOT / "migrations" / "001_analytics_schema.sql").read_text()
    match = re.search(constraint + r" CHECK \(\s*\w+ IN \(([^)]*)\)", sql)
    assert match, constraint
    return {value.strip().strip("'") for value in match.group(1).split(",")}


def test_the_enums_are_the_schemas_values_and_final_states_are_final() -> None:
    assert {s.value for s in runs.RunStatus} == _check_values("processing_log_status")
    assert {t.value for t in runs.RunTrigger} == _check_values("processing_log_trigger")
    assert set(runs.TRANSITIONS) == set(runs.RunStatus)
    for status in runs.FINAL_STATUSES:
        assert runs.TRANSITIONS[status] == frozenset()
    for status in runs.OPEN_STATUSES:
        assert runs.TRANSITIONS[status] and status not in runs.TRANSITIONS[status]


class _BrokenQueue:
    """A queue whose backend is down: every enqueue raises."""

    def enqueue(self, target: str, payload: dict[str, object], *, name: str) -> bool:
        raise ConnectionError("queue backend unreachable")

    def enqueue_many(self, target: str, tasks: Iterable[tuple[str, dict[str, object]]]) -> EnqueueReport:
        raise ConnectionError("queue backend unreachable")


def test_a_dispatch_that_crashes_after_opening_its_run_fails_it_and_a_retry_starts_over(
    dataset: Dataset, analytics_engine: Engine
) -> None:
    settings = get_settings()
    key = "scheduler:2026-11-21T23:30:00Z"
    with pytest.raises(ConnectionError):
        dispatcher.dispatch(target_date=DAYS[0], settings=settings, queue=_BrokenQueue(), idempotency_key=key)
    (failed,) = rows(analytics_engine, "SELECT * FROM processing_log")
    assert failed["status"] == "failed" and failed["idempotency_key"] is None
    assert "queue backend unreachable" in failed["error_message"]
    # the scheduler's retry (same key) opens a fresh run instead of joining the failed one
    retry = dispatcher.dispatch(
        target_date=DAYS[0], settings=settings, queue=inline_queue(settings), idempotency_key=key
    )
    assert not retry.joined_existing and retry.run_id != failed["id"]
    with analytics_engine.connect() as connection:
        run = runs.get_run(connection, retry.run_id)
    assert run is not None and run.status is runs.RunStatus.COMPLETED
    assert run.conversations_expected == len(dataset.chats_by_date[DAYS[0]]) == run.conversations_finished


class _Lost:
    """A queue that accepts tasks and never delivers them."""

    def enqueue(self, target: str, payload: dict[str, object], *, name: str) -> bool:
        return True

    def enqueue_many(self, target: str, tasks: Iterable[tuple[str, dict[str, object]]]) -> EnqueueReport:
        return EnqueueReport(created=len(list(tasks)))


def test_the_aggregator_closes_runs_that_went_stale(dataset: Dataset, analytics_engine: Engine) -> None:
    settings = get_settings()
    lost = dispatcher.dispatch(target_date=DAYS[0], settings=settings, queue=_Lost())
    later = dispatcher.dispatch(target_date=DAYS[1], settings=settings, queue=_Lost())
    with analytics_engine.begin() as connection:  # the first run's tasks were lost long ago
        connection.execute(
            sa.text("UPDATE processing_log SET started_at = now() - interval '5 hours' WHERE id = :r"),
            {"r": lost.run_id},
        )
    queue = inline_queue(settings)
    for conversation_id in dataset.chats_by_date[DAYS[1]]:  # the second run's tasks arrive
        analyzer.analyze({"run_id": str(later.run_id), "conversation_id": conversation_id}, queue=queue)
    with analytics_engine.connect() as connection:
        # its last outcome started the aggregator, whose sweep closed the quiet run
        assert runs.run_status(connection, later.run_id) is runs.RunStatus.COMPLETED
        assert runs.run_status(connection, lost.run_id) is runs.RunStatus.STALE
