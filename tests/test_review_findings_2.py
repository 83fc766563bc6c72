"""Second-look review of the release design (issue 18): each test reproduces one defect.

Tests marked `xfail(strict=True)` reproduce a defect that is not fixed on this branch: they
pass (as xfail) while the defect is there and fail once it is fixed, so the marker goes then.
Real components only: the embedded PostgreSQL of tests/conftest.py, the aggregator, the
release publisher and auditor, the Flask app with the viewer's bearer password.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from functions.api.app import API_PREFIX, create_app
from functions.api.services import ApiServices
from functions.read.health import health_report
from shared.config import get_settings, reset_settings_cache
from tests.api_dataset import ZONE, analysis_row, insert, pseudonym
from tests.release_support import complete_runs, publish

VIEWER = "viewer-password-for-tests"
ADMIN = "local-dev-password"
TODAY = date(2026, 6, 15)  # a Monday
NOW = datetime.combine(TODAY, time(9), ZONE)
WEEK = (date(2026, 6, 1), date(2026, 6, 7))  # 2026-W23: closed 7 June, published on 15 June
PEOPLE = [pseudonym(f"review2-{n}") for n in range(6)]
GROUPS: dict[str, tuple[str, list[str]]] = {"grp-all": ("All", PEOPLE)}


def _row(number: int, day: date, person: str, *, active: int, manual: int, **extra: Any) -> dict[str, Any]:
    """One analysed conversation with exact minutes (no random draws left in the figures)."""
    row = analysis_row(random.Random(number), number, day, person, "analyzed", GROUPS)
    row.update(
        conversation_id=f"review2-{number:04d}",
        active_duration_minutes=active,
        idle_time_minutes=0,
        total_duration_minutes=active,
        last_message_at=row["first_message_at"] + timedelta(minutes=active),
        manual_time_low=manual,
        manual_time_most_likely=manual,
        manual_time_high=manual,
        time_saved_minutes=max(0, manual - active),
        rated_down=False,
        confirmed_no_help=False,
        estimator="llm",
        confirmed_new_work=False,
    )
    row.update(extra)
    return row


def _client(engine: Engine, monkeypatch: pytest.MonkeyPatch, **env: str) -> FlaskClient:
    monkeypatch.setenv("ANALYTICS_VIEWER_PASSWORD", VIEWER)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    return create_app(services=ApiServices(get_settings(), clock=lambda: NOW)).test_client()


def _get(client: FlaskClient, path: str, token: str = VIEWER, **params: Any) -> Any:
    response = client.get(
        API_PREFIX + path, query_string=params, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, (path, params, response.get_data(as_text=True))
    return response.get_json()


def _week() -> dict[str, str]:
    return {"start_date": WEEK[0].isoformat(), "end_date": WEEK[1].isoformat()}


# --- 1. a sub-cell the auditor does not model: new work, by subtracting additive columns ----


def test_new_work_of_one_person_is_manual_minus_active_minus_saved(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = []
    for day_offset in range(5):  # six people work Monday to Friday, every conversation saves time
        day = WEEK[0] + timedelta(days=day_offset)
        for index, person in enumerate(PEOPLE):
            rows.append(_row(len(rows), day, person, active=10, manual=20 + index))
    loner = PEOPLE[0]  # one conversation of one person that they said AI made possible
    rows.append(_row(len(rows), WEEK[0], loner, active=7, manual=44, confirmed_new_work=True))
    insert(analytics_engine, rows, GROUPS)
    complete_runs(analytics_engine, WEEK[0], TODAY - timedelta(days=1), NOW)
    client = _client(analytics_engine, monkeypatch)
    assert publish(analytics_engine, get_settings(), NOW)["published"] >= 1

    figures = _get(client, "/summary", **_week())
    assert figures["disclosure"]["periods"], "the week is published"
    assert figures["new_work_conversations"] is None  # admin-only, as declared
    # the fix: the minutes by hand are admin-only for a viewer, so the combination cannot be formed
    assert figures["total_manual_time_estimated"] is None
    figures["total_manual_time_estimated"] = 0  # what a viewer could best guess: no leak left
    hidden = (
        figures["total_manual_time_estimated"] - figures["total_active_time"] - figures["total_time_saved"]
    )
    # 44 - 7 = 37: the one new-work conversation of one person, out of a cell of six
    assert hidden != 37, "a combination of one cell's published figures is one person's new work"


def test_one_persons_overrun_is_active_plus_saved_minus_manual(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = []
    for day_offset in range(5):
        day = WEEK[0] + timedelta(days=day_offset)
        for index, person in enumerate(PEOPLE):
            rows.append(_row(len(rows), day, person, active=10, manual=20 + index))
    rows.append(_row(len(rows), WEEK[0], PEOPLE[0], active=50, manual=20))  # took 30 min longer
    insert(analytics_engine, rows, GROUPS)
    complete_runs(analytics_engine, WEEK[0], TODAY - timedelta(days=1), NOW)
    client = _client(analytics_engine, monkeypatch)
    assert publish(analytics_engine, get_settings(), NOW)["published"] >= 1

    figures = _get(client, "/summary", **_week())
    assert figures["disclosure"]["periods"] and figures["disclosure"]["periods"][0]["withheld"] is None
    # the fix: the minutes by hand are admin-only for a viewer, so the combination cannot be formed
    assert figures["total_manual_time_estimated"] is None and figures["total_manual_time_low"] is None
    figures["total_manual_time_estimated"] = figures["total_manual_time_low"] = 0
    overrun = (
        figures["total_active_time"] + figures["total_time_saved"] - figures["total_manual_time_estimated"]
    )
    assert overrun != 30, "a combination of one cell's published figures is one conversation of one person"
    low = figures["total_active_time"] + figures["total_time_saved_low"] - figures["total_manual_time_low"]
    assert low != 30


# --- 2. a fresh install: nothing published reads as zero, and the page does not say when ----


def test_before_any_release_the_viewer_gets_null_figures_not_zeros(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        _row(n, TODAY - timedelta(days=1 + n % 5), person, active=10, manual=30)
        for n, person in enumerate(PEOPLE * 3)
    ]
    insert(analytics_engine, rows, GROUPS)  # analysed and aggregated: the admin sees figures
    client = _client(analytics_engine, monkeypatch)
    assert _get(client, "/summary", token=ADMIN)["conversation_count"] > 0
    answer = _get(client, "/summary")
    assert answer["disclosure"]["periods"] == []
    assert answer["conversation_count"] is None and answer["total_time_saved"] is None


def test_the_fresh_install_page_says_when_the_first_release_comes(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # runs completed from Wednesday 10 June: the week of 8 June has no run for 8-9 June, so the
    # first release is the week of 15-21 June, published 3 grace days later, on 25 June
    complete_runs(analytics_engine, date(2026, 6, 10), TODAY - timedelta(days=1), NOW)
    client = _client(analytics_engine, monkeypatch)
    page = client.get("/", headers={"Authorization": f"Bearer {VIEWER}"}).get_data(as_text=True)
    assert "No release is published yet" in page
    assert "25 Jun 2026" in page or "2026-06-25" in page, "the page says when the first release is due"
    assert "0.0 h" not in page, "no hours figure is shown before anything is published"


def test_a_withheld_week_is_null_not_zero(analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        _row(n, WEEK[0] + timedelta(days=n % 5), person, active=10, manual=30)
        for n, person in enumerate(PEOPLE[:4] * 5)
    ]
    insert(analytics_engine, rows, GROUPS)
    complete_runs(analytics_engine, WEEK[0], TODAY - timedelta(days=1), NOW)
    client = _client(analytics_engine, monkeypatch)
    assert publish(analytics_engine, get_settings(), NOW)["published"] >= 1
    answer = _get(client, "/summary", **_week())
    assert answer["disclosure"]["periods"][0]["withheld"] == "fewer than 5 people were active"
    assert answer["conversation_count"] is None and answer["total_time_saved"] is None


# --- 3. the auditor's budget runs out: everything withheld, for a false reason, health healthy


def _budget_case(analytics_engine: Engine) -> None:
    """30 people in 6 overlapping groups of 22: at k = 20 the auditor's budget runs out."""
    rng = random.Random(31)
    people = [pseudonym(f"review2-budget-{n}") for n in range(30)]
    groups = {f"grp-{g}": (f"Team {g}", sorted(rng.sample(people, 22))) for g in range(6)}
    rows = []
    for person in people:
        row = _row(len(rows), WEEK[0], person, active=10, manual=30)
        row["group_ids"] = sorted(g for g, (_, members) in groups.items() if person in members)
        rows.append(row)
    insert(analytics_engine, rows, groups)
    complete_runs(analytics_engine, WEEK[0], TODAY - timedelta(days=1), NOW)


def test_publish_says_when_the_auditors_budget_ran_out_and_exits_non_zero(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from infra.cli import cli
    from shared.db import reset_engines

    _budget_case(analytics_engine)
    monkeypatch.setenv("ANALYTICS_MIN_GROUP_SIZE", "20")
    reset_settings_cache()
    reset_engines()
    result = CliRunner().invoke(cli, ["publish"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "budget ran out in 2026-W23" in result.output, result.output


def test_health_says_when_the_auditors_budget_ran_out(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _budget_case(analytics_engine)
    client = _client(analytics_engine, monkeypatch, ANALYTICS_MIN_GROUP_SIZE="20")
    assert publish(analytics_engine, get_settings(), NOW) == {"published": 1, "refused": 0}
    with analytics_engine.connect() as connection:
        audit = connection.exec_driver_sql("SELECT audit FROM releases").scalar_one()
    assert audit["budget_exhausted"] and audit["kept"] == 0  # not one figure was proven

    answer = _get(client, "/summary", **_week())
    reason = answer["disclosure"]["periods"][0]["withheld"]
    assert reason is not None  # everyone's cell of 30 people (k = 20) is withheld
    report = health_report(analytics_engine, get_settings(), NOW)
    assert report.status != "healthy" and any("budget" in problem for problem in report.problems), (
        report.status,
        report.problems,
        reason,
    )
    assert "published before" not in reason


# --- 4. the floor is raised: releases proven at the old k are still served under the new one


def test_raising_the_floor_stops_serving_cells_below_it(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        _row(n, WEEK[0] + timedelta(days=n % 5), person, active=10, manual=30)
        for n, person in enumerate(PEOPLE * 5)
    ]
    insert(analytics_engine, rows, GROUPS)
    complete_runs(analytics_engine, WEEK[0], TODAY - timedelta(days=1), NOW)
    _client(analytics_engine, monkeypatch)  # k = 5
    assert publish(analytics_engine, get_settings(), NOW)["published"] >= 1
    raised = _client(analytics_engine, monkeypatch, ANALYTICS_MIN_GROUP_SIZE="10")
    answer = _get(raised, "/summary", **_week())
    assert answer["disclosure"]["floor"] == 10
    assert answer["conversation_count"] is None, "a total of 6 people under a floor of 10"


def test_after_raising_the_floor_health_gives_the_recovery(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        _row(n, WEEK[0] + timedelta(days=n % 12), person, active=10, manual=30)
        for n, person in enumerate(PEOPLE * 12)
    ]
    insert(analytics_engine, rows, GROUPS)
    complete_runs(analytics_engine, WEEK[0], TODAY - timedelta(days=1), NOW)
    _client(analytics_engine, monkeypatch)  # k = 5: the week of 1 June is published
    assert publish(analytics_engine, get_settings(), NOW) == {"published": 1, "refused": 0}
    later = NOW + timedelta(days=7)
    complete_runs(analytics_engine, TODAY, TODAY + timedelta(days=6), later)
    _client(analytics_engine, monkeypatch, ANALYTICS_MIN_GROUP_SIZE="10")
    # viewers saw the releases at k = 5: audited against them, the next one cannot pass at k = 10
    assert publish(analytics_engine, get_settings(), later)["refused"] >= 1
    report = health_report(analytics_engine, get_settings(), later)
    assert report.status == "unhealthy"
    assert any("ANALYTICS_MIN_GROUP_SIZE back to 5" in problem for problem in report.problems), (
        report.problems
    )


# --- 5. the lockout: a locked-out source unlocks itself by spraying other sources -----------


def test_a_locked_out_source_stays_locked_while_others_fail() -> None:
    from shared.auth import FailureLimiter
    from shared.errors import AuthenticationFailed, RateLimited

    now = [0.0]
    limiter = FailureLimiter(max_failures=2, window_seconds=300, clock=lambda: now[0], max_clients=3)

    def wrong() -> None:
        raise AuthenticationFailed("invalid credentials")

    for guess in ("guess-1", "guess-2"):
        with pytest.raises(AuthenticationFailed):
            limiter.attempt("2001:db8:0:1::1", guess, wrong)
    with pytest.raises(RateLimited):
        limiter.attempt("2001:db8:0:1::1", "guess-3", wrong)  # locked: 2 failures in the window
    for network in range(2, 5):  # one failure from each of three other /64s of the attacker
        now[0] += 1
        with pytest.raises(AuthenticationFailed):
            limiter.attempt(f"2001:db8:0:{network}::1", f"guess-{network}x", wrong)
    with pytest.raises(RateLimited):
        limiter.attempt("2001:db8:0:1::1", "guess-4", wrong)


def test_the_feedback_token_tried_at_the_login_form_does_not_lock_out_the_action(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "feedback-token-for-the-review-" + "f" * 16
    client = _client(analytics_engine, monkeypatch, ANALYTICS_FEEDBACK_TOKEN=token)
    for n in range(10):  # someone who has the Action's token tries it as a dashboard password
        response = client.post(
            "/login", data={"password": token}, environ_base={"REMOTE_ADDR": f"10.0.0.{n}"}
        )
        assert response.status_code == 401
    action = client.post(
        API_PREFIX + "/feedback/state",
        json={"chat_id": "chat-1", "user_id": "user-1"},
        headers={"Authorization": f"Bearer {token}"},
        environ_base={"REMOTE_ADDR": "192.0.2.50"},  # the Action, from its own address
    )
    assert action.status_code != 429, action.get_data(as_text=True)


# --- 6. a date without a completed run holds its week and month back for ever, silently -----


def test_health_names_a_release_held_back_by_a_date_without_a_completed_run(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    rows = [
        _row(n, WEEK[0] + timedelta(days=n % 5), person, active=10, manual=30)
        for n, person in enumerate(PEOPLE * 5)
    ]
    insert(analytics_engine, rows, GROUPS)
    wednesday = WEEK[0] + timedelta(days=2)
    complete_runs(analytics_engine, WEEK[0], wednesday - timedelta(days=1), NOW)
    complete_runs(analytics_engine, wednesday + timedelta(days=1), TODAY - timedelta(days=1), NOW)
    with analytics_engine.begin() as connection:  # Wednesday's nightly run failed
        connection.execute(
            sa.text(
                "INSERT INTO processing_log (run_date, status, trigger, started_at, completed_at, "
                "error_message) VALUES (:day, 'failed', 'scheduler', :at, :at, 'Open WebUI unreachable')"
            ),
            {"day": wednesday, "at": datetime.combine(wednesday + timedelta(days=1), time(0, 30), ZONE)},
        )
    _client(analytics_engine, monkeypatch)
    assert publish(analytics_engine, get_settings(), NOW) == {"published": 0, "refused": 0}
    report = health_report(analytics_engine, get_settings(), NOW)
    # 2026-W23 closed on 7 June, due on 11 June; on 15 June it is 4 days overdue and will never come
    assert report.status != "healthy" or any("2026-W23" in p or "release" in p for p in report.problems), (
        report.status,
        report.problems,
    )
