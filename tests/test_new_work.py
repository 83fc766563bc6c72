"""New work enabled: "I would not have done this without AI" counts apart, never as hours saved.

Three analysed coding conversations on one day; the owner of one says it is new work. The
real aggregator (a run in the real ledger) brings the answer in; every place hours appear
(summary, category breakdown, CSV, monthly report, dashboard) leaves that conversation's
minutes out and shows it as new work instead.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions.api import create_app
from functions.api.app import API_PREFIX
from functions.api.services import ApiServices
from functions.calibration import confirmation_report
from functions.read.csv_export import stream_csv
from shared.config import get_settings, reset_settings_cache
from tests.ground_truth_support import add_analysis, add_confirmation
from tests.test_calibrated_figures import night

AUTH = {"Authorization": "Bearer local-dev-password"}
ZONE = ZoneInfo("Europe/Budapest")
DAY = date(2026, 6, 10)
# (conversation, person, most likely, active): c3 is the new work
ROWS = (("c1", 1, 60, 10), ("c2", 2, 90, 15), ("c3", 3, 240, 50))
RATE = 60  # per hour: a minute is worth 1


def _person(number: int) -> str:
    return f"{number:064x}"


@pytest.fixture
def engine(analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("ANALYTICS_CALIBRATION", "show")
    monkeypatch.setenv("ANALYTICS_HOURLY_RATE", str(RATE))
    monkeypatch.setenv("ANALYTICS_CURRENCY", "EUR")
    monkeypatch.setenv("ANALYTICS_MIN_GROUP_SIZE", "1")
    reset_settings_cache()
    for cid, person, likely, active in ROWS:
        add_analysis(
            analytics_engine,
            cid,
            user_id_hash=_person(person),
            low=likely // 2,
            most_likely=likely,
            high=likely * 2,
            active=active,
            day=DAY,
        )
    night(analytics_engine, DAY, [(cid, DAY) for cid, *_ in ROWS])
    return analytics_engine


def _client() -> Any:
    clock = datetime.combine(DAY + timedelta(days=1), time(12), ZONE)
    return create_app(services=ApiServices(get_settings(), clock=lambda: clock)).test_client()


def _summary() -> dict[str, Any]:
    query = {"start_date": DAY.isoformat(), "end_date": DAY.isoformat()}
    response = _client().get(API_PREFIX + "/summary", query_string=query, headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def test_new_work_counts_apart_and_never_as_hours_saved(engine: Engine) -> None:
    before = _summary()
    assert before["total_time_saved"] == (60 - 10) + (90 - 15) + (240 - 50)
    assert before["new_work_conversations"] == 0

    add_confirmation(engine, "c3", _person(3), new_work=True)
    assert _summary() == before  # the answer is stored; the figures follow at the next run
    night(engine, DAY + timedelta(days=1), [])

    after = _summary()
    saved = (60 - 10) + (90 - 15)
    assert after["total_time_saved"] == saved
    assert after["total_time_saved_low"] == (30 - 10) + (45 - 15)
    assert after["total_time_saved_high"] == (120 - 10) + (180 - 15)
    assert after["total_time_saved_successful"] == saved
    with engine.connect() as connection:  # no calibration yet (null in the API), but summed raw
        calibrated = connection.execute(
            sa.text(
                "SELECT total_time_saved_calibrated FROM daily_aggregates "
                "WHERE analysis_date = :d AND user_id_hash IS NULL"
            ),
            {"d": DAY},
        ).scalar_one()
    assert calibrated == saved
    assert after["value_saved_amount"] == pytest.approx(saved * RATE / 60)
    assert (after["new_work_conversations"], after["new_work_active_minutes"]) == (1, 50)
    assert after["conversation_count"] == 3 and after["total_active_time"] == 75  # still conversations
    assert after["unsuccessful_count"] == 0  # new work is not a failure

    query = {"start_date": DAY.isoformat(), "end_date": DAY.isoformat()}
    breakdown = _client().get(API_PREFIX + "/category-breakdown", query_string=query, headers=AUTH)
    (coding,) = [row for row in breakdown.get_json()["rows"] if row["value"] == "coding"]
    assert (coding["total_time_saved"], coding["new_work_conversations"]) == (saved, 1)

    text = b"".join(stream_csv(engine, get_settings(), DAY, DAY)).decode()
    rows = {row["conversation_id"]: row for row in csv.DictReader(io.StringIO(text))}
    assert rows["c3"]["new_work"] == "true" and rows["c1"]["new_work"] == "false"
    assert rows["c3"]["time_saved_minutes"] == "0" and rows["c1"]["time_saved_minutes"] == "50"
    assert rows["c3"]["time_saved_successful_minutes"] == "0"
    assert Decimal(rows["c3"]["value_saved_amount"]) == 0
    assert rows["c3"]["time_saved_calibrated_minutes"] == "0"
    assert rows["c3"]["manual_time_most_likely_minutes"] == "240"  # the estimate itself is kept

    report = _client().get(f"/report?month={DAY:%Y-%m}", headers=AUTH).get_data(as_text=True)
    assert "New work enabled: 1 conversation" in report
    page = _client().get("/", query_string=query, headers=AUTH).get_data(as_text=True)
    assert 'id="kpi-new-work"' in page and "new work enabled: 1 conversation" in page

    with engine.connect() as connection:
        calibration = confirmation_report(connection, minimum=5)
    assert (calibration.new_work, calibration.compared, calibration.awaiting_analysis) == (1, 0, 0)


def test_changing_the_answer_back_to_minutes_counts_the_time_again(engine: Engine) -> None:
    add_confirmation(engine, "c3", _person(3), new_work=True)
    night(engine, DAY + timedelta(days=1), [])
    assert _summary()["new_work_conversations"] == 1
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE time_confirmations SET new_work = false, confirmed_minutes = 200 "
                "WHERE conversation_id = 'c3'"
            )
        )
    night(engine, DAY + timedelta(days=2), [])
    summary = _summary()
    assert summary["new_work_conversations"] == 0
    assert summary["total_time_saved"] == (60 - 10) + (90 - 15) + (240 - 50)
    assert json.dumps(summary)  # still a plain JSON document
