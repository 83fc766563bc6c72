"""Nothing is missed and status is true: late arrivals (imported chats that keep old dates) are
planned by the nightly run on their own dates, an empty manual trigger says so and leaves "the
last run" alone, and skipped conversations keep their real message counts.

All through the real dispatcher, analyzer and aggregator (inline queue) on the embedded Postgres,
with an Open WebUI 0.12.4-shaped SQLite database."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from functions import dispatcher
from functions.api.app import API_PREFIX, create_app
from functions.api.services import ApiServices
from functions.read.health import health_report
from infra.cli import cli
from infra.local_queues import inline_queue
from infra.openwebui_fixture import AUTO, OMIT, ChatBuilder
from shared.config import get_settings, reset_settings_cache
from shared.db import reset_engines
from tests.pipeline_support import BUDAPEST, Dataset, assert_books_balance, build_dataset, rows

AUTH = {"Authorization": "Bearer local-dev-password"}
DAYS = [date(2026, 11, 20), date(2026, 11, 21)]
MAY = date(2026, 5, 12)


@pytest.fixture
def dataset(tmp_path: Path, analytics_url: str, monkeypatch: pytest.MonkeyPatch) -> Dataset:
    data = build_dataset(tmp_path / "webui.db", days=DAYS, chats_per_day=6)
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", data.url)
    monkeypatch.setenv("ANALYTICS_QUEUE_BACKEND", "inline")
    reset_settings_cache()
    reset_engines()
    return data


def _nightly(day: date, trigger: str = "scheduler") -> dispatcher.DispatchResult:
    settings = get_settings()
    return dispatcher.dispatch(
        target_date=day, trigger=trigger, settings=settings, queue=inline_queue(settings)
    )


def _import_chat(dataset: Dataset, day: date, *, hour: int = 10, **options: object) -> str:
    """A chat as Open WebUI 0.12.4's `/chats/import` writes it: a new row id, the export's
    document, meta and pinned flag, and the export's `created_at`/`updated_at` kept."""
    start = datetime(day.year, day.month, day.day, hour, tzinfo=BUDAPEST)
    chat = ChatBuilder(start, title="Exported: quarterly figures")
    chat.turn("Summarise the quarterly figures in a table", "| quarter | revenue |\n" * 20, think=0)
    chat.turn("Add a column for the change", "| quarter | revenue | change |\n" * 20)
    return dataset.fixture.add_chat(
        dataset.users[0],
        chat,
        chat_id=str(uuid.uuid4()),  # the import assigns a new id
        created_at=int(chat.first_clock),
        updated_at=chat.last_timestamp,  # the export's date, months before tonight
        meta=options.get("meta", {"tags": ["finance"]}),
        pinned=False,
    )


def _analysis(engine: Engine, conversation_id: str) -> dict[str, object]:
    (row,) = rows(engine, "SELECT * FROM conversation_analysis WHERE conversation_id = :c", c=conversation_id)
    return row


def _day_count(engine: Engine, day: date) -> int:
    found = rows(
        engine,
        "SELECT conversation_count FROM daily_aggregates WHERE analysis_date = :d AND user_id_hash IS NULL",
        d=day,
    )
    return int(found[0]["conversation_count"]) if found else 0


def test_a_chat_imported_tonight_with_may_dates_is_analysed_on_its_may_date(
    dataset: Dataset, analytics_engine: Engine
) -> None:
    for day in DAYS:
        _nightly(day)
    assert _day_count(analytics_engine, MAY) == 0
    imported = _import_chat(dataset, MAY)
    # rows no run may plan, dated in May too: a share-link copy and an internal chat
    share = ChatBuilder(datetime(2026, 5, 12, 9, tzinfo=BUDAPEST))
    share.turn("shared question", "shared answer", think=0)
    dataset.fixture.add_chat(f"shared-{imported}", share, chat_id=str(uuid.uuid4()))
    _import_chat(dataset, MAY, hour=14, meta={"internal": True})

    # a backfill of a November date does not go looking for it; only the nightly run does
    backfilled = _nightly(DAYS[0], trigger="backfill")
    assert backfilled.expected == 0 and backfilled.late_arrivals == 0

    tonight = _nightly(DAYS[1] + timedelta(days=1))
    assert tonight.expected == 1 and tonight.late_arrivals == 1 and tonight.deferred == 0
    analysis = _analysis(analytics_engine, imported)
    assert analysis["status"] == "analyzed" and analysis["analysis_date"] == MAY
    assert analysis["run_id"] == tonight.run_id
    assert _day_count(analytics_engine, MAY) == 1  # May's aggregates were rebuilt with it
    (run,) = rows(analytics_engine, "SELECT * FROM processing_log WHERE id = :r", r=tonight.run_id)
    assert run["late_arrivals"] == 1 and run["status"] == "completed"
    assert_books_balance(analytics_engine)

    settings = get_settings()
    report = health_report(analytics_engine, settings, datetime.now(settings.zone))
    assert report.last_run is not None and report.last_run.run_id == tonight.run_id
    assert report.last_run.late_arrivals == 1
    output = CliRunner().invoke(cli, ["health"], catch_exceptions=False).output
    assert "1 late arrivals" in output

    again = _nightly(DAYS[1] + timedelta(days=2))  # the next night does not plan it again
    assert again.expected == 0 and again.late_arrivals == 0
    planned = rows(analytics_engine, "SELECT run_id FROM run_tasks WHERE conversation_id = :c", c=imported)
    assert [row["run_id"] for row in planned] == [tonight.run_id]


def test_the_first_sweep_records_the_past_as_history_and_plans_none_of_it(
    dataset: Dataset, analytics_engine: Engine
) -> None:
    """Installing the product does not start analysing years of chats unasked: what is older than
    the first nightly run's window when it first looks is history (a backfill takes it on purpose);
    a chat imported after that is a late arrival, whatever its dates."""
    old = [_import_chat(dataset, MAY - timedelta(days=offset)) for offset in (30, 1)]
    first = _nightly(DAYS[0])
    assert first.late_arrivals == 0 and all(cid not in first_planned(analytics_engine) for cid in old)
    history = rows(analytics_engine, "SELECT conversation_id FROM source_history")
    assert {row["conversation_id"] for row in history} == set(old)
    (baseline,) = rows(analytics_engine, "SELECT history_chats FROM source_baselines")
    assert baseline["history_chats"] == 2

    imported = _import_chat(dataset, MAY, hour=15)
    tonight = _nightly(DAYS[1])
    assert tonight.late_arrivals == 1 and _analysis(analytics_engine, imported)["analysis_date"] == MAY
    assert all(cid not in first_planned(analytics_engine) for cid in old)  # still history

    backfill = _nightly(MAY - timedelta(days=1), trigger="backfill")  # on purpose: the past is analysed
    assert backfill.expected == 1 and _analysis(analytics_engine, old[1])["status"] == "analyzed"
    assert_books_balance(analytics_engine)


def first_planned(engine: Engine) -> set[str]:
    return {row["conversation_id"] for row in rows(engine, "SELECT conversation_id FROM run_tasks")}


def test_late_arrivals_beyond_the_per_run_limit_wait_for_the_next_night_oldest_first(
    dataset: Dataset, analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _nightly(DAYS[0])
    monkeypatch.setenv("ANALYTICS_MAX_CONVERSATIONS", "8")
    reset_settings_cache()
    oldest = [_import_chat(dataset, MAY - timedelta(days=offset)) for offset in (3, 2, 1)]
    run = _nightly(DAYS[1])  # its own day has 7 conversations: room for one late arrival
    assert (run.expected, run.late_arrivals, run.deferred) == (8, 1, 2)
    assert _analysis(analytics_engine, oldest[0])["analysis_date"] == MAY - timedelta(days=3)
    following = _nightly(DAYS[1] + timedelta(days=1))
    assert (following.expected, following.late_arrivals, following.deferred) == (2, 2, 0)
    assert {_analysis(analytics_engine, cid)["status"] for cid in oldest} == {"analyzed"}
    assert_books_balance(analytics_engine)


def test_an_empty_manual_trigger_says_so_and_leaves_the_nightly_run_as_the_last_run(
    tmp_path: Path, analytics_url: str, analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = get_settings()
    yesterday = dispatcher.yesterday(settings)
    source = build_dataset(tmp_path / "webui.db", days=[yesterday], chats_per_day=4)
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", source.url)
    monkeypatch.setenv("ANALYTICS_QUEUE_BACKEND", "inline")
    reset_settings_cache()
    reset_engines()
    nightly = _nightly(yesterday)
    assert nightly.expected == 5

    client = create_app(services=ApiServices(get_settings())).test_client()
    response = client.post(API_PREFIX + "/trigger-processing", headers=AUTH)
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "nothing_to_do"
    (manual,) = body["runs"]
    assert (
        manual["expected"] == 0 and manual["status"] == "completed" and manual["run_date"] == str(yesterday)
    )

    health = client.get(API_PREFIX + "/health", headers=AUTH).get_json()
    assert health["last_run"]["run_id"] == str(nightly.run_id)
    assert health["last_run"]["trigger"] == "scheduler" and health["last_run"]["conversations_processed"] == 4
    assert [run["run_id"] for run in health["recent_runs"]] == [manual["run_id"]]  # listed as what it is
    page = client.get("/", headers=AUTH).get_data(as_text=True)
    assert "4 analysed, 1 skipped" in page  # the footer shows the nightly run, not the empty one
    cli_report = json.loads(CliRunner().invoke(cli, ["health", "--json"], catch_exceptions=False).output)
    assert cli_report["last_run"]["run_id"] == str(nightly.run_id)

    # a manual trigger that does plan work is "processing_started" and may be the last run
    chat = ChatBuilder(datetime.combine(yesterday, datetime.min.time(), BUDAPEST) + timedelta(hours=20))
    chat.turn("One more question tonight", "An answer " * 30, think=0)
    source.fixture.add_chat(source.users[0], chat)
    response = client.post(API_PREFIX + "/trigger-processing", headers=AUTH)
    assert response.get_json()["status"] == "processing_started"
    health = client.get(API_PREFIX + "/health", headers=AUTH).get_json()
    assert health["last_run"]["run_id"] == response.get_json()["job_id"]


@pytest.mark.parametrize("messages", [4, 7, 10])
def test_a_skipped_chat_keeps_its_real_message_counts(
    dataset: Dataset, analytics_engine: Engine, messages: int
) -> None:
    chat = ChatBuilder(datetime(2026, 11, 21, 9, tzinfo=BUDAPEST))
    users = 0
    for index in range(messages):  # only the first message carries a timestamp: cannot be measured
        timestamp = AUTO if index == 0 else OMIT
        if index % 2 == 0:
            chat.user(f"question {index}", timestamp=timestamp)
            users += 1
        else:
            chat.assistant(f"answer {index}", timestamp=timestamp)
    chat_id = dataset.fixture.add_chat(
        dataset.users[1], chat, updated_at=int(datetime(2026, 11, 21, 9, 30, tzinfo=BUDAPEST).timestamp())
    )
    _nightly(DAYS[1])
    analysis = _analysis(analytics_engine, chat_id)
    assert analysis["status"] == "skipped" and analysis["skip_reason"] == "too_few_timestamps"
    assert analysis["message_count"] == messages
    assert analysis["user_message_count"] == users
    assert analysis["active_duration_minutes"] is None  # nothing measured is invented
    assert_books_balance(analytics_engine)
