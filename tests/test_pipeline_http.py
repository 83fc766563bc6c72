"""End to end over real HTTP: the functions under functions-framework on loopback, the local queue,
the embedded Postgres. Every task delivered twice; duplicate dispatches; the books must balance."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import Engine

from functions import dispatcher
from infra.local_queues import LocalHttpQueue
from infra.local_stack import LocalStack
from shared.config import get_settings, reset_settings_cache
from shared.db import reset_engines
from shared.queue import TASK_SECRET_HEADER
from tests.pipeline_support import Dataset, assert_books_balance, build_dataset, rows

pytestmark = pytest.mark.slow

DAYS = [date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)]


@pytest.fixture
def stack(
    tmp_path: Path, analytics_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LocalStack, Dataset]]:
    data = build_dataset(tmp_path / "webui.db", days=DAYS, chats_per_day=100, users=20)
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", data.url)
    environment = {
        "COGNIFORCE_DATABASE_URL": analytics_url,
        "OPENWEBUI_DATABASE_URL": data.url,
        "ANALYTICS_LOCAL_CONCURRENCY": "4",
    }
    local = LocalStack(environment, log_dir=tmp_path / "logs", functions=("dispatch", "analyze", "aggregate"))
    for name, value in local.environment.items():
        if name.startswith(("ANALYTICS_", "COGNIFORCE_", "OPENWEBUI_")):
            monkeypatch.setenv(name, value)
    reset_settings_cache()
    reset_engines()
    with local:
        yield local, data


def _wait(engine: Engine, run_ids: list[uuid.UUID], timeout: float = 240.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = rows(engine, "SELECT * FROM processing_log WHERE id = ANY(:ids)", ids=run_ids)
        if runs and all(run["status"] == "completed" for run in runs):
            return runs
        time.sleep(0.5)
    raise AssertionError(
        f"runs did not complete: {rows(engine, 'SELECT id, status, conversations_expected, conversations_processed, conversations_skipped, conversations_failed FROM processing_log')}"
    )


def test_every_task_delivered_twice_counts_once(
    stack: tuple[LocalStack, Dataset], analytics_engine: Engine
) -> None:
    local, data = stack
    settings = get_settings()
    queue = LocalHttpQueue(settings, urls=local.urls, duplicate_deliveries=2, concurrency=6)
    results = [dispatcher.dispatch(target_date=day, settings=settings, queue=queue) for day in DAYS]
    assert queue.join(timeout=240)
    runs = _wait(analytics_engine, [r.run_id for r in results])

    assert sum(run["conversations_expected"] for run in runs) == len(data.chat_ids)
    analyses = rows(
        analytics_engine, "SELECT conversation_id, status, skip_reason FROM conversation_analysis"
    )
    assert sorted(a["conversation_id"] for a in analyses) == sorted(data.chat_ids)
    assert queue.delivered == 2 * len(data.chat_ids)  # every delivery answered 2xx, half were duplicates
    assert_books_balance(analytics_engine)


def test_through_the_dispatcher_function_with_duplicate_calls(
    stack: tuple[LocalStack, Dataset], analytics_engine: Engine
) -> None:
    local, _ = stack
    secret = get_settings().task_secret.get_secret_value()
    headers = {TASK_SECRET_HEADER: secret, "X-CloudScheduler-ScheduleTime": "2026-11-24T23:30:00Z"}
    answers = [
        requests.post(local.urls["dispatch"], json={"date": DAYS[1].isoformat()}, headers=headers, timeout=60)
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 200]
    run_ids = {a.json()["run_id"] for a in answers}
    assert len(run_ids) == 1
    _wait(analytics_engine, [uuid.UUID(run_ids.pop())])
    assert len(rows(analytics_engine, "SELECT id FROM processing_log")) == 1
    assert_books_balance(analytics_engine)


def test_pipeline_functions_reject_missing_and_wrong_secrets(stack: tuple[LocalStack, Dataset]) -> None:
    local, _ = stack
    for function in ("dispatch", "analyze", "aggregate"):
        for headers in ({}, {TASK_SECRET_HEADER: "wrong"}):
            answer = requests.post(local.urls[function], json={}, headers=headers, timeout=30)
            assert answer.status_code == 401, (function, headers, answer.text)
