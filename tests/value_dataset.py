"""A small dataset whose value, cost and return figures are computed by hand below.

Rates: 45 EUR/h by default, Legal 90, Support 30. Three people on `DAY`:
  A, in Legal             → 90/h   conversation c1 (primary gpt-4o)
  B, in Legal and Support → 30/h (the lower of 90 and 30)   c2 (primary llama3.1:8b)
  C, in no group          → 45/h   c3 (primary gpt-4o-mini)

        active low likely high | saved  low high (min) | value saved     low    high
  c1      10    20   40    70  |   30    10   60       | 30/60*90=45     15     90
  c2       5    15   35    65  |   30    10   60       | 30/60*30=15      5     30
  c3      20    20   80   140  |   60     0  120       | 60/60*45=45      0     90
  total                        |  120    20  240       |          105     20    210

AI usage (USD per 1M: gpt-4o 2.50 in / 1.25 cached / 10 out; gpt-4o-mini 0.15 / 0.60):
  c1 gpt-4o       1 000 000 in (200 000 cached), 100 000 out → 0.8×2.5 + 0.2×1.25 + 0.1×10 = 3.25
  c2 llama3.1:8b  5 000 in, 1 000 out → unpriced (6 000 tokens)
     gpt-4o-mini  2 000 000 in, 500 000 out                   → 2×0.15 + 0.5×0.6     = 0.60
  c3 gpt-4o-mini  1 000 000 in, 0 out                          → 0.15
  total 4.00 USD priced, 6 000 tokens unpriced. Analysis cost: 0.01 + 0.02 + 0 = 0.03 USD.

Return: 2 h saved (1/3 low, 4 high) per 4 USD → 50 h per 100 USD (8.33, 100);
value per USD 105/4 = 26.25 (5, 52.5).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from functions.value import record_usage
from shared.config import Settings
from shared.conversation import ModelUsage

__all__ = ["DAY", "GROUP_RATES", "RATE", "insert_dataset"]

ZONE = ZoneInfo("Europe/Budapest")
DAY = date(2026, 5, 10)
RATE = 45
GROUP_RATES = {"Legal": 90, "Support": 30}
USERS = {"A": "a" * 64, "B": "b" * 64, "C": "c" * 64}
GROUPS = {"grp-legal": ("Legal", ["A", "B"]), "grp-support": ("Support", ["B"])}

CONVERSATIONS: list[dict[str, Any]] = [
    {
        "id": "c1",
        "user": "A",
        "active": 10,
        "low": 20,
        "likely": 40,
        "high": 70,
        "model": "gpt-4o",
        "llm_cost": "0.01",
        "usage": [ModelUsage("gpt-4o", 1, 1_000_000, 100_000, 200_000)],
    },
    {
        "id": "c2",
        "user": "B",
        "active": 5,
        "low": 15,
        "likely": 35,
        "high": 65,
        "model": "llama3.1:8b",
        "llm_cost": "0.02",
        "usage": [
            ModelUsage("llama3.1:8b", 2, 5_000, 1_000, 0, 3.5),
            ModelUsage("gpt-4o-mini", 1, 2_000_000, 500_000, 0),
        ],
    },
    {
        "id": "c3",
        "user": "C",
        "active": 20,
        "low": 20,
        "likely": 80,
        "high": 140,
        "model": "gpt-4o-mini",
        "llm_cost": "0",
        "usage": [ModelUsage("gpt-4o-mini", 1, 1_000_000, 0, 0)],
    },
]


def _row(conversation: dict[str, Any], day: date) -> dict[str, Any]:
    start = datetime.combine(day, time(9), ZONE)
    user = conversation["user"]
    return {
        "conversation_id": conversation["id"],
        "user_id_hash": USERS[user],
        "group_ids": sorted(g for g, (_, members) in GROUPS.items() if user in members),
        "status": "analyzed",
        "analysis_date": day,
        "first_message_at": start,
        "last_message_at": start + timedelta(minutes=conversation["active"]),
        "total_duration_minutes": conversation["active"],
        "active_duration_minutes": conversation["active"],
        "idle_time_minutes": 0,
        "manual_time_low": conversation["low"],
        "manual_time_most_likely": conversation["likely"],
        "manual_time_high": conversation["high"],
        "confidence_level": 50,
        "time_saved_minutes": max(0, conversation["likely"] - conversation["active"]),
        "task_category": "coding",
        "estimator": "llm",
        "estimator_model": "gpt-4o-mini",
        "prompt_version": "test",
        "message_count": 4,
        "primary_model": conversation["model"],
        "models_used": [conversation["model"]],
        "source_updated_at": start,
        "content_fingerprint": conversation["id"].ljust(64, "0"),
        "llm_cost_usd": Decimal(conversation["llm_cost"]),
    }


def insert_dataset(connection: Connection, settings: Settings, day: date = DAY, suffix: str = "") -> None:
    """Groups (once) and the three analysed conversations on `day` with their usage."""
    for group_id, (name, members) in GROUPS.items():
        connection.execute(
            sa.text(
                "INSERT INTO user_groups (group_id, name, member_count) VALUES (:g, :n, :c) "
                "ON CONFLICT DO NOTHING"
            ),
            {"g": group_id, "n": name, "c": len(members)},
        )
    for conversation in CONVERSATIONS:
        row = _row({**conversation, "id": conversation["id"] + suffix}, day)
        columns = ", ".join(row)
        connection.execute(
            sa.text(
                f"INSERT INTO conversation_analysis ({columns}) VALUES ({', '.join(':' + k for k in row)})"
            ),
            row,
        )
        record_usage(connection, row["conversation_id"], conversation["usage"], settings)
