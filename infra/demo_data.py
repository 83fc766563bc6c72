"""The demo Open WebUI database for `make run`: synthetic, clearly labelled, realistic in shape.

A SQLite file with Open WebUI's real tables and JSON shapes: demo users ("Demo User
07", `@demo.invalid` addresses), four groups (one smaller than the default minimum
group size, so the dashboard shows it hidden), and conversations over the last
`days` local days — more on weekdays, spread over working hours, with regenerations,
edits, code, tables, three languages and long breaks. Every chat title starts with
"[demo]". Nothing here is real data.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from infra.openwebui_fixture import OpenWebUIFixture, realistic_chat

__all__ = ["build_demo_database"]

_GROUPS = (("Engineering", 9), ("Finance", 6), ("Marketing", 6), ("Legal", 3))


def build_demo_database(
    path: Path, *, zone: ZoneInfo, days: int = 30, users: int = 24, seed: int = 2026
) -> str:
    """Write the demo database to `path` (replacing it) and describe what it holds."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    fixture = OpenWebUIFixture.sqlite(partial)
    people = [
        fixture.add_user(name=f"Demo User {n:02d}", email=f"demo{n:02d}@demo.invalid")
        for n in range(1, users + 1)
    ]
    fixture.add_user(name="Demo Admin", email="admin@demo.invalid", role="admin")
    offset = 0
    for name, size in _GROUPS:
        fixture.add_group(name, people[offset : offset + size])
        offset += size

    today = datetime.now(zone).date()
    chats = 0
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        for _ in range(_chats_on(day, rng)):
            start = datetime(day.year, day.month, day.day, 8, tzinfo=zone) + timedelta(
                minutes=rng.randint(0, 10 * 60)
            )
            chat = realistic_chat(rng, start)
            fixture.add_chat(
                rng.choice(people), chat, title=f"[demo] {chat.title}", archived=rng.random() < 0.1
            )
            chats += 1
    fixture.dispose()
    partial.replace(path)
    return f"{users} demo users, {len(_GROUPS)} groups, {chats} synthetic chats over {days} days"


def _chats_on(day: date, rng: random.Random) -> int:
    weekend = day.weekday() >= 5
    return rng.randint(2, 6) if weekend else rng.randint(18, 34)
