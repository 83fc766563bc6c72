"""The viewer role reads published releases: closed periods, audited once, frozen.

Rewritten from the day-cell disclosure tests (test_viewer_disclosure.py) for the release
design: what is published when, that it never changes, how a viewer's range snaps to
published periods, what a viewer is refused, and what each metric's declaration lets
into a release. The attack on everything a viewer can read is tests/test_viewer_attack.py.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from functions.aggregates import recompute_dates
from functions.api.app import API_PREFIX, create_app
from functions.api.services import ApiServices
from functions.metrics import ADMIN_ONLY_METRIC, METRICS, Metric, viewer_rule
from functions.read.health import health_report
from functions.read.releases import due_periods, load_releases, period_of
from shared.config import ReleasePeriod, get_settings, reset_settings_cache
from tests.api_dataset import ZONE, analysis_row, insert, pseudonym
from tests.release_support import complete_runs, publish

K = 5  # ANALYTICS_MIN_GROUP_SIZE's default
VIEWER = "viewer-password-for-tests"
ADMIN = "local-dev-password"
TODAY = date(2026, 6, 15)  # a Monday
NOW = datetime.combine(TODAY, time(9), ZONE)
END = TODAY - timedelta(days=1)
FIRST_RUN = date(2026, 5, 1)

PEOPLE = [pseudonym(f"person-{n}") for n in range(34)]
GROUPS = {
    "grp-eng": ("Engineering", PEOPLE[0:15]),
    "grp-platform": ("Platform", PEOPLE[0:14]),  # nested in Engineering, one person fewer
    "grp-sales": ("Sales", PEOPLE[15:25]),
    "grp-board": ("Board", PEOPLE[25:28]),  # 3 members: hidden
}


def build() -> list[dict[str, Any]]:
    rng = random.Random(1212)
    rows: list[dict[str, Any]] = []
    day = FIRST_RUN
    while day <= END:
        for person in rng.sample(PEOPLE, rng.randint(6, 18)):
            rows.append(analysis_row(rng, len(rows), day, person, "analyzed", GROUPS))
        day += timedelta(days=1)
    return rows


ANALYSES = build()


class _Client:
    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client, self.token = client, token

    def open(self, path: str, **params: Any) -> Any:
        return self.client.get(
            API_PREFIX + path, query_string=params, headers={"Authorization": f"Bearer {self.token}"}
        )

    def get(self, path: str, **params: Any) -> Any:
        response = self.open(path, **params)
        assert response.status_code == 200, (path, params, response.get_data(as_text=True))
        return response.get_json()


def _clients(clock: datetime) -> tuple[_Client, _Client]:
    app = create_app(services=ApiServices(get_settings(), clock=lambda: clock))
    return _Client(app.test_client(), VIEWER), _Client(app.test_client(), ADMIN)


@pytest.fixture
def published(analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    insert(analytics_engine, ANALYSES, GROUPS)
    monkeypatch.setenv("ANALYTICS_VIEWER_PASSWORD", VIEWER)
    reset_settings_cache()
    complete_runs(analytics_engine, FIRST_RUN, END, NOW)
    publish(analytics_engine, get_settings(), NOW)
    return analytics_engine


def _range(start: date, end: date) -> dict[str, str]:
    return {"start_date": start.isoformat(), "end_date": end.isoformat()}


def _rows(engine: Engine) -> list[tuple[str, date, str]]:
    with engine.connect() as connection:
        return [
            (kind, start, status)
            for kind, start, status in connection.execute(
                sa.text("SELECT period_kind, period_start, status FROM releases ORDER BY version")
            )
        ]


def test_closed_periods_are_published_once_after_their_grace_days(published: Engine) -> None:
    """Weeks and the month that closed at least 3 days ago, with a completed run for every date."""
    weeks = [
        (p.kind.value, p.start, "published")
        for p in (
            period_of(ReleasePeriod.WEEK, d)
            for d in (
                date(2026, 5, 4),
                date(2026, 5, 11),
                date(2026, 5, 18),
                date(2026, 5, 25),
                date(2026, 6, 1),
            )
        )
    ]
    rows = _rows(published)
    # the week of 4 May starts before the first completed run (1 May is a Friday: it is covered);
    # the week of 8 June closed on 14 June, within the grace days on 15 June: not yet
    assert ("week", date(2026, 6, 8), "published") not in rows
    assert [row for row in rows if row[0] == "week"] == weeks
    assert ("month", date(2026, 5, 1), "published") in rows
    assert rows.index(("month", date(2026, 5, 1), "published")) > rows.index(weeks[3])  # after its weeks
    assert publish(published, get_settings(), NOW) == {"published": 0, "refused": 0}  # once
    later = NOW + timedelta(days=4)
    complete_runs(published, TODAY, TODAY + timedelta(days=3), later)
    assert publish(published, get_settings(), later)["published"] == 1  # the week of 8 June, now
    with published.connect() as connection:
        audit = connection.execute(
            sa.text("SELECT audit FROM releases ORDER BY version LIMIT 1")
        ).scalar_one()
    assert audit["passed"] and audit["figures"] > 0 and audit["rank"] > 0 and audit["atoms"] > 0
    assert audit["seconds"] >= 0


def test_nothing_is_published_while_a_run_is_open_or_a_date_has_no_completed_run(
    analytics_engine: Engine,
) -> None:
    insert(analytics_engine, ANALYSES, GROUPS)
    settings = get_settings()
    complete_runs(analytics_engine, FIRST_RUN, date(2026, 5, 20), NOW)  # no run for the later dates
    with analytics_engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO processing_log (run_date, status) VALUES (:d, 'running')"), {"d": END}
        )
        assert due_periods(connection, settings, TODAY) == []
        connection.execute(sa.text("UPDATE processing_log SET status = 'completed' WHERE status = 'running'"))
        due = due_periods(connection, settings, TODAY)
    assert due and all(period.end <= date(2026, 5, 20) for period in due)


def test_a_published_release_is_frozen_while_the_admin_figures_move(published: Engine) -> None:
    viewer, admin = _clients(NOW)
    week = _range(date(2026, 6, 1), date(2026, 6, 7))
    before_viewer, before_admin = viewer.get("/summary", **week), admin.get("/summary", **week)
    late = analysis_row(random.Random(7), 9999, date(2026, 6, 3), PEOPLE[0], "analyzed", GROUPS)
    late["manual_time_most_likely"] = late["active_duration_minutes"] + 500
    late["manual_time_high"] = late["manual_time_most_likely"] + 10
    late["time_saved_minutes"] = 500
    insert_late = [late]
    columns = sorted(late)
    with published.begin() as connection:  # a late arrival, after publication
        connection.execute(
            sa.text(
                f"INSERT INTO conversation_analysis ({', '.join(columns)}) "
                f"VALUES ({', '.join(':' + c for c in columns)})"
            ),
            insert_late,
        )
        recompute_dates(connection, {date(2026, 6, 3)})
    after_viewer, after_admin = viewer.get("/summary", **week), admin.get("/summary", **week)
    assert after_admin["total_time_saved"] == before_admin["total_time_saved"] + 500
    assert after_viewer["total_time_saved"] == before_viewer["total_time_saved"]
    assert after_viewer["disclosure"]["periods"] == before_viewer["disclosure"]["periods"]
    # the month of June, published in July, reads the frozen days of the week of 1 June
    july = datetime.combine(date(2026, 7, 6), time(9), ZONE)
    complete_runs(published, TODAY, date(2026, 7, 5), july)
    publish(published, get_settings(), july)
    with published.connect() as connection:
        june = next(
            r
            for r in load_releases(connection, ReleasePeriod.MONTH, get_settings().min_group_size)
            if r.period.start == date(2026, 6, 1)
        )
        weeks = {
            r.period.start: r
            for r in load_releases(connection, ReleasePeriod.WEEK, get_settings().min_group_size)
        }
    week_saved = weeks[date(2026, 6, 1)].everyone.sums["total_time_saved"]  # type: ignore[index]
    assert week_saved == before_viewer["total_time_saved"]
    rest = sum(
        row["time_saved_minutes"]
        for row in ANALYSES
        if date(2026, 6, 8) <= row["analysis_date"] <= date(2026, 6, 30)
    )
    assert june.everyone.sums["total_time_saved"] == week_saved + rest  # type: ignore[index]


def test_a_viewer_range_snaps_to_whole_published_periods_and_says_which(published: Engine) -> None:
    viewer, admin = _clients(NOW)
    answer = viewer.get("/summary", **_range(date(2026, 5, 13), date(2026, 6, 10)))
    info = answer["disclosure"]
    assert info["period_kind"] == "week"
    assert [p["period"] for p in info["periods"]] == ["2026-W21", "2026-W22", "2026-W23"]
    assert answer["range"] == {"start_date": "2026-05-18", "end_date": "2026-06-07", "days": 21}
    assert info["requested_range"]["start_date"] == "2026-05-13"
    assert info["as_published_on"].startswith("2026-06-15")
    # one trend point per published period, each saying when it was published; no per-day point
    trend = answer["daily_trend"]
    assert [p["period"] for p in trend] == ["2026-W21", "2026-W22", "2026-W23"]
    assert all(p["published_at"].startswith("2026-06-15") for p in trend)
    assert sum(p["total_time_saved"] for p in trend) == answer["total_time_saved"]
    raw = admin.get("/summary", **_range(date(2026, 5, 18), date(2026, 6, 7)))
    assert raw["total_time_saved"] == answer["total_time_saved"]  # nothing changed since publication
    # as many published weeks just before as there are: two (the weeks of 4 and 11 May)
    assert answer["previous_period"]["range"] == {
        "start_date": "2026-05-04",
        "end_date": "2026-05-17",
        "days": 14,
    }
    months = viewer.get("/daily-trend", days=90)
    assert months["disclosure"]["period_kind"] == "month"
    assert [p["period"] for p in months["rows"]] == ["2026-05"]


def test_a_short_range_gets_the_latest_published_period(published: Engine) -> None:
    viewer, _ = _clients(NOW)
    answer = viewer.get("/summary", days=1)
    assert [p["period"] for p in answer["disclosure"]["periods"]] == ["2026-W23"]


def test_groups_come_from_the_release_and_small_groups_never(published: Engine) -> None:
    viewer, _ = _clients(NOW)
    rows = viewer.get("/group-breakdown", **_range(date(2026, 5, 18), date(2026, 6, 7)))
    names = {row["name"] for row in rows["rows"]}
    assert "Board" not in names and names <= {"Engineering", "Platform", "Sales"}
    assert rows["disclosure"]["periods"]
    assert viewer.open("/summary", group="grp-board").status_code == 422


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/summary", {"model": "gpt-4o-mini"}),
        ("/summary", {"tag": "q4_report"}),
        ("/daily-trend", {"group": "grp-eng", "category": "coding"}),
        ("/summary", {"user_id_hash": "a" * 64}),
        ("/model-breakdown", {}),
        ("/category-breakdown", {}),
        ("/user-breakdown", {}),
        ("/export/csv", {}),
    ],
)
def test_what_is_not_published_is_refused_to_viewers(
    published: Engine, path: str, params: dict[str, str]
) -> None:
    viewer, admin = _clients(NOW)
    assert viewer.open(path, **params).status_code == 403
    assert admin.open(path, **params).status_code == 200


def test_admin_only_metrics_are_never_in_a_release(published: Engine) -> None:
    """A metric declares what a viewer may see; without a declaration it is admin-only."""
    assert Metric("new_metric", "count(*)", "A new metric.").viewer == ADMIN_ONLY_METRIC
    assert viewer_rule("a_field_nobody_declared") == ADMIN_ONLY_METRIC
    admin_columns = [m.column for m in METRICS if m.viewer == ADMIN_ONLY_METRIC and m.summed]
    assert admin_columns  # the estimator's own cost, at least
    with published.connect() as connection:
        cells = [json.dumps(cells) for (cells,) in connection.execute(sa.text("SELECT cells FROM releases"))]
    for release in cells:
        data = json.loads(release)
        for cell in [data["everyone"], *data["groups"]]:
            if cell["sums"] is not None:
                assert all(cell["sums"][column] is None for column in admin_columns)
    viewer, _ = _clients(NOW)
    assert viewer.get("/summary")["analysis_cost_usd"] is None


def test_a_sub_partition_figure_is_null_where_a_sub_cell_is_too_small(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Success-adjusted minutes: one rated-down conversation in a week of 6 people is null."""
    monkeypatch.setenv("ANALYTICS_VIEWER_PASSWORD", VIEWER)
    reset_settings_cache()
    rng = random.Random(3)
    rows = []
    for person in PEOPLE[:6]:
        row = analysis_row(rng, len(rows) + 1, date(2026, 6, 2), person, "analyzed", GROUPS)
        row["rated_down"] = row["confirmed_no_help"] = False
        row["estimator"] = "llm"
        rows.append(row)
    rows[0]["rated_down"] = True
    insert(analytics_engine, rows, GROUPS)
    complete_runs(analytics_engine, date(2026, 6, 1), END, NOW)
    publish(analytics_engine, get_settings(), NOW)
    viewer, admin = _clients(NOW)
    week = _range(date(2026, 6, 1), date(2026, 6, 7))
    answer = viewer.get("/summary", **week)
    assert answer["conversation_count"] == 6
    assert answer["total_time_saved_successful"] is None and answer["unsuccessful_count"] is None
    assert "unsuccessful" in answer["disclosure"]["null_figures"]["success"]
    assert answer["estimators"] == {"llm": 6}  # one estimator, 6 people: its sub-cell is large
    assert admin.get("/summary", **week)["unsuccessful_count"] == 1


def test_health_says_when_a_release_was_refused(published: Engine) -> None:
    with published.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO releases (period_kind, period_start, period_end, status, published_at, cells, "
                "shown_figures, audit) VALUES ('week', '2026-06-08', '2026-06-14', 'refused', now(), "
                "'{}', '[]', '{\"passed\": false}')"
            )
        )
    report = health_report(published, get_settings(), NOW)
    assert report.status == "unhealthy"
    assert any("not published" in problem for problem in report.problems)


def test_the_viewer_dashboard_says_as_published_on(published: Engine) -> None:
    viewer, admin = _clients(NOW)
    query = _range(date(2026, 5, 18), date(2026, 6, 7))
    page = viewer.client.get("/", query_string=query, headers={"Authorization": f"Bearer {VIEWER}"})
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="disclosure-note"' in text and "as published on 2026-06-15" in text
    admin_page = admin.client.get("/", query_string=query, headers={"Authorization": f"Bearer {ADMIN}"})
    assert 'id="disclosure-note"' not in admin_page.get_data(as_text=True)
    for chart in ("daily-trend", "group"):
        response = viewer.client.get(
            f"/charts/{chart}.svg", query_string=query, headers={"Authorization": f"Bearer {VIEWER}"}
        )
        assert response.status_code == 200, chart
    for chart in ("model", "category"):
        response = viewer.client.get(
            f"/charts/{chart}.svg", query_string=query, headers={"Authorization": f"Bearer {VIEWER}"}
        )
        assert response.status_code == 403, chart


def test_before_any_release_a_viewer_gets_no_figures(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert(analytics_engine, ANALYSES, GROUPS)  # analysed, aggregated, but nothing published
    monkeypatch.setenv("ANALYTICS_VIEWER_PASSWORD", VIEWER)
    reset_settings_cache()
    viewer, admin = _clients(NOW)
    answer = viewer.get("/summary")
    # nothing published reads as null (not 0: "nothing saved" would be a false figure)
    assert answer["conversation_count"] is None and answer["total_time_saved"] is None
    assert answer["disclosure"]["periods"] == []
    assert admin.get("/summary")["conversation_count"] > 0
