"""Calibration that resists poisoning: people weigh once, factors are robust and bounded, a big
change waits for an admin's `recalibrate`, and the feedback endpoint limits answers per day.

The aggregation is the real aggregator over runs in the real ledger (`tests/test_calibrated_figures`'s
`night`); the dashboard is the real admin page's HTML.
"""

from __future__ import annotations

import html
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from functions.api import create_app
from functions.api.app import API_PREFIX
from functions.api.services import ApiServices
from functions.calibrated import category_factors
from functions.calibration import LabelledPair
from functions.calibration_stats import Pair
from infra.cli import cli
from shared.config import get_settings, reset_settings_cache
from tests.ground_truth_support import add_analysis, add_confirmation
from tests.test_calibrated_figures import night

AUTH = {"Authorization": "Bearer local-dev-password"}
ZONE = ZoneInfo("Europe/Budapest")
DAY = date(2026, 6, 10)
LATER = date(2026, 6, 20)
HONEST = 2.5
POISON = 100
PEOPLE = 5
PER_PERSON = 2  # conversations per person and day
LIKELY = 20  # most likely minutes of every conversation (100 × 20 = 2000, under the 2400 cap)
ACTIVE = 5


def _person(number: int) -> str:
    return f"{number:064x}"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ANALYTICS_CALIBRATION", "show")
    monkeypatch.setenv("ANALYTICS_CALIBRATION_MIN_CONFIRMATIONS", "5")
    reset_settings_cache()
    return get_settings()


def _answered_day(engine: Engine, day: date, ratios: list[float]) -> list[tuple[str, date]]:
    """`PER_PERSON` coding conversations per person on `day`, each answered at the person's ratio."""
    made = []
    for person, ratio in enumerate(ratios, start=1):
        for number in range(PER_PERSON):
            cid = f"coding-{day}-{person}-{number}"
            add_analysis(
                engine,
                cid,
                user_id_hash=_person(person),
                low=LIKELY // 2,
                most_likely=LIKELY,
                high=LIKELY * 2,
                active=ACTIVE,
                category="coding",
                day=day,
            )
            add_confirmation(engine, cid, _person(person), confirmed_minutes=round(ratio * LIKELY))
            made.append((cid, day))
    return made


def _rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text(sql), params).all())


def _coding(engine: Engine, version: int) -> Any:
    (row,) = _rows(
        engine,
        "SELECT factor, factor_low, factor_high, unbounded_factor FROM calibration_factors "
        "WHERE version = :v AND estimator = 'llm' AND task_category = 'coding'",
        v=version,
    )
    return row


def _admin_page(settings: Any) -> str:
    clock = datetime.combine(LATER + timedelta(days=1), time(12), ZONE)
    client = create_app(services=ApiServices(settings, clock=lambda: clock)).test_client()
    query = {"start_date": DAY.isoformat(), "end_date": LATER.isoformat()}
    response = client.get("/", query_string=query, headers=AUTH)
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def test_three_of_five_people_answering_100x_leave_the_factor_bounded_and_pending(
    analytics_engine: Engine, settings: Any
) -> None:
    night(analytics_engine, DAY, _answered_day(analytics_engine, DAY, [HONEST] * PEOPLE))
    assert float(_coding(analytics_engine, 1).factor) == HONEST
    assert "calibration change is pending" not in _admin_page(settings)

    # three of the five now answer 100× on a later day's conversations
    later = _answered_day(analytics_engine, LATER, [HONEST, HONEST, POISON, POISON, POISON])
    night(analytics_engine, LATER, later)
    versions = _rows(analytics_engine, "SELECT version, pending FROM calibrations ORDER BY version")
    assert [tuple(row) for row in versions] == [(1, False), (2, True)]
    poisoned = _coding(analytics_engine, 2)
    bound = settings.calibration_factor_max
    assert float(poisoned.factor) == bound  # within its bound, not 100 × … or the people's median
    assert float(poisoned.factor_high) <= bound
    assert poisoned.unbounded_factor > bound  # what the answers said is kept, for the admin to see

    # the new date is calibrated with the applied version 1, not with the pending one
    dates = _rows(analytics_engine, "SELECT analysis_date, version FROM calibration_dates ORDER BY 1")
    assert [tuple(row) for row in dates] == [(DAY, 1), (LATER, 1)]
    (saved,) = _rows(
        analytics_engine,
        "SELECT total_time_saved_calibrated FROM daily_aggregates WHERE analysis_date = :d "
        "AND user_id_hash IS NULL",
        d=LATER,
    )
    assert saved.total_time_saved_calibrated == PEOPLE * PER_PERSON * (round(HONEST * LIKELY) - ACTIVE)

    page = _admin_page(settings)
    unbounded = f"{Decimal(poisoned.unbounded_factor):.2f}"
    expected = (
        f"a calibration change is pending: coding (llm) 2.50 → {bound:.2f} "
        f"(bounded; the answers say {unbounded}); run recalibrate to apply"
    )
    assert expected in page

    printed = CliRunner().invoke(cli, ["calibration"], catch_exceptions=False)
    assert expected in printed.output

    # the admin applies it on purpose
    result = CliRunner().invoke(cli, ["recalibrate", "--from", DAY.isoformat()], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "applied the pending calibration version 2: coding (llm) 2.50 → 4.00" in result.output
    assert [tuple(row) for row in _rows(analytics_engine, "SELECT version, pending FROM calibrations")] == [
        (1, False),
        (2, False),
    ]
    assert "calibration change is pending" not in _admin_page(settings)
    (saved,) = _rows(
        analytics_engine,
        "SELECT total_time_saved_calibrated FROM daily_aggregates WHERE analysis_date = :d "
        "AND user_id_hash IS NULL",
        d=LATER,
    )
    assert saved.total_time_saved_calibrated == PEOPLE * PER_PERSON * (round(bound * LIKELY) - ACTIVE)


def test_a_small_change_applies_without_an_admin(analytics_engine: Engine, settings: Any) -> None:
    night(analytics_engine, DAY, _answered_day(analytics_engine, DAY, [HONEST] * PEOPLE))
    night(analytics_engine, LATER, _answered_day(analytics_engine, LATER, [3.0] * PEOPLE))  # ×1.1
    versions = _rows(analytics_engine, "SELECT version, pending FROM calibrations ORDER BY version")
    assert [tuple(row) for row in versions] == [(1, False), (2, False)]
    dates = _rows(analytics_engine, "SELECT analysis_date, version FROM calibration_dates ORDER BY 1")
    assert [tuple(row) for row in dates] == [(DAY, 1), (LATER, 2)]
    assert "calibration change is pending" not in _admin_page(settings)


def _pair(person: str, ratio: float, conversation: str = "c") -> LabelledPair:
    return LabelledPair("llm", "m", "v1", "coding", Pair(ratio * 20, 10, 20, 40), conversation, person)


def test_a_minority_cannot_move_the_factor_out_of_the_honest_answers() -> None:
    """Two of five answering 100× (even 50 times each) leave the factor among the honest people's."""
    honest = [_pair(name, ratio) for name, ratio in (("a", 2.0), ("b", 2.5), ("c", 3.0))]
    poison = [_pair(name, POISON, f"c{n}") for name in ("x", "y") for n in range(50)]
    (factor,) = category_factors([*honest, *poison], minimum=5, min_people=3, bounds=(0.25, 4))
    assert factor.calibrated and 2.0 <= float(factor.factor) <= 3.0
    assert factor.unbounded is None


def test_each_person_weighs_once_however_often_they_answer() -> None:
    many = [_pair("loud", 0.1, f"c{n}") for n in range(200)]
    quiet = [_pair(name, 2.0) for name in ("a", "b", "c", "d")]
    (factor,) = category_factors([*many, *quiet], minimum=5, min_people=3, bounds=(0.25, 4))
    assert float(factor.factor) == 2.0  # 1 of 5 people, not 200 of 204 answers


def test_bounds_hold_the_band_too_and_keep_what_the_answers_said() -> None:
    low = [_pair(name, 0.01) for name in "abcde"]
    (factor,) = category_factors(low, minimum=5, min_people=3, bounds=(0.25, 4))
    assert (factor.factor, factor.factor_low, factor.factor_high) == (Decimal("0.25"),) * 3
    assert factor.unbounded == Decimal("0.01")


def test_factor_bound_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (
        ("ANALYTICS_CALIBRATION_FACTOR_MIN", "2"),
        ("ANALYTICS_CALIBRATION_FACTOR_MAX", "0.5"),
        ("ANALYTICS_CALIBRATION_CHANGE_THRESHOLD", "1"),
        ("ANALYTICS_FEEDBACK_DAILY_LIMIT", "0"),
    ):
        monkeypatch.setenv(name, value)
        reset_settings_cache()
        with pytest.raises(Exception, match=name):
            get_settings()
        monkeypatch.delenv(name)
    reset_settings_cache()


def test_the_calibration_api_still_answers_with_a_pending_change(
    analytics_engine: Engine, settings: Any
) -> None:
    night(analytics_engine, DAY, _answered_day(analytics_engine, DAY, [HONEST] * PEOPLE))
    night(analytics_engine, LATER, _answered_day(analytics_engine, LATER, [POISON] * PEOPLE))
    client = create_app(services=ApiServices(settings)).test_client()
    report = client.get(API_PREFIX + "/calibration", headers=AUTH)
    assert report.status_code == 200 and report.get_json()["compared"] == 2 * PEOPLE * PER_PERSON
