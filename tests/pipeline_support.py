"""Helpers for pipeline tests: a known Open WebUI dataset and independent checks of the books."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from infra.openwebui_fixture import ChatBuilder, OpenWebUIFixture, realistic_chat
from shared.config import FlaggedEstimates, get_settings

BUDAPEST = ZoneInfo("Europe/Budapest")
# tag ids as Open WebUI keeps them in chat.meta.tags: none, one or several per chat
CHAT_TAGS: tuple[list[str], ...] = ([], ["q4_report"], ["customer", "q4_report"], [], ["ops"])


@dataclass
class Dataset:
    """What a test put into the Open WebUI database."""

    url: str
    fixture: OpenWebUIFixture
    chats_by_date: dict[date, list[str]] = field(default_factory=lambda: defaultdict(list))
    users: list[str] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)

    @property
    def dates(self) -> list[date]:
        return sorted(self.chats_by_date)

    @property
    def chat_ids(self) -> list[str]:
        return [cid for day in self.dates for cid in self.chats_by_date[day]]


def build_dataset(
    path: Path,
    *,
    days: list[date],
    chats_per_day: int,
    users: int = 8,
    seed: int = 7,
    untimed_per_day: int = 1,
) -> Dataset:
    """Realistic chats on each day (local Budapest times), a few that cannot be measured, two groups."""
    rng = random.Random(seed)
    fixture = OpenWebUIFixture.sqlite(path)
    dataset = Dataset(url=f"sqlite:///{path}", fixture=fixture)
    dataset.users = [
        fixture.add_user(name=f"Person {i}", email=f"person{i}@corp.example") for i in range(users)
    ]
    half = len(dataset.users) // 2
    dataset.groups = {
        fixture.add_group("Engineering", dataset.users[: half + 1]): dataset.users[: half + 1],
        fixture.add_group("Finance", dataset.users[half:]): dataset.users[half:],
    }
    for day in days:
        for index in range(chats_per_day):
            start = datetime(day.year, day.month, day.day, 8, tzinfo=BUDAPEST) + timedelta(
                minutes=rng.randint(0, 9 * 60)
            )
            chat = realistic_chat(rng, start)
            chat_id = fixture.add_chat(
                rng.choice(dataset.users),
                chat,
                archived=index % 7 == 3,
                tags=CHAT_TAGS[index % len(CHAT_TAGS)],
            )
            dataset.chats_by_date[day].append(chat_id)
        for _ in range(untimed_per_day):  # one message only: cannot be measured, must be skipped
            start = datetime(day.year, day.month, day.day, 12, tzinfo=BUDAPEST)
            lonely = ChatBuilder(start)
            lonely.user("Just one question, never answered")
            dataset.chats_by_date[day].append(fixture.add_chat(rng.choice(dataset.users), lonely))
    return dataset


def rows(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.text(sql), params)]


def assert_books_balance(engine: Engine) -> None:
    """Independent checks: one row per conversation, run counts = outcome rows, aggregates = sums."""
    analyses = rows(engine, "SELECT * FROM conversation_analysis")
    ids = Counter(a["conversation_id"] for a in analyses)
    assert all(count == 1 for count in ids.values())
    for analysis in analyses:
        if analysis["status"] != "analyzed":
            assert analysis["skip_reason"], analysis

    for run in rows(engine, "SELECT * FROM processing_log"):
        outcomes = Counter(
            o["outcome"]
            for o in rows(engine, "SELECT outcome FROM run_outcomes WHERE run_id = :r", r=run["id"])
        )
        assert run["conversations_processed"] == outcomes["analyzed"], run
        assert run["conversations_skipped"] == outcomes["skipped"], run
        assert run["conversations_failed"] == outcomes["failed"], run
        if run["status"] == "completed":
            assert sum(outcomes.values()) == run["conversations_expected"], run

    # the headline's rows: every analysed one, or (ANALYTICS_FLAGGED_ESTIMATES=apart) the unflagged;
    # flagged estimates are summed on their own, in the same rows (or in a row of their own)
    include_flagged = get_settings().flagged_estimates is FlaggedEstimates.INCLUDE
    headline_columns = (
        "conversation_count",
        "message_count",
        "total_active_time",
        "total_manual_time_estimated",
        "total_manual_time_low",
        "total_manual_time_high",
        "total_time_saved",
        "total_time_saved_low",
        "total_time_saved_high",
        "confidence_sum",
    )
    expected: dict[tuple[date, str | None], Counter[str]] = defaultdict(
        lambda: Counter(dict.fromkeys((*headline_columns, "flagged_count", "flagged_time_saved"), 0))
    )
    estimators: dict[tuple[date, str | None], Counter[str]] = defaultdict(Counter)
    tagged: dict[tuple[date, str], Counter[str]] = defaultdict(
        lambda: Counter(dict.fromkeys(("conversation_count", "total_time_saved", "flagged_count"), 0))
    )
    for a in analyses:
        if a["status"] != "analyzed":
            continue
        flagged = a["estimate_flag"] is not None
        headline = include_flagged or not flagged
        for key in ((a["analysis_date"], None), (a["analysis_date"], a["user_id_hash"])):
            totals = expected[key]
            if flagged:
                totals["flagged_count"] += 1
                totals["flagged_time_saved"] += a["time_saved_minutes"]
            if not headline:
                continue
            estimators[key][a["estimator"]] += 1
            totals["conversation_count"] += 1
            totals["message_count"] += a["message_count"]
            totals["total_active_time"] += a["active_duration_minutes"]
            totals["total_manual_time_estimated"] += a["manual_time_most_likely"]
            totals["total_manual_time_low"] += a["manual_time_low"]
            totals["total_manual_time_high"] += a["manual_time_high"]
            totals["total_time_saved"] += max(0, a["manual_time_most_likely"] - a["active_duration_minutes"])
            totals["total_time_saved_low"] += max(0, a["manual_time_low"] - a["active_duration_minutes"])
            totals["total_time_saved_high"] += max(0, a["manual_time_high"] - a["active_duration_minutes"])
            totals["confidence_sum"] += a["confidence_level"]
        for tag in set(a["tags"]):
            tag_totals = tagged[(a["analysis_date"], tag)]
            tag_totals["flagged_count"] += flagged
            if headline:
                tag_totals["conversation_count"] += 1
                tag_totals["total_time_saved"] += a["time_saved_minutes"]
    stored = {
        (row["analysis_date"], row["user_id_hash"]): row
        for row in rows(engine, "SELECT * FROM daily_aggregates")
    }
    assert set(stored) == set(expected)
    for key, totals in expected.items():
        for column, value in totals.items():
            assert stored[key][column] == value, (key, column)
    for key in expected:
        assert stored[key]["estimator_counts"] == dict(estimators[key]), key
    tag_rows = {
        (row["analysis_date"], row["dimension_value"]): row
        for row in rows(engine, "SELECT * FROM daily_breakdowns WHERE dimension = 'tag' AND group_id = ''")
    }
    assert set(tag_rows) == set(tagged)
    for key, totals in tagged.items():
        for column, value in totals.items():
            assert tag_rows[key][column] == value, (key, column)
