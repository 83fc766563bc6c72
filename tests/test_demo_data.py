"""The demo Open WebUI database: a year of realistic shape, and what the pipeline makes of it."""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine

from functions import dispatcher
from infra.demo_data import BEDROCK_MODEL, DEMO_DAYS, DEMO_USERS, GGUF_MODEL, build_demo_database
from infra.local_queues import inline_queue
from shared.config import Settings, get_settings, reset_settings_cache
from shared.db import make_engine, reset_engines
from tests.pipeline_support import rows

pytestmark = pytest.mark.slow  # every test reads the whole 400-day demo, built first (about 10 s)

ZONE = ZoneInfo("Europe/Budapest")
TODAY = date(2026, 12, 2)
_PIPELINE_DAYS = 90


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, float]]:
    path = tmp_path_factory.mktemp("demo") / "demo-webui.db"
    started = time.monotonic()
    summary = build_demo_database(path, zone=ZONE, today=TODAY)
    yield path, summary, time.monotonic() - started


@pytest.fixture(scope="module")
def source(demo: tuple[Path, str, float]) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{demo[0]}", read_only=True)
    yield engine
    engine.dispose()


def _chats(engine: Engine) -> list[dict[str, Any]]:
    found = rows(engine, "SELECT id, user_id, chat, created_at, updated_at, meta FROM chat")
    for row in found:
        for column in ("chat", "meta"):
            try:
                row[column] = json.loads(row[column]) if row[column] is not None else None
            except ValueError:
                row[column] = "<broken>"
    return found


def _local_day(epoch: int) -> date:
    return datetime.fromtimestamp(epoch, ZONE).date()


def test_a_year_with_weekly_rhythm_holidays_and_growth(demo: tuple[Path, str, float], source: Engine) -> None:
    _, summary, seconds = demo
    assert seconds < 30, f"building the demo took {seconds:.1f}s"
    chats = [c for c in _chats(source) if not c["user_id"].startswith("shared-")]
    per_day = Counter(_local_day(c["updated_at"]) for c in chats)
    first, last = min(per_day), max(per_day)
    assert last == TODAY - timedelta(days=1)
    assert (last - first).days >= 365
    assert TODAY not in per_day  # nothing from today: the nightly run has not covered it yet

    weekdays = [n for day, n in per_day.items() if day.weekday() < 5 and (day.month, day.day) != (12, 25)]
    weekends = [
        per_day.get(first + timedelta(days=d), 0)
        for d in range((last - first).days)
        if (first + timedelta(days=d)).weekday() >= 5
    ]
    assert statistics.mean(weekdays) > 6 * statistics.mean(weekends)
    christmas = [
        per_day.get(date(year, 12, 25), 0)
        for year in (first.year, last.year)
        if first <= date(year, 12, 25) <= last
    ]
    assert christmas and max(christmas) <= 2  # a holiday is quiet

    quarter = (last - first).days // 4
    early = sum(n for day, n in per_day.items() if day < first + timedelta(days=quarter))
    late = sum(n for day, n in per_day.items() if day > last - timedelta(days=quarter))
    assert late > 2 * early, (early, late)  # adoption grows

    users = rows(source, "SELECT email FROM \"user\" WHERE role = 'user'")
    assert len(users) == DEMO_USERS and all(u["email"].endswith("@demo.invalid") for u in users)
    assert f"over {DEMO_DAYS} days" in summary


def test_groups_above_and_below_the_floor(source: Engine) -> None:
    sizes = {
        row["name"]: row["members"]
        for row in rows(
            source,
            'SELECT g.name, count(m.user_id) AS members FROM "group" g '
            "JOIN group_member m ON m.group_id = g.id GROUP BY g.name",
        )
    }
    floor = Settings.model_fields["min_group_size"].default
    assert sum(size >= floor for size in sizes.values()) >= 4
    assert sum(size < floor for size in sizes.values()) >= 2
    multi = rows(source, "SELECT user_id FROM group_member GROUP BY user_id HAVING count(*) > 1")
    assert multi  # some people are in two groups


def test_only_coding_chats_contain_code_and_the_models_usage_tags_and_ratings_are_real_shapes(
    source: Engine,
) -> None:
    chats = [c for c in _chats(source) if isinstance(c["chat"], dict) and c["chat"].get("history")]
    messages = [m for c in chats for m in c["chat"]["history"]["messages"].values()]
    with_code = [c for c in chats if "```" in json.dumps(c["chat"])]
    assert 0.15 < len(with_code) / len(chats) < 0.35  # about the coding share, not nearly all

    answers = [m for m in messages if m["role"] == "assistant"]
    models = Counter(m["model"] for m in answers)
    assert len(models) >= 5 and BEDROCK_MODEL in models and GGUF_MODEL in models
    assert (
        len(BEDROCK_MODEL) == 85 and GGUF_MODEL.startswith("hf.co/") and GGUF_MODEL.endswith("-GGUF:Q4_K_M")
    )
    shapes = Counter(
        "openai"
        if "prompt_tokens" in m["usage"]
        else "normalised"
        if "input_tokens" in m["usage"]
        else "ollama"
        for m in answers
    )
    assert set(shapes) == {"openai", "normalised", "ollama"}
    assert all("eval_count" in m["usage"] for m in answers if m["model"] in ("llama3.1:8b", GGUF_MODEL))

    side_by_side = [m for m in answers if m.get("modelIdx") == 1]
    assert side_by_side
    for answer in side_by_side[:20]:  # a sibling of the first model's answer under the same question
        chat = next(c for c in chats if answer["id"] in c["chat"]["history"]["messages"])
        question = chat["chat"]["history"]["messages"][answer["parentId"]]
        assert len(question["models"]) == 2 and len(question["childrenIds"]) >= 2
        assert len(chat["chat"]["models"]) == 2

    tagged = [c for c in _chats(source) if isinstance(c["meta"], dict) and c["meta"].get("tags")]
    assert len(tagged) > 100 and all(isinstance(t, str) for c in tagged for t in c["meta"]["tags"])
    rated = [m for m in answers if "annotation" in m]
    assert 20 <= len(rated) <= 0.05 * len(chats)
    assert {m["annotation"]["rating"] for m in rated} == {1, -1}
    # ...and each rating is also the `feedback` row Open WebUI writes, which the product reads
    feedback = rows(source, "SELECT type, data, meta FROM feedback")
    assert len(feedback) == len(rated) and {row["type"] for row in feedback} == {"rating"}
    by_message = {
        json.loads(row["meta"])["message_id"]: json.loads(row["data"])["rating"] for row in feedback
    }
    assert by_message == {m["id"]: m["annotation"]["rating"] for m in rated}


def test_the_same_seed_builds_the_same_database(tmp_path: Path, demo: tuple[Path, str, float]) -> None:
    again = tmp_path / "again.db"
    build_demo_database(again, zone=ZONE, today=TODAY, days=60)
    twice = tmp_path / "twice.db"
    build_demo_database(twice, zone=ZONE, today=TODAY, days=60)

    def digest(path: Path) -> str:
        engine = make_engine(f"sqlite:///{path}", read_only=True)
        try:
            content = rows(engine, "SELECT id, user_id, chat, updated_at, meta FROM chat ORDER BY id")
        finally:
            engine.dispose()
        return hashlib.sha256(json.dumps(content, default=str).encode()).hexdigest()

    assert digest(again) == digest(twice)


def test_the_pipeline_over_the_whole_demo(
    demo: tuple[Path, str, float], analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last 90 days through the real pipeline (in process): a spread of categories, skips with reasons.

    (All 400 days take about two minutes in process; `make run` processes them with four
    parallel deliveries.)"""
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", f"sqlite:///{demo[0]}")
    monkeypatch.setenv("TZ", "Europe/Budapest")
    reset_settings_cache()
    reset_engines()
    settings = get_settings()
    started = time.monotonic()
    last = TODAY - timedelta(days=1)
    results = dispatcher.backfill(
        last - timedelta(days=_PIPELINE_DAYS - 1), last, settings=settings, queue=inline_queue(settings)
    )
    seconds = time.monotonic() - started
    print(f"pipeline over {_PIPELINE_DAYS} demo days: {seconds:.1f}s")
    assert len(results) == _PIPELINE_DAYS

    runs = rows(analytics_engine, "SELECT status, count(*) AS n FROM processing_log GROUP BY status")
    assert {r["status"]: r["n"] for r in runs} == {"completed": _PIPELINE_DAYS}
    categories = {
        r["task_category"]: r["n"]
        for r in rows(
            analytics_engine,
            "SELECT task_category, count(*) AS n FROM conversation_analysis "
            "WHERE status = 'analyzed' GROUP BY task_category",
        )
    }
    analysed = sum(categories.values())
    assert set(categories) == {
        "coding",
        "writing",
        "analysis",
        "research",
        "translation",
        "learning",
        "other",
    }
    assert categories["coding"] / analysed < 0.35
    assert all(count / analysed > 0.04 for count in categories.values()), categories
    skipped = {
        r["skip_reason"]
        for r in rows(
            analytics_engine, "SELECT skip_reason FROM conversation_analysis WHERE status = 'skipped'"
        )
    }
    assert {"too_few_timestamps", "no_messages", "malformed_document"} <= skipped
    models = {
        r["primary_model"]
        for r in rows(analytics_engine, "SELECT DISTINCT primary_model FROM conversation_analysis")
    }
    assert BEDROCK_MODEL in models and GGUF_MODEL in models
