"""The command line, against the embedded Postgres and an Open WebUI-shaped database."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from functions.dates import MAX_RANGE_DAYS, checked_day, checked_range
from functions.read.schemas import TriggerQuery
from infra.cli import cli
from shared.config import get_settings, reset_settings_cache
from shared.db import reset_engines
from shared.errors import InvalidParameter
from shared.pseudonym import pseudonymise
from tests.pipeline_support import Dataset, assert_books_balance, build_dataset, rows

DAYS = [date(2026, 11, 14), date(2026, 11, 15)]


@pytest.fixture
def dataset(tmp_path: Path, analytics_url: str, monkeypatch: pytest.MonkeyPatch) -> Dataset:
    data = build_dataset(tmp_path / "webui.db", days=DAYS, chats_per_day=5)
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", data.url)
    reset_settings_cache()
    reset_engines()
    return data


def _invoke(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(arguments), catch_exceptions=False)
    return result.exit_code, result.output


def test_migrate_is_repeatable(dataset: Dataset) -> None:
    code, output = _invoke("migrate", "--json")
    assert code == 0 and json.loads(output) == {"applied": []}


def test_run_and_backfill_inline_then_stats_and_health(dataset: Dataset, analytics_engine: Engine) -> None:
    code, output = _invoke("run", "--inline", "--date", "2026-11-14", "--json")
    assert code == 0, output
    (run,) = json.loads(output)
    assert run["status"] == "completed" and run["conversations_expected"] == 6

    code, output = _invoke(
        "backfill", "--inline", "--start-date", "2026-11-14", "--end-date", "2026-11-15", "--json"
    )
    assert code == 0, output
    runs = json.loads(output)
    assert [r["conversations_expected"] for r in runs] == [0, 6]  # the first day is unchanged
    assert_books_balance(analytics_engine)

    # runs for old dates are listed as what they are, and are not "the last run"
    code, output = _invoke("health", "--json")
    assert code == 1, output
    report = json.loads(output)
    assert report["status"] == "unhealthy" and report["last_run"] is None
    assert {r["trigger"] for r in report["recent_runs"]} == {"cli", "backfill"}
    # the run for yesterday (the default date) is
    code, output = _invoke("run", "--inline", "--json")
    assert code == 0, output
    (yesterday_run,) = json.loads(output)
    code, output = _invoke("health", "--json")
    report = json.loads(output)
    assert report["last_run"]["run_id"] == yesterday_run["id"]
    # the nights between 15 November and yesterday were never run: their weeks and month are
    # held back for ever, and health says so, with the command that recovers them
    assert code == 1 and report["status"] == "unhealthy", output
    assert report["problems"] and all(
        "is held back" in problem and "python main.py backfill --start-date" in problem
        for problem in report["problems"]
    ), report["problems"]

    code, output = _invoke("stats", "--days", "365", "--json")
    assert code == 0, output
    analysed = rows(
        analytics_engine, "SELECT count(*) AS n FROM conversation_analysis WHERE status = 'analyzed'"
    )
    assert json.loads(output)["totals"]["conversation_count"] == analysed[0]["n"] == 10


def _today() -> date:
    """Today where the product counts days (`TZ`), as the API's rules see it."""
    return datetime.now(get_settings().zone).date()


def _no_runs(engine: Engine) -> bool:
    return rows(engine, "SELECT count(*) AS n FROM processing_log")[0]["n"] == 0


def test_backfill_rejects_a_reversed_range(dataset: Dataset) -> None:
    result = CliRunner().invoke(cli, ["backfill", "--start-date", "2026-11-15", "--end-date", "2026-11-14"])
    assert result.exit_code == 2 and "'--start-date': must not be after end_date" in result.output


def test_run_refuses_a_future_date_as_the_api_does(dataset: Dataset, analytics_engine: Engine) -> None:
    tomorrow = _today() + timedelta(days=1)
    result = CliRunner().invoke(cli, ["run", "--inline", "--date", tomorrow.isoformat()])
    assert result.exit_code == 2, result.output
    assert "'--date': must not be in the future" in result.output
    assert _no_runs(analytics_engine)  # nothing opened, let alone completed
    with pytest.raises(InvalidParameter, match="date: must not be in the future"):
        TriggerQuery(date=tomorrow).target_dates(_today())


@pytest.mark.parametrize(
    ("days_back", "days_forward", "message"),
    [
        (MAX_RANGE_DAYS + 1, -1, f"'--end-date': a backfill may span at most {MAX_RANGE_DAYS} days"),
        (3, 1, "'--end-date': must not be in the future"),
    ],
    ids=["367-days", "ends-tomorrow"],
)
def test_backfill_applies_the_api_range_rules(
    dataset: Dataset, analytics_engine: Engine, days_back: int, days_forward: int, message: str
) -> None:
    today = _today()
    start, end = today - timedelta(days=days_back), today + timedelta(days=days_forward)
    arguments = ["backfill", "--inline", "--start-date", start.isoformat(), "--end-date", end.isoformat()]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert _no_runs(analytics_engine)
    # the API gives the same verdict on the same dates
    with pytest.raises(InvalidParameter) as caught:
        TriggerQuery(start_date=start, end_date=end).target_dates(today)
    assert caught.value.parameter == "end_date" and caught.value.problem in message


def test_the_range_limit_is_one_rule_with_its_boundary() -> None:
    """366 days (a leap year) pass, 367 do not; today is allowed, tomorrow is not."""
    today = _today()
    year_ago = today - timedelta(days=MAX_RANGE_DAYS - 1)
    assert MAX_RANGE_DAYS == 366
    assert checked_range(year_ago, today, "a backfill", today=today) == (year_ago, today)
    assert TriggerQuery(start_date=year_ago, end_date=today).target_dates(today) == (year_ago, today)
    with pytest.raises(InvalidParameter, match="at most 366 days"):
        checked_range(year_ago - timedelta(days=1), today, "a backfill", today=today)
    assert checked_day(today, today) == today
    with pytest.raises(InvalidParameter, match="between 2000-01-01 and 2100-12-31"):
        checked_day(date(1999, 12, 31), today)


def test_hash_user_prints_the_pseudonym(dataset: Dataset) -> None:
    code, output = _invoke("hash-user", "user-42")
    assert code == 0
    assert output.strip() == pseudonymise("user-42", get_settings().hmac_key.get_secret_value())
