"""The command line, against the embedded Postgres and an Open WebUI-shaped database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from functions.dates import MAX_RANGE_DAYS, checked_day, checked_range
from functions.read.schemas import TriggerQuery
from infra.cli import cli
from shared.config import REPO_ROOT, get_settings, reset_settings_cache
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


def test_every_command_prepares_its_environment() -> None:
    """Each registered command goes through the one preparation, so none can forget the database."""
    from infra.cli import PreparedCommand

    assert cli.commands
    unprepared = [name for name, command in cli.commands.items() if not isinstance(command, PreparedCommand)]
    assert unprepared == []
    without_database = {name for name, command in cli.commands.items() if not command.needs_database}  # type: ignore[attr-defined]
    assert without_database == {"hash-user", "demo-data"}


@pytest.mark.database  # starts its own embedded PostgreSQL, as a user's command does
def test_with_nothing_configured_the_newer_commands_start_the_local_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """report, calibration, evaluate, reprice, recalibrate: no COGNIFORCE_DATABASE_URL, no traceback."""
    from infra.embedded_pg import EmbeddedPostgres

    monkeypatch.setenv("ANALYTICS_LOCAL_STATE_DIR", str(tmp_path / "state"))
    reset_settings_cache()
    labels = tmp_path / "labels.csv"
    labels.write_text("conversation_id,minutes\nchat-1,30\n", encoding="utf-8")
    try:
        runner = CliRunner()
        for arguments, expected_exit in [
            (["report", "--month", "2026-11", "--out", str(tmp_path / "report.html")], 0),
            (["calibration", "--json"], 0),
            (["evaluate", "--labels", str(labels), "--json"], 0),
            (["reprice", "--from", "2026-11-01"], 0),
            (["recalibrate", "--from", "2026-11-01"], 1),  # no calibration yet: said in one line
        ]:
            result = runner.invoke(cli, arguments)
            assert result.exception is None or isinstance(result.exception, SystemExit), result.output
            assert result.exit_code == expected_exit, (arguments, result.output)
            assert "Traceback" not in result.output and "COGNIFORCE_DATABASE_URL" not in result.output
        assert "no calibration yet" in result.output
        assert (tmp_path / "report.html").read_text(encoding="utf-8").startswith("<!doctype html>")
    finally:
        EmbeddedPostgres(tmp_path / "state" / "pgdata").start().stop()  # join it to stop it
        os.environ.pop("COGNIFORCE_DATABASE_URL", None)  # the command set it for its process


def _main(*arguments: str, **environment: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ANALYTICS_", "COGNIFORCE_"))}
    return subprocess.run(
        [sys.executable, "main.py", *arguments],
        cwd=REPO_ROOT,
        env={**clean, **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_bad_setting_is_one_line_and_exit_2_and_v_shows_the_traceback() -> None:
    result = _main("hash-user", "user-1", ANALYTICS_HOURLY_RATE="fifty")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "Error: invalid configuration: ANALYTICS_HOURLY_RATE: Input should be a valid number, "
        "unable to parse string as a number"
    ]
    verbose = _main("-v", "hash-user", "user-1", ANALYTICS_HOURLY_RATE="fifty")
    assert verbose.returncode == 2
    assert "Traceback (most recent call last)" in verbose.stderr
    assert (
        verbose.stderr.strip()
        .splitlines()[-1]
        .startswith("Error: invalid configuration: ANALYTICS_HOURLY_RATE")
    )


def test_an_unwritable_file_and_an_unreachable_database_are_user_errors(
    analytics_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = CliRunner().invoke(
        cli, ["report", "--month", "2026-11", "--out", str(tmp_path / "no" / "r.html")]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"Error: No such file or directory: {tmp_path / 'no' / 'r.html'}"

    monkeypatch.setenv("COGNIFORCE_DATABASE_URL", "postgresql+pg8000://analytics@127.0.0.1:1/analytics")
    reset_settings_cache()
    reset_engines()
    result = CliRunner().invoke(cli, ["calibration"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: cannot use the database (check its URL and that it is reachable): ")


def test_a_bug_is_not_disguised_as_a_user_error() -> None:
    """Anything that is not a user's error keeps its traceback (exit 1), so it gets reported."""
    from infra.cli import _user_error

    assert _user_error(KeyError("run_id")) is None
    assert _user_error(ValueError("boom")) is None
