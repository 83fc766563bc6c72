"""The analytics schema on a real PostgreSQL: migrations, constraints, and no drift from `shared.tables`."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from shared.config import REPO_ROOT
from shared.db import make_engine, sqlstate
from shared.migrate import apply_migrations, discover_migrations
from shared.tables import METADATA

_T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_migrations_apply_once_and_then_do_nothing(fresh_database_url: str) -> None:
    engine = make_engine(fresh_database_url)
    first = apply_migrations(engine)
    second = apply_migrations(engine)
    assert [m.version for m in first] == [m.version for m in discover_migrations()]
    assert second == []
    with engine.connect() as connection:
        recorded = connection.execute(sa.text("SELECT version FROM schema_migrations")).scalars().all()
    assert sorted(recorded) == [m.version for m in first]
    engine.dispose()


def test_concurrent_runners_apply_exactly_once(fresh_database_url: str) -> None:
    script = (
        "import sys, json; from shared.db import make_engine; from shared.migrate import apply_migrations;"
        "print(json.dumps([m.version for m in apply_migrations(make_engine(sys.argv[1]))]))"
    )
    runners = [
        subprocess.Popen(
            [sys.executable, "-c", script, fresh_database_url],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [runner.communicate(timeout=120) for runner in runners]
    assert all(runner.returncode == 0 for runner in runners), [err for _, err in outputs]
    applied = [out.strip().splitlines()[-1] for out, _ in outputs]
    expected = str([m.version for m in discover_migrations()])
    assert sorted(applied) == sorted(["[]"] * 3 + [expected.replace("'", '"')])


def test_core_tables_match_migrated_schema(analytics_engine: Engine) -> None:
    """Every table declared in `shared.tables` is its migrated form: columns, types, keys, indexes."""
    declared = {"conversation_analysis", "time_confirmations"}

    def in_scope(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return getattr(table, "name", name) in declared

    with analytics_engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": in_scope}
        )
        differences = compare_metadata(context, METADATA)
    assert differences == []
    assert declared <= set(METADATA.tables)


def test_editing_an_applied_migration_is_refused(analytics_engine: Engine, tmp_path) -> None:
    for migration in discover_migrations():
        path = tmp_path / f"{migration.version:03d}_{migration.name}.sql"
        path.write_text(migration.sql + "\n-- edited\n", encoding="utf-8")
    with pytest.raises(Exception, match="changed after it was applied"):
        apply_migrations(analytics_engine, tmp_path)


def _analysis(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "conversation_id": f"c-{uuid.uuid4()}",
        "user_id_hash": "a" * 64,
        "status": "analyzed",
        "analysis_date": date(2026, 11, 27),
        "first_message_at": _T0,
        "last_message_at": _T0,
        "total_duration_minutes": 70,
        "active_duration_minutes": 10,
        "idle_time_minutes": 60,
        "manual_time_low": 30,
        "manual_time_most_likely": 60,
        "manual_time_high": 120,
        "confidence_level": 85,
        "time_saved_minutes": 50,
        "task_category": "coding",
        "estimator": "llm",
        "prompt_version": "test",
        "source_updated_at": _T0,
        "content_fingerprint": "f" * 64,
    }
    row.update(overrides)
    return row


def _insert_analysis(engine: Engine, row: dict[str, object]) -> None:
    columns = ", ".join(row)
    values = ", ".join(f":{name}" for name in row)
    with engine.begin() as connection:
        connection.execute(sa.text(f"INSERT INTO conversation_analysis ({columns}) VALUES ({values})"), row)


def test_a_valid_analysis_is_accepted(analytics_engine: Engine) -> None:
    _insert_analysis(analytics_engine, _analysis())


@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"total_duration_minutes": -1, "idle_time_minutes": -11}, "positive_durations"),
        ({"idle_time_minutes": 59}, "durations_add_up"),
        ({"confidence_level": 101}, "valid_confidence"),
        ({"manual_time_low": 61}, "valid_estimates"),
        ({"manual_time_high": 59}, "valid_estimates"),
        ({"time_saved_minutes": 60}, "time_saved_formula"),
        ({"task_category": "gardening"}, "valid_task_category"),
        ({"estimator": "Guess!"}, "valid_estimator"),
        ({"status": "done"}, "conversation_analysis_status"),
        ({"manual_time_low": None}, "analyzed_is_complete"),
        ({"status": "skipped"}, "not_analyzed_has_reason"),
        ({"message_count": -1}, "positive_counts"),
        ({"first_message_at": datetime(2026, 11, 28, tzinfo=UTC)}, "message_order"),
    ],
)
def test_each_check_constraint_rejects_bad_rows(
    analytics_engine: Engine, overrides: dict[str, object], constraint: str
) -> None:
    with pytest.raises(DBAPIError, match=constraint) as raised:
        _insert_analysis(analytics_engine, _analysis(**overrides))
    assert sqlstate(raised.value) == "23514"  # check_violation


def test_conversation_id_is_unique(analytics_engine: Engine) -> None:
    _insert_analysis(analytics_engine, _analysis(conversation_id="same"))
    with pytest.raises(DBAPIError, match="idx_conversation_analysis_conversation_id"):
        _insert_analysis(analytics_engine, _analysis(conversation_id="same"))


def test_a_skipped_row_needs_only_its_reason(analytics_engine: Engine) -> None:
    _insert_analysis(
        analytics_engine,
        {
            "conversation_id": "skipped-1",
            "user_id_hash": "b" * 64,
            "status": "skipped",
            "skip_reason": "too_few_timestamps",
            "source_updated_at": _T0,
            "content_fingerprint": "0" * 64,
        },
    )


def _insert_daily(engine: Engine, **values: object) -> None:
    row = {"analysis_date": date(2026, 11, 27), "user_id_hash": None} | values
    columns = ", ".join(row)
    params = ", ".join(f":{name}" for name in row)
    with engine.begin() as connection:
        connection.execute(sa.text(f"INSERT INTO daily_aggregates ({columns}) VALUES ({params})"), row)


def test_one_global_daily_row_per_date(analytics_engine: Engine) -> None:
    _insert_daily(analytics_engine)
    with pytest.raises(DBAPIError, match="idx_daily_aggregates_date_user"):
        _insert_daily(analytics_engine)
    _insert_daily(analytics_engine, user_id_hash="c" * 64)
    with pytest.raises(DBAPIError, match="idx_daily_aggregates_date_user"):
        _insert_daily(analytics_engine, user_id_hash="c" * 64)


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"conversation_count": -1, "estimator_counts": '{"llm": -1}'}, "positive_aggregates"),
        ({"total_time_saved": 5, "total_time_saved_high": 4}, "aggregate_bands_ordered"),
        ({"conversation_count": 2, "estimator_counts": '{"llm": 1}'}, "aggregate_estimators_add_up"),
        ({"conversation_count": 1, "estimator_counts": '{"llm": "1"}'}, "aggregate_estimators_add_up"),
        ({"conversation_count": 1, "estimator_counts": "[1]"}, "aggregate_estimators_add_up"),
    ],
)
def test_daily_aggregate_checks(analytics_engine: Engine, values: dict[str, object], constraint: str) -> None:
    with pytest.raises(DBAPIError, match=constraint):
        _insert_daily(analytics_engine, **values)


def test_a_new_estimator_is_data_not_schema(analytics_engine: Engine) -> None:
    """A third estimator needs no migration: its name is accepted and its counts add up."""
    _insert_analysis(analytics_engine, _analysis(estimator="rules_v2"))
    counts = '{"llm": 1, "heuristic": 1, "rules_v2": 1}'
    _insert_daily(analytics_engine, conversation_count=3, estimator_counts=counts)
    with analytics_engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO daily_breakdowns (analysis_date, dimension, dimension_value, "
                "conversation_count, estimator_counts) VALUES ('2026-11-27', 'some_new_split', 'x', 3, :c)"
            ),
            {"c": counts},
        )


def test_one_open_run_per_date_and_counts_bounded(analytics_engine: Engine) -> None:
    insert = sa.text(
        "INSERT INTO processing_log (run_date, conversations_expected) VALUES (:d, :n) RETURNING id"
    )
    with analytics_engine.begin() as connection:
        run_id = connection.execute(insert, {"d": date(2026, 11, 27), "n": 1}).scalar_one()
    with pytest.raises(DBAPIError, match="idx_processing_log_one_open_run"), analytics_engine.begin() as c:
        c.execute(insert, {"d": date(2026, 11, 27), "n": 1})
    with pytest.raises(DBAPIError, match="processing_log_counts"), analytics_engine.begin() as c:
        c.execute(
            sa.text("UPDATE processing_log SET conversations_processed = 2 WHERE id = :id"), {"id": run_id}
        )
    with pytest.raises(DBAPIError, match="processing_log_status"), analytics_engine.begin() as c:
        c.execute(sa.text("UPDATE processing_log SET status = 'done' WHERE id = :id"), {"id": run_id})
