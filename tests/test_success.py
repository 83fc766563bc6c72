"""Open WebUI's ratings as the success signal, read from a real 0.12.4 `feedback` table layout."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions import analyzer, dispatcher
from functions.aggregates import recompute_dates
from functions.success import rated_down, sync_confirmations
from infra.local_queues import inline_queue
from infra.openwebui_fixture import OLD_SCHEMA, ChatBuilder, OpenWebUIFixture, raw_json
from shared.config import get_settings, reset_settings_cache
from shared.openwebui.reader import Rating, load_ratings
from shared.queue import EnqueueReport
from tests.ground_truth_support import add_analysis, add_confirmation

START = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)


def _chat() -> tuple[ChatBuilder, str, str, str]:
    chat = ChatBuilder(START)
    question, first = chat.turn("Plan a migration", "Plan A")
    dropped = chat.regenerate(question, "Plan B")
    chat.select(first)
    _, second = chat.turn("Now the rollback", "Rollback steps")
    return chat, first, dropped, second


@pytest.fixture(params=["sqlite", "postgres"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterable[OpenWebUIFixture]:
    if request.param == "sqlite":
        fixture = OpenWebUIFixture.sqlite(tmp_path / "webui.db")
    else:
        fixture = OpenWebUIFixture.postgres(request.getfixturevalue("fresh_database_url"))
    yield fixture
    fixture.dispose()


def test_ratings_are_read_per_chat_from_the_feedback_table(source: OpenWebUIFixture) -> None:
    chat, first, dropped, _second = _chat()
    source.add_chat("u1", chat)
    other = ChatBuilder(START)
    _, elsewhere = other.turn("x", "y")
    source.add_chat("u1", other)
    source.add_rating(
        "u1", chat.chat_id, first, -1, score=3, reason="Not factually correct", at=1_781_000_100
    )
    source.add_rating("u1", other.chat_id, elsewhere, 1, at=1_781_000_200)
    source.add_rating("u1", chat.chat_id, dropped, 1, at=1_781_000_300)
    # a malformed row and a non-rating row do not disturb the reading
    malformed = (
        raw_json('"not an object"') if source.engine.dialect.name == "postgresql" else raw_json("{oops")
    )
    source._insert(
        "feedback", {"id": "bad", "type": "rating", "meta": malformed, "data": {}, "updated_at": 1}
    )
    source._insert(
        "feedback",
        {
            "id": "arena",
            "type": "arena",
            "meta": {"chat_id": chat.chat_id, "message_id": first},
            "updated_at": 2,
        },
    )
    engine = source.read_only_engine()
    ratings = load_ratings(engine, chat.chat_id)
    engine.dispose()
    assert [(r.message_id, r.rating, r.score) for r in ratings] == [(first, -1, 3), (dropped, 1, None)]


def test_an_old_open_webui_without_a_feedback_table_has_no_ratings(tmp_path: Path) -> None:
    old = OpenWebUIFixture.sqlite(tmp_path / "old.db", OLD_SCHEMA)
    chat, *_ = _chat()
    old.add_chat("u1", chat)
    assert load_ratings(old.read_only_engine(), chat.chat_id) == []
    old.dispose()


def _rating(message: str, value: int, at: int) -> Rating:
    return Rating(message, value, None, datetime.fromtimestamp(at, UTC))


def test_the_latest_rating_of_a_kept_answer_decides() -> None:
    kept = ["a1", "a2"]
    assert not rated_down(kept, [])
    assert rated_down(kept, [_rating("a1", -1, 10)])
    assert not rated_down(kept, [_rating("a1", -1, 10), _rating("a2", 1, 20)])  # later rated up
    assert rated_down(kept, [_rating("a2", 1, 10), _rating("a1", -1, 20)])
    assert not rated_down(kept, [_rating("dropped", -1, 30)])  # an answer the user did not keep
    assert not rated_down(kept, [Rating("a1", None, 2, datetime.fromtimestamp(5, UTC))])  # only a 1-10 score


class _NoDelivery:
    def enqueue(self, target: str, payload: dict[str, object], *, name: str) -> bool:
        return True

    def enqueue_many(self, target: str, tasks: Iterable[tuple[str, dict[str, object]]]) -> EnqueueReport:
        return EnqueueReport(created=len(list(tasks)))


def _global_row(engine: Engine, day: date) -> dict[str, Any]:
    with engine.connect() as connection:
        return dict(
            connection.execute(
                sa.text(
                    "SELECT total_time_saved, total_time_saved_successful, unsuccessful_count "
                    "FROM daily_aggregates WHERE analysis_date = :d AND user_id_hash IS NULL"
                ),
                {"d": day},
            )
            .mappings()
            .one()
        )


def test_a_rated_down_conversation_saves_nothing_in_the_success_adjusted_figure(
    tmp_path: Path, analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = OpenWebUIFixture.sqlite(tmp_path / "webui.db")
    liked, first, _, second = _chat()
    disliked, _, _, d_second = _chat()
    source.add_chat("u1", liked)
    source.add_chat("u1", disliked)
    source.add_rating("u1", liked.chat_id, first, -1, at=1_781_000_000)
    source.add_rating("u1", liked.chat_id, second, 1, at=1_781_000_100)  # later up: a success
    feedback = source.add_rating("u1", disliked.chat_id, d_second, 1, at=1_781_000_000)
    source.add_rating("u1", disliked.chat_id, d_second, -1, at=1_781_000_500, feedback_id=feedback)  # changed
    source.dispose()
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", source.url)
    reset_settings_cache()
    settings = get_settings()
    day = date(2026, 6, 10)
    run = dispatcher.dispatch(target_date=day, settings=settings, queue=_NoDelivery())
    for chat in (liked, disliked):
        outcome = analyzer.analyze(
            {"run_id": str(run.run_id), "conversation_id": chat.chat_id},
            settings=settings,
            queue=inline_queue(settings),
        )
        assert outcome.outcome == "analyzed"
    with analytics_engine.begin() as connection:
        flags = dict(
            connection.execute(sa.text("SELECT conversation_id, rated_down FROM conversation_analysis")).all()
        )
        saved = dict(
            connection.execute(
                sa.text("SELECT conversation_id, time_saved_minutes FROM conversation_analysis")
            ).all()
        )
        recompute_dates(connection, [day])
    assert flags == {liked.chat_id: False, disliked.chat_id: True}
    row = _global_row(analytics_engine, day)
    assert row["total_time_saved"] == saved[liked.chat_id] + saved[disliked.chat_id]
    assert row["total_time_saved_successful"] == saved[liked.chat_id]
    assert row["unsuccessful_count"] == 1


def test_ai_did_not_help_makes_an_analysed_conversation_unsuccessful_at_the_next_run(
    analytics_engine: Engine,
) -> None:
    """The answer is stored at once; the aggregator's sync (every run) brings it into the figures."""
    day = date(2026, 6, 10)
    add_analysis(analytics_engine, "c1", most_likely=60, active=10, day=day)
    add_analysis(analytics_engine, "c2", most_likely=40, active=10, day=day)
    with analytics_engine.begin() as connection:
        recompute_dates(connection, [day])
    assert _global_row(analytics_engine, day) == {
        "total_time_saved": 80,
        "total_time_saved_successful": 80,
        "unsuccessful_count": 0,
    }
    add_confirmation(analytics_engine, "c1", "a" * 64, did_not_help=True)
    assert _global_row(analytics_engine, day)["unsuccessful_count"] == 0  # nothing rebuilt yet
    with analytics_engine.begin() as connection:
        changed = sync_confirmations(connection)
        assert changed == {day}
        recompute_dates(connection, changed)
        assert sync_confirmations(connection) == set()  # unchanged: nothing to rebuild
    assert _global_row(analytics_engine, day) == {
        "total_time_saved": 80,
        "total_time_saved_successful": 30,
        "unsuccessful_count": 1,
    }
