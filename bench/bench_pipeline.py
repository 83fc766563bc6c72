"""A full local run against the rate limit: how close does the pipeline get to the bound the RPM sets?

N conversations on one day go through the dispatcher, the local HTTP queue and the
analyzer and aggregator under functions-framework, with the LLM estimator talking
to the fake OpenAI-compatible server at a fixed latency. The analyzer process holds
`--rpm` requests per minute, so no run can be faster than N / rpm minutes: that is
the bound, and the ratio wall time / bound says how much the rest of the pipeline
(reading, redaction, the database, the queue) adds on top.

    python bench/bench_pipeline.py                          # 10 000 conversations at 3 000 RPM
    python bench/bench_pipeline.py --count 2000 --rpm 1200
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from infra.embedded_pg import EmbeddedPostgres  # noqa: E402
from infra.local_stack import LocalStack  # noqa: E402
from infra.openwebui_fixture import BulkChat, OpenWebUIFixture, realistic_chat  # noqa: E402
from shared.db import make_engine  # noqa: E402
from shared.estimators.pricing import describe_cost  # noqa: E402
from shared.migrate import apply_migrations  # noqa: E402
from shared.queue import TASK_SECRET_HEADER  # noqa: E402
from tests.fake_openai import FakeOpenAIServer  # noqa: E402

ZONE = ZoneInfo("Europe/Budapest")
DAY = date(2026, 11, 20)
SECRET = secrets.token_hex(24)  # a fresh shared secret per run


def _source(path: Path, count: int) -> str:
    rng = random.Random(11)
    fixture = OpenWebUIFixture.sqlite(path)
    users = [fixture.add_user(name=f"Bench {i}") for i in range(200)]

    def chats():
        for _ in range(count):
            start = datetime(2026, 11, 20, 7, tzinfo=ZONE) + timedelta(minutes=rng.randint(0, 12 * 60))
            chat = realistic_chat(rng, start)
            yield BulkChat(chat.chat_id, rng.choice(users), chat.document(), updated_at=chat.last_timestamp)

    fixture.bulk_add_chats(chats())
    fixture.dispose()
    return f"sqlite:///{path}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rpm", type=int, default=3000)
    parser.add_argument("--latency", type=float, default=0.2, help="fake LLM latency, seconds")
    parser.add_argument("--concurrency", type=int, default=24, help="parallel deliveries of the local queue")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch, EmbeddedPostgres() as postgres:
        scratch_path = Path(scratch)
        analytics_url = postgres.url()
        apply_migrations(make_engine(analytics_url))
        started = time.perf_counter()
        source_url = _source(scratch_path / "webui.db", arguments.count)
        print(f"built {arguments.count:,} chats in {time.perf_counter() - started:.1f} s")

        with FakeOpenAIServer(latency=arguments.latency) as llm:
            environment = {
                "COGNIFORCE_DATABASE_URL": analytics_url,
                "OPENWEBUI_DATABASE_URL": source_url,
                "OPENAI_BASE_URL": llm.base_url,
                "OPENAI_API_KEY": "sk-bench",
                "ANALYTICS_LLM_RPM": str(arguments.rpm),
                "ANALYTICS_MAX_CONVERSATIONS": str(arguments.count),
                "ANALYTICS_LOCAL_CONCURRENCY": str(arguments.concurrency),
                "ANALYTICS_DB_POOL_SIZE": "8",
                "ANALYTICS_TASK_SECRET": SECRET,
                "THREADS": str(arguments.concurrency + 4),  # gunicorn threads of each function process
            }
            with LocalStack(
                environment, log_dir=scratch_path / "logs", functions=("dispatch", "analyze", "aggregate")
            ) as stack:
                started = time.perf_counter()
                answer = requests.post(
                    stack.urls["dispatch"],
                    json={"date": DAY.isoformat()},
                    headers={TASK_SECRET_HEADER: SECRET},
                    timeout=600,
                ).json()
                dispatched = time.perf_counter() - started
                engine = make_engine(analytics_url)
                query = sa.text("SELECT * FROM processing_log WHERE id = :r")
                while True:
                    with engine.connect() as connection:
                        run = connection.execute(query, {"r": answer["run_id"]}).mappings().one()
                    if run["status"] in ("completed", "stale"):
                        break
                    time.sleep(0.5)
                wall = time.perf_counter() - started

        bound = arguments.count / arguments.rpm * 60
        print(
            f"run {run['status']}: {run['conversations_processed']:,} analysed, {run['conversations_skipped']} skipped, "
            f"{run['conversations_failed']} failed, {run['total_llm_requests']:,} LLM requests ("
            f"{describe_cost(run['total_llm_cost_usd'], run['total_llm_unpriced_tokens'])})"
        )
        print(f"dispatch (select + plan + enqueue {arguments.count:,}): {dispatched:.1f} s")
        print(
            f"wall time {wall:.1f} s   bound set by {arguments.rpm} RPM {bound:.1f} s   ratio {wall / bound:.2f}"
        )


if __name__ == "__main__":
    main()
