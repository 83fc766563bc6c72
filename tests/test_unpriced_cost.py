"""The estimator's own cost of a model without a price is unpriced with its tokens, never $0.

The real pipeline and command line, the real openai SDK over HTTP to the fake server: an
unpriced model leaves NULL costs beside its tokens in the analysis rows, the run's outcomes
and totals, the API's figures, the health report and every CLI line; a priced model still
shows its exact cost.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from functions import dispatcher, runs
from functions.metrics import SUM_COLUMNS
from functions.read.csv_export import stream_csv
from functions.value import money_figures
from infra.cli import cli
from shared.config import get_settings, reset_settings_cache
from shared.db import make_engine, reset_engines
from shared.estimators.base import EstimateUsage
from shared.estimators.heuristic import HeuristicEstimator
from shared.estimators.pricing import describe_cost
from shared.migrate import MIGRATIONS_DIR, apply_migrations
from tests.fake_openai import FakeOpenAIServer, fake_openai_fixture  # noqa: F401 - fixture
from tests.pipeline_support import Dataset, assert_books_balance, build_dataset, rows
from tests.test_estimators import make_digest

UNPRICED_MODEL = "house-llm-7b"  # in no price table
CHATS = 4


@pytest.fixture
def llm_dataset(
    tmp_path: Path, analytics_url: str, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> Dataset:
    """Chats on yesterday (so health's last run is this run), estimated over HTTP by the fake server."""
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key-for-the-fake-server")
    monkeypatch.setenv("ANALYTICS_LLM_RPM", "6000")
    monkeypatch.setenv("ANALYTICS_LLM_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("ANALYTICS_HOURLY_RATE", "50")
    monkeypatch.setenv("ANALYTICS_CURRENCY", "EUR")
    reset_settings_cache()
    day = dispatcher.yesterday(get_settings())
    data = build_dataset(tmp_path / "webui.db", days=[day], chats_per_day=CHATS, untimed_per_day=0)
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", data.url)
    reset_settings_cache()
    reset_engines()
    return data


def _use_model(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    monkeypatch.setenv("ANALYTICS_OPENAI_MODEL", model)
    reset_settings_cache()


def _invoke(*arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(arguments), catch_exceptions=False)
    return result.exit_code, result.output


def _analyses(engine: Engine) -> list[dict[str, object]]:
    return rows(
        engine,
        "SELECT prompt_tokens, completion_tokens, llm_cost_usd FROM conversation_analysis "
        "WHERE status = 'analyzed'",
    )


def test_an_unpriced_model_is_null_with_its_tokens_everywhere(
    llm_dataset: Dataset,
    fake_openai: FakeOpenAIServer,
    analytics_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _use_model(monkeypatch, UNPRICED_MODEL)
    day = dispatcher.yesterday(get_settings())
    code, output = _invoke("run", "--inline")
    assert code == 0, output
    assert "$0" not in output
    analyses = _analyses(analytics_engine)
    assert len(analyses) == CHATS and len(fake_openai.requests) == CHATS
    assert {a["llm_cost_usd"] for a in analyses} == {None}
    tokens = sum(int(str(a["prompt_tokens"])) + int(str(a["completion_tokens"])) for a in analyses)
    assert tokens == CHATS * (fake_openai.prompt_tokens + fake_openai.completion_tokens)
    assert f"{CHATS} LLM requests, unpriced ({tokens:,} tokens)" in output

    (run,) = rows(analytics_engine, "SELECT * FROM processing_log")
    assert run["status"] == "completed"
    assert run["total_llm_cost_usd"] is None and run["total_llm_unpriced_tokens"] == tokens
    outcomes = rows(analytics_engine, "SELECT llm_cost_usd FROM run_outcomes WHERE llm_requests > 0")
    assert len(outcomes) == CHATS and {o["llm_cost_usd"] for o in outcomes} == {None}
    assert_books_balance(analytics_engine)

    code, output = _invoke("health", "--json")
    assert code == 0, output
    last = json.loads(output)["last_run"]
    assert last["total_llm_cost_usd"] is None and last["total_llm_unpriced_tokens"] == tokens
    code, output = _invoke("health")
    assert code == 0, output
    assert f"LLM requests, unpriced ({tokens:,} tokens)" in output and "$0" not in output

    code, output = _invoke("stats", "--json")
    assert code == 0, output
    totals = json.loads(output)["totals"]
    assert totals["analysis_cost_usd"] is None and totals["analysis_unpriced_tokens"] == tokens
    exported = list(
        csv.DictReader(io.StringIO(b"".join(stream_csv(analytics_engine, get_settings(), day, day)).decode()))
    )
    assert len(exported) == CHATS
    assert {(row["analysis_cost_usd"], row["analysis_unpriced_tokens"]) for row in exported} == {
        ("", str(fake_openai.prompt_tokens + fake_openai.completion_tokens))
    }
    code, output = _invoke("stats")
    assert code == 0, output
    assert f"estimating cost: unpriced ({tokens:,} tokens)" in output


def test_a_priced_model_shows_its_exact_cost(
    llm_dataset: Dataset,
    fake_openai: FakeOpenAIServer,
    analytics_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _use_model(monkeypatch, "gpt-4o-mini")
    code, output = _invoke("run", "--inline")
    assert code == 0, output
    price = get_settings().llm_prices["gpt-4o-mini"]
    uncached = fake_openai.prompt_tokens - fake_openai.cached_tokens
    per_request = (
        Decimal(uncached) * Decimal(str(price["input"]))
        + Decimal(fake_openai.cached_tokens) * Decimal(str(price["cached_input"]))
        + Decimal(fake_openai.completion_tokens) * Decimal(str(price["output"]))
    ) / 1_000_000
    assert per_request > 0
    assert {a["llm_cost_usd"] for a in _analyses(analytics_engine)} == {per_request}
    (run,) = rows(analytics_engine, "SELECT * FROM processing_log")
    assert run["total_llm_cost_usd"] == CHATS * per_request and run["total_llm_unpriced_tokens"] == 0
    assert f"{CHATS} LLM requests, ${CHATS * per_request:.6f}" in output
    assert "unpriced" not in output

    code, output = _invoke("health", "--json")
    last = json.loads(output)["last_run"]
    assert last["total_llm_cost_usd"] == float(CHATS * per_request)
    assert last["total_llm_unpriced_tokens"] == 0
    code, output = _invoke("stats", "--json")
    totals = json.loads(output)["totals"]
    assert totals["analysis_cost_usd"] == float(CHATS * per_request)
    assert totals["analysis_unpriced_tokens"] == 0


def test_a_run_of_priced_and_unpriced_estimates_sums_the_priced_and_counts_the_rest(
    analytics_engine: Engine,
) -> None:
    priced = EstimateUsage(
        requests=1, prompt_tokens=1000, completion_tokens=100, cost_usd=Decimal("0.000210")
    )
    unpriced = EstimateUsage(requests=2, prompt_tokens=3000, completion_tokens=400, cost_usd=None)
    free = EstimateUsage()  # reused or heuristic: no request, exactly 0
    records = [("a", priced), ("b", unpriced), ("c", free)]
    with analytics_engine.begin() as connection:
        opened = runs.open_run(
            connection,
            run_date=date(2026, 11, 20),
            trigger="manual",
            force=False,
            idempotency_key=None,
            expected=len(records),
            deferred=0,
        )
        for conversation_id, usage in records:
            record = runs.OutcomeRecord(conversation_id, runs.Outcome.SKIPPED, usage=usage)
            runs.record_outcome(connection, opened.run_id, record)
        runs.complete_run(
            connection, opened.run_id, from_status=runs.RunStatus.AGGREGATING
        )  # the last outcome moved it on
        run = runs.get_run(connection, opened.run_id)
    assert run is not None and run.status is runs.RunStatus.COMPLETED
    assert run.total_llm_cost_usd == Decimal("0.000210") and run.total_llm_unpriced_tokens == 3400
    assert run.total_llm_requests == 3 and run.total_prompt_tokens == 4000
    assert describe_cost(run.total_llm_cost_usd, run.total_llm_unpriced_tokens) == (
        "$0.000210 + unpriced (3,400 tokens)"
    )


def test_the_heuristic_costs_exactly_nothing() -> None:
    estimate = HeuristicEstimator().estimate(make_digest())

    assert estimate.usage.cost_usd == Decimal(0) and estimate.usage.requests == 0
    assert EstimateUsage().cost_usd == Decimal(0)


@pytest.mark.parametrize(
    ("cost", "unpriced", "shown"),
    [
        (Decimal("0.000852"), 0, "$0.000852"),
        (Decimal(0), 0, "$0.000000"),
        (0.000852, 5000, "$0.000852 + unpriced (5,000 tokens)"),
        (None, 5000, "unpriced (5,000 tokens)"),
    ],
)
def test_a_cost_is_described_priced_part_and_unpriced_tokens(
    cost: Decimal | float | None, unpriced: int, shown: str
) -> None:
    assert describe_cost(cost, unpriced) == shown


def test_the_migration_turns_a_recorded_0_with_tokens_into_unpriced(
    fresh_database_url: str, tmp_path: Path
) -> None:
    """History: a 0 the estimator recorded with tokens is not known now (NULL); a 0 without requests stays."""
    before = tmp_path / "migrations"
    before.mkdir()
    for migration in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if int(migration.name[:3]) < 13:
            shutil.copy(migration, before / migration.name)
    engine = make_engine(fresh_database_url)
    try:
        apply_migrations(engine, before)
        with engine.begin() as connection:
            run_id = connection.execute(
                sa.text(
                    "INSERT INTO processing_log (run_date, trigger, status, conversations_expected, "
                    "conversations_failed, total_llm_requests, total_prompt_tokens, total_llm_cost_usd) "
                    "VALUES ('2026-11-20', 'manual', 'completed', 2, 2, 1, 900, 0) RETURNING id"
                )
            ).scalar_one()
            for conversation_id, requests, prompt in (("old-llm", 1, 900), ("old-free", 0, 0)):
                connection.execute(
                    sa.text(
                        "INSERT INTO conversation_analysis (conversation_id, user_id_hash, status, skip_reason, "
                        "estimator, source_updated_at, content_fingerprint, llm_requests, prompt_tokens, "
                        "completion_tokens, llm_cost_usd) VALUES (:c, 'h', 'failed', 'refused', 'llm', now(), "
                        "'f', :r, :p, :r * 100, 0)"
                    ),
                    {"c": conversation_id, "r": requests, "p": prompt},
                )
                connection.execute(
                    sa.text(
                        "INSERT INTO run_outcomes (run_id, conversation_id, outcome, llm_requests, prompt_tokens, "
                        "completion_tokens, llm_cost_usd) VALUES (:run, :c, 'failed', :r, :p, :r * 100, 0)"
                    ),
                    {"run": run_id, "c": conversation_id, "r": requests, "p": prompt},
                )
        assert 13 in [m.version for m in apply_migrations(engine)]
        with engine.connect() as connection:
            analyses = dict(
                connection.execute(
                    sa.text("SELECT conversation_id, llm_cost_usd FROM conversation_analysis")
                ).all()
            )
            outcomes = dict(
                connection.execute(sa.text("SELECT conversation_id, llm_cost_usd FROM run_outcomes")).all()
            )
            run = connection.execute(
                sa.text("SELECT total_llm_cost_usd, total_llm_unpriced_tokens FROM processing_log")
            ).one()
    finally:
        engine.dispose()
    assert analyses == outcomes == {"old-llm": None, "old-free": Decimal(0)}
    assert tuple(run) == (None, 1000)


@pytest.mark.parametrize(
    ("cost_micro", "priced_tokens", "unpriced_tokens", "expected"),
    [
        (0, 0, 5000, None),  # only unpriced requests: unpriced, not $0
        (213, 1280, 5000, 0.000213),  # priced part, a lower bound beside the unpriced tokens
        (0, 1280, 0, 0.0),  # a model priced at 0 is a true 0
        (0, 0, 0, 0.0),  # no request at all (heuristic, reused): exactly 0
    ],
)
def test_the_summed_analysis_cost_is_null_only_when_nothing_was_priced(
    cost_micro: int,
    priced_tokens: int,
    unpriced_tokens: int,
    expected: float | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANALYTICS_HOURLY_RATE", "50")
    monkeypatch.setenv("ANALYTICS_CURRENCY", "EUR")
    reset_settings_cache()
    values = dict.fromkeys(SUM_COLUMNS, 0) | {
        "analysis_cost_micro_usd": cost_micro,
        "analysis_priced_tokens": priced_tokens,
        "analysis_unpriced_tokens": unpriced_tokens,
    }
    assert money_figures(values, get_settings())["analysis_cost_usd"] == expected
