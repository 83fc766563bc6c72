"""The admin API against a real Postgres: figures, bounds, CSV, health, trigger, errors, OpenAPI.

Figures are checked against sums computed here from the inserted analyses, after
the aggregator's own `recompute_dates` built the aggregate tables.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from functions.aggregates import recompute_dates
from functions.api.app import API_PREFIX, ROUTES, create_app
from functions.api.services import ApiServices
from functions.read.csv_export import CSV_COLUMNS, escape_cell
from functions.read.health import computed_next_run
from functions.read.schemas import ListResponse
from infra.embedded_pg import EmbeddedPostgres
from shared.config import get_settings, reset_settings_cache
from shared.db import make_engine, reset_engines
from shared.migrate import apply_migrations
from tests.api_dataset import (
    HOSTILE_CONVERSATION_ID,
    HOSTILE_MODEL,
    HOSTILE_TAG,
    TODAY,
    USERS,
    ZONE,
    Dataset,
    seed,
    sums,
)

AUTH = {"Authorization": "Bearer local-dev-password"}
YESTERDAY = TODAY - timedelta(days=1)
NOW = datetime.combine(TODAY, time(12), ZONE)
FIGURE_KEYS = tuple(sums([]).keys())


@dataclass
class FakeDispatch:
    """Records dispatcher calls and answers like the dispatcher does."""

    calls: list[dict[str, Any]]

    def result(self, day: date | None) -> Any:
        @dataclass
        class Result:
            run_id: uuid.UUID
            run_date: date
            status: str = "running"
            expected: int = 3
            deferred: int = 0
            joined_existing: bool = False
            late_arrivals: int = 0

        return Result(run_id=uuid.uuid4(), run_date=day or YESTERDAY)

    def dispatch(self, **kwargs: Any) -> Any:
        self.calls.append({"kind": "dispatch", **kwargs})
        return self.result(kwargs["target_date"])

    def backfill(self, start_date: date, end_date: date, **kwargs: Any) -> list[Any]:
        self.calls.append({"kind": "backfill", "start_date": start_date, "end_date": end_date, **kwargs})
        days = (end_date - start_date).days + 1
        return [self.result(start_date + timedelta(days=n)) for n in range(days)]


@pytest.fixture(scope="module")
def _seeded_database(
    postgres_server: EmbeddedPostgres, _admin_engine: Engine
) -> Iterator[tuple[str, Dataset]]:
    """One migrated and seeded database shared by the tests of this module that only read."""
    name = f"t_api_{uuid.uuid4().hex[:10]}"
    with _admin_engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = postgres_server.url(name)
    engine = make_engine(url)
    try:
        apply_migrations(engine)
        dataset = seed(engine)
    finally:
        engine.dispose()
    yield url, dataset
    reset_engines()
    with _admin_engine.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def dataset(_seeded_database: tuple[str, Dataset], monkeypatch: pytest.MonkeyPatch) -> Dataset:
    """The shared seeded database (read only), as COGNIFORCE_DATABASE_URL."""
    url, seeded = _seeded_database
    monkeypatch.setenv("COGNIFORCE_DATABASE_URL", url)
    reset_settings_cache()
    return seeded


@pytest.fixture
def fresh_client(analytics_engine: Engine, fake_dispatch: FakeDispatch) -> FlaskClient:
    """A client on a database of its own, for tests that write to it."""
    seed(analytics_engine)
    services = ApiServices(
        get_settings(), clock=lambda: NOW, dispatch=fake_dispatch.dispatch, backfill=fake_dispatch.backfill
    )
    return create_app(services=services).test_client()


@pytest.fixture
def fake_dispatch() -> FakeDispatch:
    return FakeDispatch(calls=[])


@pytest.fixture
def client(dataset: Dataset, fake_dispatch: FakeDispatch) -> FlaskClient:
    services = ApiServices(
        get_settings(), clock=lambda: NOW, dispatch=fake_dispatch.dispatch, backfill=fake_dispatch.backfill
    )
    return create_app(services=services).test_client()


def get(client: FlaskClient, path: str, **params: Any) -> Any:
    response = client.get(API_PREFIX + path, query_string=params, headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def rows_of(client: FlaskClient, path: str, **params: Any) -> list[Any]:
    """The rows of a list endpoint's envelope (`range`, `group`, `dimension`, `rows`)."""
    body = get(client, path, **params)
    assert {"range", "timezone", "group", "dimension", "rows"} <= set(body), body.keys()
    return body["rows"]


def figures_of(payload: dict[str, Any]) -> dict[str, Any]:
    return {key: payload[key] for key in FIGURE_KEYS}


def days_back(days: int) -> tuple[date, date]:
    return YESTERDAY - timedelta(days=days - 1), YESTERDAY


# --- figures ---------------------------------------------------------------------------------


def test_summary_equals_the_sums_of_the_analyses(client: FlaskClient, dataset: Dataset) -> None:
    body = get(client, "/summary", days=30)
    start, end = days_back(30)
    expected = sums(dataset.in_range(start, end))
    assert expected["conversation_count"] > 20
    assert figures_of(body) == expected
    assert body["range"] == {"start_date": start.isoformat(), "end_date": end.isoformat(), "days": 30}
    assert body["total_conversations"] == expected["conversation_count"]
    assert body["confidence_level"] == expected["avg_confidence_level"]
    assert body["estimator"] == "mixed"
    assert body["total_time_saved_low"] <= body["total_time_saved"] <= body["total_time_saved_high"]

    before_start, before_end = start - timedelta(days=30), start - timedelta(days=1)
    previous = body["previous_period"]
    assert previous["range"]["start_date"] == before_start.isoformat()
    assert previous["range"]["end_date"] == before_end.isoformat()
    earlier = sums(dataset.in_range(before_start, before_end))
    assert figures_of(previous["figures"]) == earlier
    assert previous["figures"]["estimator"] == "mixed"
    change = (expected["total_time_saved"] - earlier["total_time_saved"]) * 100 / earlier["total_time_saved"]
    assert previous["time_saved_change_pct"] == round(change, 1)

    assert [p["analysis_date"] for p in body["daily_trend"]] == [
        (start + timedelta(days=n)).isoformat() for n in range(30)
    ]
    assert sum(p["conversation_count"] for p in body["daily_trend"]) == expected["conversation_count"]


def test_default_range_is_the_thirty_days_ending_yesterday(client: FlaskClient) -> None:
    body = get(client, "/summary")
    assert body["range"]["end_date"] == YESTERDAY.isoformat()
    assert body["range"]["days"] == 30


def test_summary_for_a_group_and_for_a_user(client: FlaskClient, dataset: Dataset) -> None:
    start, end = days_back(60)
    body = get(client, "/summary", days=60, group="grp-eng")
    assert figures_of(body) == sums(dataset.in_range(start, end, group="grp-eng"))
    assert body["group"] == {"group_id": "grp-eng", "name": "Engineering", "member_count": 6}

    user = USERS[3]
    body = get(client, "/summary", days=60, user_id_hash=user)
    assert figures_of(body) == sums(dataset.in_range(start, end, user=user))
    assert body["user_id_hash"] == user


def test_daily_trend_over_an_explicit_range(client: FlaskClient, dataset: Dataset) -> None:
    start, end = TODAY - timedelta(days=20), TODAY - timedelta(days=5)
    points = rows_of(client, "/daily-trend", start_date=start.isoformat(), end_date=end.isoformat())
    assert len(points) == 16
    for point in points:
        day = date.fromisoformat(point["analysis_date"])
        expected = sums(dataset.in_range(day, day))
        assert figures_of(point) == expected
    group_points = rows_of(
        client, "/daily-trend", start_date=start.isoformat(), end_date=end.isoformat(), group="grp-sales"
    )
    for point in group_points:
        day = date.fromisoformat(point["analysis_date"])
        assert figures_of(point) == sums(dataset.in_range(day, day, group="grp-sales"))


def test_user_breakdown_ranks_users_by_time_saved(client: FlaskClient, dataset: Dataset) -> None:
    start, end = days_back(90)
    rows = rows_of(client, "/user-breakdown", days=90, limit=5)
    assert len(rows) == 5
    expected = sorted(
        ((user, sums(dataset.in_range(start, end, user=user))) for user in USERS),
        key=lambda item: (-item[1]["total_time_saved"], -item[1]["conversation_count"], item[0]),
    )[:5]
    assert [row["user_id_hash"] for row in rows] == [user for user, _ in expected]
    for row, (_, figures) in zip(rows, expected, strict=True):
        assert figures_of(row) == figures
        days = {a["analysis_date"] for a in dataset.in_range(start, end, user=row["user_id_hash"])}
        assert row["active_days"] == len(days)

    members = set(dataset.groups["grp-sales"][1])
    in_group = rows_of(client, "/user-breakdown", days=90, limit=100, group="grp-sales")
    assert {row["user_id_hash"] for row in in_group} <= members
    assert len(rows_of(client, "/user-breakdown", days=90, limit=100)) == len(USERS)


def test_model_and_category_breakdowns(client: FlaskClient, dataset: Dataset) -> None:
    start, end = days_back(30)
    body = get(client, "/model-breakdown", days=30)
    assert body["dimension"] == "model"
    models = {a["primary_model"] or "unknown" for a in dataset.in_range(start, end)}
    assert {row["value"] for row in body["rows"]} == models
    for row in body["rows"]:
        assert figures_of(row) == sums(dataset.in_range(start, end, model=row["value"]))
    saved = [row["total_time_saved"] for row in body["rows"]]
    assert saved == sorted(saved, reverse=True)

    body = get(client, "/category-breakdown", days=30, group="grp-eng")
    assert body["group"]["group_id"] == "grp-eng"
    for row in body["rows"]:
        expected = sums(
            a for a in dataset.in_range(start, end, group="grp-eng") if a["task_category"] == row["value"]
        )
        assert figures_of(row) == expected


def test_tag_breakdown_counts_a_chat_under_each_of_its_tags(client: FlaskClient, dataset: Dataset) -> None:
    start, end = days_back(30)
    body = get(client, "/tag-breakdown", days=30)
    assert body["dimension"] == "tag"
    analysed = dataset.in_range(start, end)
    tags = {tag for a in analysed for tag in a["tags"]}
    assert {row["value"] for row in body["rows"]} == tags
    assert HOSTILE_TAG in tags
    for row in body["rows"]:
        assert figures_of(row) == sums(dataset.in_range(start, end, tag=row["value"]))
    # overlapping: chats with two tags count twice, chats without tags not at all
    assert sum(row["conversation_count"] for row in body["rows"]) == sum(len(a["tags"]) for a in analysed)
    assert any(not a["tags"] for a in analysed) and any(len(a["tags"]) > 1 for a in analysed)

    body = get(client, "/tag-breakdown", days=30, group="grp-eng")
    assert body["group"]["group_id"] == "grp-eng"
    for row in body["rows"]:
        assert figures_of(row) == sums(dataset.in_range(start, end, group="grp-eng", tag=row["value"]))


def test_dimension_filters_on_summary_trend_and_export(client: FlaskClient, dataset: Dataset) -> None:
    start, end = days_back(30)
    for where in ({"tag": "q4_report"}, {"model": "gpt-4o-mini"}, {"category": "coding"}):
        expected = sums(dataset.in_range(start, end, **where))
        assert expected["conversation_count"] > 0
        assert figures_of(get(client, "/summary", days=30, **where)) == expected
        in_group = sums(dataset.in_range(start, end, group="grp-sales", **where))
        assert figures_of(get(client, "/summary", days=30, group="grp-sales", **where)) == in_group
    points = rows_of(client, "/daily-trend", days=30, tag="customer")
    for point in points:
        day = date.fromisoformat(point["analysis_date"])
        assert figures_of(point) == sums(dataset.in_range(day, day, tag="customer"))
    nobody = get(client, "/summary", days=30, tag="no-such-tag")
    assert nobody["conversation_count"] == 0 and nobody["estimator"] == "none"

    rows = _csv(client, days=30, tag="q4_report")
    assert len(rows) == len(dataset.in_range(start, end, tag="q4_report"))
    assert all("q4_report" in row["tags"].split(";") for row in rows)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"tag": "a", "model": "b"}, "tag"),  # the second filter, in registry order
        ({"tag": "a", "user_id_hash": "a" * 64}, "tag"),
        ({"tag": ""}, "tag"),
        ({"tag": "x" * 256}, "tag"),
        ({"tag": "a\x00b"}, "tag"),
    ],
)
def test_dimension_filters_are_validated(client: FlaskClient, params: dict[str, str], parameter: str) -> None:
    response = client.get(API_PREFIX + "/summary", query_string={"days": 30, **params}, headers=AUTH)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["parameter"] == parameter


def test_group_breakdown_hides_small_groups(client: FlaskClient, dataset: Dataset) -> None:
    start, end = days_back(30)
    body = get(client, "/group-breakdown", days=30)
    assert body["min_group_size"] == 5
    assert body["hidden_group_count"] == 1
    assert {row["group_id"] for row in body["rows"]} == {"grp-eng", "grp-sales"}
    for row in body["rows"]:
        assert figures_of(row) == sums(dataset.in_range(start, end, group=row["group_id"]))
    assert "Board" not in str(body)


@pytest.mark.parametrize(
    "path", ["/summary", "/daily-trend", "/user-breakdown", "/model-breakdown", "/export/csv"]
)
def test_a_group_filter_on_a_small_or_unknown_group_is_refused(client: FlaskClient, path: str) -> None:
    for group, words in (("grp-tiny", "fewer than 5 members"), ("no-such-group", "no group")):
        response = client.get(API_PREFIX + path, query_string={"group": group}, headers=AUTH)
        assert response.status_code == 422
        body = response.get_json()
        assert body["detail"][0]["parameter"] == "group"
        assert words in body["message"]


def test_summaries_never_read_the_analyses(fresh_client: FlaskClient, analytics_engine: Engine) -> None:
    """With the analyses gone, the summaries still answer from the aggregate tables."""
    client = fresh_client
    with analytics_engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE conversation_analysis RENAME TO hidden_analysis"))
    try:
        for path in ("/summary", "/daily-trend", "/user-breakdown", "/model-breakdown", "/group-breakdown"):
            get(client, path, days=30)
            get(client, path, days=30, **({} if path == "/group-breakdown" else {"group": "grp-eng"}))
    finally:
        with analytics_engine.begin() as connection:
            connection.execute(sa.text("ALTER TABLE hidden_analysis RENAME TO conversation_analysis"))


# --- parameter bounds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/summary", {"days": "0"}, "days"),
        ("/summary", {"days": "366"}, "days"),
        ("/summary", {"days": "thirty"}, "days"),
        ("/summary", {"days": "7", "start_date": "2026-01-01", "end_date": "2026-01-02"}, "days"),
        ("/summary", {"start_date": "2026-01-01"}, "end_date"),
        ("/summary", {"end_date": "2026-01-01"}, "start_date"),
        ("/summary", {"start_date": "2026-02-01", "end_date": "2026-01-01"}, "start_date"),
        ("/summary", {"start_date": "2025-01-01", "end_date": "2026-01-02"}, "end_date"),
        ("/summary", {"start_date": "2026-13-01", "end_date": "2026-12-01"}, "start_date"),
        ("/summary", {"start_date": "1999-12-31", "end_date": "2000-01-02"}, "start_date"),
        ("/summary", {"group": "grp\x00eng"}, "group"),
        ("/summary", {"user_id_hash": "not-a-hash"}, "user_id_hash"),
        ("/summary", {"group": "grp-eng", "user_id_hash": USERS[0]}, "user_id_hash"),
        ("/summary", {"dayz": "7"}, "dayz"),
        ("/summary", [("days", "7"), ("days", "8")], "days"),
        ("/daily-trend", {"start_date": "2026-02-01", "end_date": "2026-01-01"}, "start_date"),
        ("/user-breakdown", {"limit": "0"}, "limit"),
        ("/user-breakdown", {"limit": "101"}, "limit"),
        ("/user-breakdown", {"days": "400"}, "days"),
        ("/group-breakdown", {"group": "grp-eng"}, "group"),
        ("/export/csv", {"start_date": "2024-01-01", "end_date": "2026-01-01"}, "end_date"),
        ("/health", {"verbose": "1"}, "verbose"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(
    client: FlaskClient, path: str, params: Any, parameter: str
) -> None:
    response = client.get(API_PREFIX + path, query_string=params, headers=AUTH)
    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == "invalid_parameter"
    assert body["detail"][0]["parameter"] == parameter
    assert body["message"].startswith(parameter)


def test_ranges_at_the_bounds_are_accepted(client: FlaskClient) -> None:
    assert len(rows_of(client, "/daily-trend", days=365)) == 365
    assert len(rows_of(client, "/daily-trend", days=1)) == 1
    start = YESTERDAY - timedelta(days=365)
    assert (
        len(rows_of(client, "/daily-trend", start_date=start.isoformat(), end_date=YESTERDAY.isoformat()))
        == 366
    )
    assert len(rows_of(client, "/user-breakdown", days=90, limit=1)) == 1


# --- CSV -------------------------------------------------------------------------------------


def _csv(client: FlaskClient, **params: Any) -> list[dict[str, str]]:
    response = client.get(API_PREFIX + "/export/csv", query_string=params, headers=AUTH)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    assert tuple(header) == CSV_COLUMNS
    return [dict(zip(header, row, strict=True)) for row in reader]


def test_csv_export_has_one_row_per_analysis_and_no_personal_data(
    client: FlaskClient, dataset: Dataset
) -> None:
    start, end = days_back(30)
    rows = _csv(client, start_date=start.isoformat(), end_date=end.isoformat())
    expected = dataset.in_range(start, end)
    assert len(rows) == len(expected)
    by_id = {escape_cell(a["conversation_id"]): a for a in expected}
    for row in rows:
        analysis = by_id[row["conversation_id"]]
        assert row["user_pseudonym"] == analysis["user_id_hash"]
        assert row["analysis_date"] == analysis["analysis_date"].isoformat()
        assert datetime.fromisoformat(row["first_message_at"]) == analysis["first_message_at"]
        assert int(row["time_saved_minutes"]) == analysis["time_saved_minutes"]
        assert int(row["manual_time_high_minutes"]) == analysis["manual_time_high"]
        assert row["estimator"] == analysis["estimator"]
    assert [r["analysis_date"] for r in rows] == sorted(r["analysis_date"] for r in rows)
    text = str(rows)
    assert "SECRET DIGEST" not in text
    assert "task description" not in text


def test_csv_cells_that_look_like_formulas_are_escaped(client: FlaskClient) -> None:
    rows = _csv(client, days=1)
    hostile = next(row for row in rows if row["conversation_id"].startswith("'"))
    assert hostile["conversation_id"] == "'" + HOSTILE_CONVERSATION_ID
    assert hostile["primary_model"] == "'" + HOSTILE_MODEL
    assert hostile["models_used"] == "'" + HOSTILE_MODEL + ";'-minus"  # every item of the list
    assert hostile["tags"] == "'" + HOSTILE_TAG + ";q4_report"
    for prefix in ("=", "+", "-", "@", "\t", "\r"):
        assert escape_cell(prefix + "1") == "'" + prefix + "1"
    assert escape_cell("plain") == "plain"


def test_csv_export_of_a_group(client: FlaskClient, dataset: Dataset) -> None:
    start, end = days_back(60)
    rows = _csv(client, days=60, group="grp-eng")
    assert len(rows) == len(dataset.in_range(start, end, group="grp-eng"))


def test_csv_export_streams_in_batches(_seeded_database: tuple[str, Dataset]) -> None:
    from functions.read.csv_export import stream_csv

    url, dataset = _seeded_database
    engine = make_engine(url)
    try:
        chunks = list(stream_csv(engine, get_settings(), TODAY - timedelta(days=70), TODAY, batch_rows=7))
    finally:
        engine.dispose()
    assert len(chunks) > len(dataset.analysed) // 7  # header, then one chunk per batch
    assert b"".join(chunks).count(b"\r\n") == len(dataset.analysed) + 1


# --- health ----------------------------------------------------------------------------------


def _insert_run(engine: Engine, status: str, started_minutes_ago: int, **extra: Any) -> uuid.UUID:
    started = datetime.now(UTC) - timedelta(minutes=started_minutes_ago)
    values = {"run_date": YESTERDAY, "status": status, "started_at": started, **extra}
    with engine.begin() as connection:
        return connection.execute(
            sa.text(
                f"INSERT INTO processing_log ({', '.join(values)}) "
                f"VALUES ({', '.join(':' + key for key in values)}) RETURNING id"
            ),
            values,
        ).scalar_one()


def test_health_without_runs_is_unhealthy_and_reports_settings(fresh_client: FlaskClient) -> None:
    client = fresh_client
    body = get(client, "/health")
    assert body["status"] == "unhealthy"
    assert body["last_run"] is None
    assert body["latest_analysis_date"] == TODAY.isoformat()
    info = body["system_info"]
    assert info["timezone"] == "Europe/Budapest"
    assert info["idle_threshold_minutes"] == 10
    assert info["estimator"] == "heuristic"
    assert info["prompt_version"] == "heuristic-2"
    next_run = body["next_run"]
    assert next_run["source"] == "computed"
    assert next_run["scheduled_at"] == datetime(2026, 6, 16, 0, 30, tzinfo=ZONE).isoformat()


def test_health_reports_stale_runs_and_closes_nothing(
    fresh_client: FlaskClient, analytics_engine: Engine
) -> None:
    """A read never writes: health reports the stale run; the pipeline's sweep closes it."""
    from functions import runs

    client = fresh_client
    stale = _insert_run(analytics_engine, "running", started_minutes_ago=600, conversations_expected=5)
    for _ in range(2):
        body = get(client, "/health")
        assert body["stale_runs"] == [str(stale)]
        assert body["stale_runs_closed"] == []
        assert body["last_run"]["status"] == "running"
        assert body["status"] == "unhealthy"
        assert "stale" in body["problems"][0]
    assert client.get("/", headers=AUTH).status_code == 200  # a dashboard render writes nothing either
    with analytics_engine.connect() as connection:
        assert runs.run_status(connection, stale) is runs.RunStatus.RUNNING
    with analytics_engine.begin() as connection:
        assert runs.close_stale_runs(connection, get_settings()) == [stale]
    body = get(client, "/health")
    assert body["last_run"]["status"] == "stale"
    assert body["stale_runs"] == []
    assert body["status"] == "unhealthy"


def test_health_tells_when_another_run_is_stuck_open(
    fresh_client: FlaskClient, analytics_engine: Engine
) -> None:
    """The last run completed, but an older backfill run is stuck open: that pauses viewers, so
    health is not healthy and says why."""
    _insert_run(
        analytics_engine,
        "completed",
        started_minutes_ago=30,
        completed_at=datetime.now(UTC),
        conversations_expected=2,
        conversations_processed=2,
        trigger="scheduler",
    )
    with analytics_engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO processing_log (run_date, status, started_at, trigger, conversations_expected) "
                "VALUES (:d, 'running', now() - interval '10 hours', 'backfill', 3)"
            ),
            {"d": YESTERDAY - timedelta(days=30)},
        )
    body = get(fresh_client, "/health")
    assert body["last_run"]["status"] == "completed"
    assert body["status"] == "unhealthy" and len(body["stale_runs"]) == 1
    assert "no release is published" in body["problems"][0]


def test_health_after_a_completed_and_a_failed_run(
    fresh_client: FlaskClient, analytics_engine: Engine
) -> None:
    client = fresh_client
    _insert_run(
        analytics_engine,
        "completed",
        started_minutes_ago=60,
        completed_at=datetime.now(UTC),
        conversations_expected=4,
        conversations_processed=3,
        conversations_skipped=1,
    )
    body = get(client, "/health")
    assert body["status"] == "healthy"
    assert body["last_run"]["conversations_processed"] == 3
    assert body["last_completed_run"]["run_id"] == body["last_run"]["run_id"]
    _insert_run(analytics_engine, "failed", started_minutes_ago=1, error_message="source unreachable")
    body = get(client, "/health")
    assert body["status"] == "unhealthy"
    assert "source unreachable" in body["problems"][0]
    assert body["last_completed_run"]["status"] == "completed"


def test_next_run_is_computed_in_the_local_zone_across_dst() -> None:
    before_spring = datetime(2026, 3, 28, 12, 0, tzinfo=ZONE)
    assert computed_next_run("30 0 * * *", before_spring) == datetime(2026, 3, 29, 0, 30, tzinfo=ZONE)
    assert computed_next_run("30 0 * * *", before_spring).utcoffset() == timedelta(hours=1)
    assert computed_next_run("30 0 * * *", datetime(2026, 3, 29, 1, tzinfo=ZONE)).utcoffset() == timedelta(
        hours=2
    )


class FakeSchedulerClient:
    """Stands in for `CloudSchedulerClient`: answers `get_job` like the API does."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.names: list[str] = []

    def get_job(self, *, name: str) -> Any:
        from google.cloud import scheduler_v1
        from google.rpc import status_pb2

        self.names.append(name)
        if self.fail:
            raise PermissionError("403 caller lacks cloudscheduler.jobs.get")
        return scheduler_v1.Job(
            name=name,
            schedule="30 0 * * *",
            time_zone="Europe/Budapest",
            state=scheduler_v1.Job.State.PAUSED,
            schedule_time=datetime(2026, 6, 15, 22, 30, tzinfo=UTC),
            last_attempt_time=datetime(2026, 6, 14, 22, 30, tzinfo=UTC),
            status=status_pb2.Status(code=13, message="internal"),
        )


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch, analytics_url: str) -> None:
    for name, value in {
        "ANALYTICS_ENVIRONMENT": "production",
        "ANALYTICS_HMAC_KEY": "k" * 40,
        "ANALYTICS_DASHBOARD_PASSWORD": "a-real-production-password",
        "OPENWEBUI_DATABASE_URL": "sqlite:////nonexistent/webui.db",
        "ANALYTICS_ESTIMATOR": "heuristic",
        "ANALYTICS_TASK_SECRET": "t" * 32,
        "ANALYTICS_SCHEDULER_JOB": "projects/p/locations/europe-west1/jobs/nightly",
    }.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()


@pytest.mark.usefixtures("production_env")
def test_production_health_reads_the_cloud_scheduler_job() -> None:
    scheduler = FakeSchedulerClient()
    services = ApiServices(get_settings(), clock=lambda: NOW, scheduler_client_factory=lambda: scheduler)
    client = create_app(services=services).test_client()
    response = client.get(
        API_PREFIX + "/health", headers={"Authorization": "Bearer a-real-production-password"}
    )
    assert response.status_code == 200
    next_run = response.get_json()["next_run"]
    assert scheduler.names == ["projects/p/locations/europe-west1/jobs/nightly"]
    assert next_run["source"] == "cloud_scheduler"
    assert next_run["job_state"] == "PAUSED"
    assert next_run["last_attempt_status"] == "error 13: internal"
    assert next_run["scheduled_at"] == datetime(2026, 6, 16, 0, 30, tzinfo=ZONE).isoformat()
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")

    failing = ApiServices(
        get_settings(), clock=lambda: NOW, scheduler_client_factory=lambda: FakeSchedulerClient(True)
    )
    response = (
        create_app(services=failing)
        .test_client()
        .get(API_PREFIX + "/health", headers={"Authorization": "Bearer a-real-production-password"})
    )
    next_run = response.get_json()["next_run"]
    assert next_run["source"] == "computed"
    assert "PermissionError" in next_run["error"]


# --- trigger-processing ------------------------------------------------------------------------


def test_trigger_processing_dispatches_a_date(client: FlaskClient, fake_dispatch: FakeDispatch) -> None:
    response = client.post(
        API_PREFIX + "/trigger-processing", query_string={"date": "2026-06-10"}, headers=AUTH
    )
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "processing_started"
    assert body["run_ids"] == [body["job_id"]]
    assert body["runs"][0]["run_date"] == "2026-06-10"
    call = fake_dispatch.calls[0]
    assert (call["kind"], call["target_date"], call["trigger"], call["force"]) == (
        "dispatch",
        date(2026, 6, 10),
        "manual",
        False,
    )
    client.post(API_PREFIX + "/trigger-processing", headers=AUTH)
    assert fake_dispatch.calls[1]["target_date"] is None  # the dispatcher's default: yesterday


def test_trigger_processing_takes_its_parameters_as_a_json_body_too(
    client: FlaskClient, fake_dispatch: FakeDispatch
) -> None:
    response = client.post(
        API_PREFIX + "/trigger-processing", json={"date": "2026-06-11", "force": True}, headers=AUTH
    )
    assert response.status_code == 202
    call = fake_dispatch.calls[0]
    assert (call["target_date"], call["force"]) == (date(2026, 6, 11), True)
    both = client.post(
        API_PREFIX + "/trigger-processing",
        query_string={"date": "2026-06-11"},
        json={"date": "2026-06-12"},
        headers=AUTH,
    )
    assert both.status_code == 422 and "date" in both.get_data(as_text=True)
    listed = client.post(API_PREFIX + "/trigger-processing", json=["2026-06-11"], headers=AUTH)
    assert listed.status_code == 422 and "body" in listed.get_data(as_text=True)
    assert len(fake_dispatch.calls) == 1


def test_trigger_processing_backfills_a_range_with_force(
    client: FlaskClient, fake_dispatch: FakeDispatch
) -> None:
    response = client.post(
        API_PREFIX + "/trigger-processing",
        query_string={"start_date": "2026-06-01", "end_date": "2026-06-05", "force": "true"},
        headers=AUTH,
    )
    assert response.status_code == 202
    assert len(response.get_json()["run_ids"]) == 5
    call = fake_dispatch.calls[0]
    assert (call["kind"], call["start_date"], call["end_date"], call["force"], call["trigger"]) == (
        "backfill",
        date(2026, 6, 1),
        date(2026, 6, 5),
        True,
        "backfill",
    )


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"date": "2026-06-16"}, "date"),
        ({"date": "2026-06-01", "start_date": "2026-06-01", "end_date": "2026-06-02"}, "date"),
        ({"start_date": "2026-06-05", "end_date": "2026-06-01"}, "start_date"),
        ({"start_date": "2025-01-01", "end_date": "2026-06-01"}, "end_date"),
        ({"start_date": "2026-06-01", "end_date": "2026-06-20"}, "end_date"),
        ({"force": "maybe"}, "force"),
    ],
)
def test_trigger_processing_rejects_bad_parameters(
    client: FlaskClient, fake_dispatch: FakeDispatch, params: dict[str, str], parameter: str
) -> None:
    response = client.post(API_PREFIX + "/trigger-processing", query_string=params, headers=AUTH)
    assert response.status_code == 422
    assert response.get_json()["detail"][0]["parameter"] == parameter
    assert fake_dispatch.calls == []


def test_trigger_processing_runs_the_real_pipeline(
    tmp_path: Path, analytics_url: str, analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real dispatcher (inline queue) to aggregates the summary then reports."""
    from functions.wiring import reset_queue
    from tests.pipeline_support import build_dataset

    day = date(2026, 6, 10)
    source = build_dataset(tmp_path / "webui.db", days=[day], chats_per_day=6, untimed_per_day=1)
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", source.url)
    monkeypatch.setenv("ANALYTICS_QUEUE_BACKEND", "inline")
    reset_settings_cache()
    reset_engines()
    reset_queue()
    try:
        client = create_app(services=ApiServices(get_settings(), clock=lambda: NOW)).test_client()
        response = client.post(
            API_PREFIX + "/trigger-processing", query_string={"date": "2026-06-10"}, headers=AUTH
        )
        assert response.status_code == 202, response.get_data(as_text=True)
        run_id = response.get_json()["job_id"]
        health = get(client, "/health")
        assert health["last_run"] is None  # a manual run for an old date is not "the last run" ...
        (manual,) = health["recent_runs"]  # ... it is listed as what it is
        assert manual["run_id"] == run_id and manual["trigger"] == "manual"
        assert manual["status"] == "completed"
        assert manual["conversations_processed"] == 6
        summary = get(client, "/summary", start_date="2026-06-10", end_date="2026-06-10")
        with analytics_engine.connect() as connection:
            analysed = [
                dict(row._mapping)
                for row in connection.execute(
                    sa.text("SELECT * FROM conversation_analysis WHERE status = 'analyzed'")
                )
            ]
        assert summary["conversation_count"] == 6
        assert figures_of(summary) == sums(analysed)
        assert summary["estimator"] == "heuristic"
    finally:
        reset_queue()


def test_trigger_processing_refuses_the_dashboard_cookie(client: FlaskClient) -> None:
    login = client.post("/login", data={"password": "local-dev-password"})
    assert login.status_code == 303
    response = client.post(API_PREFIX + "/trigger-processing")
    assert response.status_code == 401


# --- errors, headers, OpenAPI ------------------------------------------------------------------


def test_unknown_routes_are_json_404_and_wrong_methods_405(client: FlaskClient) -> None:
    response = client.get(API_PREFIX + "/nope", headers=AUTH)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
    response = client.delete(API_PREFIX + "/summary", headers=AUTH)
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]
    assert client.get(API_PREFIX + "/trigger-processing", headers=AUTH).status_code == 405


def test_security_headers_on_api_and_pages(client: FlaskClient) -> None:
    for response in (
        client.get(API_PREFIX + "/summary", headers=AUTH),
        client.get("/", headers=AUTH),
        client.get("/login"),
        client.get(API_PREFIX + "/nope"),
    ):
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    page = client.get("/", headers=AUTH)
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    html = page.get_data(as_text=True)
    assert "<script" not in html and "style=" not in html
    chart = client.get("/charts/daily-trend.svg?days=30", headers=AUTH)
    assert chart.mimetype == "image/svg+xml"
    assert "script-src" not in chart.headers["Content-Security-Policy"]
    assert b"<script" not in chart.data and b"kozea.github.io" not in chart.data
    assert client.get("/assets/dashboard.css").headers["Cache-Control"].startswith("public")


def test_openapi_document_describes_every_api_route(client: FlaskClient) -> None:
    document = get(client, "/openapi.json")
    assert document["openapi"].startswith("3.1")
    api_routes = [route for route in ROUTES if route.path.startswith(API_PREFIX)]
    for route in api_routes:
        for method in route.methods:
            operation = document["paths"][route.path][method.lower()]
            assert str(route.status) in operation["responses"]
            assert {"401", "422"} <= set(operation["responses"])
    parameters = {
        p["name"]: p for p in document["paths"][API_PREFIX + "/user-breakdown"]["get"]["parameters"]
    }
    assert parameters["days"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 365}
    assert parameters["limit"]["schema"]["maximum"] == 100
    assert parameters["start_date"]["schema"]["format"] == "date"
    assert "ending yesterday" in document["paths"][API_PREFIX + "/summary"]["get"]["description"]
    schemas = document["components"]["schemas"]
    assert "total_time_saved_low" in schemas["SummaryResponse"]["properties"]


def test_every_list_endpoint_answers_one_envelope(client: FlaskClient) -> None:
    """Trend, users, groups and every dimension: `range`, `timezone`, `group`, `dimension`, `rows`."""
    list_routes = [
        route for route in ROUTES if route.path.startswith(API_PREFIX) and "rows" in _response_fields(route)
    ]
    names = {route.endpoint for route in list_routes}
    assert {"daily-trend", "user-breakdown", "group-breakdown", "model-breakdown", "tag-breakdown"} <= names
    for route in list_routes:
        path = route.path.removeprefix(API_PREFIX)
        in_group = {} if path == "/group-breakdown" else {"group": "grp-eng"}
        body = get(client, path, days=7, **in_group)
        assert set(ListResponse.model_fields) <= set(body)
        assert body["range"]["days"] == 7 and body["timezone"] == "Europe/Budapest"
        assert isinstance(body["rows"], list)
        if in_group:
            assert body["group"]["group_id"] == "grp-eng"
    assert get(client, "/daily-trend", days=7)["dimension"] == "date"
    assert get(client, "/user-breakdown", days=7)["dimension"] == "user"
    assert get(client, "/group-breakdown", days=7)["dimension"] == "group"
    trend = get(client, "/daily-trend", days=7, tag="q4_report")
    assert trend["filter"] == {"dimension": "tag", "value": "q4_report"}
    assert get(client, "/summary", days=7, tag="q4_report")["filter"] == trend["filter"]


def _response_fields(route: Any) -> set[str]:
    model = route.response
    return set(getattr(model, "model_fields", {}))


def test_minutes_are_named_as_minutes_in_the_openapi_document(client: FlaskClient) -> None:
    schemas = get(client, "/openapi.json")["components"]["schemas"]
    figures = schemas["Figures"]["properties"]
    minutes = {name for name, field in figures.items() if field.get("x-unit") == "minutes"}
    assert minutes == {
        "total_active_time",
        "total_time_saved",
        "total_time_saved_low",
        "total_time_saved_high",
        "total_manual_time_estimated",
        "total_manual_time_low",
        "total_manual_time_high",
        "avg_time_saved_per_conversation",
        "avg_time_saved_per_conversation_low",
        "avg_time_saved_per_conversation_high",
        "time_saved_calibrated_minutes",
        "time_saved_calibrated_low_minutes",
        "time_saved_calibrated_high_minutes",
        "manual_time_calibrated_minutes",
        "flagged_time_saved",
        "new_work_active_minutes",
    }
    for name in minutes:
        assert "Minutes" in figures[name]["description"], name
    assert figures["avg_confidence_level"]["x-unit"] == "percent"


def test_the_entry_point_serves_the_app_through_wsgi(dataset: Dataset) -> None:
    """main.py's `api` entry point (functions-framework) passes requests through to the app."""
    import functions_framework

    main = Path(__file__).resolve().parent.parent / "main.py"
    with functions_framework.create_app(target="api", source=str(main)).test_client() as client:
        assert client.get(API_PREFIX + "/summary?days=7", headers=AUTH).status_code == 200
        assert client.get(API_PREFIX + "/summary").status_code == 401
        assert client.get(API_PREFIX + "/summary?days=0", headers=AUTH).status_code == 422
        csv_response = client.get(API_PREFIX + "/export/csv?days=7", headers=AUTH)
        assert csv_response.get_data(as_text=True).startswith("conversation_id,")
        assert client.get("/").status_code == 303
        login = client.post("/login", data={"password": "local-dev-password"})
        assert login.status_code == 303
        assert "HttpOnly" in login.headers["Set-Cookie"]
        assert client.get("/").status_code == 200
        assert client.get("/assets/dashboard.css").status_code == 200


@pytest.fixture(autouse=True)
def _no_leaked_app() -> Iterator[None]:
    """The entry point keeps one app per process; each test gets its own settings."""
    import functions.api as api_package

    api_package._app = None
    yield
    api_package._app = None


# --- the dashboard page (server side; the browser test drives it for real) ----------------------


def _page(client: FlaskClient, **params: Any) -> str:
    response = client.get("/", query_string=params, headers=AUTH)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_the_page_shows_the_figures_with_their_bands(client: FlaskClient, dataset: Dataset) -> None:
    start, end = days_back(30)
    expected = sums(dataset.in_range(start, end))
    html = _page(client, days=30)
    hours = expected["total_time_saved"] / 60
    assert f"{hours:,.1f} h" in html
    assert f"likely between {expected['total_time_saved_low'] / 60:,.1f} and" in html
    assert f">{expected['conversation_count']:,}<" in html
    assert 'aria-current="true">30 days<' in html
    assert "Mixed" in html and " by Heuristic" in html and " by LLM" in html
    for user in USERS[:3]:
        assert user[:10] in html
    assert "Board" not in html  # the group too small to show
    assert "1 group with fewer than 5 members is hidden" in html
    assert "/api/v1/analytics/export/csv?start_date=" in html
    assert "/charts/daily-trend.svg?days=30" in html


def test_the_page_survives_bad_filters(client: FlaskClient) -> None:
    for params in ({"days": "999"}, {"group": "grp\x00"}, {"group": "grp-tiny"}, {"start_date": "x"}):
        html = _page(client, **params)
        assert 'id="filter-error"' in html
        assert "30 days" in html


def test_a_heuristic_only_range_is_labelled_heuristic(
    fresh_client: FlaskClient, analytics_engine: Engine
) -> None:
    with analytics_engine.begin() as connection:
        connection.execute(sa.text("UPDATE conversation_analysis SET estimator = 'heuristic'"))
        recompute_dates(connection, [TODAY - timedelta(days=n) for n in range(71)])
    html = fresh_client.get("/", headers=AUTH).get_data(as_text=True)
    assert '<span class="badge heuristic">Heuristic</span>' in html
    assert "rougher than an LLM estimate" in html
    assert get(fresh_client, "/summary")["estimator"] == "heuristic"


def test_charts_are_svg_for_every_breakdown(client: FlaskClient) -> None:
    for chart in ("daily-trend", "model", "category", "group"):
        response = client.get(f"/charts/{chart}.svg", query_string={"days": 30}, headers=AUTH)
        assert response.status_code == 200
        assert response.data.lstrip().startswith(b"<?xml")
        assert b"<svg" in response.data
    assert client.get("/charts/model.svg?group=grp-tiny", headers=AUTH).status_code == 422
    assert client.get("/charts/nope.svg", headers=AUTH).status_code == 404
