"""A known dataset for the API tests: analyses, groups and members, aggregated for real.

`seed(engine, today)` inserts deterministic `conversation_analysis` rows over the 70
days before `today` (some skipped or failed, which must not count), Open WebUI
groups (one too small to show), then runs the aggregator's `recompute_dates`. The
tests compare the API's figures with sums they compute from `Dataset.analyses`.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions.aggregates import recompute_dates

__all__ = ["Dataset", "analysis_row", "insert", "pseudonym", "seed", "sums"]

ZONE = ZoneInfo("Europe/Budapest")
TODAY = date(2026, 6, 15)
CATEGORIES = ("coding", "writing", "analysis", "research", "translation", "learning", "other")
MODELS = ("gpt-4o-mini", "llama3.1:8b", "qwen2.5-coder", None)
# Cells a spreadsheet would evaluate; the CSV export must neutralise them.
HOSTILE_CONVERSATION_ID = '=HYPERLINK("http://evil.example","x")'
HOSTILE_MODEL = "@SUM(1+1)"
HOSTILE_TAG = "+cmd|' /C calc'!A0"
# chat tags as Open WebUI stores them (tag ids): none, one, or several per chat
TAG_SETS: tuple[tuple[str, ...], ...] = (
    (),
    ("q4_report",),
    ("customer", "q4_report"),
    (),
    ("internal_tools",),
)


def pseudonym(user: str) -> str:
    return hmac.new(b"test-key", user.encode(), hashlib.sha256).hexdigest()


USERS = [pseudonym(f"user-{n}") for n in range(12)]
GROUPS = {
    "grp-eng": ("Engineering", USERS[0:6]),
    "grp-sales": ("Sales", USERS[5:10]),  # USERS[5] is in both
    "grp-tiny": ("Board", USERS[10:12]),  # too small to show (2 < 5)
}


@dataclass
class Dataset:
    today: date
    analyses: list[dict[str, Any]] = field(default_factory=list)  # every inserted row
    groups: dict[str, tuple[str, list[str]]] = field(default_factory=dict)

    @property
    def analysed(self) -> list[dict[str, Any]]:
        return [row for row in self.analyses if row["status"] == "analyzed"]

    def in_range(self, start: date, end: date, **where: Any) -> list[dict[str, Any]]:
        rows = [row for row in self.analysed if start <= row["analysis_date"] <= end]
        if "group" in where:
            rows = [row for row in rows if where["group"] in row["group_ids"]]
        if "user" in where:
            rows = [row for row in rows if row["user_id_hash"] == where["user"]]
        if "model" in where:
            rows = [row for row in rows if (row["primary_model"] or "unknown") == where["model"]]
        if "category" in where:
            rows = [row for row in rows if row["task_category"] == where["category"]]
        if "tag" in where:
            rows = [row for row in rows if where["tag"] in row["tags"]]
        return rows


def sums(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The figures the API should report for these analyses, computed independently."""
    rows = list(rows)
    count = len(rows)

    def total(key: str) -> int:
        return sum(row[key] for row in rows)

    saved_low = sum(max(0, row["manual_time_low"] - row["active_duration_minutes"]) for row in rows)
    saved_high = sum(max(0, row["manual_time_high"] - row["active_duration_minutes"]) for row in rows)
    saved = total("time_saved_minutes")
    return {
        "conversation_count": count,
        "message_count": total("message_count"),
        "total_active_time": total("active_duration_minutes"),
        "total_time_saved": saved,
        "total_time_saved_low": saved_low,
        "total_time_saved_high": saved_high,
        "total_manual_time_estimated": total("manual_time_most_likely"),
        "total_manual_time_low": total("manual_time_low"),
        "total_manual_time_high": total("manual_time_high"),
        "avg_time_saved_per_conversation": round(saved / count, 2) if count else None,
        "avg_time_saved_per_conversation_low": round(saved_low / count, 2) if count else None,
        "avg_time_saved_per_conversation_high": round(saved_high / count, 2) if count else None,
        "avg_confidence_level": round(total("confidence_level") / count, 2) if count else None,
        "llm_estimated_count": sum(row["estimator"] == "llm" for row in rows),
        "heuristic_estimated_count": sum(row["estimator"] == "heuristic" for row in rows),
        "estimators": dict(sorted(Counter(row["estimator"] for row in rows).items())),
        "total_time_saved_successful": sum(
            row["time_saved_minutes"] for row in rows if not _unsuccessful(row)
        ),
        "unsuccessful_count": sum(1 for row in rows if _unsuccessful(row)),
    }


def _unsuccessful(row: dict[str, Any]) -> bool:
    return bool(row.get("rated_down") or row.get("confirmed_no_help"))


def analysis_row(
    rng: random.Random,
    number: int,
    day: date,
    user: str,
    status: str,
    groups_by_id: dict[str, tuple[str, list[str]]] = GROUPS,
) -> dict[str, Any]:
    """One `conversation_analysis` row as the analyzer writes it (random figures from `rng`)."""
    groups = sorted(group_id for group_id, (_, members) in groups_by_id.items() if user in members)
    start = datetime.combine(day, time(8), ZONE) + timedelta(minutes=rng.randint(0, 600))
    row: dict[str, Any] = {
        "conversation_id": f"chat-{number:04d}",
        "user_id_hash": user,
        "group_ids": groups,
        "status": status,
        "skip_reason": None if status == "analyzed" else "too_few_timestamps",
        "analysis_date": day,
        "message_count": rng.randint(2, 30),
        "user_message_count": rng.randint(1, 15),
        "models_used": [],
        "tags": [],
        "primary_model": None,
        "source_updated_at": start,
        "content_fingerprint": f"{number:064x}",
        "conversation_summary": f"SECRET DIGEST {number}",
        "task_description": f"task description {number}",
        "rated_down": number % 11 == 0,  # the success signal, without touching the random draws
        "confirmed_no_help": number % 17 == 0,
    }
    if status != "analyzed":
        return row
    active = rng.randint(0, 60)
    idle = rng.randint(0, 40)
    low = rng.randint(0, 90)
    likely = low + rng.randint(0, 60)
    high = likely + rng.randint(0, 120)
    model = rng.choice(MODELS)
    row.update(
        first_message_at=start,
        last_message_at=start + timedelta(minutes=active + idle),
        total_duration_minutes=active + idle,
        active_duration_minutes=active,
        idle_time_minutes=idle,
        manual_time_low=low,
        manual_time_most_likely=likely,
        manual_time_high=high,
        confidence_level=rng.randint(20, 95),
        time_saved_minutes=max(0, likely - active),
        task_category=rng.choice(CATEGORIES),
        estimator=rng.choice(("llm", "llm", "heuristic")),
        estimator_model="gpt-4o-mini",
        prompt_version="2026-11-28.1",
        models_used=[model] if model else [],
        primary_model=model,
        tags=list(TAG_SETS[number % len(TAG_SETS)]),  # not from rng: the other values stay as they were
    )
    return row


def seed(engine: Engine, today: date = TODAY, *, conversations: int = 240) -> Dataset:
    """Insert the dataset (dates relative to `today`) and aggregate every touched date."""
    rng = random.Random(20261128)
    dataset = Dataset(today=today, groups=GROUPS)
    for number in range(conversations):
        day = today - timedelta(days=rng.randint(0, 70))
        status = rng.choices(("analyzed", "skipped", "failed"), weights=(10, 1, 1))[0]
        dataset.analyses.append(analysis_row(rng, number, day, rng.choice(USERS), status))
    hostile = dataset.analysed[0]
    hostile["conversation_id"] = HOSTILE_CONVERSATION_ID
    hostile["primary_model"] = HOSTILE_MODEL
    hostile["models_used"] = [HOSTILE_MODEL, "-minus"]
    hostile["tags"] = [HOSTILE_TAG, "q4_report"]
    hostile["analysis_date"] = today - timedelta(days=1)
    hostile["first_message_at"] = datetime.combine(hostile["analysis_date"], time(9), ZONE)
    hostile["last_message_at"] = hostile["first_message_at"] + timedelta(
        minutes=hostile["total_duration_minutes"]
    )
    insert(engine, dataset.analyses, GROUPS)
    return dataset


def insert(engine: Engine, analyses: list[dict[str, Any]], groups: dict[str, tuple[str, list[str]]]) -> None:
    """Insert groups, members and analyses, then aggregate every date with an analysed row."""
    columns = sorted({key for row in analyses for key in row})
    with engine.begin() as connection:
        for group_id, (name, members) in groups.items():
            connection.execute(
                sa.text("INSERT INTO user_groups (group_id, name, member_count) VALUES (:g, :n, :c)"),
                {"g": group_id, "n": name, "c": len(members)},
            )
            connection.execute(
                sa.text("INSERT INTO group_members (group_id, user_id_hash) VALUES (:g, :u)"),
                [{"g": group_id, "u": member} for member in members],
            )
        connection.execute(
            sa.text(
                f"INSERT INTO conversation_analysis ({', '.join(columns)}) "
                f"VALUES ({', '.join(':' + column for column in columns)})"
            ),
            [{column: row.get(column) for column in columns} for row in analyses],
        )
        recompute_dates(connection, {row["analysis_date"] for row in analyses if row["status"] == "analyzed"})
