"""What the time saved is worth and what the assistance cost: the writes and the arithmetic.

* AI usage: `record_usage` replaces a conversation's `conversation_model_usage` rows
  (tokens per model, priced with the one price table, NULL cost = unpriced) in the
  analyzer's transaction.
* Rates: `record_rates` keeps `value_rates` in step with the settings. The first rates
  ever configured apply from the beginning (every date is valued), and so do rates that
  follow a time without money (those dates were never valued); a later change
  applies from the local day it is first seen on, so dates already valued keep the
  rate they were valued with. `reprice` applies the current rates and prices from a
  chosen date on, on purpose (`python main.py reprice --from YYYY-MM-DD`).
* `ensure_rates` does it when a process starts with rates the database has not seen
  (the api on its first request, the dispatcher at each run, the aggregator as ever), so
  a change never waits for the night: once per process and rates, one small SELECT when
  nothing changed, and under an advisory lock that a second instance does not wait for.
  `revalue` rebuilds what the change touches: minutes × rate on the aggregate rows,
  cheap, unless group rates make it a rebuild from the analyses.
* The aggregator values each analysed conversation at its rate (see `metrics.py`):
  its group's rate from `ANALYTICS_GROUP_HOURLY_RATES` (a person in several listed
  groups takes the lowest), else `ANALYTICS_HOURLY_RATE`.
* `money_figures`: the API's money fields from summed aggregate columns: value in the
  currency, AI cost and the analysis's own LLM cost in USD, and the return (hours
  saved per 100 USD of AI cost, value per USD of AI cost), each with its band. Value is
  never a 0 that was not computed: where aggregate rows were not valued with the
  configured currency (`UNVALUED_SQL`), the value fields are null and `value_status`
  says `pending`, with when they will be valued.
  A figure whose tokens are more than `MAX_UNPRICED_SHARE` unpriced has no return: its
  cost is not known (`ai_cost_known` false), so it is never quoted nor named best value.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from functions.dates import MIN_DATE
from functions.metrics import saved_cell
from shared.config import Settings
from shared.conversation import ModelUsage
from shared.estimators.pricing import usage_cost_usd

__all__ = [
    "COST_UNKNOWN",
    "CSV_VALUE_COLUMNS",
    "FIRST_RATE_DATE",
    "MAX_UNPRICED_SHARE",
    "MONEY_COLUMNS",
    "UNVALUED_SQL",
    "VALUE_PENDING_NOTE",
    "ValueStatus",
    "cost_known",
    "dates_with_aggregates",
    "ensure_rates",
    "money_figures",
    "rate_periods",
    "record_rates",
    "record_usage",
    "reprice",
    "reprice_history",
    "revalue",
]

_log = logging.getLogger(__name__)

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
    "analysis_priced_tokens",
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
    if _same(dict(latest), wanted) and not (wanted["currency"] is not None and _has_gaps(connection)):
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
    gaps = _value_gaps(connection, wanted) if wanted["currency"] is not None else []
    latest = (
        connection.execute(sa.text("SELECT * FROM value_rates ORDER BY effective_from DESC LIMIT 1"))
        .mappings()
        .one()
    )
    if _same(dict(latest), wanted):
        return gaps
    start = max(today, latest["effective_from"])
    _insert_rates(connection, start, wanted)
    return sorted(set(gaps) | set(dates_with_aggregates(connection, start)))


def _has_gaps(connection: Connection) -> bool:
    return bool(
        connection.execute(
            sa.text("SELECT EXISTS (SELECT 1 FROM value_rates WHERE currency IS NULL)")
        ).scalar()
    )


def _value_gaps(connection: Connection, wanted: Mapping[str, Any]) -> list[date]:
    """Give the periods without money the wanted rates (their dates were never valued); their dates."""
    ids = list(
        connection.execute(
            sa.text(
                "UPDATE value_rates SET currency = :currency, hourly_rate = :hourly_rate, "
                "group_hourly_rates = CAST(:group_hourly_rates AS jsonb), recorded_at = now() "
                "WHERE currency IS NULL RETURNING id"
            ),
            {
                "currency": wanted["currency"],
                "hourly_rate": wanted["hourly_rate"],
                "group_hourly_rates": _json(wanted["group_hourly_rates"]),
            },
        ).scalars()
    )
    if not ids:
        return []
    return list(
        connection.execute(
            sa.text(
                "SELECT DISTINCT analysis_date FROM daily_aggregates WHERE user_id_hash IS NULL "
                "AND value_rate_id = ANY(:ids) ORDER BY analysis_date"
            ),
            {"ids": ids},
        ).scalars()
    )


# --- valuing what a rate change touches, when a process starts -----------------------------

_RATES_LOCK_KEY = 7_291_042_131  # one process records new rates; the others do not wait
# engine => the rates (as JSON) this process knows the database holds
_known_rates: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()
_failed_at: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()
_known_rates_lock = threading.Lock()
_RETRY_SECONDS = 30.0  # after a database failure, requests do not each wait for it again

# The dates of a period with group rates need each conversation's rate: rebuilt from the analyses.
_GROUP_RATED_DATES = """
SELECT day FROM unnest(CAST(:dates AS date[])) AS given(day)
CROSS JOIN LATERAL (SELECT group_hourly_rates FROM value_rates WHERE effective_from <= day
    ORDER BY effective_from DESC LIMIT 1) AS period
WHERE period.group_hourly_rates <> '{}'::jsonb
"""
# Elsewhere one rate values every conversation of a date: the value is minutes × rate, the same
# numbers the rebuild computes (functions/metrics.py), from the aggregate rows' own minutes.
_REVALUE = """
UPDATE {table} AS t SET value_rate_id = period.id,
    value_saved_milli = coalesce(round(t.total_time_saved * period.hourly_rate * 1000 / 60), 0),
    value_saved_low_milli = coalesce(round(t.total_time_saved_low * period.hourly_rate * 1000 / 60), 0),
    value_saved_high_milli = coalesce(round(t.total_time_saved_high * period.hourly_rate * 1000 / 60), 0)
FROM unnest(CAST(:dates AS date[])) AS given(day)
LEFT JOIN LATERAL (SELECT id, hourly_rate FROM value_rates WHERE effective_from <= day
    ORDER BY effective_from DESC LIMIT 1) AS period ON true
WHERE t.analysis_date = given.day
"""


def revalue(connection: Connection, dates: Iterable[date]) -> None:
    """Value the aggregate rows of `dates` with the rate period in effect on each (caller's transaction)."""
    from functions.aggregates import lock_aggregates, recompute_dates

    day_list = sorted(set(dates))
    if not day_list:
        return
    rebuilt = set(connection.execute(sa.text(_GROUP_RATED_DATES), {"dates": day_list}).scalars())
    recompute_dates(connection, rebuilt)
    arithmetic = [day for day in day_list if day not in rebuilt]
    if arithmetic:
        lock_aggregates(connection)
        for table in ("daily_aggregates", "daily_breakdowns"):
            connection.execute(sa.text(_REVALUE.format(table=table)), {"dates": arithmetic})


def _needs_recording(rows: Sequence[Mapping[str, Any]], wanted: Mapping[str, Any]) -> bool:
    if not rows:
        return wanted["currency"] is not None
    if not _same(rows[-1], wanted):
        return True
    return wanted["currency"] is not None and any(row["currency"] is None for row in rows)


def ensure_rates(engine: Engine, settings: Settings, today: date) -> list[date] | None:
    """Record the configured rates if the database lacks them and revalue what they change.

    Once per process and rates (then a dictionary look-up). The dates revalued; None when
    another instance is recording them right now (the next call tries again) or the
    database failed (tried again after `_RETRY_SECONDS`): the money fields say `pending`
    until it is done.
    """
    wanted = _configured(settings)
    key = json.dumps(wanted, sort_keys=True, default=str)
    with _known_rates_lock:
        if _known_rates.get(engine) == key:
            return []
        if time.monotonic() - _failed_at.get(engine, -_RETRY_SECONDS) < _RETRY_SECONDS:
            return None
    try:
        with engine.connect() as connection:
            rows = [
                dict(row)
                for row in connection.execute(
                    sa.text("SELECT * FROM value_rates ORDER BY effective_from")
                ).mappings()
            ]
        dates: list[date] = []
        if _needs_recording(rows, wanted):
            with engine.begin() as connection:
                locked = connection.execute(
                    sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _RATES_LOCK_KEY}
                ).scalar_one()
                if not locked:
                    return None
                dates = record_rates(connection, settings, today)
                revalue(connection, dates)
            _log.info("recorded the configured rates; %d dates revalued", len(dates))
    except SQLAlchemyError as exc:
        _log.warning("could not record the configured rates (%s); money shows as pending", type(exc).__name__)
        with _known_rates_lock:
            _failed_at[engine] = time.monotonic()
        return None
    with _known_rates_lock:
        _known_rates[engine] = key
    return dates


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
    ("analysis_cost_usd", _MONEY.format("llm_cost_usd"), "plain"),  # empty: unpriced (or money off)
    (
        "analysis_unpriced_tokens",
        "CASE WHEN llm_cost_usd IS NULL THEN prompt_tokens + completion_tokens ELSE 0 END",
        "plain",
    ),
    ("currency", _MONEY.format("value_currency"), "text"),
    ("hourly_rate", _MONEY.format("hourly_rate"), "plain"),
    (
        "value_saved_amount",
        _MONEY.format(saved_cell("round(time_saved_minutes * hourly_rate / 60, 2)")),
        "plain",
    ),
    (
        "value_saved_low_amount",
        _MONEY.format(
            saved_cell("round(GREATEST(0, manual_time_low - active_duration_minutes) * hourly_rate / 60, 2)")
        ),
        "plain",
    ),
    (
        "value_saved_high_amount",
        _MONEY.format(
            saved_cell("round(GREATEST(0, manual_time_high - active_duration_minutes) * hourly_rate / 60, 2)")
        ),
        "plain",
    ),
)


# --- the money fields of the API's figures ---------------------------------------------------


def _ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    return round(numerator * scale / denominator, 2) if denominator > 0 else None


def _analysis_cost(values: Mapping[str, int]) -> float | None:
    """The estimator's own cost, priced models only; None when none of it was priced (never a made-up 0)."""
    if values["analysis_unpriced_tokens"] > 0 and values["analysis_priced_tokens"] == 0:
        return None
    return round(values["analysis_cost_micro_usd"] / MICRO, 6)


ValueStatus = Literal["valued", "pending"]
VALUE_PENDING_NOTE = (
    "Not valued yet with the configured rates: valued as soon as the api or the pipeline starts "
    "with them (at the latest by the next nightly run)."
)
# Read beside the summed columns: aggregate rows not valued in the currency recorded last (no
# rate period, one without money, or another currency), whose stored value is no value at all.
_LATEST_CURRENCY = "(SELECT currency FROM value_rates ORDER BY effective_from DESC LIMIT 1)"
UNVALUED_SQL = (
    "count(*) FILTER (WHERE value_rate_id IS NULL OR value_rate_id NOT IN "
    f"(SELECT id FROM value_rates WHERE currency = {_LATEST_CURRENCY})) AS unvalued_rows, "
    f"{_LATEST_CURRENCY} AS valued_currency"
)


def cost_known(tokens: int, unpriced: int) -> bool:
    """True when at most `MAX_UNPRICED_SHARE` of `tokens` are unpriced (no tokens: nothing unknown)."""
    return unpriced <= MAX_UNPRICED_SHARE * tokens


def money_figures(
    values: Mapping[str, int],
    settings: Settings,
    *,
    unvalued_rows: int = 0,
    valued_currency: str | None = None,
) -> dict[str, Any]:
    """The money fields of `Figures` from summed aggregate columns (nulls when money is off).

    `unvalued_rows` and `valued_currency` come from `UNVALUED_SQL`: with rows not valued in
    the configured currency the value fields are null and `value_status` is `pending`.
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
        "value_status": None,
        "value_note": None,
    }
    if not settings.money_shown:
        return fields
    rows_exist = values["conversation_count"] > 0
    pending = unvalued_rows > 0 or (rows_exist and valued_currency != settings.currency)
    cost = values["ai_cost_micro_usd"] / MICRO
    priced_anything = tokens > unpriced
    value = {band: values[f"value_saved{band}_milli"] / MILLI for band in ("", "_low", "_high")}
    fields.update(
        currency=settings.currency,
        value_saved_amount=round(value[""], 2),
        value_saved_low_amount=round(value["_low"], 2),
        value_saved_high_amount=round(value["_high"], 2),
        ai_cost_usd=round(cost, 6) if priced_anything or tokens == 0 else None,
        analysis_cost_usd=_analysis_cost(values),
    )
    minutes = {"": values["total_time_saved"], "_low": values["total_time_saved_low"]}
    minutes["_high"] = values["total_time_saved_high"]
    if known:  # a ratio over a mostly unpriced cost would be absurd
        for band in ("", "_low", "_high"):
            fields[f"hours_saved_per_100_usd{band}"] = _ratio(minutes[band] / 60, cost, PER_USD)
            fields[f"value_per_usd{band}"] = _ratio(value[band], cost)
    fields["value_status"] = "pending" if pending else "valued"
    if pending:  # never a 0 that was not computed
        for band in ("", "_low", "_high"):
            fields[f"value_saved{band}_amount"] = None
            fields[f"value_per_usd{band}"] = None
        fields["value_note"] = VALUE_PENDING_NOTE
    return fields
