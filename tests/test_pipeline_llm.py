"""The pipeline with the LLM estimator: the real openai SDK over HTTP to the fake server.

What left the process (no planted PII, bounded digest), what it cost, and that an
unchanged re-run asks the LLM nothing; refusals and exhausted retries are recorded.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions import dispatcher
from infra.local_queues import inline_queue
from infra.openwebui_fixture import ChatBuilder
from shared.config import get_settings, reset_settings_cache
from shared.db import reset_engines
from tests.fake_openai import FakeOpenAIServer, fake_openai_fixture  # noqa: F401 - fixture
from tests.pipeline_support import BUDAPEST, Dataset, assert_books_balance, build_dataset, rows

DAY = date(2026, 11, 26)
PLANTED = {
    "email": "katalin.nagy@example.hu",
    "phone": "+36 30 123 4567",
    "iban": "HU42117730161111101800000000",
    "card": "4111 1111 1111 1111",
    "key": "sk-proj-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
}


@pytest.fixture
def llm_dataset(
    tmp_path: Path, analytics_url: str, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> Dataset:
    data = build_dataset(tmp_path / "webui.db", days=[DAY], chats_per_day=6, untimed_per_day=0)
    chat = ChatBuilder(datetime(2026, 11, 26, 10, 0, tzinfo=BUDAPEST), chat_id="pii-chat")
    chat.turn(
        f"Write to {PLANTED['email']} (call {PLANTED['phone']}) that invoice to IBAN {PLANTED['iban']} "
        f"was paid by card {PLANTED['card']}; our key is {PLANTED['key']}",
        "Dear Katalin, the invoice has been paid. " * 20,
        think=0,
    )
    chat.turn("Make it more formal", "Tisztelt Nagy Katalin! " * 20)
    data.fixture.add_chat(data.users[0], chat)
    data.chats_by_date[DAY].append("pii-chat")
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", data.url)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-for-the-fake-server")
    monkeypatch.setenv("ANALYTICS_LLM_RPM", "6000")
    monkeypatch.setenv("ANALYTICS_LLM_TIMEOUT_SECONDS", "2")
    reset_settings_cache()
    reset_engines()
    return data


def _run(**options: object) -> dispatcher.DispatchResult:
    settings = get_settings()
    queue = inline_queue(settings, backoff_seconds=0.01)
    return dispatcher.dispatch(target_date=DAY, settings=settings, queue=queue, **options)


def test_what_leaves_for_the_llm_is_redacted_and_bounded(
    llm_dataset: Dataset, fake_openai: FakeOpenAIServer, analytics_engine: Engine
) -> None:
    _run()
    bodies = [str(body) for body in fake_openai.requests]
    assert len(bodies) == len(llm_dataset.chat_ids)
    for body in bodies:
        for value in PLANTED.values():
            assert value not in body
            assert value.replace(" ", "") not in body
    budget_chars = get_settings().digest_token_budget * 4
    for body in fake_openai.requests:
        user_message = body["messages"][-1]["content"]
        assert len(user_message) < budget_chars + 3000  # the digest plus the fixed instructions
    stored = rows(
        analytics_engine,
        "SELECT conversation_summary FROM conversation_analysis WHERE conversation_id = 'pii-chat'",
    )
    assert "[EMAIL]" in stored[0]["conversation_summary"]
    for value in PLANTED.values():
        assert value not in stored[0]["conversation_summary"]


def test_estimates_are_the_servers_and_cost_is_counted(
    llm_dataset: Dataset, fake_openai: FakeOpenAIServer, analytics_engine: Engine
) -> None:
    result = _run()
    analyses = rows(analytics_engine, "SELECT * FROM conversation_analysis WHERE status = 'analyzed'")
    assert {
        (a["manual_time_low"], a["manual_time_most_likely"], a["manual_time_high"], a["confidence_level"])
        for a in analyses
    } == {(30, 60, 120, 85)}
    assert {a["estimator"] for a in analyses} == {"llm"}
    run = rows(analytics_engine, "SELECT * FROM processing_log WHERE id = :r", r=result.run_id)[0]
    assert run["status"] == "completed"
    assert run["total_llm_requests"] == len(fake_openai.requests)
    assert run["total_prompt_tokens"] == sum(a["prompt_tokens"] for a in analyses)
    assert run["total_llm_cost_usd"] > 0
    assert_books_balance(analytics_engine)


def test_an_unchanged_rerun_and_a_forced_one(
    llm_dataset: Dataset, fake_openai: FakeOpenAIServer, analytics_engine: Engine
) -> None:
    _run()
    calls = len(fake_openai.requests)
    assert _run().expected == 0
    assert len(fake_openai.requests) == calls  # nothing changed: no LLM call
    forced = _run(force=True)
    assert forced.expected == len(llm_dataset.chat_ids)
    assert len(fake_openai.requests) == 2 * calls


def test_transient_errors_are_retried_and_a_refusal_is_recorded(
    llm_dataset: Dataset, fake_openai: FakeOpenAIServer, analytics_engine: Engine
) -> None:
    fake_openai.default = lambda body, index: "refusal" if "[IBAN]" in str(body) else "ok"
    fake_openai.enqueue("rate_limit", "server_error")
    result = _run()
    run = rows(analytics_engine, "SELECT * FROM processing_log WHERE id = :r", r=result.run_id)[0]
    assert run["status"] == "completed"
    failed = rows(
        analytics_engine,
        "SELECT conversation_id, skip_reason, status FROM conversation_analysis WHERE status = 'failed'",
    )
    assert [(f["conversation_id"], f["skip_reason"]) for f in failed] == [("pii-chat", "refused")]
    assert run["conversations_failed"] == 1
    assert run["conversations_processed"] == len(llm_dataset.chat_ids) - 1
    assert_books_balance(analytics_engine)


def test_exhausted_retries_become_a_recorded_failure(
    llm_dataset: Dataset,
    fake_openai: FakeOpenAIServer,
    analytics_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANALYTICS_TASK_MAX_ATTEMPTS", "2")
    reset_settings_cache()
    fake_openai.default = "server_error"
    result = _run()
    run = rows(analytics_engine, "SELECT * FROM processing_log WHERE id = :r", r=result.run_id)[0]
    assert run["status"] == "completed"
    assert run["conversations_failed"] == len(llm_dataset.chat_ids)
    reasons = {r["reason"] for r in rows(analytics_engine, "SELECT reason FROM run_outcomes")}
    assert reasons == {"transient_error"}
    with analytics_engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM daily_aggregates")).scalar_one() == 0
    # the next run retries transient failures (they are not final)
    fake_openai.default = "ok"
    again = _run()
    assert again.expected == len(llm_dataset.chat_ids)


def test_an_inline_run_outlasts_more_transient_failures_than_the_attempt_limit(
    llm_dataset: Dataset, fake_openai: FakeOpenAIServer, analytics_engine: Engine
) -> None:
    """One conversation meets nothing but 429s and 500s: the inline queue keeps trying until the
    analyzer's last attempt (ANALYTICS_TASK_MAX_ATTEMPTS, the one limit) records the failure, and
    the run completes instead of waiting for the stale limit."""
    limit = get_settings().task_max_attempts
    faults = ("server_error", "rate_limit", "server_error")

    def answer(body: object, index: int) -> str:
        return faults[index % len(faults)] if "[IBAN]" in str(body) else "ok"

    fake_openai.default = answer
    settings = get_settings()
    queue = inline_queue(settings, backoff_seconds=0.001)
    result = dispatcher.dispatch(target_date=DAY, settings=settings, queue=queue)
    assert queue.dropped == []  # no task vanished without an outcome
    asked = [body for body in fake_openai.requests if "[IBAN]" in str(body)]
    assert len(asked) == limit  # more consecutive transient failures than any smaller queue limit
    run = rows(analytics_engine, "SELECT * FROM processing_log WHERE id = :r", r=result.run_id)[0]
    assert run["status"] == "completed"
    assert run["conversations_failed"] == 1
    assert run["conversations_processed"] == len(llm_dataset.chat_ids) - 1
    failed = rows(
        analytics_engine,
        "SELECT o.conversation_id, o.reason FROM run_outcomes o WHERE o.run_id = :r AND o.outcome = 'failed'",
        r=result.run_id,
    )
    assert [(f["conversation_id"], f["reason"]) for f in failed] == [("pii-chat", "transient_error")]
    assert_books_balance(analytics_engine)
