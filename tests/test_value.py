"""Value of time, AI cost and return on a dataset computed by hand (tests/value_dataset.py)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions.aggregates import recompute_dates
from functions.dimensions import MODEL
from functions.read import queries
from functions.read.schemas import DateRange
from functions.value import FIRST_RATE_DATE, record_rates, reprice
from shared.config import Settings, get_settings, reset_settings_cache
from tests.value_dataset import DAY, GROUP_RATES, RATE, insert_dataset

ONE_DAY = DateRange.between(DAY, DAY)


def _money(
    monkeypatch: pytest.MonkeyPatch, rate: float | None = RATE, currency: str | None = "EUR"
) -> Settings:
    for variable, value in (("ANALYTICS_HOURLY_RATE", rate), ("ANALYTICS_CURRENCY", currency)):
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, str(value))
    monkeypatch.setenv("ANALYTICS_GROUP_HOURLY_RATES", json.dumps(GROUP_RATES))
    reset_settings_cache()
    return get_settings()


def _seed(engine: Engine, settings: Settings, today: date = DAY + timedelta(days=1)) -> None:
    with engine.begin() as connection:
        insert_dataset(connection, settings)
        record_rates(connection, settings, today)
        recompute_dates(connection, [DAY])


def test_figures_equal_the_hand_computed_ones(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(analytics_engine, _money(monkeypatch))
    with analytics_engine.connect() as connection:
        figures = queries.figures(connection, queries.Scope(), ONE_DAY, get_settings())

    assert (figures.total_time_saved, figures.total_time_saved_low, figures.total_time_saved_high) == (
        120,
        20,
        240,
    )
    assert figures.currency == "EUR"
    assert (figures.value_saved_amount, figures.value_saved_low_amount, figures.value_saved_high_amount) == (
        105.0,
        20.0,
        210.0,
    )
    assert figures.ai_cost_usd == 4.0
    assert figures.ai_cost_complete is False  # llama3.1:8b has no price
    assert figures.ai_unpriced_tokens == 6_000
    assert figures.ai_input_tokens == 1_000_000 + 5_000 + 2_000_000 + 1_000_000
    assert figures.ai_cached_tokens == 200_000
    assert figures.analysis_cost_usd == 0.03
    assert (figures.hours_saved_per_100_usd, figures.hours_saved_per_100_usd_low) == (50.0, 8.33)
    assert figures.hours_saved_per_100_usd_high == 100.0
    assert (figures.value_per_usd, figures.value_per_usd_low, figures.value_per_usd_high) == (
        26.25,
        5.0,
        52.5,
    )


def test_by_model_return_and_unpriced_models(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(analytics_engine, _money(monkeypatch))
    with analytics_engine.connect() as connection:
        rows = {
            row.value: row for row in queries.dimension_breakdown(connection, MODEL, ONE_DAY, get_settings())
        }

    # cost goes with the conversation's primary model (the model its time saved is counted under)
    assert rows["gpt-4o"].ai_cost_usd == 3.25
    assert rows["gpt-4o"].hours_saved_per_100_usd == round(0.5 / 3.25 * 100, 2)
    assert rows["gpt-4o-mini"].ai_cost_usd == 0.15
    assert rows["gpt-4o-mini"].hours_saved_per_100_usd == round(1 / 0.15 * 100, 2)
    llama = rows["llama3.1:8b"]
    assert (llama.ai_cost_usd, llama.ai_cost_complete, llama.ai_unpriced_tokens) == (0.6, False, 6_000)


def test_an_unpriced_model_alone_has_no_cost_not_zero(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _money(monkeypatch)
    with analytics_engine.begin() as connection:
        insert_dataset(connection, settings)
        connection.execute(sa.text("DELETE FROM conversation_model_usage WHERE model <> 'llama3.1:8b'"))
        record_rates(connection, settings, DAY)
        recompute_dates(connection, [DAY])
        figures = queries.figures(connection, queries.Scope(), ONE_DAY, get_settings())
    assert figures.ai_cost_usd is None
    assert figures.ai_unpriced_tokens == 6_000
    assert figures.hours_saved_per_100_usd is None and figures.value_per_usd is None


def test_per_group_rates_and_a_person_in_two_groups(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(analytics_engine, _money(monkeypatch))
    with analytics_engine.connect() as connection:
        groups, _ = queries.group_breakdown(
            connection, ONE_DAY, get_settings().model_copy(update={"min_group_size": 1})
        )
        by_name = {row.name: row for row in groups}
        person_b = queries.figures(connection, queries.Scope(user_id_hash="b" * 64), ONE_DAY, get_settings())
    # Legal: A at 90 (45) and B, also in Support, at the lower 30 (15)
    assert by_name["Legal"].value_saved_amount == 60.0
    assert by_name["Support"].value_saved_amount == 15.0
    assert person_b.value_saved_amount == 15.0
    assert (person_b.value_saved_low_amount, person_b.value_saved_high_amount) == (5.0, 30.0)


def test_no_money_without_rate_and_currency(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _money(monkeypatch, rate=None)
    _seed(analytics_engine, settings)
    with analytics_engine.connect() as connection:
        figures = queries.figures(connection, queries.Scope(), ONE_DAY, get_settings())
        recorded = connection.execute(sa.text("SELECT count(*) FROM value_rates")).scalar_one()
    assert recorded == 0
    assert figures.currency is None and figures.value_saved_amount is None and figures.ai_cost_usd is None
    assert figures.hours_saved_per_100_usd is None
    assert figures.ai_input_tokens > 0  # tokens are not money: still shown


def test_a_rate_is_recorded_with_the_aggregate_and_a_change_does_not_rewrite_it(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = DAY + timedelta(days=40)
    _seed(analytics_engine, _money(monkeypatch))  # first rates: from the beginning
    raised = _money(monkeypatch, rate=60)
    with analytics_engine.begin() as connection:
        rebuild = record_rates(connection, raised, later)  # seen first on `later`
        assert rebuild == []  # nothing from `later` on is aggregated yet
        insert_dataset(connection, raised, day=later, suffix="-later")
        recompute_dates(connection, [DAY, later])  # DAY is rebuilt too (e.g. a late analysis)
        periods = connection.execute(
            sa.text("SELECT effective_from, hourly_rate FROM value_rates ORDER BY effective_from")
        ).all()
        then = queries.figures(connection, queries.Scope(), ONE_DAY, get_settings())
        now = queries.figures(connection, queries.Scope(), DateRange.between(later, later), get_settings())
        rate_ids = connection.execute(
            sa.text("SELECT analysis_date, value_rate_id FROM daily_aggregates WHERE user_id_hash IS NULL")
        ).all()
    assert [(p.effective_from, float(p.hourly_rate)) for p in periods] == [
        (FIRST_RATE_DATE, 45.0),
        (later, 60.0),
    ]
    assert then.value_saved_amount == 105.0  # c3 still at 45/h
    assert now.value_saved_amount == 45 + 15 + 60.0  # c3's hour now at 60/h
    assert len({rate_id for _, rate_id in rate_ids}) == 2

    with analytics_engine.begin() as connection:  # re-price history on purpose
        dates = reprice(connection, raised, DAY)
        recompute_dates(connection, dates)
        repriced = queries.figures(connection, queries.Scope(), ONE_DAY, get_settings())
    assert dates == [DAY, later]
    assert repriced.value_saved_amount == 120.0


def test_a_new_currency_revalues_every_date(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed(analytics_engine, _money(monkeypatch))
    dollars = _money(monkeypatch, currency="USD", rate=50)
    with analytics_engine.begin() as connection:
        rebuild = record_rates(connection, dollars, DAY + timedelta(days=30))
        recompute_dates(connection, rebuild)
        figures = queries.figures(connection, queries.Scope(), ONE_DAY, get_settings())
    assert rebuild == [DAY]
    assert figures.currency == "USD"
    assert figures.value_saved_amount == 45 + 15 + 50.0


def test_reanalysis_replaces_usage_rows(analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.value import record_usage
    from shared.conversation import ModelUsage

    settings = _money(monkeypatch)
    with analytics_engine.begin() as connection:
        insert_dataset(connection, settings)
        record_usage(connection, "c2", [ModelUsage("gpt-4o", 1, 10, 10, 0)], settings)
        rows = connection.execute(
            sa.text("SELECT model, cost_usd FROM conversation_model_usage WHERE conversation_id = 'c2'")
        ).all()
    assert [row.model for row in rows] == ["gpt-4o"]


def test_csv_carries_value_and_cost_columns(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import csv
    import io

    from functions.read.csv_export import stream_csv

    def export() -> dict[str, dict[str, str]]:
        text = b"".join(stream_csv(analytics_engine, get_settings(), DAY, DAY)).decode()
        return {row["conversation_id"]: row for row in csv.DictReader(io.StringIO(text))}

    _seed(analytics_engine, _money(monkeypatch))
    rows = export()
    assert rows["c1"]["ai_cost_usd"] == "3.250000"
    assert (rows["c1"]["currency"], rows["c1"]["hourly_rate"], rows["c1"]["value_saved_amount"]) == (
        "EUR",
        "90.00",
        "45.00",
    )
    assert rows["c2"]["hourly_rate"] == "30.00"  # in Legal and Support: the lower rate
    assert rows["c2"]["ai_unpriced_tokens"] == "6000"
    assert rows["c3"]["value_saved_high_amount"] == "90.00"
    assert rows["c1"]["analysis_cost_usd"] == "0.010000"

    _money(monkeypatch, rate=None)
    rows = export()
    assert rows["c1"]["value_saved_amount"] == "" and rows["c1"]["ai_cost_usd"] == ""
    assert rows["c1"]["ai_input_tokens"] == "1000000"


def test_the_dashboard_shows_money_only_when_set(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import datetime, time

    from functions.api.app import create_app
    from functions.api.services import ApiServices
    from tests.value_dataset import ZONE

    def page() -> str:
        clock = datetime.combine(DAY + timedelta(days=1), time(12), ZONE)
        client = create_app(services=ApiServices(get_settings(), clock=lambda: clock)).test_client()
        response = client.get("/?days=7", headers={"Authorization": "Bearer local-dev-password"})
        assert response.status_code == 200
        return response.get_data(as_text=True)

    monkeypatch.setenv("ANALYTICS_MIN_GROUP_SIZE", "1")
    _seed(analytics_engine, _money(monkeypatch))
    html = page()
    assert 'id="kpi-value"' in html and "105 EUR" in html and "between 20 and 210 EUR" in html
    assert "4.00 USD" in html and "50.0 h saved per 100 USD" in html
    assert "<strong>gpt-4o-mini</strong> saves the most time per dollar: 666.7 h per 100 USD" in html
    assert "0.60 USD*" in html  # llama3.1:8b's conversation: partly unpriced
    assert "60 (20–120)" in html  # Legal's value and band

    _money(monkeypatch, rate=None)
    html = page()
    assert 'id="kpi-value"' not in html and "EUR" not in html and "USD" not in html


MONEY_FIELD_UNITS = {
    "ai_input_tokens": "tokens",
    "ai_output_tokens": "tokens",
    "ai_cached_tokens": "tokens",
    "ai_unpriced_tokens": "tokens",
    "ai_cost_usd": "USD",
    "analysis_cost_usd": "USD",
    "currency": "ISO 4217",
    "value_saved_amount": "`currency`",
    "value_saved_low_amount": "`currency`",
    "value_saved_high_amount": "`currency`",
    "hours_saved_per_100_usd": "Hours saved per 100 USD",
    "hours_saved_per_100_usd_low": "Hours saved per 100 USD",
    "hours_saved_per_100_usd_high": "Hours saved per 100 USD",
    "value_per_usd": "per USD",
    "value_per_usd_low": "Value saved ÷ AI cost",
    "value_per_usd_high": "Value saved ÷ AI cost",
}


def test_the_openapi_document_gives_every_new_field_its_unit() -> None:
    from functions.api.app import ROUTES
    from functions.api.openapi import build_openapi

    schemas = build_openapi(ROUTES, session_cookie="s")["components"]["schemas"]
    for schema in ("SummaryResponse", "DailyPoint", "DimensionRow", "GroupRow", "UserRow"):
        properties = schemas[schema]["properties"]
        for name, unit in MONEY_FIELD_UNITS.items():
            assert unit in properties[name]["description"], (schema, name)
        assert "lower bound" in properties["ai_cost_complete"]["description"]


def test_the_pipeline_records_usage_per_model_and_the_aggregator_records_rates(
    tmp_path: Path, analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from functions import dispatcher
    from infra.local_queues import inline_queue
    from infra.openwebui_fixture import ChatBuilder, OpenWebUIFixture
    from shared.db import reset_engines
    from tests.test_usage import OLLAMA, OPENAI

    fixture = OpenWebUIFixture.sqlite(tmp_path / "webui.db")
    person = fixture.add_user(name="Person", email="p@corp.example")
    chat = ChatBuilder(start=datetime(2026, 11, 20, 9, 0, tzinfo=UTC), model="gpt-4o")
    question = chat.user("Write a function that parses dates", after=0)
    chat.assistant("def parse(): ...", after=40, extra={"usage": OPENAI})
    chat.regenerate(question, "def parse(text): ...", model="llama3.1:8b", extra={"usage": OLLAMA})
    chat.user("Add tests", after=120)
    chat.assistant("def test_parse(): ...", after=30, extra={"usage": OPENAI})
    fixture.add_chat(person, chat)
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", f"sqlite:///{tmp_path / 'webui.db'}")
    monkeypatch.setenv("ANALYTICS_QUEUE_BACKEND", "inline")
    settings = _money(monkeypatch)
    reset_engines()

    for force in (False, True):  # a forced re-analysis replaces the rows, in the same transaction
        run = dispatcher.dispatch(
            target_date=date(2026, 11, 20), settings=settings, queue=inline_queue(settings), force=force
        )
        with analytics_engine.connect() as connection:
            status = connection.execute(
                sa.text("SELECT status FROM processing_log WHERE id = :id"), {"id": run.run_id}
            ).scalar_one()
        assert status == "completed"
        with analytics_engine.connect() as connection:
            usage = connection.execute(
                sa.text(
                    "SELECT model, answers, input_tokens, output_tokens, cached_tokens, cost_usd "
                    "FROM conversation_model_usage ORDER BY model"
                )
            ).all()
            figures = queries.figures(
                connection,
                queries.Scope(),
                DateRange.between(date(2026, 11, 20), date(2026, 11, 20)),
                settings,
            )
            rate_ids = (
                connection.execute(sa.text("SELECT DISTINCT value_rate_id FROM daily_aggregates"))
                .scalars()
                .all()
            )
            rates = connection.execute(sa.text("SELECT hourly_rate, currency FROM value_rates")).all()
        gpt_cost = 2 * (200 * 2.5 + 1000 * 1.25 + 300 * 10) / 1e6
        assert [tuple(row) for row in usage] == [
            ("gpt-4o", 2, 2400, 600, 2000, Decimal(str(gpt_cost))),
            ("llama3.1:8b", 1, 26, 298, 0, None),
        ]
        assert figures.ai_cost_usd == round(gpt_cost, 6) and figures.ai_unpriced_tokens == 324
        assert figures.currency == "EUR" and figures.value_saved_amount is not None
        assert [(float(r.hourly_rate), r.currency) for r in rates] == [(45.0, "EUR")]
        assert len(rate_ids) == 1 and rate_ids[0] is not None


# --- rates set on a database aggregated before: a true amount or pending, never 0 -------------


def _rates(
    monkeypatch: pytest.MonkeyPatch, rate: float | None, currency: str | None, groups: str = "{}"
) -> Settings:
    for variable, value in (("ANALYTICS_HOURLY_RATE", rate), ("ANALYTICS_CURRENCY", currency)):
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, str(value))
    monkeypatch.setenv("ANALYTICS_GROUP_HOURLY_RATES", groups)
    reset_settings_cache()
    return get_settings()


def _aggregated_without_money(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dataset analysed and aggregated while no rate was configured."""
    settings = _rates(monkeypatch, None, None)
    _seed(engine, settings)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM value_rates")).scalar_one() == 0


def _value_columns(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for table in ("daily_aggregates", "daily_breakdowns")
            for row in connection.execute(
                sa.text(
                    "SELECT analysis_date, coalesce(user_id_hash, ''), value_saved_milli, value_saved_low_milli, "
                    f"value_saved_high_milli, value_rate_id FROM {table} ORDER BY 1, 2, 3, 4, 5"
                    if table == "daily_aggregates"
                    else "SELECT analysis_date, group_id || '/' || dimension || '/' || dimension_value, "
                    "value_saved_milli, value_saved_low_milli, value_saved_high_milli, value_rate_id "
                    f"FROM {table} ORDER BY 1, 2"
                )
            )
        ]


def _client(settings: Settings, engine: Engine) -> Any:
    from datetime import datetime, time

    from functions.api.app import create_app
    from functions.api.services import ApiServices
    from tests.value_dataset import ZONE

    clock = datetime.combine(DAY + timedelta(days=3), time(12), ZONE)
    services = ApiServices(settings, engine_factory=lambda: engine, clock=lambda: clock)
    return create_app(services=services).test_client()


_ADMIN = {"Authorization": "Bearer local-dev-password"}
_RANGE = f"start_date={DAY.isoformat()}&end_date={DAY.isoformat()}"


def test_a_rate_set_on_an_aggregated_database_values_all_history_at_once(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _aggregated_without_money(analytics_engine, monkeypatch)
    settings = _rates(monkeypatch, 50, "EUR")  # the ANALYTICS_HOURLY_RATE=50 ANALYTICS_CURRENCY=EUR
    with analytics_engine.connect() as connection:  # what the stored aggregates say before any process starts
        before = queries.figures(connection, queries.Scope(), ONE_DAY, settings)
    assert before.value_status == "pending" and before.value_saved_amount is None  # not 0
    assert before.value_note and "nightly" in before.value_note

    client = _client(settings, analytics_engine)  # the api starts with the new rates
    summary = client.get(f"/api/v1/analytics/summary?{_RANGE}", headers=_ADMIN)
    assert summary.status_code == 200, summary.get_data(as_text=True)
    current = summary.get_json()
    # 120 minutes saved (20 low, 240 high) at 50 EUR/h
    assert (current["currency"], current["value_status"]) == ("EUR", "valued")
    assert (
        current["value_saved_amount"],
        current["value_saved_low_amount"],
        current["value_saved_high_amount"],
    ) == (
        100.0,
        16.67,
        200.0,
    )
    assert current["value_note"] is None
    html = client.get("/?days=7", headers=_ADMIN).get_data(as_text=True)
    assert 'id="kpi-value"' in html and "100 EUR" in html and "between 17 and 200 EUR" in html
    assert "pending" not in html

    # The arithmetic on the aggregates equals a rebuild from the analyses, to the thousandth.
    revalued = _value_columns(analytics_engine)
    with analytics_engine.begin() as connection:
        recompute_dates(connection, [DAY])
    assert _value_columns(analytics_engine) == revalued
    with analytics_engine.connect() as connection:
        periods = connection.execute(sa.text("SELECT effective_from, hourly_rate FROM value_rates")).all()
    assert [(p.effective_from, float(p.hourly_rate)) for p in periods] == [(FIRST_RATE_DATE, 50.0)]


def test_while_another_instance_records_the_rates_the_money_is_pending(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.value import _RATES_LOCK_KEY

    _aggregated_without_money(analytics_engine, monkeypatch)
    settings = _rates(monkeypatch, 50, "EUR")
    client = _client(settings, analytics_engine)
    with analytics_engine.connect() as other, other.begin():  # another instance holds the lock
        other.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _RATES_LOCK_KEY})
        summary = client.get(f"/api/v1/analytics/summary?{_RANGE}", headers=_ADMIN).get_json()
        html = client.get("/?days=7", headers=_ADMIN).get_data(as_text=True)
        report = client.get(f"/report?{_RANGE}", headers=_ADMIN)
    assert report.status_code == 200
    headline = report.get_data(as_text=True).split('id="headline-value"', 1)[1].split("</div>", 1)[0]
    assert "pending" in headline and "EUR" not in headline
    assert summary["currency"] == "EUR" and summary["value_status"] == "pending"
    assert summary["value_saved_amount"] is None and summary["value_per_usd"] is None
    assert summary["hours_saved_per_100_usd"] == 50.0  # no rate needed: still shown
    assert 'id="value-pending"' in html and "0 EUR" not in html
    # Once the lock is free the next request records them: the amount, computed.
    summary = client.get(f"/api/v1/analytics/summary?{_RANGE}", headers=_ADMIN).get_json()
    assert (summary["value_status"], summary["value_saved_amount"]) == ("valued", 100.0)


def test_group_rates_set_later_are_rebuilt_from_the_analyses(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.value import ensure_rates

    _aggregated_without_money(analytics_engine, monkeypatch)
    settings = _rates(monkeypatch, RATE, "EUR", json.dumps(GROUP_RATES))
    assert ensure_rates(analytics_engine, settings, DAY + timedelta(days=3)) == [DAY]
    assert ensure_rates(analytics_engine, settings, DAY + timedelta(days=3)) == []  # once per process
    with analytics_engine.connect() as connection:
        figures = queries.figures(connection, queries.Scope(), ONE_DAY, settings)
    assert (figures.value_status, figures.value_saved_amount, figures.value_saved_high_amount) == (
        "valued",
        105.0,
        210.0,
    )


def test_rates_after_a_time_without_money_value_that_time_too(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.value import ensure_rates

    later = DAY + timedelta(days=20)
    _seed(analytics_engine, _rates(monkeypatch, RATE, "EUR"))  # DAY valued at 45
    off = _rates(monkeypatch, None, None)
    assert ensure_rates(analytics_engine, off, later) == []  # money off from `later` on
    with analytics_engine.begin() as connection:
        insert_dataset(connection, off, day=later, suffix="-later")
        recompute_dates(connection, [later])  # aggregated without money
    on = _rates(monkeypatch, 60, "EUR")
    assert ensure_rates(analytics_engine, on, later + timedelta(days=5)) == [later]
    with analytics_engine.connect() as connection:
        then = queries.figures(connection, queries.Scope(), ONE_DAY, on)
        gap = queries.figures(connection, queries.Scope(), DateRange.between(later, later), on)
        both = queries.figures(connection, queries.Scope(), DateRange.between(DAY, later), on)
    assert then.value_saved_amount == 90.0  # 120 minutes at 45, as valued then
    assert (gap.value_status, gap.value_saved_amount) == ("valued", 120.0)  # at 60: never valued before
    assert both.value_saved_amount == 210.0


def test_a_second_process_with_the_same_rates_has_nothing_to_do(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.value import ensure_rates

    _aggregated_without_money(analytics_engine, monkeypatch)
    settings = _rates(monkeypatch, 50, "EUR")
    assert ensure_rates(analytics_engine, settings, DAY + timedelta(days=1)) == [DAY]
    other_process_engine = sa.create_engine(analytics_engine.url)
    try:
        assert ensure_rates(other_process_engine, settings, DAY + timedelta(days=1)) == []
    finally:
        other_process_engine.dispose()
