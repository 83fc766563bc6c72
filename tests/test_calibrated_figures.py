"""Calibrated figures (ANALYTICS_CALIBRATION = off | show | apply) over synthetic confirmations of known bias.

Synthetic data on one day: 24 coding conversations (most likely minutes log-uniform in
10–200, 5 active minutes each) whose owners confirmed 1.6 × most likely × exp(N(0, 0.3²));
3 writing conversations confirmed at 0.5 × most likely (below the minimum of 8: factor 1);
4 research conversations nobody confirmed (factor 1). The aggregation is the real
aggregator (`aggregate_run`) over runs opened in the real ledger.
"""

from __future__ import annotations

import csv
import io
import math
import random
import re
import statistics
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from functions import aggregator, runs
from functions.api import create_app
from functions.api.app import API_PREFIX
from functions.api.services import ApiServices
from functions.calibrated import fingerprint, settings_bounds
from functions.dimensions import CATEGORY
from functions.read.csv_export import CSV_COLUMNS, stream_csv
from infra.cli import cli
from shared.config import CalibrationMode, Settings, get_settings, reset_settings_cache
from tests.ground_truth_support import add_analysis, add_confirmation

AUTH = {"Authorization": "Bearer local-dev-password"}
ZONE = ZoneInfo("Europe/Budapest")
DAY = date(2026, 6, 10)
LATER = date(2026, 6, 20)
MINIMUM = 8
BIAS = 1.6
SIGMA = 0.3
TOLERANCE = 0.15  # relative, on the recovered coding factor (24 pairs: the median's error is ~6 %)
ACTIVE = 5


def _mode(monkeypatch: pytest.MonkeyPatch, mode: str) -> Settings:
    monkeypatch.setenv("ANALYTICS_CALIBRATION", mode)
    monkeypatch.setenv("ANALYTICS_CALIBRATION_MIN_CONFIRMATIONS", str(MINIMUM))
    reset_settings_cache()
    return get_settings()


def _person(number: int) -> str:
    return f"{number:064x}"


def seed(engine: Engine, day: date = DAY) -> dict[str, dict[str, Any]]:
    """The synthetic conversations of `day` and their confirmations; returns each one's estimate."""
    rng = random.Random(20261202)
    made: dict[str, dict[str, Any]] = {}
    tag = day.isoformat()
    for number in range(24):
        likely = round(math.exp(rng.uniform(math.log(10), math.log(200))))
        cid = f"coding-{tag}-{number}"
        made[cid] = {"category": "coding", "most_likely": likely, "low": likely // 2, "high": likely * 2}
        confirmed = max(1, round(BIAS * likely * math.exp(rng.gauss(0, SIGMA))))
        made[cid]["confirmed"] = confirmed
    for number in range(3):
        likely = 40 + 10 * number
        made[f"writing-{tag}-{number}"] = {
            "category": "writing",
            "most_likely": likely,
            "low": likely // 2,
            "high": likely * 2,
            "confirmed": likely // 2,
        }
    for number in range(4):
        likely = 30 + 5 * number
        made[f"research-{tag}-{number}"] = {
            "category": "research",
            "most_likely": likely,
            "low": likely // 2,
            "high": likely * 2,
        }
    for index, (cid, row) in enumerate(made.items()):
        add_analysis(
            engine,
            cid,
            user_id_hash=_person(index + 1),
            low=row["low"],
            most_likely=row["most_likely"],
            high=row["high"],
            active=ACTIVE,
            category=row["category"],
            day=day,
        )
        if "confirmed" in row:
            add_confirmation(engine, cid, _person(index + 1), confirmed_minutes=row["confirmed"])
    return made


def night(engine: Engine, run_date: date, conversations: list[tuple[str, date]]) -> uuid.UUID:
    """A run in the ledger whose outcomes are these analysed conversations, then the real aggregator."""
    with engine.begin() as connection:
        opened = runs.open_run(
            connection,
            run_date=run_date,
            trigger="manual",
            force=False,
            idempotency_key=str(uuid.uuid4()),
            expected=len(conversations),
            deferred=0,
        )
        for cid, day in conversations:
            runs.record_outcome(
                connection,
                opened.run.run_id,
                runs.OutcomeRecord(cid, runs.Outcome.ANALYZED, analysis_date=day),
            )
    result = aggregator.aggregate_run(opened.run.run_id, engine=engine)
    assert result.completed_now
    return opened.run.run_id


def reference_factor(made: dict[str, dict[str, Any]], category: str) -> tuple[float, float, float]:
    """Median and quartiles (inclusive method) of confirmed ÷ most likely, computed here from scratch."""
    ratios = sorted(
        row["confirmed"] / row["most_likely"]
        for row in made.values()
        if row["category"] == category and "confirmed" in row
    )
    n = len(ratios)

    def at(fraction: float) -> float:
        position = fraction * (n - 1)
        below = math.floor(position)
        above = min(below + 1, n - 1)
        return ratios[below] + (ratios[above] - ratios[below]) * (position - below)

    assert at(0.5) == pytest.approx(statistics.median(ratios))
    return at(0.25), at(0.5), at(0.75)


def _client(settings: Settings, today: date = LATER + timedelta(days=1)) -> FlaskClient:
    clock = datetime.combine(today, time(12), ZONE)
    return create_app(services=ApiServices(settings, clock=lambda: clock)).test_client()


def _get(client: FlaskClient, path: str, **params: Any) -> Any:
    response = client.get(API_PREFIX + path, query_string=params, headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _day(day: date) -> dict[str, str]:
    return {"start_date": day.isoformat(), "end_date": day.isoformat()}


def _expected_saved(made: dict[str, dict[str, Any]], factors: dict[str, float], category: str) -> int:
    return sum(
        max(0, round(row["most_likely"] * factors.get(category, 1.0)) - ACTIVE)
        for row in made.values()
        if row["category"] == category
    )


def _export(engine: Engine, day: date) -> tuple[list[str], dict[str, dict[str, str]]]:
    text = b"".join(stream_csv(engine, get_settings(), day, day)).decode()
    reader = csv.DictReader(io.StringIO(text))
    rows = {row["conversation_id"]: row for row in reader}
    return list(reader.fieldnames or []), rows


def _table(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text(sql), params).all())


def test_off_changes_nothing(analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    made = seed(analytics_engine)
    settings = _mode(monkeypatch, "off")
    assert settings.calibration is CalibrationMode.OFF  # the default
    night(analytics_engine, DAY, [(cid, DAY) for cid in made])
    assert _table(analytics_engine, "SELECT * FROM calibrations") == []
    client = _client(settings)
    summary = _get(client, "/summary", **_day(DAY))
    assert summary["total_time_saved"] == sum(row["most_likely"] - ACTIVE for row in made.values())
    for field in (
        "time_saved_calibrated_minutes",
        "time_saved_calibrated_low_minutes",
        "time_saved_calibrated_high_minutes",
        "manual_time_calibrated_minutes",
        "calibrated_conversation_count",
        "calibration_version",
        "calibration_versions",
    ):
        assert summary[field] is None, field
        assert summary["daily_trend"][0][field] is None
    header, _ = _export(analytics_engine, DAY)
    assert tuple(header) == CSV_COLUMNS
    page = client.get("/?" + "&".join(f"{k}={v}" for k, v in _day(DAY).items()), headers=AUTH)
    html = page.get_data(as_text=True)
    assert 'id="kpi-hours-calibrated"' not in html and "calibration v" not in html
    assert "Calibrated hours" not in html and 'class="num calibrated"' not in html

    # the same data under `show`: the raw figures are the same numbers
    shown = _mode(monkeypatch, "show")
    night(analytics_engine, DAY + timedelta(days=1), [])
    again = _get(_client(shown), "/summary", **_day(DAY))
    assert again["calibration_versions"] == [1]
    assert _raw(again) == _raw(summary)


def _raw(value: Any) -> Any:
    """The response without its calibrated fields, at every depth."""
    if isinstance(value, dict):
        return {k: _raw(v) for k, v in value.items() if "calibrat" not in k}
    if isinstance(value, list):
        return [_raw(v) for v in value]
    return value


def test_show_puts_calibrated_figures_beside_the_raw_ones(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = seed(analytics_engine)
    settings = _mode(monkeypatch, "show")
    night(analytics_engine, DAY, [(cid, DAY) for cid in made])

    q1, median, q3 = reference_factor(made, "coding")
    print(f"\ncoding: true bias {BIAS}, factor {median:.4f} (IQR {q1:.4f}–{q3:.4f})")
    assert abs(median / BIAS - 1) < TOLERANCE
    stored = {
        row.task_category: row
        for row in _table(analytics_engine, "SELECT * FROM calibration_factors WHERE version = 1")
    }
    assert set(stored) == {"coding", "writing"}  # research: nobody answered
    assert stored["coding"].calibrated and stored["coding"].confirmations == 24
    assert float(stored["coding"].factor) == pytest.approx(median, abs=5e-5)
    assert (float(stored["coding"].factor_low), float(stored["coding"].factor_high)) == pytest.approx(
        (q1, q3), abs=5e-5
    )
    assert not stored["writing"].calibrated and stored["writing"].confirmations == 3  # below 8
    assert float(stored["writing"].factor) == 1.0
    factor = float(stored["coding"].factor)

    client = _client(settings)
    by_category = {row["value"]: row for row in _get(client, CATEGORY.route, **_day(DAY))["rows"]}
    coding, writing, research = by_category["coding"], by_category["writing"], by_category["research"]
    # coding: each conversation's most likely × the factor, minus its 5 active minutes
    assert coding["time_saved_calibrated_minutes"] == _expected_saved(made, {"coding": factor}, "coding")
    assert coding["manual_time_calibrated_minutes"] == sum(
        round(row["most_likely"] * factor) for row in made.values() if row["category"] == "coding"
    )
    assert coding["manual_time_calibrated_minutes"] == pytest.approx(
        coding["total_manual_time_estimated"] * factor, abs=12
    )  # raw × factor, up to rounding each of 24 conversations
    assert coding["time_saved_calibrated_low_minutes"] == sum(
        max(0, round(row["most_likely"] * float(stored["coding"].factor_low)) - ACTIVE)
        for row in made.values()
        if row["category"] == "coding"
    )
    assert coding["time_saved_calibrated_low_minutes"] < coding["time_saved_calibrated_minutes"]
    assert coding["time_saved_calibrated_high_minutes"] > coding["time_saved_calibrated_minutes"]
    assert coding["calibrated_conversation_count"] == 24 and coding["calibration_version"] == 1
    # below the minimum and unconfirmed: factor 1, the raw figures and the raw band
    for row in (writing, research):
        assert row["time_saved_calibrated_minutes"] == row["total_time_saved"]
        assert row["time_saved_calibrated_low_minutes"] == row["total_time_saved_low"]
        assert row["time_saved_calibrated_high_minutes"] == row["total_time_saved_high"]
        assert row["calibrated_conversation_count"] == 0

    summary = _get(client, "/summary", **_day(DAY))
    assert summary["time_saved_calibrated_minutes"] == sum(
        row["time_saved_calibrated_minutes"] for row in by_category.values()
    )
    assert summary["total_time_saved"] == sum(row["most_likely"] - ACTIVE for row in made.values())
    assert (summary["calibration_version"], summary["calibration_versions"]) == (1, [1])
    assert summary["calibrated_conversation_count"] == 24 and summary["conversation_count"] == 31
    [point] = summary["daily_trend"]
    assert point["time_saved_calibrated_minutes"] == summary["time_saved_calibrated_minutes"]
    trend = _get(client, "/daily-trend", **_day(DAY))["rows"]
    assert trend[0]["time_saved_calibrated_minutes"] == summary["time_saved_calibrated_minutes"]

    header, rows = _export(analytics_engine, DAY)
    assert tuple(header[: len(CSV_COLUMNS)]) == CSV_COLUMNS
    assert header[len(CSV_COLUMNS) :] == [
        "calibration_version",
        "calibrated",
        "calibration_factor",
        "manual_time_calibrated_minutes",
        "time_saved_calibrated_minutes",
        "time_saved_calibrated_low_minutes",
        "time_saved_calibrated_high_minutes",
    ]
    one = rows["coding-2026-06-10-0"]
    assert (one["calibration_version"], one["calibrated"]) == ("1", "true")
    assert float(one["calibration_factor"]) == factor
    assert int(one["time_saved_calibrated_minutes"]) == max(
        0, round(made["coding-2026-06-10-0"]["most_likely"] * factor) - ACTIVE
    )
    assert int(one["time_saved_minutes"]) == made["coding-2026-06-10-0"]["most_likely"] - ACTIVE  # raw stays
    assert rows["writing-2026-06-10-0"]["calibrated"] == "false"
    assert rows["writing-2026-06-10-0"]["calibration_factor"] == "1"

    html = client.get("/?start_date=2026-06-10&end_date=2026-06-10", headers=AUTH).get_data(as_text=True)
    assert 'id="kpi-hours-calibrated"' in html and "calibrated against people" in html
    assert "calibration v1, 27 confirmations" in html and "24 of 31 conversations" in html
    assert 'id="kpi-calibrated-badge"' not in html  # show: the raw figure stays the headline
    cells = re.findall(r'<td class="num calibrated">([^<]+)(<span class="muted">raw</span>)?</td>', html)
    coding_cell = (
        f"{coding['time_saved_calibrated_minutes'] / 60:,.1f} h "
        f"({coding['time_saved_calibrated_low_minutes'] / 60:,.1f}–"
        f"{coding['time_saved_calibrated_high_minutes'] / 60:,.1f})"
    )
    assert (coding_cell, "") in cells  # the category panel: calibrated beside the raw hours
    assert any(marker for _, marker in cells)  # writing and research: raw, marked so
    hours = re.search(r'<p class="value">([^<]+)</p>', html)
    assert hours is not None and hours.group(1) == f"{summary['total_time_saved'] / 60:,.1f} h"


def test_apply_makes_the_calibrated_figure_the_headline(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = seed(analytics_engine)
    settings = _mode(monkeypatch, "apply")
    night(analytics_engine, DAY, [(cid, DAY) for cid in made])
    client = _client(settings)
    summary = _get(client, "/summary", **_day(DAY))
    assert summary["total_time_saved"] == sum(row["most_likely"] - ACTIVE for row in made.values())  # raw
    calibrated = summary["time_saved_calibrated_minutes"]
    assert calibrated > summary["total_time_saved"]  # people say 60 % more on coding

    html = client.get("/?start_date=2026-06-10&end_date=2026-06-10", headers=AUTH).get_data(as_text=True)
    headline = re.search(r'<p class="value" id="kpi-hours-calibrated">([^<]+)</p>', html)
    assert headline is not None and headline.group(1) == f"{calibrated / 60:,.1f} h"
    assert 'id="kpi-calibrated-badge"' in html
    low, high = summary["time_saved_calibrated_low_minutes"], summary["time_saved_calibrated_high_minutes"]
    assert f"between {low / 60:,.1f} and {high / 60:,.1f} h (the middle half of people" in html
    assert f"estimate before calibration: {summary['total_time_saved'] / 60:,.1f} h" in html
    assert "calibration v1, 27 confirmations" in html and 'href="#calibration"' in html
    header, _ = _export(analytics_engine, DAY)
    assert "time_saved_minutes" in header and "time_saved_calibrated_minutes" in header

    report = client.get("/report?start_date=2026-06-10&end_date=2026-06-10", headers=AUTH)
    assert report.status_code == 200
    text = report.get_data(as_text=True)
    headline = re.search(r'<p class="big" id="headline-hours-calibrated">([^<]+)</p>', text)
    assert headline is not None and headline.group(1) == f"{calibrated / 60:,.1f} h"
    assert 'id="headline-calibration-note">calibration v1, 27 confirmations; 24 of 31 conversations' in text


def test_a_new_confirmation_makes_a_new_version_only_when_aggregated_and_history_keeps_its_own(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = seed(analytics_engine)
    settings = _mode(monkeypatch, "show")
    night(analytics_engine, DAY, [(cid, DAY) for cid in made])
    night(analytics_engine, DAY + timedelta(days=1), [])  # nothing changed: no new version
    assert [row.version for row in _table(analytics_engine, "SELECT version FROM calibrations")] == [1]
    client = _client(settings)
    before = _get(client, "/summary", **_day(DAY))

    # a person answers on a research conversation, three colleagues say 4× on coding ones, and
    # one person changes a coding answer to 10×
    add_confirmation(analytics_engine, "research-2026-06-10-0", _person(900), confirmed_minutes=300)
    for number in range(3):
        cid = f"coding-2026-06-10-{number}"
        add_confirmation(
            analytics_engine, cid, _person(800 + number), confirmed_minutes=4 * made[cid]["most_likely"]
        )
    with analytics_engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE time_confirmations SET confirmed_minutes = 10 * :likely "
                "WHERE conversation_id = 'coding-2026-06-10-3'"
            ),
            {"likely": made["coding-2026-06-10-3"]["most_likely"]},
        )
    assert [row.version for row in _table(analytics_engine, "SELECT version FROM calibrations")] == [1]
    assert _get(client, "/summary", **_day(DAY)) == before  # nothing recalculated before aggregation

    add_analysis(
        analytics_engine,
        "coding-later",
        user_id_hash=_person(950),
        most_likely=100,
        low=50,
        high=200,
        active=ACTIVE,
        day=LATER,
    )
    add_analysis(  # a late conversation of the old date: its rebuild keeps version 1
        analytics_engine,
        "coding-late",
        user_id_hash=_person(951),
        most_likely=80,
        low=40,
        high=160,
        active=ACTIVE,
        day=DAY,
    )
    night(analytics_engine, LATER, [("coding-later", LATER), ("coding-late", DAY)])
    versions = _table(analytics_engine, "SELECT version, confirmations FROM calibrations ORDER BY version")
    assert [tuple(row) for row in versions] == [(1, 27), (2, 31)]
    traced = _table(
        analytics_engine,
        "SELECT conversation_id, confirmed_minutes FROM calibration_confirmations WHERE version = 2",
    )
    assert ("research-2026-06-10-0", 300) in [tuple(row) for row in traced] and len(traced) == 31
    [v2_coding] = _table(
        analytics_engine,
        "SELECT factor FROM calibration_factors WHERE version = 2 AND task_category = 'coding'",
    )
    [v1_coding] = _table(
        analytics_engine,
        "SELECT factor FROM calibration_factors WHERE version = 1 AND task_category = 'coding'",
    )
    assert v2_coding.factor > v1_coding.factor
    # traceable: the stored answers of a version give its stored fingerprint and factors again
    for version in (1, 2):
        stored_rows = _table(
            analytics_engine,
            "SELECT conversation_id, user_id_hash, estimator, task_category, confirmed_minutes, most_likely "
            "FROM calibration_confirmations WHERE version = :v",
            v=version,
        )
        [recorded] = _table(
            analytics_engine, "SELECT fingerprint FROM calibrations WHERE version = :v", v=version
        )
        used = sorted(tuple(row) for row in stored_rows)
        assert (
            fingerprint(
                used,
                minimum=MINIMUM,
                min_people=get_settings().min_group_size,
                bounds=settings_bounds(get_settings()),
            )
            == recorded.fingerprint
        )
        ratios = [
            row.confirmed_minutes / row.most_likely for row in stored_rows if row.task_category == "coding"
        ]
        [factor_row] = _table(
            analytics_engine,
            "SELECT factor FROM calibration_factors WHERE version = :v AND task_category = 'coding'",
            v=version,
        )
        assert float(factor_row.factor) == pytest.approx(statistics.median(ratios), abs=5e-5)

    old = _get(client, "/summary", **_day(DAY))
    new = _get(client, "/summary", **_day(LATER))
    assert old["calibration_versions"] == [1] and new["calibration_versions"] == [2]
    assert new["time_saved_calibrated_minutes"] == max(0, round(100 * float(v2_coding.factor)) - ACTIVE)
    late_v1 = max(0, round(80 * float(v1_coding.factor)) - ACTIVE)
    assert old["time_saved_calibrated_minutes"] == before["time_saved_calibrated_minutes"] + late_v1
    both = _get(client, "/summary", start_date=DAY.isoformat(), end_date=LATER.isoformat())
    assert (both["calibration_version"], both["calibration_versions"]) == (2, [1, 2])
    aggregate_versions = _table(
        analytics_engine,
        "SELECT DISTINCT analysis_date, calibration_version FROM daily_aggregates ORDER BY 1",
    )
    assert [tuple(row) for row in aggregate_versions] == [(DAY, 1), (LATER, 2)]

    # on purpose: history from DAY on takes the latest version
    result = CliRunner().invoke(cli, ["recalibrate", "--from", DAY.isoformat()], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "recalibrated 2 dates from 2026-06-10 with calibration version 2" in result.output
    recalibrated = _get(client, "/summary", **_day(DAY))
    assert recalibrated["calibration_versions"] == [2]
    assert recalibrated["total_time_saved"] == old["total_time_saved"]  # raw untouched
    coding_rows = [row for row in made.values() if row["category"] == "coding"] + [{"most_likely": 80}]
    [v2_research] = _table(
        analytics_engine,
        "SELECT calibrated FROM calibration_factors WHERE version = 2 AND task_category = 'research'",
    )
    assert not v2_research.calibrated  # one answer is below the minimum
    expected = sum(
        max(0, round(row["most_likely"] * float(v2_coding.factor)) - ACTIVE) for row in coding_rows
    ) + sum(row["most_likely"] - ACTIVE for row in made.values() if row["category"] != "coding")
    assert recalibrated["time_saved_calibrated_minutes"] == expected


def test_a_bad_setting_fails_at_startup_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_CALIBRATION", "maybe")
    reset_settings_cache()
    with pytest.raises(Exception, match="ANALYTICS_CALIBRATION") as raised:
        Settings()
    assert "'off', 'show' or 'apply'" in str(raised.value)
    result = CliRunner().invoke(cli, ["calibration"])
    assert result.exit_code != 0
    assert "ANALYTICS_CALIBRATION" in str(result.exception) + result.output


def test_recalibrate_before_any_calibration_and_a_bad_date_are_refused(analytics_engine: Engine) -> None:
    result = CliRunner().invoke(cli, ["recalibrate", "--from", "2026-06-10"])
    assert result.exit_code == 1 and "no calibration yet" in result.output
    result = CliRunner().invoke(cli, ["recalibrate", "--from", "10/06/2026"])
    assert result.exit_code == 2 and "--from" in result.output
    assert _table(analytics_engine, "SELECT * FROM calibration_dates") == []


def test_a_new_minimum_is_a_new_version_and_off_computes_none(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = seed(analytics_engine)
    _mode(monkeypatch, "show")
    night(analytics_engine, DAY, [(cid, DAY) for cid in made])
    monkeypatch.setenv("ANALYTICS_CALIBRATION_MIN_CONFIRMATIONS", "3")
    monkeypatch.setenv("ANALYTICS_MIN_GROUP_SIZE", "3")  # and no fewer than 3 people behind a factor
    reset_settings_cache()
    night(analytics_engine, DAY + timedelta(days=1), [])
    rows = _table(
        analytics_engine,
        "SELECT c.version, c.min_confirmations, f.calibrated FROM calibrations c "
        "JOIN calibration_factors f USING (version) WHERE f.task_category = 'writing' ORDER BY 1",
    )
    assert [tuple(row) for row in rows] == [(1, 8, False), (2, 3, True)]  # 3 answers, 3 people
    # dates keep their version: DAY stays on 1 until recalibrated
    [kept] = _table(analytics_engine, "SELECT version FROM calibration_dates WHERE analysis_date = :d", d=DAY)
    assert kept.version == 1

    monkeypatch.setenv("ANALYTICS_CALIBRATION", "off")
    add_confirmation(analytics_engine, "research-2026-06-10-1", _person(990), confirmed_minutes=90)
    reset_settings_cache()
    night(analytics_engine, DAY + timedelta(days=2), [])
    assert len(_table(analytics_engine, "SELECT version FROM calibrations")) == 2  # off: nothing computed


def test_each_estimator_is_calibrated_by_the_answers_about_its_own_estimates(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A language model and the heuristic err differently: people's answers about the LLM's coding
    estimates (1.6 × too low) never scale the heuristic's coding figures, and the other way round."""
    settings = _mode(monkeypatch, "show")
    made = seed(analytics_engine)  # the LLM's conversations (ground_truth_support's default)
    heuristic = []
    for number in range(MINIMUM):
        cid = f"heuristic-coding-{number}"
        likely = 60 + number
        add_analysis(
            analytics_engine,
            cid,
            user_id_hash=_person(500 + number),
            most_likely=likely,
            low=likely // 2,
            high=likely * 2,
            active=ACTIVE,
            category="coding",
            estimator="heuristic",
            model=None,
            prompt_version="heuristic-v1",
            day=DAY,
        )
        add_confirmation(analytics_engine, cid, _person(500 + number), confirmed_minutes=likely // 2)
        heuristic.append(cid)
    night(analytics_engine, DAY, [(cid, DAY) for cid in [*made, *heuristic]])

    stored = {
        (row.estimator, row.task_category): row
        for row in _table(analytics_engine, "SELECT * FROM calibration_factors WHERE version = 1")
    }
    llm_factor = float(stored[("llm", "coding")].factor)
    heuristic_factor = float(stored[("heuristic", "coding")].factor)
    assert abs(llm_factor / BIAS - 1) < TOLERANCE
    assert heuristic_factor == pytest.approx(0.5, abs=0.01)
    assert stored[("heuristic", "coding")].confirmations == MINIMUM

    figures = _get(_client(settings), "/category-breakdown", **_day(DAY))
    (coding,) = [row for row in figures["rows"] if row["value"] == "coding"]
    expected = sum(
        max(0, round(row["most_likely"] * llm_factor) - ACTIVE)
        for row in made.values()
        if row["category"] == "coding"
    ) + sum(max(0, round((60 + number) * heuristic_factor) - ACTIVE) for number in range(MINIMUM))
    assert coding["time_saved_calibrated_minutes"] == expected


def test_aggregates_built_before_calibration_existed_read_their_raw_figures(
    fresh_database_url: str, tmp_path: Any
) -> None:
    """An installation upgraded to migration 008 has aggregates without calibrated sums: until a
    calibration version exists they are the raw ones (factor 1), not 0."""
    import shutil

    from shared.db import make_engine
    from shared.migrate import MIGRATIONS_DIR, apply_migrations

    before = tmp_path / "before"
    before.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.name < "008":
            shutil.copy(path, before / path.name)
    engine = make_engine(fresh_database_url)
    try:
        apply_migrations(engine, before)
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO daily_aggregates (analysis_date, conversation_count, estimator_counts, "
                    "total_manual_time_low, total_manual_time_estimated, total_manual_time_high, "
                    "total_time_saved, total_time_saved_low, total_time_saved_high) "
                    "VALUES (:d, 2, '{\"llm\": 2}', 30, 90, 200, 80, 20, 190)"
                ),
                {"d": DAY},
            )
        apply_migrations(engine)
        (row,) = _table(
            engine,
            "SELECT total_manual_time_calibrated, total_time_saved_calibrated, "
            "total_time_saved_calibrated_low, total_time_saved_calibrated_high, calibrated_count "
            "FROM daily_aggregates",
        )
        assert tuple(row) == (90, 80, 20, 190, 0)
    finally:
        engine.dispose()


def test_two_people_are_too_few_to_calibrate_even_with_a_floor_of_two() -> None:
    """The median of two people's answers is their mean, which either of them can move at will."""
    from functions.calibrated import MIN_CALIBRATION_PEOPLE, category_factors
    from functions.calibration import LabelledPair
    from functions.calibration_stats import Pair

    def pair(person: str, confirmed: int) -> LabelledPair:
        return LabelledPair("llm", "gpt-4o-mini", "v1", "coding", Pair(confirmed, 30, 60, 120), "c", person)

    two = [pair("a", 60), pair("b", 2400)] * 5
    (factor,) = category_factors(two, minimum=4, min_people=max(2, MIN_CALIBRATION_PEOPLE))
    assert not factor.calibrated and factor.factor == 1
    three = [*two, *[pair("c", 60)] * 5]
    (factor,) = category_factors(three, minimum=4, min_people=max(2, MIN_CALIBRATION_PEOPLE))
    assert factor.calibrated and float(factor.factor) == 1.0  # the middle person, not the extreme
