"""Estimators: the LLM one through the real SDK over real HTTP, the heuristic, the limiter."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from infra.openwebui_fixture import ChatBuilder
from shared.config import DigestMode, Settings
from shared.conversation import DigestFeatures, TranscriptDigest
from shared.digest import build_digest
from shared.errors import EstimationFailed, RetryableError
from shared.estimators import HeuristicEstimator, LlmEstimator, build_estimator
from shared.estimators.base import TASK_CATEGORIES, Estimate
from shared.estimators.heuristic import HEURISTIC_VERSION, detect_category
from shared.estimators.llm import SEED
from shared.estimators.pricing import request_cost_usd
from shared.estimators.prompt import (
    ANSWER_SCHEMA,
    COUNTS_ONLY_SUFFIX,
    PROMPT_VERSION,
    build_messages,
    prompt_version,
)
from shared.estimators.ratelimit import RateLimiter, shared_rate_limiter
from shared.estimators.validation import MAX_ESTIMATE_MINUTES, InvalidAnswerError, parse_answer
from shared.openwebui.document import ChatRecord, parse_conversation
from tests.fake_openai import (  # fake_openai_fixture registers the `fake_openai` fixture
    Behaviour,
    FakeOpenAIServer,
    fake_openai_fixture,  # noqa: F401
    http_error,
    ok,
    rate_limit,
)

DIGEST_TEXT = (
    "[user] Please write a Python function that parses a CSV of invoices.\n[assistant] def parse(...)"
)
PRICES = {"gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.60}}


def make_digest(text: str = DIGEST_TEXT, **features: Any) -> TranscriptDigest:
    code = features.pop("code_lines_by_language", {"python": 12})
    values = {"user_turns": 2, "assistant_turns": 2, "user_words": 40, "assistant_words": 300, **features}
    return TranscriptDigest(
        text=text,
        features=DigestFeatures(code_lines_by_language=MappingProxyType(code), **values),
        approx_tokens=len(text) // 4,
    )


def llm_settings(base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "openai_base_url": base_url,
        "openai_api_key": "test-key",
        "openai_model": "gpt-4o-mini",
        "llm_rpm": 100_000,
        "llm_timeout_seconds": 2.0,
        "llm_prices": PRICES,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def estimator(fake_openai: FakeOpenAIServer) -> LlmEstimator:
    return LlmEstimator(llm_settings(fake_openai.base_url))


def numbers(estimate: Estimate) -> tuple[int, int, int, int]:
    return estimate.low, estimate.most_likely, estimate.high, estimate.confidence


def single_request_cost() -> Decimal:
    # fake server usage: 1200 prompt tokens of which 200 cached, 80 completion tokens
    return (Decimal(1000) * Decimal("0.15") + 200 * Decimal("0.075") + 80 * Decimal("0.60")) / 1_000_000


# --- LLM estimator: answers ---------------------------------------------------------------


def test_spec_example_numbers_come_back_exactly(
    estimator: LlmEstimator, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.enqueue(ok(low=30, most_likely=60, high=120, confidence=85, reasoning="test"))

    estimate = estimator.estimate(make_digest())

    assert numbers(estimate) == (30, 60, 120, 85)
    assert estimate.estimator == "llm"
    assert estimate.model == "gpt-4o-mini"
    assert estimate.prompt_version == PROMPT_VERSION
    assert estimate.task_category == "coding"
    assert estimate.raw_response == json.loads(json.dumps(estimate.raw_response))
    assert estimate.raw_response["most_likely"] == 60


def test_request_carries_model_temperature_seed_schema_and_digest(
    estimator: LlmEstimator, fake_openai: FakeOpenAIServer
) -> None:
    estimator.estimate(make_digest())

    [body] = fake_openai.requests
    assert body["model"] == "gpt-4o-mini"
    assert body["temperature"] == 0
    assert body["seed"] == SEED
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["response_format"]["json_schema"]["schema"] == ANSWER_SCHEMA
    assert [message["role"] for message in body["messages"]] == ["system", "user"]
    assert DIGEST_TEXT in body["messages"][1]["content"]
    assert "code lines: 12 (python 12)" in body["messages"][1]["content"]


def test_usage_and_cost_of_one_request(estimator: LlmEstimator) -> None:
    usage = estimator.estimate(make_digest()).usage

    assert (usage.requests, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (
        1,
        1200,
        80,
        200,
    )
    assert usage.cost_usd == single_request_cost()


# --- LLM estimator: transient failures -------------------------------------------------------


def test_rate_limit_is_retryable_with_retry_after_from_header(
    estimator: LlmEstimator, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.enqueue(rate_limit(retry_after="7"))

    with pytest.raises(RetryableError) as caught:
        estimator.estimate(make_digest())

    assert caught.value.retry_after_seconds == 7.0
    assert len(fake_openai.requests) == 1  # the SDK does not retry on its own


def test_rate_limit_retry_after_as_http_date(estimator: LlmEstimator, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue(
        rate_limit(retry_after=format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True))
    )

    with pytest.raises(RetryableError) as caught:
        estimator.estimate(make_digest())

    assert caught.value.retry_after_seconds is not None
    assert 25 <= caught.value.retry_after_seconds <= 31


def test_server_error_is_retryable_and_not_retried_by_the_sdk(
    estimator: LlmEstimator, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.enqueue("server_error")

    with pytest.raises(RetryableError, match="500"):
        estimator.estimate(make_digest())

    assert len(fake_openai.requests) == 1


def test_hang_past_the_timeout_is_retryable(fake_openai: FakeOpenAIServer) -> None:
    estimator = LlmEstimator(llm_settings(fake_openai.base_url, llm_timeout_seconds=0.5))
    fake_openai.enqueue("hang")

    started = time.monotonic()
    with pytest.raises(RetryableError, match="timed out"):
        estimator.estimate(make_digest())

    assert time.monotonic() - started < 3


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    estimator = LlmEstimator(llm_settings(f"http://127.0.0.1:{closed_port}/v1"))

    with pytest.raises(RetryableError, match="cannot reach"):
        estimator.estimate(make_digest())


@pytest.mark.parametrize(("status", "hint"), [(401, "OPENAI_API_KEY"), (403, "permissions"), (404, "MODEL")])
def test_operator_errors_are_retryable_with_a_hint(
    estimator: LlmEstimator, fake_openai: FakeOpenAIServer, status: int, hint: str
) -> None:
    fake_openai.enqueue(http_error(status, "nope"))

    with pytest.raises(RetryableError, match=hint):
        estimator.estimate(make_digest())


def test_input_the_server_will_never_accept_fails_permanently(
    estimator: LlmEstimator, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.enqueue(http_error(400, "too long", code="context_length_exceeded", param="messages"))

    with pytest.raises(EstimationFailed) as caught:
        estimator.estimate(make_digest())

    assert caught.value.reason_code == "input_rejected"


# --- LLM estimator: refusals and invalid output ------------------------------------------------


@pytest.mark.parametrize("kind", ["refusal", "content_filter"])
def test_refusal_and_content_filter_fail_without_retry(
    estimator: LlmEstimator, fake_openai: FakeOpenAIServer, kind: str
) -> None:
    fake_openai.enqueue(kind)

    with pytest.raises(EstimationFailed) as caught:
        estimator.estimate(make_digest())

    assert caught.value.reason_code == {"refusal": "refused", "content_filter": "content_filter"}[kind]
    assert len(fake_openai.requests) == 1
    assert caught.value.usage.requests == 1


@pytest.mark.parametrize(
    ("first", "problem"),
    [
        ("malformed", "not valid JSON"),
        ("wrong_order", "low ≤ most_likely ≤ high"),
        ("truncated", "cut off"),
    ],
)
def test_one_corrective_retry_then_a_valid_estimate(
    estimator: LlmEstimator, fake_openai: FakeOpenAIServer, first: str, problem: str
) -> None:
    fake_openai.enqueue(first, ok(low=10, most_likely=20, high=45, confidence=70))

    estimate = estimator.estimate(make_digest())

    assert numbers(estimate) == (10, 20, 45, 70)
    first_body, second_body = fake_openai.requests
    correction = second_body["messages"][-1]
    assert correction["role"] == "user"
    assert problem in correction["content"]
    assert second_body["messages"][: len(first_body["messages"])] == first_body["messages"]
    assert estimate.usage.requests == 2
    assert (estimate.usage.prompt_tokens, estimate.usage.completion_tokens) == (2400, 160)
    assert estimate.usage.cached_tokens == 400
    assert estimate.usage.cost_usd == 2 * single_request_cost()


@pytest.mark.parametrize(
    "pair", [("malformed", "malformed"), ("wrong_order", "malformed"), ("truncated", "wrong_order")]
)
def test_invalid_twice_fails_with_invalid_output(
    estimator: LlmEstimator, fake_openai: FakeOpenAIServer, pair: tuple[str, str]
) -> None:
    fake_openai.enqueue(*pair)

    with pytest.raises(EstimationFailed) as caught:
        estimator.estimate(make_digest())

    assert caught.value.reason_code == "invalid_output"
    assert len(fake_openai.requests) == 2
    assert caught.value.usage.requests == 2
    assert caught.value.usage.cost_usd == 2 * single_request_cost()


@pytest.mark.parametrize(
    "answer",
    [
        {"low": 30.5},
        {"low": "30"},
        {"confidence": True},
        {"low": 0},
        {"high": MAX_ESTIMATE_MINUTES + 1},
        {"confidence": 101},
        {"task_category": "cooking"},
        {"task_description": ""},
    ],
)
def test_out_of_range_answers_are_corrected_not_used(
    estimator: LlmEstimator, fake_openai: FakeOpenAIServer, answer: dict[str, Any]
) -> None:
    fake_openai.enqueue(ok(**answer), ok(low=5, most_likely=8, high=13, confidence=40))

    estimate = estimator.estimate(make_digest())

    assert numbers(estimate) == (5, 8, 13, 40)
    assert len(fake_openai.requests) == 2


def test_missing_fields_are_all_named_in_the_correction(
    estimator: LlmEstimator, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.enqueue(Behaviour("ok", content='{"low": 3}'), "ok")

    estimator.estimate(make_digest())

    correction = fake_openai.requests[1]["messages"][-1]["content"]
    for name in ("most_likely", "high", "confidence", "task_category", "task_description", "reasoning"):
        assert f"{name} is missing" in correction


def test_seeded_chaos_never_yields_numbers_the_server_did_not_send(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.default = ok(low=7, most_likely=11, high=19, confidence=55)
    fake_openai.mix = {
        "rate_limit": 0.2,
        "server_error": 0.05,
        "malformed": 0.1,
        "wrong_order": 0.1,
        "refusal": 0.05,
    }
    estimator = LlmEstimator(llm_settings(fake_openai.base_url))

    outcomes = {"estimate": 0, "retryable": 0, "failed": 0}
    for _ in range(60):
        try:
            estimate = estimator.estimate(make_digest())
        except RetryableError:
            outcomes["retryable"] += 1
        except EstimationFailed:
            outcomes["failed"] += 1
        else:
            outcomes["estimate"] += 1
            assert numbers(estimate) == (7, 11, 19, 55)

    assert all(count > 0 for count in outcomes.values()), outcomes


def test_seeded_mix_is_reproducible() -> None:
    def served_kinds() -> list[str]:
        mix = {"rate_limit": 0.3, "server_error": 0.2}
        with FakeOpenAIServer(mix=mix, seed=42) as server:
            estimator = LlmEstimator(llm_settings(server.base_url))
            for _ in range(20):
                with contextlib.suppress(RetryableError):
                    estimator.estimate(make_digest())
            return server.served

    assert served_kinds() == served_kinds()


# --- LLM estimator: adapting to the server -----------------------------------------------------


def test_server_without_json_schema_gets_json_object_and_is_remembered(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.default = "no_json_schema"
    estimator = LlmEstimator(llm_settings(fake_openai.base_url))

    first = estimator.estimate(make_digest())
    second = estimator.estimate(make_digest())

    assert numbers(first) == numbers(second) == (30, 60, 120, 85)
    formats = [body["response_format"]["type"] for body in fake_openai.requests]
    assert formats == ["json_schema", "json_object", "json_object"]
    assert estimator.response_format_mode == "json_object"
    assert first.usage.requests == 2 and second.usage.requests == 1


def test_server_rejecting_temperature_gets_requests_without_it(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.default = "no_temperature"
    estimator = LlmEstimator(llm_settings(fake_openai.base_url))

    estimator.estimate(make_digest())
    estimator.estimate(make_digest())

    assert ["temperature" in body for body in fake_openai.requests] == [True, False, False]


def test_every_request_waits_for_the_rate_limiter(fake_openai: FakeOpenAIServer) -> None:
    class CountingLimiter(RateLimiter):
        acquisitions = 0

        def acquire(self, timeout: float | None = None) -> bool:
            CountingLimiter.acquisitions += 1
            return super().acquire(timeout)

    limiter = CountingLimiter(100_000)
    estimator = LlmEstimator(llm_settings(fake_openai.base_url), rate_limiter=limiter)
    fake_openai.enqueue("malformed", "ok")

    estimator.estimate(make_digest())

    assert CountingLimiter.acquisitions == len(fake_openai.requests) == 2


def test_estimators_with_the_same_rpm_share_one_limiter(fake_openai: FakeOpenAIServer) -> None:
    first = LlmEstimator(llm_settings(fake_openai.base_url, llm_rpm=1234))
    second = LlmEstimator(llm_settings(fake_openai.base_url, llm_rpm=1234))
    other = LlmEstimator(llm_settings(fake_openai.base_url, llm_rpm=4321))

    assert first.rate_limiter is second.rate_limiter is shared_rate_limiter(1234)
    assert other.rate_limiter is not first.rate_limiter


# --- validation and prompt ------------------------------------------------------------------


def answer_json(**changes: Any) -> str:
    answer = {
        "low": 30,
        "most_likely": 60,
        "high": 120,
        "confidence": 85,
        "task_category": "coding",
        "task_description": "Wrote a parser",
        "reasoning": "test",
    }
    answer.update(changes)
    return json.dumps(answer)


def test_parse_accepts_whole_floats_fences_and_tidies_text() -> None:
    long_line = "x" * 500
    content = "```json\n" + answer_json(low=30.0, task_category=" Coding ", reasoning=long_line) + "\n```"

    answer, raw = parse_answer(content)

    assert (answer.low, answer.task_category) == (30, "coding")
    assert isinstance(answer.low, int)
    assert len(answer.reasoning) == 400 and answer.reasoning.endswith("…")
    assert raw["low"] == 30.0


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "empty"),
        ("[1, 2]", "JSON object"),
        ('{"low": NaN}', "not valid JSON"),
        (answer_json(low=60.5), "low"),
        (answer_json(low="60"), "low"),
        (answer_json(high=False), "high"),
        (answer_json(confidence=-1), "confidence"),
        (answer_json(high=MAX_ESTIMATE_MINUTES + 1), "high"),
        (answer_json(low=61), "low ≤ most_likely ≤ high"),
        (answer_json(task_category="cooking"), "task_category"),
    ],
)
def test_parse_rejects_with_a_clear_problem(content: str, problem: str) -> None:
    with pytest.raises(InvalidAnswerError) as caught:
        parse_answer(content)

    assert problem in str(caught.value)


def test_parse_lists_every_problem_at_once() -> None:
    with pytest.raises(InvalidAnswerError) as caught:
        parse_answer(answer_json(low="a", high=0.5, confidence=500))

    assert len(caught.value.problems) == 3


_values = st.one_of(
    st.integers(-10, 6000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
)


@hypothesis_settings(max_examples=300)
@given(low=_values, most_likely=_values, high=_values, confidence=_values)
def test_parse_never_invents_numbers(low: Any, most_likely: Any, high: Any, confidence: Any) -> None:
    content = answer_json(low=low, most_likely=most_likely, high=high, confidence=confidence)
    try:
        answer, _ = parse_answer(content)
    except InvalidAnswerError:
        return
    sent = json.loads(content)
    assert (answer.low, answer.most_likely, answer.high, answer.confidence) == (
        sent["low"],
        sent["most_likely"],
        sent["high"],
        sent["confidence"],
    )
    assert 1 <= answer.low <= answer.most_likely <= answer.high <= MAX_ESTIMATE_MINUTES
    assert 0 <= answer.confidence <= 100


def test_schema_is_strict_and_lists_the_categories() -> None:
    assert PROMPT_VERSION.count("-") == 2 and "." in PROMPT_VERSION
    assert set(ANSWER_SCHEMA["required"]) == set(ANSWER_SCHEMA["properties"])
    assert ANSWER_SCHEMA["additionalProperties"] is False
    assert ANSWER_SCHEMA["properties"]["task_category"]["enum"] == list(TASK_CATEGORIES)


def test_prompt_mentions_the_rules_and_wraps_the_digest() -> None:
    system, user = build_messages(make_digest())

    assert "WITHOUT any AI" in system["content"]
    assert "low <= most_likely <= high" in system["content"]
    assert "verification" in system["content"]
    assert f"<<<\n{DIGEST_TEXT}\n>>>" in user["content"]


# --- pricing -----------------------------------------------------------------------------------


def test_cached_tokens_are_billed_at_the_cached_price() -> None:
    cost = request_cost_usd(
        "gpt-4o-mini", PRICES, prompt_tokens=1_000_000, completion_tokens=0, cached_tokens=400_000
    )

    assert cost == Decimal("0.6") * Decimal("0.15") + Decimal("0.4") * Decimal("0.075")


def test_dated_model_names_use_their_base_price() -> None:
    cost = request_cost_usd("gpt-4o-mini-2024-07-18", PRICES, prompt_tokens=0, completion_tokens=1_000_000)

    assert cost == Decimal("0.60")


def test_unknown_model_is_unpriced_not_free_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="shared.estimators.pricing"):
        costs = [
            request_cost_usd("mystery-model-x", PRICES, prompt_tokens=10, completion_tokens=10)
            for _ in range(3)
        ]

    assert costs == [None] * 3
    assert len([record for record in caplog.records if "mystery-model-x" in record.getMessage()]) == 1


# --- heuristic ---------------------------------------------------------------------------------


def test_heuristic_is_deterministic_labelled_and_ordered() -> None:
    digest = make_digest()

    first = HeuristicEstimator().estimate(digest)
    second = HeuristicEstimator().estimate(digest)

    assert first == second
    assert (first.estimator, first.model, first.prompt_version) == ("heuristic", None, HEURISTIC_VERSION)
    assert 1 <= first.low <= first.most_likely <= first.high <= MAX_ESTIMATE_MINUTES
    assert first.confidence == 25
    assert first.task_category == "coding"
    # 2 turns × 2 + 40/200 + 300/40 + 5 × 12^0.7 (28.5) = 40.2 → 40 (heuristic-2's code term)
    assert (first.low, first.most_likely, first.high) == (20, 40, 80)


def test_heuristic_on_an_empty_conversation_is_the_minimum() -> None:
    empty = TranscriptDigest(text="", features=DigestFeatures(), approx_tokens=0)

    estimate = HeuristicEstimator().estimate(empty)

    assert (estimate.low, estimate.most_likely, estimate.high, estimate.task_category) == (1, 1, 2, "other")


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Please translate this letter into English", "translation"),
        ("Fordítsd le angolra ezt a levelet", "translation"),
        ("Explain how does TCP congestion control work, I want to understand it", "learning"),
        ("Write a draft e-mail to the landlord", "writing"),
        ("Analyze this data and compare the trend", "analysis"),
        ("Hello there", "other"),
    ],
)
def test_heuristic_category_from_keywords(text: str, category: str) -> None:
    assert detect_category(text, DigestFeatures()) == category


_counts = st.integers(0, 100_000)


@hypothesis_settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    user_turns=_counts,
    user_words=_counts,
    assistant_words=_counts,
    code_lines=_counts,
    tables=_counts,
    attachments=_counts,
    regenerations=_counts,
    text=st.text(max_size=200),
)
def test_heuristic_is_always_within_bounds_and_ordered(
    user_turns: int,
    user_words: int,
    assistant_words: int,
    code_lines: int,
    tables: int,
    attachments: int,
    regenerations: int,
    text: str,
) -> None:
    features = DigestFeatures(
        user_turns=user_turns,
        user_words=user_words,
        assistant_words=assistant_words,
        code_lines_by_language=MappingProxyType({"python": code_lines}),
        tables=tables,
        attachments=attachments,
        regenerations=regenerations,
    )

    estimate = HeuristicEstimator().estimate(TranscriptDigest(text=text, features=features, approx_tokens=0))

    assert 1 <= estimate.low <= estimate.most_likely <= estimate.high <= MAX_ESTIMATE_MINUTES
    assert estimate.task_category in TASK_CATEGORIES
    assert len(estimate.reasoning) <= 400 and len(estimate.task_description) <= 160


# --- build_estimator -----------------------------------------------------------------------------


def test_build_estimator_is_heuristic_without_key_or_url() -> None:
    settings = Settings(openai_api_key="", openai_base_url="", estimator="auto")

    assert isinstance(build_estimator(settings), HeuristicEstimator)


def test_build_estimator_is_llm_with_a_base_url(fake_openai: FakeOpenAIServer) -> None:
    settings = Settings(
        openai_api_key="", openai_base_url=fake_openai.base_url, estimator="auto", llm_rpm=100_000
    )

    estimator = build_estimator(settings)

    assert isinstance(estimator, LlmEstimator)
    assert estimator.estimate(make_digest()).estimator == "llm"  # keyless local servers work


def test_build_estimator_honours_an_explicit_heuristic_choice() -> None:
    settings = Settings(openai_api_key="sk-real-looking-key", estimator="heuristic")

    assert isinstance(build_estimator(settings), HeuristicEstimator)


# --- rate limiter --------------------------------------------------------------------------------


class FakeClock:
    """Time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def acquisition_times(limiter: RateLimiter, clock: FakeClock, count: int) -> list[float]:
    times = []
    for _ in range(count):
        limiter.acquire()
        times.append(round(clock.now - 1000.0, 9))
    return times


def test_limiter_spaces_requests_evenly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)

    assert acquisition_times(limiter, clock, 4) == [0.0, 1.0, 2.0, 3.0]


def test_limiter_burst_is_bounded_and_not_saved_up() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, burst=3, clock=clock, sleep=clock.sleep)

    assert acquisition_times(limiter, clock, 5) == [0.0, 0.0, 0.0, 1.0, 2.0]
    clock.now += 3600  # an idle hour earns no more than `burst`
    start = clock.now - 1000.0
    assert [t - start for t in acquisition_times(limiter, clock, 4)] == [0.0, 0.0, 0.0, 1.0]


def test_limiter_timeout_gives_up_without_taking_a_slot() -> None:
    clock = FakeClock()
    limiter = RateLimiter(6, clock=clock, sleep=clock.sleep)  # one per 10 s

    assert limiter.acquire() is True
    assert limiter.acquire(timeout=5) is False
    assert clock.now == 1000.0
    assert limiter.acquire(timeout=10) is True
    assert clock.now == 1010.0


def test_limiter_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="rpm"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(60, burst=0)


def test_limiter_holds_across_threads() -> None:
    rpm, threads, window = 6000, 30, 0.05  # one slot per 10 ms
    limiter = RateLimiter(rpm)
    barrier = threading.Barrier(threads + 1)
    times: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        limiter.acquire()
        stamp = time.monotonic()
        with lock:
            times.append(stamp)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    started = time.monotonic()
    barrier.wait()
    for thread in workers:
        thread.join(timeout=10)

    assert len(times) == threads
    slots_in_window = round(window / limiter.interval)
    assert sum(1 for stamp in times if stamp < started + window) <= slots_in_window
    assert max(times) - started >= (threads - 1) * limiter.interval


# --- counts-only digests (ANALYTICS_DIGEST_MODE=counts) ---------------------------------------


def _counts_only_digest(**options: Any) -> TranscriptDigest:
    chat = ChatBuilder(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    chat.turn(
        options.get("ask", "Please translate this letter into German and explain the grammar."),
        options.get("answer", "Sehr geehrte Damen und Herren, ... " * 20),
    )
    document = chat.document()
    record = ChatRecord(id=chat.chat_id, user_id="u", updated_at=chat.last_timestamp, document=document)
    return build_digest(parse_conversation(record), 1500, mode=DigestMode.COUNTS)


def test_prompt_for_a_counts_only_digest_says_what_it_gets() -> None:
    digest = _counts_only_digest()
    system, user = build_messages(digest)
    full_system, _ = build_messages(make_digest())

    assert "no text of the conversation at all" in system["content"]
    assert "lower the confidence" in system["content"]
    assert "no text of the conversation" not in full_system["content"]
    assert "placeholders such as [EMAIL]" in full_system["content"]
    assert user["content"].count("Conversation digest, counts only:\n<<<\nConversation, counts only") == 1
    assert "translate" not in user["content"] and "Damen" not in user["content"]
    assert prompt_version(counts_only=True) == PROMPT_VERSION + COUNTS_ONLY_SUFFIX != prompt_version()


def test_llm_estimator_in_counts_mode_stamps_its_version(fake_openai: FakeOpenAIServer) -> None:
    estimator = LlmEstimator(llm_settings(fake_openai.base_url, digest_mode="counts"))
    fake_openai.enqueue(ok(low=10, most_likely=20, high=40, confidence=30))

    estimate = estimator.estimate(_counts_only_digest())

    assert estimator.prompt_version == estimate.prompt_version == PROMPT_VERSION + COUNTS_ONLY_SUFFIX
    assert "no text of the conversation at all" in str(fake_openai.requests[-1])
    assert LlmEstimator(llm_settings(fake_openai.base_url)).prompt_version == PROMPT_VERSION


def test_heuristic_on_counts_only_guesses_the_category_from_code_alone() -> None:
    prose = _counts_only_digest()
    code = _counts_only_digest(answer="Here:\n```python\nprint(1)\nprint(2)\n```")
    estimator = build_estimator(Settings(digest_mode="counts", estimator="heuristic"))

    assert estimator.prompt_version == HEURISTIC_VERSION + COUNTS_ONLY_SUFFIX
    translated = estimator.estimate(prose)
    assert translated.task_category == "other"  # a translation, but nothing says so: it is a guess
    assert translated.prompt_version == HEURISTIC_VERSION + COUNTS_ONLY_SUFFIX
    assert estimator.estimate(code).task_category == "coding"
    # the volume terms are the same as on the full digest: only the category factor can differ
    full = HeuristicEstimator().estimate(make_digest(text="", **_features_of(prose)))
    assert translated.raw_response == full.raw_response
    assert build_estimator(Settings(estimator="heuristic")).prompt_version == HEURISTIC_VERSION


def _features_of(digest: TranscriptDigest) -> dict[str, Any]:
    features = digest.features
    return {
        "user_turns": features.user_turns,
        "assistant_turns": features.assistant_turns,
        "user_words": features.user_words,
        "assistant_words": features.assistant_words,
        "code_lines_by_language": dict(features.code_lines_by_language),
    }
