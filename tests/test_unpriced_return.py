"""A figure whose AI cost is mostly unpriced has no return and is never named best value (issue 21)."""

from __future__ import annotations

import json
import re
from datetime import datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions.aggregates import recompute_dates
from functions.api.app import create_app
from functions.api.services import ApiServices
from functions.dimensions import MODEL
from functions.read import queries
from functions.read.schemas import DateRange
from functions.value import COST_UNKNOWN, MAX_UNPRICED_SHARE, money_figures, record_rates
from shared.config import Settings, get_settings, reset_settings_cache
from tests.value_dataset import DAY, GROUP_RATES, ZONE, insert_dataset

AUTH = {"Authorization": "Bearer local-dev-password"}
ONE_DAY = DateRange(start_date=DAY, end_date=DAY, days=1)


@pytest.fixture
def money(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ANALYTICS_HOURLY_RATE", "45")
    monkeypatch.setenv("ANALYTICS_CURRENCY", "EUR")
    monkeypatch.setenv("ANALYTICS_GROUP_HOURLY_RATES", json.dumps(GROUP_RATES))
    monkeypatch.setenv("ANALYTICS_MIN_GROUP_SIZE", "1")
    reset_settings_cache()
    return get_settings()


def _values(tokens: int, unpriced: int, cost_micro_usd: int) -> dict[str, int]:
    return {
        "ai_input_tokens": tokens,
        "ai_output_tokens": 0,
        "ai_unpriced_tokens": unpriced,
        "ai_cost_micro_usd": cost_micro_usd,
        "analysis_cost_micro_usd": 0,
        "analysis_unpriced_tokens": 0,
        "analysis_priced_tokens": 0,
        "conversation_count": 0,  # no aggregate rows behind the sums: nothing pending valuation
        "value_saved_milli": 45_000,
        "value_saved_low_milli": 15_000,
        "value_saved_high_milli": 90_000,
        "total_time_saved": 60,
        "total_time_saved_low": 20,
        "total_time_saved_high": 120,
    }


def test_the_share_is_one_rule_with_its_boundary(money: Settings) -> None:
    assert MAX_UNPRICED_SHARE == 0.1
    at_the_limit = money_figures(_values(1_000, 100, 500), money)  # exactly a tenth unpriced
    assert at_the_limit["ai_cost_known"] is True
    assert at_the_limit["hours_saved_per_100_usd"] == 200_000.0  # 1 h per 0.0005 USD: priced, quoted
    over = money_figures(_values(1_000, 101, 500), money)
    assert over["ai_cost_known"] is False
    assert over["ai_cost_usd"] == 0.0005  # the priced part is still shown, as a lower bound
    assert over["ai_cost_complete"] is False
    returns = [key for key in over if key.startswith(("hours_saved_per_100_usd", "value_per_usd"))]
    assert len(returns) == 6 and all(over[key] is None for key in returns)
    nothing_used = money_figures(_values(0, 0, 0), money)
    assert nothing_used["ai_cost_known"] is True and nothing_used["hours_saved_per_100_usd"] is None


@pytest.fixture
def mostly_unpriced(analytics_engine: Engine, money: Settings) -> Engine:
    """The hand-computed dataset, with c2 (primary llama3.1:8b, unpriced) priced at almost nothing.

    c2: 6 000 unpriced llama tokens and 1 000 gpt-4o-mini tokens for 0.0005 USD: 86 % unpriced,
    half an hour saved: "1 000 hours per 100 USD" if the unpriced tokens were free.
    """
    with analytics_engine.begin() as connection:
        insert_dataset(connection, money)
        connection.execute(
            sa.text(
                "UPDATE conversation_model_usage SET input_tokens = 1000, output_tokens = 0, "
                "cost_usd = 0.0005 WHERE conversation_id = 'c2' AND model = 'gpt-4o-mini'"
            )
        )
        record_rates(connection, money, DAY)
        recompute_dates(connection, [DAY])
    return analytics_engine


def _client() -> Any:
    clock = datetime.combine(DAY + timedelta(days=40), time(12), ZONE)
    return create_app(services=ApiServices(get_settings(), clock=lambda: clock)).test_client()


def test_a_mostly_unpriced_model_gets_no_return_and_is_not_the_best_value(mostly_unpriced: Engine) -> None:
    with mostly_unpriced.connect() as connection:
        rows = {
            row.value: row for row in queries.dimension_breakdown(connection, MODEL, ONE_DAY, get_settings())
        }
        total = queries.figures(connection, queries.Scope(), ONE_DAY, get_settings())
    llama = rows["llama3.1:8b"]
    assert (llama.ai_unpriced_tokens, llama.ai_input_tokens + llama.ai_output_tokens) == (6_000, 7_000)
    assert llama.ai_cost_known is False and llama.ai_cost_usd == 0.0005
    assert llama.hours_saved_per_100_usd is None and llama.value_per_usd is None
    assert rows["gpt-4o-mini"].ai_cost_known is True and rows["gpt-4o-mini"].hours_saved_per_100_usd
    assert total.ai_cost_known is True  # 6 000 of 2 307 000 tokens: the period's return stands

    report = _client().get(f"/report?month={DAY:%Y-%m}", headers=AUTH).get_data(as_text=True)
    assert re.search(r"<strong>gpt-4o-mini</strong> saved the most time per dollar", report)
    llama_row = re.search(r"<tr><td>llama3\.1:8b</td>.*?</tr>", report)
    assert llama_row is not None and COST_UNKNOWN in llama_row.group(0)
    assert "1,000.0" not in report  # the absurd ratio appears nowhere

    api = _client().get(
        "/api/v1/analytics/model-breakdown",
        query_string={"start_date": DAY.isoformat(), "end_date": DAY.isoformat()},
        headers=AUTH,
    )
    (api_llama,) = [row for row in api.get_json()["rows"] if row["value"] == "llama3.1:8b"]
    assert api_llama["ai_cost_known"] is False and api_llama["hours_saved_per_100_usd"] is None


def test_the_dashboard_says_cost_unknown_instead_of_a_ratio(mostly_unpriced: Engine) -> None:
    page = _client().get(
        "/", query_string={"start_date": DAY.isoformat(), "end_date": DAY.isoformat()}, headers=AUTH
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html[:500]
    llama_row = re.search(r"<tr><td>llama3\.1:8b</td>.*?</tr>", html)
    assert llama_row is not None and COST_UNKNOWN in llama_row.group(0)
    best = re.search(r'id="best-model"><strong>([^<]+)</strong>', html)
    assert best is not None and best.group(1) == "gpt-4o-mini"


def test_a_period_that_is_mostly_unpriced_says_cost_unknown(
    analytics_engine: Engine, money: Settings
) -> None:
    with analytics_engine.begin() as connection:
        insert_dataset(connection, money)
        connection.execute(
            sa.text(
                "UPDATE conversation_model_usage SET input_tokens = 1000, output_tokens = 0, cached_tokens = 0, "
                "cost_usd = 0.0005 WHERE model <> 'llama3.1:8b'"
            )
        )
        record_rates(connection, money, DAY)
        recompute_dates(connection, [DAY])
    report = _client().get(f"/report?month={DAY:%Y-%m}", headers=AUTH).get_data(as_text=True)
    headline = re.search(r'id="headline-return">.*?</div>', report, re.S)
    assert headline is not None and COST_UNKNOWN in headline.group(0)
    assert "<strong>llama3.1:8b</strong>" not in report  # only a model whose cost is known is named
