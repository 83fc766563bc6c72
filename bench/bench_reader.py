"""How fast are Open WebUI conversations read, compared with the least any reader must do?

Starts an embedded PostgreSQL, bulk-loads `--count` generated Open WebUI chats
(4–30 messages each, frontend-shaped documents, COPY), then streams them all
through the same read-only engine the product uses and reports conversations
per second for:

* floor: ``SELECT CAST(chat AS TEXT) FROM chat`` + ``json.loads`` of every row;
* read + parse: `iter_conversations` (server-side cursor, batches) → `Conversation`;
* + timing: the above plus `measure`;
* + digest: the above plus `build_digest` (redaction included);
* by ids: `iter_conversations` with the ids in `IN (...)` batches, plus `measure`.

Each path runs `--repeat` times after one warm-up read; the fastest run is reported.

    python bench/bench_reader.py                 # 100 000 chats (several minutes to load)
    python bench/bench_reader.py --count 20000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import sqlalchemy as sa  # noqa: E402

from infra.embedded_pg import EmbeddedPostgres  # noqa: E402
from infra.openwebui_fixture import BulkChat, OpenWebUIFixture, realistic_chat  # noqa: E402
from shared.conversation import Conversation  # noqa: E402
from shared.db import make_engine  # noqa: E402
from shared.digest import build_digest  # noqa: E402
from shared.errors import SkipConversation  # noqa: E402
from shared.openwebui.reader import iter_conversations  # noqa: E402
from shared.timing import measure  # noqa: E402

IDLE_THRESHOLD_MINUTES = 10
DIGEST_TOKEN_BUDGET = 1500


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000, help="chats to generate (default 100 000)")
    parser.add_argument("--batch-size", type=int, default=1000, help="rows per fetch / IN batch")
    parser.add_argument("--users", type=int, default=200, help="distinct chat owners")
    parser.add_argument("--seed", type=int, default=20260301)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each path; the fastest is reported")
    return parser.parse_args()


def _generate(count: int, users: list[str], seed: int, now: datetime) -> Iterator[BulkChat]:
    rng = random.Random(seed)
    first = now - timedelta(days=300)
    spacing = timedelta(days=299) / max(count, 1)
    for index in range(count):
        chat = realistic_chat(rng, first + spacing * index)
        yield BulkChat(
            id=chat.chat_id,
            user_id=rng.choice(users),
            document=chat.document(),
            updated_at=chat.last_timestamp,
            created_at=int(chat.first_clock),
            title=chat.title,
        )


def _timed(label: str, run: Callable[[], int], repeat: int) -> tuple[str, int, float]:
    best = float("inf")
    count = 0
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - started)
    print(f"  {label}: {count / best:.0f} conv/s", flush=True)
    return label, count, best


def main() -> int:
    arguments = _arguments()
    now = datetime.now(UTC)
    with EmbeddedPostgres() as server:
        fixture = OpenWebUIFixture.postgres(server.url())
        users = [fixture.add_user(name=f"User {index}") for index in range(arguments.users)]
        started = time.perf_counter()
        loaded = fixture.bulk_add_chats(
            _generate(arguments.count, users, arguments.seed, now), batch_size=2000
        )
        with fixture.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE chat")
            size = connection.exec_driver_sql("SELECT pg_total_relation_size('chat')").scalar_one()
        print(
            f"loaded {loaded} chats ({size / 1e6:.0f} MB with indexes) in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        fixture.dispose()

        engine = make_engine(server.url(), read_only=True)
        try:
            with engine.connect() as connection:
                ids = list(
                    connection.execute(sa.text("SELECT id FROM chat ORDER BY updated_at, id")).scalars()
                )
            batch, repeat = arguments.batch_size, arguments.repeat
            _floor(engine, batch)  # warm-up: the first read after COPY sets hint bits
            results = [
                _timed("floor: SELECT chat + json.loads", lambda: _floor(engine, batch), repeat),
                _timed("read + parse", lambda: _ours(engine, batch, now, timing=False), repeat),
                _timed("read + parse + timing", lambda: _ours(engine, batch, now), repeat),
                _timed(
                    "read + parse + timing + digest", lambda: _ours(engine, batch, now, digest=True), repeat
                ),
                _timed("by ids (IN batches) + timing", lambda: _ours(engine, batch, now, ids=ids), repeat),
            ]
        finally:
            engine.dispose()

    floor_rate = results[0][1] / results[0][2]
    print(f"\n{'path':<34} {'conversations':>13} {'seconds':>8} {'conv/s':>9} {'vs floor':>9}")
    for label, count, seconds in results:
        rate = count / seconds
        print(f"{label:<34} {count:>13} {seconds:>8.2f} {rate:>9.0f} {floor_rate / rate:>8.2f}x")
    return 0


def _floor(engine: sa.engine.Engine, batch_size: int) -> int:
    count = 0
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=batch_size).execute(
            sa.text("SELECT CAST(chat AS TEXT) FROM chat")
        )
        for (document,) in result:
            json.loads(document)
            count += 1
    return count


def _ours(
    engine: sa.engine.Engine,
    batch_size: int,
    now: datetime,
    *,
    timing: bool = True,
    digest: bool = False,
    ids: list[str] | None = None,
) -> int:
    count = skipped = 0
    for _chat_id, outcome in iter_conversations(engine, ids, batch_size=batch_size, now=now):
        count += 1
        if not isinstance(outcome, Conversation):
            skipped += 1
            continue
        if timing:
            try:
                measure(outcome.messages, IDLE_THRESHOLD_MINUTES)
            except SkipConversation:
                skipped += 1
        if digest:
            build_digest(outcome, DIGEST_TOKEN_BUDGET)
    if skipped:
        print(f"  ({skipped} skipped)", flush=True)
    return count


if __name__ == "__main__":
    sys.exit(main())
