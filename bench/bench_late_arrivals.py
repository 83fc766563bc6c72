"""What does looking for late arrivals cost the nightly run's planning?

The nightly run plans the chats changed in its window and, to miss nothing, also the
chats it has never seen whatever their dates (an import keeps the export's dates):
every chat id of Open WebUI's database, in keyset pages, anti-joined against
`conversation_analysis` in the analytics database. This script builds an Open WebUI
database of `--count` chats spread over 400 days (SQLite by default, as most
installations run, or `--source postgres`), records every one of them as already
analysed in an embedded PostgreSQL except `--late` chats "imported" with old dates,
and times the dispatcher's planning for last night:

* without: the window only (what planning cost before);
* with: the window plus the late-arrival sweep, which must find exactly `--late` chats.

Each is timed `--repeat` times; the fastest is reported, with the ratio and the ids
per second of the sweep.

    python bench/bench_late_arrivals.py                  # 200 000 chats
    python bench/bench_late_arrivals.py --count 1000000  # a million (load takes minutes)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import sqlalchemy as sa  # noqa: E402

from functions import dispatcher  # noqa: E402
from infra.embedded_pg import EmbeddedPostgres  # noqa: E402
from infra.openwebui_fixture import BulkChat, ChatBuilder, OpenWebUIFixture  # noqa: E402
from shared.config import get_settings, reset_settings_cache  # noqa: E402
from shared.db import make_engine  # noqa: E402
from shared.migrate import apply_migrations  # noqa: E402

HISTORY_DAYS = 400


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200_000, help="chats in Open WebUI (default 200 000)")
    parser.add_argument("--late", type=int, default=25, help="of them, never analysed and dated long ago")
    parser.add_argument("--source", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3, help="timings of each path; the fastest is reported")
    return parser.parse_args()


def _chats(count: int, users: list[str], last_night: date) -> Iterator[BulkChat]:
    first = datetime.combine(last_night - timedelta(days=HISTORY_DAYS - 1), datetime.min.time(), UTC)
    spacing = timedelta(days=HISTORY_DAYS) / max(count, 1)
    for index in range(count):
        chat = ChatBuilder(first + spacing * index + timedelta(hours=8))
        chat.turn(f"Question {index} about the report", "An answer with a few sentences. " * 6, think=0)
        chat.turn("And the follow-up?", "A follow-up answer. " * 4)
        yield BulkChat(
            id=str(uuid.uuid4()),
            user_id=users[index % len(users)],
            document=chat.document(),
            updated_at=chat.last_timestamp,
            created_at=int(chat.first_clock),
            title=chat.title,
        )


def _record_as_analysed(analytics: sa.engine.Engine, source: sa.engine.Engine, late: int) -> list[str]:
    """Every chat but `late` of the oldest gets a stored row (status skipped: the cheapest valid row)."""
    with source.connect() as connection:
        chats = connection.execute(sa.text("SELECT id, updated_at FROM chat ORDER BY updated_at")).all()
    missing = [row.id for row in chats[:late]]
    rows = chats[late:]
    with analytics.begin() as connection:
        for offset in range(0, len(rows), 20_000):
            batch = rows[offset : offset + 20_000]
            connection.execute(
                sa.text(
                    "INSERT INTO conversation_analysis (conversation_id, user_id_hash, status, skip_reason, "
                    "source_updated_at, content_fingerprint) SELECT id, repeat('0', 64), 'skipped', 'bench', "
                    "to_timestamp(updated_at), repeat('0', 64) FROM unnest(CAST(:ids AS varchar[]), "
                    "CAST(:times AS bigint[])) AS t(id, updated_at)"
                ),
                {"ids": [row.id for row in batch], "times": [int(row.updated_at) for row in batch]},
            )
    # as autovacuum leaves a table: statistics and the visibility map (index-only probes)
    with sa.create_engine(analytics.url, isolation_level="AUTOCOMMIT").connect() as connection:
        connection.exec_driver_sql("VACUUM ANALYZE conversation_analysis")
    return missing


def _best(label: str, plan: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        result = plan()
        best = min(best, time.perf_counter() - started)
    print(f"  {label}: {best * 1000:.0f} ms", flush=True)
    return best, result


def main() -> int:
    arguments = _arguments()
    with EmbeddedPostgres() as server, tempfile.TemporaryDirectory() as folder:
        analytics_url = server.url()
        analytics = make_engine(analytics_url)
        apply_migrations(analytics)
        if arguments.source == "sqlite":
            fixture = OpenWebUIFixture.sqlite(Path(folder) / "webui.db")
        else:
            with sa.create_engine(server.url(), isolation_level="AUTOCOMMIT").connect() as connection:
                connection.exec_driver_sql('CREATE DATABASE "openwebui"')
            fixture = OpenWebUIFixture.postgres(server.url("openwebui"))
        os.environ["COGNIFORCE_DATABASE_URL"] = analytics_url
        os.environ["OPENWEBUI_DATABASE_URL"] = fixture.url
        reset_settings_cache()
        settings = get_settings()
        last_night = dispatcher.yesterday(settings)
        users = [fixture.add_user(name=f"User {index}") for index in range(200)]
        started = time.perf_counter()
        loaded = fixture.bulk_add_chats(_chats(arguments.count, users, last_night), batch_size=5000)
        if arguments.source == "postgres":  # as autovacuum leaves it: statistics and the visibility map
            with sa.create_engine(fixture.url, isolation_level="AUTOCOMMIT").connect() as connection:
                connection.exec_driver_sql("VACUUM ANALYZE chat")
        print(
            f"loaded {loaded} chats ({arguments.source}) in {time.perf_counter() - started:.1f} s", flush=True
        )
        fixture.dispose()

        source = make_engine(fixture.url, read_only=True)
        started = time.perf_counter()
        missing = _record_as_analysed(analytics, source, arguments.late)
        print(
            f"recorded {loaded - len(missing)} analyses, left {len(missing)} as late arrivals "
            f"in {time.perf_counter() - started:.1f} s",
            flush=True,
        )

        with analytics.begin() as connection:  # the product has swept before: the rest arrived since
            connection.execute(sa.text("INSERT INTO source_baselines (history_chats) VALUES (0)"))

        def plan(late_arrivals: bool) -> Any:
            return dispatcher._select(  # the planning step alone: no run is opened
                settings, source, analytics, last_night, False, late_arrivals=late_arrivals
            )

        plan(True)  # warm-up: caches, reflected schema, hint bits
        print(f"planning the nightly run for {last_night} over {loaded} chats:", flush=True)
        without, plain = _best("without the late-arrival sweep", lambda: plan(False), arguments.repeat)
        with_sweep, swept = _best("with the late-arrival sweep", lambda: plan(True), arguments.repeat)
        source.dispose()
        analytics.dispose()

    found = {candidate.conversation_id for candidate in swept.planned} - {
        candidate.conversation_id for candidate in plain.planned
    }
    if found != set(missing) or swept.late_arrivals != len(missing):
        print(f"WRONG: the sweep found {len(found)} late arrivals, expected {len(missing)}", flush=True)
        return 1
    sweep = with_sweep - without
    print(
        f"\nwindow planned {len(plain.planned)} conversations; the sweep found all {len(missing)} late arrivals"
        f"\nwithout {without * 1000:.0f} ms, with {with_sweep * 1000:.0f} ms: ratio {with_sweep / without:.1f}x; "
        f"the sweep itself {sweep * 1000:.0f} ms = {loaded / max(sweep, 1e-9):,.0f} chat ids/s "
        f"(a million chats: about {1_000_000 / max(loaded / max(sweep, 1e-9), 1e-9):.1f} s)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
