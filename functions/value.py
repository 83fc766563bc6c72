"""What the time saved is worth and what the assistance cost: the writes and the arithmetic.

* AI usage: `record_usage` replaces a conversation's `conversation_model_usage` rows
  (tokens per model, priced with the one price table, NULL cost = unpriced) in the
  analyzer's transaction.
* Rates: `record_rates` keeps `value_rates` in step with the settings. The first rates
  ever configured apply from the beginning (every date is valued); a later change
  applies from the local day it is first seen on, so dates already valued keep the
  rate they were valued with. `reprice` applies the current rates and prices from a
  chosen date on, on purpose (`python main.py reprice --from YYYY-MM-DD`).
* The aggregator values each analysed conversation at its rate (see `metrics.py`):
  its group's rate from `ANALYTICS_GROUP_HOURLY_RATES` (a person in several listed
  groups takes the lowest), else `ANALYTICS_HOURLY_RATE`.
* `money_figures`: the API's money fields from summed aggregate columns: value in the
  currency, AI cost and the analysis's own LLM cost in USD, and the return (hours
  saved per 100 USD of AI cost, value per USD of AI cost), each with its band. A
  figure whose tokens are more than `MAX_UNPRICED_SHARE` unpriced has no return: its
  cost is not known (`ai_cost_known` false), so it is never quoted nor named best value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from functions.dates import MIN_DATE
from shared.config import Settings
from shared.conversation import ModelUsage
from shared.estimators.pricing import usage_cost_usd

__all__ = [
    "COST_UNKNOWN",
    "CSV_VALUE_COLUMNS",
    "FIRST_RATE_DATE",
    "MAX_UNPRICED_SHARE",
    "MONEY_COLUMNS",
    "cost_known",
    "dates_with_aggregates",
    "money_figures",
    "rate_periods",
    "record_rates",
    "record_usage",
    "reprice",
    "reprice_history",
]

FIRST_RATE_DATE = MIN_DATE  # the first rates recorded apply to every date
MICRO = 1_000_000  # ai_cost_micro_usd, analysis_cost_micro_usd: millionths of a USD
MILLI = 1_000  # value_saved_*_milli: thousandths of the currency unit
PER_USD = 100  # the return is quoted per 100 USD of AI cost
MAX_UNPRICED_SHARE = 0.1
"""More than this share of a figure's AI tokens unpriced: its cost is unknown, it has no return."""
COST_UNKNOWN = "cost unknown: not priced"
"""What the report and the dashboard say where a return would be, when the cost is unknown."""

# summed aggregate columns that are read only through the money fields below
MONEY_COLUMNS = (
    "ai_cost_micro_usd",
    "analysis_cost_micro_usd",
    "value_saved_milli",
    "value_saved_low_milli",
    "value_saved_high_milli",
    "value_rate_id",
)


# --- AI usage ----------------------------------------------------------------------------


def usage_rows(
    conversation_id: str, usage: Iterable[ModelUsage], prices: Mapping[str, Mapping[str, float]]
) -> list[dict[str, Any]]:
    """`conversation_model_usage` rows of a conversation, priced (cost None when unpriced)."""
    rows = []
    for model_usage in usage:
        cost = usage_cost_usd(
            model_usage.model,
            prices,
            input_tokens=model_usage.input_tokens,
            output_tokens=model_usage.output_tokens,
            cached_tokens=model_usage.cached_tokens,
        )
        rows.append(
            {
                "conversation_id": conversation_id,
                "model": model_usage.model,
                "answers": model_usage.answers,
                "input_tokens": model_usage.input_tokens,
                "output_tokens": model_usage.output_tokens,
                "cached_tokens": model_usage.cached_tokens,
                "generation_seconds": Decimal(str(model_usage.generation_seconds)),
                "cost_usd": None if cost is None else round(cost, 6),
            }
        )
    return rows


def record_usage(
    connection: Connection, conversation_id: str, usage: Iterable[ModelUsage], settings: Settings
) -> None:
    """Replace the conversation's usage rows (call in the transaction that upserts its analysis)."""
    connection.execute(
        sa.text("DELETE FROM conversation_model_usage WHERE conversation_id = :id"), {"id": conversation_id}
    )
    rows = usage_rows(conversation_id, usage, settings.llm_prices)
    if rows:
        connection.execute(
            sa.text(
                "INSERT INTO conversation_model_usage (conversation_id, model, answers, input_tokens, "
                "output_tokens, cached_tokens, generation_seconds, cost_usd) VALUES (:conversation_id, "
                ":model, :answers, :input_tokens, :output_tokens, :cached_tokens, :generation_seconds, "
                ":cost_usd)"
            ),
            rows,
        )


# --- rates -------------------------------------------------------------------------------


def _configured(settings: Settings) -> dict[str, Any]:
    if not settings.money_shown:
        return {"currency": None, "hourly_rate": None, "group_hourly_rates": {}}
    return {
        "currency": settings.currency,
        "hourly_rate": Decimal(str(settings.hourly_rate)).quantize(Decimal("0.01")),
        "group_hourly_rates": {
            name: float(Decimal(str(rate)).quantize(Decimal("0.01")))
            for name, rate in sorted(settings.group_hourly_rates.items())
        },
    }


def _same(row: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return (
        row["currency"] == wanted["currency"]
        and row["hourly_rate"] == wanted["hourly_rate"]
        and {k: float(v) for k, v in (row["group_hourly_rates"] or {}).items()}
        == wanted["group_hourly_rates"]
    )


def _insert_rates(connection: Connection, effective_from: date, wanted: Mapping[str, Any]) -> None:
    connection.execute(
        sa.text(
            "INSERT INTO value_rates (effective_from, currency, hourly_rate, group_hourly_rates) "
            "VALUES (:effective_from, :currency, :hourly_rate, CAST(:group_hourly_rates AS jsonb)) "
            "ON CONFLICT (effective_from) DO UPDATE SET currency = EXCLUDED.currency, "
            "hourly_rate = EXCLUDED.hourly_rate, group_hourly_rates = EXCLUDED.group_hourly_rates, "
            "recorded_at = now()"
        ),
        {
            "effective_from": effective_from,
            "currency": wanted["currency"],
            "hourly_rate": wanted["hourly_rate"],
            "group_hourly_rates": _json(wanted["group_hourly_rates"]),
        },
    )


def _json(value: Mapping[str, float]) -> str:
    import json

    return json.dumps(dict(value), sort_keys=True)


def dates_with_aggregates(connection: Connection, since: date) -> list[date]:
    """The dates from `since` on that have a global aggregate row (the ones a re-valuation rebuilds)."""
    return list(
        connection.execute(
            sa.text(
                "SELECT analysis_date FROM daily_aggregates "
                "WHERE user_id_hash IS NULL AND analysis_date >= :since ORDER BY analysis_date"
            ),
            {"since": since},
        ).scalars()
    )


def record_rates(connection: Connection, settings: Settings, today: date) -> list[date]:
    """Record the configured rates if they changed; returns the dates to rebuild because of it.

    Nothing configured and nothing recorded: nothing to do. The first rates apply from
    `FIRST_RATE_DATE` (every existing date is rebuilt); a change applies from `today`; a
    new currency revalues every date (amounts in two currencies do not add up).
    """
    wanted = _configured(settings)
    connection.execute(sa.text("LOCK TABLE value_rates IN SHARE ROW EXCLUSIVE MODE"))
    latest = (
        connection.execute(sa.text("SELECT * FROM value_rates ORDER BY effective_from DESC LIMIT 1"))
        .mappings()
        .first()
    )
    if latest is None:
        if wanted["currency"] is None:
            return []
        _insert_rates(connection, FIRST_RATE_DATE, wanted)
        return dates_with_aggregates(connection, FIRST_RATE_DATE)
    if _same(dict(latest), wanted):
        return []
    currencies = set(
        connection.execute(
            sa.text("SELECT DISTINCT currency FROM value_rates WHERE currency IS NOT NULL")
        ).scalars()
    )
    if wanted["currency"] is not None and currencies - {wanted["currency"]}:
        # amounts in two currencies cannot be added up: a new currency values every date
        connection.execute(sa.text("DELETE FROM value_rates"))
        _insert_rates(connection, FIRST_RATE_DATE, wanted)
        return dates_with_aggregates(connection, FIRST_RATE_DATE)
    start = max(today, latest["effective_from"])
    _insert_rates(connection, start, wanted)
    return dates_with_aggregates(connection, start)


def reprice(connection: Connection, settings: Settings, since: date) -> list[date]:
    """Apply the current rates and model prices to every date from `since` on; the dates to rebuild."""
    connection.execute(sa.text("LOCK TABLE value_rates IN SHARE ROW EXCLUSIVE MODE"))
    wanted = _configured(settings)
    other_currency = connection.execute(
        sa.text("SELECT count(*) FROM value_rates WHERE currency IS NOT NULL AND currency <> :currency"),
        {"currency": wanted["currency"] or ""},
    ).scalar_one()
    if other_currency and wanted["currency"] is not None:
        since = FIRST_RATE_DATE  # amounts in two currencies do not add up: revalue every date
    connection.execute(sa.text("DELETE FROM value_rates WHERE effective_from >= :since"), {"since": since})
    earlier = connection.execute(sa.text("SELECT count(*) FROM value_rates")).scalar_one()
    if wanted["currency"] is not None or earlier:
        _insert_rates(connection, since if earlier else FIRST_RATE_DATE, wanted)
    rows = connection.execute(
        sa.text(
            "SELECT u.conversation_id, u.model, u.input_tokens, u.output_tokens, u.cached_tokens "
            "FROM conversation_model_usage u JOIN conversation_analysis a USING (conversation_id) "
            "WHERE a.analysis_date >= :since"
        ),
        {"since": since},
    ).mappings()
    updates = []
    for row in rows:
        cost = usage_cost_usd(
            row["model"],
            settings.llm_prices,
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cached_tokens=row["cached_tokens"],
        )
        updates.append(
            {
                "conversation_id": row["conversation_id"],
                "model": row["model"],
                "cost": None if cost is None else round(cost, 6),
            }
        )
    if updates:
        connection.execute(
            sa.text(
                "UPDATE conversation_model_usage SET cost_usd = :cost, priced_at = now() "
                "WHERE conversation_id = :conversation_id AND model = :model"
            ),
            updates,
        )
    return dates_with_aggregates(connection, since)


def reprice_history(engine: Engine, settings: Settings, since: date) -> list[date]:
    """`reprice` and the rebuild of every date it touches, in one transaction; the dates."""
    from functions.aggregates import recompute_dates

    with engine.begin() as connection:
        dates = reprice(connection, settings, since)
        recompute_dates(connection, dates)
    return dates


def rate_periods(connection: Connection, start: date, end: date) -> list[dict[str, Any]]:
    """The recorded rate periods the aggregates of `start`..`end` were valued with."""
    return [
        dict(row)
        for row in connection.execute(
            sa.text(
                "SELECT r.id, r.effective_from, r.currency, r.hourly_rate, r.group_hourly_rates "
                "FROM value_rates r WHERE r.id IN (SELECT DISTINCT value_rate_id FROM daily_aggregates "
                "WHERE user_id_hash IS NULL AND analysis_date BETWEEN :start AND :end) "
                "ORDER BY r.effective_from"
            ),
            {"start": start, "end": end},
        ).mappings()
    ]


# --- the CSV export's value and cost columns (over `metrics.analysed_rows_sql`) -----------

_MONEY = "CASE WHEN :money THEN {} END"
CSV_VALUE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("ai_input_tokens", "ai_input_tokens", "plain"),
    ("ai_output_tokens", "ai_output_tokens", "plain"),
    ("ai_cached_tokens", "ai_cached_tokens", "plain"),
    ("ai_unpriced_tokens", "ai_unpriced_tokens", "plain"),
    ("ai_cost_usd", _MONEY.format("round(ai_cost_usd, 6)"), "plain"),  # empty: nothing priced
    ("analysis_cost_usd", _MONEY.format("llm_cost_usd"), "plain"),
    ("currency", _MONEY.format("value_currency"), "text"),
    ("hourly_rate", _MONEY.format("hourly_rate"), "plain"),
    ("value_saved_amount", _MONEY.format("round(time_saved_minutes * hourly_rate / 60, 2)"), "plain"),
    (
        "value_saved_low_amount",
        _MONEY.format("round(GREATEST(0, manual_time_low - active_duration_minutes) * hourly_rate / 60, 2)"),
        "plain",
    ),
    (
        "value_saved_high_amount",
        _MONEY.format("round(GREATEST(0, manual_time_high - active_duration_minutes) * hourly_rate / 60, 2)"),
        "plain",
    ),
)


# --- the money fields of the API's figures ---------------------------------------------------


def _ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    return round(numerator * scale / denominator, 2) if denominator > 0 else None


def cost_known(tokens: int, unpriced: int) -> bool:
    """True when at most `MAX_UNPRICED_SHARE` of `tokens` are unpriced (no tokens: nothing unknown)."""
    return unpriced <= MAX_UNPRICED_SHARE * tokens


def money_figures(values: Mapping[str, int], settings: Settings) -> dict[str, Any]:
    """The money fields of `Figures` from summed aggregate columns (nulls when money is off).

    The return (hours and value per USD) is computed only where the cost is known
    (`cost_known`): a cost that is mostly unpriced would make any ratio absurd.
    """
    tokens = values["ai_input_tokens"] + values["ai_output_tokens"]
    unpriced = values["ai_unpriced_tokens"]
    known = cost_known(tokens, unpriced)
    fields: dict[str, Any] = {
        "currency": None,
        "value_saved_amount": None,
        "value_saved_low_amount": None,
        "value_saved_high_amount": None,
        "ai_cost_usd": None,
        "ai_cost_complete": unpriced == 0,
        "ai_cost_known": known,
        "analysis_cost_usd": None,
        "hours_saved_per_100_usd": None,
        "hours_saved_per_100_usd_low": None,
        "hours_saved_per_100_usd_high": None,
        "value_per_usd": None,
        "value_per_usd_low": None,
        "value_per_usd_high": None,
    }
    if not settings.money_shown:
        return fields
    cost = values["ai_cost_micro_usd"] / MICRO
    priced_anything = tokens > unpriced
    value = {band: values[f"value_saved{band}_milli"] / MILLI for band in ("", "_low", "_high")}
    fields.update(
        currency=settings.currency,
        value_saved_amount=round(value[""], 2),
        value_saved_low_amount=round(value["_low"], 2),
        value_saved_high_amount=round(value["_high"], 2),
        ai_cost_usd=round(cost, 6) if priced_anything or tokens == 0 else None,
        analysis_cost_usd=round(values["analysis_cost_micro_usd"] / MICRO, 6),
    )
    minutes = {"": values["total_time_saved"], "_low": values["total_time_saved_low"]}
    minutes["_high"] = values["total_time_saved_high"]
    if not known:
        return fields
    for band in ("", "_low", "_high"):
        fields[f"hours_saved_per_100_usd{band}"] = _ratio(minutes[band] / 60, cost, PER_USD)
        fields[f"value_per_usd{band}"] = _ratio(value[band], cost)
    return fields
