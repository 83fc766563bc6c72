"""What tokens cost: the one price lookup, for the estimator's requests and Open WebUI's models.

The table is the settings' `llm_prices` (`ANALYTICS_MODEL_PRICES` over the built-in
table in `shared/config.py`): USD per 1M tokens, `input`, `cached_input` (defaults to
`input` when absent) and `output`. Cached tokens are part of the prompt tokens and
are billed at the cached price; the rest of the prompt at the input price.

A model is looked up by exact name, then by the longest table entry it extends with
a dash (so `gpt-4o-mini-2024-07-18` is priced as `gpt-4o-mini`), then the same for
the part after the last `/` (a provider prefix such as `openai/gpt-4o`). A model
found nowhere is *unpriced*: `usage_cost_usd` says so with None, and so does the
estimator's own request cost (`request_cost_usd`, which also logs it once per process):
an unpriced cost is recorded as NULL beside its tokens, never as 0.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "Price",
    "describe_cost",
    "model_price",
    "request_cost_usd",
    "tokens_cost_usd",
    "usage_cost_usd",
]

_log = logging.getLogger(__name__)
_PER_TOKENS = Decimal(1_000_000)
_warned_models: set[str] = set()
_warned_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M tokens."""

    input: Decimal
    cached_input: Decimal
    output: Decimal


def _entry(model: str, prices: Mapping[str, Mapping[str, float]]) -> Mapping[str, float] | None:
    if model in prices:
        return prices[model]
    extended = [name for name in prices if model.startswith(name + "-")]
    return prices[max(extended, key=len)] if extended else None


def model_price(model: str, prices: Mapping[str, Mapping[str, float]]) -> Price | None:
    """The price of `model` in the table, or None when it is unpriced."""
    row = _entry(model, prices)
    if row is None and "/" in model:
        row = _entry(model.rsplit("/", 1)[1], prices)
    if row is None:
        return None
    input_price = Decimal(str(row.get("input", 0)))
    return Price(
        input=input_price,
        cached_input=Decimal(str(row.get("cached_input", row.get("input", 0)))),
        output=Decimal(str(row.get("output", 0))),
    )


def tokens_cost_usd(
    price: Price, *, input_tokens: int, output_tokens: int, cached_tokens: int = 0
) -> Decimal:
    """Cost in USD of these tokens at `price` (cached tokens are part of the input tokens)."""
    cached = min(max(cached_tokens, 0), max(input_tokens, 0))
    total = (
        (max(input_tokens, 0) - cached) * price.input
        + cached * price.cached_input
        + max(output_tokens, 0) * price.output
    )
    return total / _PER_TOKENS


def usage_cost_usd(
    model: str,
    prices: Mapping[str, Mapping[str, float]],
    *,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
) -> Decimal | None:
    """Cost in USD of a model's tokens; None when the model is unpriced (never a made-up 0)."""
    price = model_price(model, prices)
    if price is None:
        return None
    return tokens_cost_usd(
        price, input_tokens=input_tokens, output_tokens=output_tokens, cached_tokens=cached_tokens
    )


def _warn_unknown_once(model: str) -> None:
    with _warned_lock:
        if model in _warned_models:
            return
        _warned_models.add(model)
    _log.warning(
        "no price for LLM model %r in ANALYTICS_MODEL_PRICES; its cost is recorded as unpriced "
        "(NULL, with its tokens)",
        model,
    )


def request_cost_usd(
    model: str,
    prices: Mapping[str, Mapping[str, float]],
    *,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
) -> Decimal | None:
    """Cost in USD of the estimator's own request; None (logged once) for an unpriced model."""
    cost = usage_cost_usd(
        model,
        prices,
        input_tokens=prompt_tokens,
        output_tokens=completion_tokens,
        cached_tokens=cached_tokens,
    )
    if cost is None:
        _warn_unknown_once(model)
    return cost


def describe_cost(cost_usd: Decimal | float | None, unpriced_tokens: int) -> str:
    """A cost for people: `$0.001234`, `$0.001234 + unpriced (5,000 tokens)` or `unpriced (5,000 tokens)`.

    `cost_usd` is the priced part (None when nothing was priced); an unpriced cost is never `$0`."""
    unpriced = f"unpriced ({unpriced_tokens:,} tokens)"
    if cost_usd is None:
        return unpriced
    priced = f"${cost_usd:.6f}"
    return f"{priced} + {unpriced}" if unpriced_tokens > 0 else priced
