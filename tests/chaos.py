"""The chaos scenario, shared by `tests/test_chaos.py` (small) and `bench/bench_chaos.py` (sized by a flag).

N conversations through the local stack while everything that can go wrong does:
the fake LLM answers 20 % 429 with Retry-After, 5 % 500, 5 % hangs past the client
timeout and 5 % malformed output; the queue delivers every task twice; the analyzer
process is killed in the middle of the run and restarted; the analytics Postgres is
restarted once. The books must still balance exactly.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions import dispatcher
from functions.runs import close_stale_runs
from infra.embedded_pg import EmbeddedPostgres
from infra.local_queues import LocalHttpQueue
from infra.local_stack import LocalStack
from shared.config import Settings
from shared.db import make_engine
from tests.fake_openai import FakeOpenAIServer
from tests.pipeline_support import assert_books_balance, build_dataset, rows

__all__ = ["ChaosReport", "run_chaos"]

DAY = date(2026, 11, 18)
FAULTS = {"rate_limit": 0.20, "server_error": 0.05, "hang": 0.05, "malformed": 0.05}


@dataclass(frozen=True)
class ChaosReport:
    conversations: int
    analysed: int
    skipped: int
    failed: int
    failure_reasons: dict[str, int]
    deliveries: int
    duplicates_absorbed: int
    llm_calls: int
    llm_calls_minimum: int
    analyzer_restarts: int
    postgres_restarts: int
    run_status: str
    seconds: float

    def lines(self) -> list[str]:
        return [
            f"conversations in        {self.conversations}",
            f"analysed                {self.analysed}",
            f"skipped (with reason)   {self.skipped}",
            f"failed (with reason)    {self.failed} {self.failure_reasons}",
            f"deliveries answered 2xx {self.deliveries}",
            f"duplicates absorbed     {self.duplicates_absorbed}",
            f"LLM calls made          {self.llm_calls} (minimum needed {self.llm_calls_minimum}, "
            f"ratio {self.llm_calls / max(1, self.llm_calls_minimum):.2f})",
            f"analyzer killed/restart {self.analyzer_restarts}, Postgres restarts {self.postgres_restarts}",
            f"run                     {self.run_status} in {self.seconds:.1f} s",
        ]


def _finished(engine: Engine, run_id: uuid.UUID) -> int:
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT count(*) FROM run_outcomes WHERE run_id = :r"), {"r": run_id}
        ).scalar_one()


def _wait_until(predicate, timeout: float, step: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except sa.exc.DBAPIError:
            pass  # the database is restarting
        time.sleep(step)
    return False


def run_chaos(
    *, postgres: EmbeddedPostgres, analytics_url: str, workdir: Path, count: int, seed: int = 3
) -> ChaosReport:
    """Run the scenario against a migrated, empty analytics database; assert the books; report."""
    data = build_dataset(workdir / "webui.db", days=[DAY], chats_per_day=count, users=30, untimed_per_day=2)
    with FakeOpenAIServer(mix=FAULTS, seed=seed, hang_seconds=2.5) as llm:
        environment = {
            "COGNIFORCE_DATABASE_URL": analytics_url,
            "OPENWEBUI_DATABASE_URL": data.url,
            "OPENAI_BASE_URL": llm.base_url,
            "OPENAI_API_KEY": "sk-chaos-test",
            "ANALYTICS_LLM_TIMEOUT_SECONDS": "1",
            "ANALYTICS_LLM_RPM": "100000",
            "ANALYTICS_TASK_MAX_ATTEMPTS": "25",
            "ANALYTICS_STALE_RUN_MINUTES": "1",
            "ANALYTICS_MAX_CONVERSATIONS": str(count + 10),
        }
        previous = {name: os.environ.get(name) for name in environment}
        os.environ.update(environment)
        try:
            settings = Settings()
            engine = make_engine(analytics_url)
            stack = LocalStack(environment, log_dir=workdir / "logs", functions=("analyze", "aggregate"))
            with stack:
                queue = LocalHttpQueue(
                    settings, urls=stack.urls, duplicate_deliveries=2, concurrency=8, max_backoff=2.0
                )
                started = time.monotonic()
                result = dispatcher.dispatch(target_date=DAY, settings=settings, queue=queue)
                expected = result.expected

                _wait_until(lambda: _finished(engine, result.run_id) >= expected // 3, 300)
                stack.kill_function("analyze")  # mid-run: in-flight deliveries die with it
                time.sleep(1.0)
                stack.start_function("analyze")

                _wait_until(lambda: _finished(engine, result.run_id) >= 2 * expected // 3, 300)
                postgres.restart()

                assert queue.join(timeout=600), "the queue did not drain"
                done = _wait_until(
                    lambda: (
                        rows(engine, "SELECT status FROM processing_log WHERE id = :r", r=result.run_id)[0][
                            "status"
                        ]
                        == "completed"
                    ),
                    60,
                )
                if not done:  # reported stale, then closed by the next dispatch's stale check
                    time.sleep(61)
                    with engine.begin() as connection:
                        close_stale_runs(connection, settings)
                seconds = time.monotonic() - started
            report = _report(engine, result.run_id, data.chat_ids, queue, llm, seconds)
            assert_books_balance(engine)
            engine.dispose()
            return report
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _report(
    engine: Engine,
    run_id: uuid.UUID,
    chat_ids: list[str],
    queue: LocalHttpQueue,
    llm: FakeOpenAIServer,
    seconds: float,
) -> ChaosReport:
    run = rows(engine, "SELECT * FROM processing_log WHERE id = :r", r=run_id)[0]
    outcomes = rows(
        engine, "SELECT conversation_id, outcome, reason FROM run_outcomes WHERE run_id = :r", r=run_id
    )
    analyses = rows(engine, "SELECT conversation_id, status, skip_reason FROM conversation_analysis")
    # every conversation: exactly one outcome on the run and exactly one stored row, with a reason if not analysed
    assert sorted(o["conversation_id"] for o in outcomes) == sorted(chat_ids)
    assert sorted(a["conversation_id"] for a in analyses) == sorted(chat_ids)
    assert all(a["status"] == "analyzed" or a["skip_reason"] for a in analyses)
    assert run["status"] == "completed", run
    reasons: dict[str, int] = {}
    for outcome in outcomes:
        if outcome["outcome"] == "failed":
            reasons[outcome["reason"]] = reasons.get(outcome["reason"], 0) + 1
    analysed = sum(o["outcome"] == "analyzed" for o in outcomes)
    return ChaosReport(
        conversations=len(chat_ids),
        analysed=analysed,
        skipped=sum(o["outcome"] == "skipped" for o in outcomes),
        failed=sum(o["outcome"] == "failed" for o in outcomes),
        failure_reasons=reasons,
        deliveries=queue.delivered,
        duplicates_absorbed=queue.delivered - len(chat_ids),
        llm_calls=len(llm.requests),
        llm_calls_minimum=analysed + sum(o["reason"] == "invalid_output" for o in outcomes),
        analyzer_restarts=1,
        postgres_restarts=1,
        run_status=run["status"],
        seconds=seconds,
    )
