"""Token usage read from Open WebUI's assistant messages, in every shape it writes, and priced."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from functions.value import usage_rows
from infra.openwebui_fixture import ChatBuilder
from shared.config import DEFAULT_MODEL_PRICES, Settings
from shared.conversation import ModelUsage
from shared.estimators.pricing import model_price, usage_cost_usd
from shared.openwebui.document import ChatRecord, parse_conversation
from shared.openwebui.usage import MAX_TOKENS_PER_MESSAGE, TokenUsage, message_usage

NOW = datetime(2026, 3, 3, tzinfo=UTC)

# What Open WebUI 0.12.4 saves on assistant messages (`usage` after `normalize_usage`).
OPENAI = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 1000, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0},
    "input_tokens": 1200,
    "output_tokens": 300,
}
NORMALISED = {"input_tokens": 50, "output_tokens": 10, "total_tokens": 60}
OLLAMA = {  # convert_ollama_usage_to_openai, then normalize_usage
    "input_tokens": 26,
    "output_tokens": 298,
    "total_tokens": 324,
    "prompt_tokens": 26,
    "completion_tokens": 298,
    "response_token/s": "N/A",
    "prompt_token/s": 83.3,
    "total_duration": 4_883_583_458,
    "load_duration": 1_334_875,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 342_546_000,
    "eval_count": 298,
    "eval_duration": 4_535_599_000,
    "approximate_total": "0h0m4s",
    "completion_tokens_details": {"reasoning_tokens": 0},
}
RAW_OLLAMA = {"prompt_eval_count": 40, "eval_count": 12, "total_duration": 2_000_000_000}
TOOL_CALLS = {  # merge_usage: normalised fields summed over the calls, aliases the latest call's
    "input_tokens": 900,
    "output_tokens": 120,
    "prompt_tokens": 500,
    "completion_tokens": 70,
}
RESPONSES_API = {"input_tokens": 800, "output_tokens": 50, "input_tokens_details": {"cached_tokens": 600}}
ANTHROPIC = {"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 400}
LLAMA_CPP = {"prompt_n": 70, "predicted_n": 30}


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"usage": OPENAI}, TokenUsage(1200, 300, 1000)),
        ({"usage": NORMALISED}, TokenUsage(50, 10, 0)),
        ({"usage": OLLAMA}, TokenUsage(26, 298, 0, 4.883583458)),
        ({"info": {"usage": NORMALISED}}, TokenUsage(50, 10, 0)),
        ({"info": RAW_OLLAMA}, TokenUsage(40, 12, 0, 2.0)),
        ({"usage": TOOL_CALLS}, TokenUsage(900, 120, 0)),
        ({"usage": RESPONSES_API}, TokenUsage(800, 50, 600)),
        ({"usage": ANTHROPIC}, TokenUsage(500, 20, 400)),
        ({"usage": LLAMA_CPP}, TokenUsage(70, 30, 0)),
        ({"usage": {"prompt_tokens": 0, "input_tokens": 0, "completion_tokens": 5}}, TokenUsage(0, 5, 0)),
    ],
    ids=[
        "openai",
        "normalised",
        "ollama",
        "info-usage",
        "info-raw-ollama",
        "tool-calls",
        "responses",
        "anthropic",
        "llama-cpp",
        "zeros",
    ],
)
def test_every_usage_shape_is_read(node: dict[str, Any], expected: TokenUsage) -> None:
    assert message_usage(node) == expected


@pytest.mark.parametrize(
    "usage",
    [
        None,
        "100 tokens",
        [100, 20],
        {},
        {"prompt_tokens": "100", "completion_tokens": "20"},
        {"prompt_tokens": -5, "completion_tokens": -1},
        {"prompt_tokens": True, "completion_tokens": False},
        {"prompt_tokens": float("nan"), "completion_tokens": float("inf")},
        {"prompt_tokens": 10**30, "completion_tokens": MAX_TOKENS_PER_MESSAGE + 1},
        {"prompt_tokens": 1.5, "completion_tokens": [3]},
        {"total_tokens": 500},
    ],
)
def test_hostile_usage_is_ignored(usage: Any) -> None:
    assert message_usage({"usage": usage, "info": usage}) is None


def test_hostile_details_do_not_break_good_counts() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 10**40},
        "total_duration": float("nan"),
    }
    assert message_usage({"usage": usage}) == TokenUsage(100, 7, 0)
    # cached tokens never exceed the prompt they are part of
    assert message_usage({"usage": {**usage, "prompt_tokens_details": {"cached_tokens": 500}}}) == TokenUsage(
        100, 7, 100
    )


def _conversation(chat: ChatBuilder) -> Any:
    record = ChatRecord(id="chat-1", user_id="user-1", updated_at=1_772_000_000, document=chat.document())
    return parse_conversation(record, now=NOW)


def test_kept_answers_and_regenerations_are_counted_per_model_abandoned_edits_are_not() -> None:
    chat = ChatBuilder(start=datetime(2026, 3, 2, 9, 0, tzinfo=UTC), model="gpt-4o")
    first = chat.user("Write a query")
    chat.assistant("SELECT 1", extra={"usage": OPENAI})
    chat.regenerate(first, "SELECT 2", model="llama3.1:8b", extra={"usage": OLLAMA})
    chat.regenerate(first, "SELECT 3", extra={"usage": NORMALISED})  # kept
    second = chat.user("Explain it")
    chat.assistant("It selects", extra={"usage": None, "info": {"usage": LLAMA_CPP}})
    chat.edit(second, "Explain it briefly")  # a new branch; the user then went back
    abandoned = chat.assistant("Briefly", extra={"usage": {"prompt_tokens": 10**6, "completion_tokens": 1}})
    chat.select(_leaf_before(chat, abandoned))

    conversation = _conversation(chat)

    assert conversation.usage == (
        ModelUsage("gpt-4o", 3, 1200 + 50 + 70, 300 + 10 + 30, 1000, 0.0),
        ModelUsage("llama3.1:8b", 1, 26, 298, 0, 4.884),
    )


def _leaf_before(chat: ChatBuilder, abandoned: str) -> str:
    """The answer to the original second question (the branch the user returned to)."""
    edited_parent = chat.messages[chat.messages[abandoned]["parentId"]]["parentId"]
    original_question = next(
        child
        for child in chat.messages[edited_parent]["childrenIds"]
        if chat.messages[child]["content"] == "Explain it"
    )
    return chat.messages[original_question]["childrenIds"][0]


def test_a_message_without_usage_adds_nothing() -> None:
    chat = ChatBuilder(start=datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    chat.user("Hi")
    chat.assistant("Hello", extra={"usage": None})
    assert _conversation(chat).usage == ()


# --- prices ------------------------------------------------------------------------------------


def test_each_shape_is_priced_with_the_table() -> None:
    prices = DEFAULT_MODEL_PRICES
    # gpt-4o: 2.50 input, 1.25 cached, 10.00 output per 1M
    openai = message_usage({"usage": OPENAI})
    assert openai is not None
    cost = usage_cost_usd(
        "gpt-4o",
        prices,
        input_tokens=openai.input_tokens,
        output_tokens=openai.output_tokens,
        cached_tokens=openai.cached_tokens,
    )
    assert (
        cost == (Decimal(200) * Decimal("2.50") + Decimal(1000) * Decimal("1.25") + 300 * Decimal(10)) / 10**6
    )
    # Anthropic's cache reads are billed at the cached price, the rest at the input price
    anthropic = message_usage({"usage": ANTHROPIC})
    assert anthropic is not None
    cost = usage_cost_usd(
        "claude-sonnet-4-5-20250929",
        prices,
        input_tokens=anthropic.input_tokens,
        output_tokens=anthropic.output_tokens,
        cached_tokens=anthropic.cached_tokens,
    )
    assert cost == (Decimal(100) * 3 + Decimal(400) * Decimal("0.30") + Decimal(20) * 15) / 10**6


def test_unpriced_models_are_none_not_zero() -> None:
    assert model_price("llama3.1:8b", DEFAULT_MODEL_PRICES) is None
    assert usage_cost_usd("llama3.1:8b", DEFAULT_MODEL_PRICES, input_tokens=10, output_tokens=10) is None
    rows = usage_rows("c1", [ModelUsage("llama3.1:8b", 1, 26, 298, 0, 4.9)], DEFAULT_MODEL_PRICES)
    assert rows[0]["cost_usd"] is None and rows[0]["input_tokens"] == 26


def test_local_models_can_be_priced_and_prefixes_are_looked_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_MODEL_PRICES", '{"llama3.1:8b": {"input": 0.02, "output": 0.02}}')
    prices = Settings().llm_prices
    assert usage_cost_usd("llama3.1:8b", prices, input_tokens=10**6, output_tokens=10**6) == Decimal("0.04")
    assert "gpt-4o" in prices  # the built-in table stays underneath
    assert model_price("openai/gpt-4o-2024-08-06", prices) == model_price("gpt-4o", prices)
    assert model_price("gpt-4o-mini-2024-07-18", prices) == model_price("gpt-4o-mini", prices)
