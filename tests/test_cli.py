"""The command line, against the embedded Postgres and an Open WebUI-shaped database."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from infra.cli import cli
from shared.config import get_settings, reset_settings_cache
from shared.db import reset_engines
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
    assert code == 0, output
    report = json.loads(output)
    assert report["status"] == "healthy" and report["last_run"]["run_id"] == yesterday_run["id"]

    code, output = _invoke("stats", "--days", "365", "--json")
    assert code == 0, output
    analysed = rows(
        analytics_engine, "SELECT count(*) AS n FROM conversation_analysis WHERE status = 'analyzed'"
    )
    assert json.loads(output)["totals"]["conversation_count"] == analysed[0]["n"] == 10


def test_backfill_rejects_a_reversed_range(dataset: Dataset) -> None:
    result = CliRunner().invoke(cli, ["backfill", "--start-date", "2026-11-15", "--end-date", "2026-11-14"])
    assert result.exit_code == 2 and "before --start-date" in result.output


def test_hash_user_prints_the_pseudonym(dataset: Dataset) -> None:
    code, output = _invoke("hash-user", "user-42")
    assert code == 0
    assert output.strip() == pseudonymise("user-42", get_settings().hmac_key.get_secret_value())
