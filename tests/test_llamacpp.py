"""The LLM estimator against a real OpenAI-compatible server: llama.cpp serving Gemma 3 270M.

The real `openai` SDK over loopback HTTP, end to end: schema-constrained answers, answers our
validation rejects, a client timeout, and a server that restarts in the middle of a run. This
proves the plumbing, not the quality: a 270M model cannot judge working time, and the run's
answers end up flagged as the estimator not knowing.
"""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions import aggregator, analyzer, dispatcher
from functions.api.app import API_PREFIX, create_app
from functions.api.services import ApiServices
from functions.pipeline import run_id_of
from infra.local_queues import InlineQueue
from infra.openwebui_fixture import OpenWebUIFixture, realistic_chat
from shared.config import Settings, get_settings, reset_settings_cache
from shared.conversation import TranscriptDigest
from shared.db import reset_engines
from shared.digest import build_digest
from shared.errors import EstimationFailed, ReasonCode, RetryableError
from shared.estimators.base import TASK_CATEGORIES
from shared.estimators.llm import LlmEstimator
from shared.estimators.prompt import ANSWER_SCHEMA
from shared.estimators.validation import MAX_ESTIMATE_MINUTES
from shared.openwebui import reader
from tests.llamacpp import MODEL_ALIAS, GrammarProxy, LlamaCppServer, llamacpp_fixture  # noqa: F401 - fixture
from tests.pipeline_support import BUDAPEST, assert_books_balance, build_dataset, rows

pytestmark = pytest.mark.slow

DAY = date(2026, 11, 26)
AUTH = {"Authorization": "Bearer local-dev-password"}
DIGEST_BUDGET = 300  # tokens: keeps each prompt short enough for a 2-core machine
LLM_TIMEOUT_SECONDS = 60.0


def _settings(base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "openai_base_url": base_url,
        "openai_model": MODEL_ALIAS,
        "llm_timeout_seconds": LLM_TIMEOUT_SECONDS,
        "llm_rpm": 6000,
        "digest_token_budget": DIGEST_BUDGET,
    }
    return Settings(**(values | overrides))


def _digests(tmp_path: Path, count: int) -> list[TranscriptDigest]:
    fixture = OpenWebUIFixture.sqlite(tmp_path / "webui.db")
    user = fixture.add_user(name="Dana Example", email="dana@corp.example")
    rng = random.Random(11)
    ids = [
        fixture.add_chat(user, realistic_chat(rng, datetime(2026, 11, 26, 9, tzinfo=BUDAPEST)))
        for _ in range(count)
    ]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'webui.db'}")
    try:
        return [
            build_digest(
                reader.load_conversation(engine, cid), DIGEST_BUDGET, known_names=[], regions=("HU",)
            )
            for cid in ids
        ]
    finally:
        engine.dispose()


# A grammar the real model must follow: well-formed JSON whose numbers are out of order.
_OUT_OF_ORDER = (
    'root ::= "{\\"low\\": 90, \\"most_likely\\": 30, \\"high\\": 10, \\"confidence\\": 50, '
    '\\"task_category\\": \\"coding\\", \\"task_description\\": \\"" [a-z]{1,12} '
    '"\\", \\"reasoning\\": \\"none\\"}"'
)


def test_an_answer_the_validation_rejects_is_corrected_once_then_recorded_as_invalid(
    llamacpp: LlamaCppServer, tmp_path: Path
) -> None:
    """The real model, forced by a grammar into out-of-order numbers: a corrective request, then
    `invalid_output`; no number is repaired or invented."""
    (digest,) = _digests(tmp_path, 1)
    with GrammarProxy(llamacpp.base_url, _OUT_OF_ORDER) as proxy:
        estimator = LlmEstimator(_settings(proxy.base_url))
        with pytest.raises(EstimationFailed) as failed:
            estimator.estimate(digest)
    assert failed.value.reason_code is ReasonCode.INVALID_OUTPUT
    assert "low ≤ most_likely ≤ high" in str(failed.value)
    assert len(proxy.requests) == 2  # the answer, then one corrective request
    correction = proxy.requests[1]["messages"]
    assert json.loads(correction[-2]["content"])["low"] == 90  # the model's own answer, sent back
    assert "low ≤ most_likely ≤ high" in correction[-1]["content"]
    assert failed.value.usage is not None and failed.value.usage.requests == 2
    assert failed.value.usage.prompt_tokens > 0  # the real server's token counts


class _RestartMidRun:
    """Restarts the server once the run has its first outcome, while the next estimate is underway."""

    def __init__(self, server: LlamaCppServer, engine: Engine) -> None:
        self.server = server
        self.engine = engine
        self.restarted = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with self.engine.connect() as connection:
                if connection.execute(sa.text("SELECT count(*) FROM run_outcomes")).scalar_one():
                    break
            time.sleep(0.05)
        self.server.stop()
        time.sleep(1.0)  # down long enough for the next request to find nobody listening
        self.server.start()
        self.restarted.set()

    def __enter__(self) -> _RestartMidRun:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.join(timeout=180)


def test_the_gemma_run_end_to_end_through_a_restart(
    llamacpp: LlamaCppServer,
    tmp_path: Path,
    analytics_url: str,
    analytics_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A nightly run of a few conversations against llama.cpp; the server restarts mid-run. Every
    conversation ends analysed with the model's own (schema-constrained) numbers, or failed with a
    recorded reason; a request that met the stopped server was retried, never answered for it."""
    data = build_dataset(tmp_path / "webui.db", days=[DAY], chats_per_day=3, untimed_per_day=0)
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", data.url)
    monkeypatch.setenv("OPENAI_BASE_URL", llamacpp.base_url)
    monkeypatch.setenv("ANALYTICS_OPENAI_MODEL", MODEL_ALIAS)
    monkeypatch.setenv("ANALYTICS_LLM_TIMEOUT_SECONDS", str(LLM_TIMEOUT_SECONDS))
    monkeypatch.setenv("ANALYTICS_LLM_RPM", "6000")
    monkeypatch.setenv("ANALYTICS_DIGEST_TOKEN_BUDGET", str(DIGEST_BUDGET))
    reset_settings_cache()
    reset_engines()
    settings = get_settings()
    transient: list[str] = []

    def run_analyze(payload: dict[str, Any], attempt: int) -> None:
        try:
            analyzer.analyze(payload, attempt=attempt, settings=settings, queue=queue)
        except RetryableError as error:
            transient.append(str(error))
            raise

    def run_aggregate(payload: dict[str, Any], attempt: int) -> None:
        aggregator.aggregate_run(run_id_of(payload))

    queue = InlineQueue(
        {"analyze": run_analyze, "aggregate": run_aggregate}, settings=settings, concurrency=1
    )
    starts = llamacpp.starts
    with _RestartMidRun(llamacpp, analytics_engine) as restart:
        result = dispatcher.dispatch(target_date=DAY, settings=settings, queue=queue)
    assert restart.restarted.is_set() and llamacpp.starts == starts + 1
    assert any("cannot reach the LLM server" in error for error in transient), transient
    assert queue.dropped == []

    run = rows(analytics_engine, "SELECT * FROM processing_log WHERE id = :r", r=result.run_id)[0]
    assert run["status"] == "completed"
    assert run["conversations_expected"] == len(data.chat_ids)
    assert run["conversations_processed"] + run["conversations_failed"] == len(data.chat_ids)
    assert run["conversations_processed"] >= 1
    analyses = rows(analytics_engine, "SELECT * FROM conversation_analysis")
    for analysis in analyses:
        if analysis["status"] == "failed":  # the model's fault, or the server's: said so
            assert analysis["skip_reason"] in {ReasonCode.INVALID_OUTPUT, ReasonCode.TRANSIENT_ERROR}
            continue
        raw = analysis["llm_response"]
        assert set(raw) == set(ANSWER_SCHEMA["required"])  # schema-constrained: exactly its fields
        assert raw["task_category"] in TASK_CATEGORIES
        assert 1 <= raw["low"] <= raw["most_likely"] <= raw["high"] <= MAX_ESTIMATE_MINUTES
        stored = (
            analysis["manual_time_low"],
            analysis["manual_time_most_likely"],
            analysis["manual_time_high"],
        )
        assert stored == (raw["low"], raw["most_likely"], raw["high"])  # the model's numbers, as answered
        assert analysis["confidence_level"] == raw["confidence"]
        assert analysis["estimator"] == "llm" and analysis["estimator_model"] == MODEL_ALIAS
        assert analysis["llm_requests"] >= 1 and analysis["prompt_tokens"] > 0
        assert analysis["estimate_flag"] == _expected_flag(raw, settings), raw
    assert_books_balance(analytics_engine)

    # the 270M model does not know, and says so in its numbers: the run ends flagged, and says it
    flagged = [a for a in analyses if a["estimate_flag"]]
    assert flagged, [a["llm_response"] for a in analyses]
    assert run["estimates_flagged"] == len(flagged)
    client = create_app(services=ApiServices(settings)).test_client()
    health = client.get(API_PREFIX + "/health", headers=AUTH).get_json()
    assert health["last_run"]["run_id"] == str(result.run_id)
    assert (
        f"{len(flagged)} of {run['conversations_processed']} estimates flagged"
        in health["last_run"]["flag_note"]
    )
    page = client.get("/", query_string={"start_date": DAY, "end_date": DAY}, headers=AUTH).get_data(
        as_text=True
    )
    assert f"Not in these figures: {len(flagged)} flagged estimate" in page
    assert health["last_run"]["flag_note"] in page  # the status line and the calibration panel


def _expected_flag(answer: dict[str, Any], settings: Settings) -> str | None:
    """The per-answer flag rules, restated (the same-answer rule needs 10 conversations)."""
    if answer["confidence"] < settings.flag_min_confidence * 100:
        return "low_confidence"
    if answer["high"] > settings.flag_max_band_ratio * answer["low"]:
        return "wide_band"
    return None


def test_a_client_timeout_is_transient(llamacpp: LlamaCppServer, tmp_path: Path) -> None:
    (digest,) = _digests(tmp_path, 1)
    estimator = LlmEstimator(_settings(llamacpp.base_url, llm_timeout_seconds=0.05))
    started = time.monotonic()
    with pytest.raises(RetryableError, match="timed out"):
        estimator.estimate(digest)
    assert time.monotonic() - started < 5
