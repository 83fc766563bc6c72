"""What LLM requests cost, from token counts and the settings' price table.

Prices are USD per 1M tokens: `input`, `cached_input` (defaults to `input` when
absent) and `output`. Cached tokens are part of the prompt tokens and are billed at
the cached price; the rest of the prompt at the input price. A model is looked up
by exact name, then by the longest table entry it extends with a dash (so
`gpt-4o-mini-2024-07-18` is priced as `gpt-4o-mini`). An unknown model costs 0 and
is logged once per process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from decimal import Decimal

__all__ = ["request_cost_usd"]

_log = logging.getLogger(__name__)
_PER_TOKENS = Decimal(1_000_000)
_warned_models: set[str] = set()
_warned_lock = threading.Lock()


def _price_row(model: str, prices: Mapping[str, Mapping[str, float]]) -> Mapping[str, float] | None:
    if model in prices:
        return prices[model]
    extended = [name for name in prices if model.startswith(name + "-")]
    return prices[max(extended, key=len)] if extended else None


def _warn_unknown_once(model: str) -> None:
    with _warned_lock:
        if model in _warned_models:
            return
        _warned_models.add(model)
    _log.warning("no price for LLM model %r in ANALYTICS_LLM_PRICES; its cost is recorded as 0", model)


def request_cost_usd(
    model: str,
    prices: Mapping[str, Mapping[str, float]],
    *,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
) -> Decimal:
    """Cost in USD of the given token counts for `model`."""
    row = _price_row(model, prices)
    if row is None:
        _warn_unknown_once(model)
        return Decimal(0)
    input_price = Decimal(str(row.get("input", 0)))
    cached_price = Decimal(str(row.get("cached_input", row.get("input", 0))))
    output_price = Decimal(str(row.get("output", 0)))
    cached = min(max(cached_tokens, 0), prompt_tokens)
    total = (prompt_tokens - cached) * input_price + cached * cached_price + completion_tokens * output_price
    return total / _PER_TOKENS
