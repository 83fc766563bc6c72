"""Second-look review findings: each test reproduces one defect (see the review report).

Tests marked `xfail(strict=True)` reproduce a defect that is not fixed on this branch: they
pass (as xfail) while the defect is there and fail once it is fixed, so the marker goes then.
"""

from __future__ import annotations

import random
import re
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from functions.aggregates import recompute_dates
from functions.api.app import API_PREFIX, create_app
from functions.api.services import ApiServices
from functions.calibrated import record_calibration
from shared.config import get_settings, reset_settings_cache
from tests.api_dataset import ZONE, analysis_row, insert, pseudonym
from tests.pipeline_support import Dataset
from tests.test_nothing_missed import DAYS, MAY, _import_chat, _nightly
from tests.test_nothing_missed import dataset as dataset  # the fixture, re-exported for pytest

K = 5
VIEWER = "viewer-password-for-tests"
TODAY = date(2026, 6, 15)
NOW = datetime.combine(TODAY, time(9), ZONE)
YESTERDAY = TODAY - timedelta(days=1)
PEOPLE = [pseudonym(f"person-{n}") for n in range(12)]
LONER = PEOPLE[0]
GROUPS: dict[str, tuple[str, list[str]]] = {"grp-all": ("All", PEOPLE)}


def _dataset() -> list[dict[str, Any]]:
    """Ten busy days of 8–12 people, and yesterday one person alone with three conversations."""
    rng = random.Random(7)
    rows: list[dict[str, Any]] = []
    for offset in range(2, 12):
        for person in rng.sample(PEOPLE, rng.randint(8, 12)):
            row = analysis_row(rng, len(rows), TODAY - timedelta(days=offset), person, "analyzed", GROUPS)
            row["task_category"] = "coding"  # every day's coding cell is released to a viewer
            rows.append(row)
    for _ in range(3):
        row = analysis_row(rng, len(rows), YESTERDAY, LONER, "analyzed", GROUPS)
        row["task_category"] = "coding"
        rows.append(row)
    return rows


def _viewer(engine: Engine, monkeypatch: pytest.MonkeyPatch, **env: str) -> FlaskClient:
    monkeypatch.setenv("ANALYTICS_VIEWER_PASSWORD", VIEWER)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    return create_app(services=ApiServices(get_settings(), clock=lambda: NOW)).test_client()


def _get(client: FlaskClient, path: str, **params: Any) -> Any:
    return _get_as(client, VIEWER, path, **params)


def _get_as(client: FlaskClient, token: str, path: str, **params: Any) -> Any:
    return client.get(path, query_string=params, headers={"Authorization": f"Bearer {token}"})


# --- 1. the viewer's dashboard footer gives the last run's counts of a withheld day --------------


def test_the_viewer_dashboard_does_not_give_the_conversation_count_of_a_withheld_day(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    analyses = _dataset()
    insert(analytics_engine, analyses, GROUPS)
    with analytics_engine.begin() as connection:  # the nightly run for yesterday, as the ledger keeps it
        connection.execute(
            sa.text(
                "INSERT INTO processing_log (run_date, trigger, status, conversations_expected, "
                "conversations_processed, conversations_skipped, conversations_failed) "
                "VALUES (:d, 'scheduler', 'completed', 5, 3, 1, 1)"
            ),
            {"d": YESTERDAY},
        )
    viewer = _viewer(analytics_engine, monkeypatch)
    span = {"start_date": YESTERDAY.isoformat(), "end_date": YESTERDAY.isoformat()}
    trend = _get(viewer, API_PREFIX + "/daily-trend", **span).get_json()
    # releases: a viewer has no per-day figure at all (and yesterday's week is not published yet)
    assert all(row["analysis_date"] != YESTERDAY.isoformat() for row in trend["rows"])
    page = _get(viewer, "/", **span).get_data(as_text=True)
    footer = page[page.index('id="status"') :]
    # ... but the footer says how many conversations that one person had that day
    assert not re.search(r"\b3 analysed\b", footer), footer[:400]


# --- 2. calibrated figures give a viewer one person's own answers -------------------------------


def _one_person_confirms(engine: Engine, analyses: list[dict[str, Any]], minutes: int) -> None:
    """LONER answers for 20 of their own coding conversations (nobody else answers)."""
    rng = random.Random(3)
    extra = [
        analysis_row(rng, 9000 + n, TODAY - timedelta(days=30), LONER, "analyzed", GROUPS) for n in range(20)
    ]
    for row in extra:
        row["task_category"] = "coding"
        row["manual_time_most_likely"] = max(1, row["manual_time_most_likely"])
        row["manual_time_high"] = max(row["manual_time_high"], row["manual_time_most_likely"])
    insert_rows = extra
    with engine.begin() as connection:
        columns = sorted({key for row in insert_rows for key in row})
        connection.execute(
            sa.text(
                f"INSERT INTO conversation_analysis ({', '.join(columns)}) "
                f"VALUES ({', '.join(':' + column for column in columns)})"
            ),
            [{column: row.get(column) for column in columns} for row in insert_rows],
        )
        connection.execute(
            sa.text(
                "INSERT INTO time_confirmations (conversation_id, user_id_hash, confirmed_minutes, "
                "seen_low, seen_most_likely, seen_high, seen_estimator, seen_task_category) "
                "VALUES (:c, :u, :m, :low, :likely, :high, 'llm', 'coding')"
            ),
            [
                {
                    "c": row["conversation_id"],
                    "u": LONER,
                    "m": minutes,
                    "low": row["manual_time_low"],
                    "likely": row["manual_time_most_likely"],
                    "high": row["manual_time_high"],
                }
                for row in extra[:20]
            ],
        )


def test_one_person_cannot_set_the_calibration_of_a_category_alone(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    analyses = _dataset()
    insert(analytics_engine, analyses, GROUPS)
    _one_person_confirms(analytics_engine, analyses, minutes=2400)
    monkeypatch.setenv("ANALYTICS_CALIBRATION", "apply")
    reset_settings_cache()
    with analytics_engine.begin() as connection:
        dates = record_calibration(connection, get_settings())
        recompute_dates(connection, dates)
        factor = connection.execute(
            sa.text("SELECT factor FROM calibration_factors WHERE task_category = 'coding'")
        ).scalar_one()
    # one person, 20 answers of "2400 minutes": every coding conversation of everyone is scaled
    assert factor < 10, f"coding factor {factor} from one person's answers"


def test_a_viewer_cannot_read_the_answers_of_fewer_than_k_confirmers(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    analyses = _dataset()
    insert(analytics_engine, analyses, GROUPS)
    _one_person_confirms(analytics_engine, analyses, minutes=90)
    monkeypatch.setenv("ANALYTICS_CALIBRATION", "show")
    reset_settings_cache()
    with analytics_engine.begin() as connection:
        recompute_dates(connection, record_calibration(connection, get_settings()))
        factor = float(
            connection.execute(
                sa.text("SELECT factor FROM calibration_factors WHERE task_category = 'coding'")
            ).scalar_one()
        )
    viewer = _viewer(analytics_engine, monkeypatch, ANALYTICS_CALIBRATION="show")
    span = {
        "start_date": (TODAY - timedelta(days=11)).isoformat(),
        "end_date": (TODAY - timedelta(days=2)).isoformat(),
    }
    # before: calibrated ÷ raw minutes of the viewer's category row was the median of one
    # person's confirmed ÷ estimated minutes. Now one person's answers calibrate nothing (fewer
    # than k people behind the factor), and the category breakdown is not published to viewers
    assert factor == 1.0
    assert _get(viewer, API_PREFIX + "/category-breakdown", **span).status_code == 403
    admin = _get_as(viewer, "local-dev-password", API_PREFIX + "/category-breakdown", **span).get_json()
    admin_coding = next(row for row in admin["rows"] if row["value"] == "coding")
    assert admin_coding["manual_time_calibrated_minutes"] == admin_coding["total_manual_time_estimated"]
    assert admin_coding["calibrated_conversation_count"] == 0


# --- 3. a late arrival that failed transiently is never planned again ----------------------------


def test_a_late_arrival_that_failed_transiently_is_planned_again_the_next_night(
    dataset: Dataset,
    analytics_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for day in DAYS:
        _nightly(day)
    imported = _import_chat(dataset, MAY)
    tonight = _nightly(DAYS[1] + timedelta(days=1))
    assert tonight.late_arrivals == 1
    # the estimator was down all night: the analyzer's last attempt records what it records then
    with analytics_engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE conversation_analysis SET status = 'failed', skip_reason = 'transient_error', "
                "active_duration_minutes = NULL, idle_time_minutes = NULL, total_duration_minutes = NULL, "
                "manual_time_low = NULL, manual_time_most_likely = NULL, manual_time_high = NULL, "
                "confidence_level = NULL, time_saved_minutes = NULL WHERE conversation_id = :c"
            ),
            {"c": imported},
        )
    again = _nightly(DAYS[1] + timedelta(days=2))
    # README/errors.py: transient failures "say nothing about the conversation: the dispatcher plans
    # it again" -- but a late arrival is outside every window and the sweep counts it as seen
    assert again.late_arrivals == 1, again

    # ...but not forever: as many nights as a failure in the window (ANALYTICS_LOOKBACK_DAYS)
    monkeypatch.setenv("ANALYTICS_LOOKBACK_DAYS", "3")
    reset_settings_cache()
    planned_nights = 2  # tonight and again
    for offset in range(3, 8):
        with analytics_engine.begin() as connection:  # the estimator is still down
            connection.execute(
                sa.text(
                    "UPDATE conversation_analysis SET status = 'failed', skip_reason = 'transient_error', "
                    "active_duration_minutes = NULL, idle_time_minutes = NULL, total_duration_minutes = NULL, "
                    "manual_time_low = NULL, manual_time_most_likely = NULL, manual_time_high = NULL, "
                    "confidence_level = NULL, time_saved_minutes = NULL WHERE conversation_id = :c"
                ),
                {"c": imported},
            )
        night = _nightly(DAYS[1] + timedelta(days=offset))
        planned_nights += night.late_arrivals
    assert planned_nights == 4  # planned once, then retried on 3 nights, then left as failed


# --- 4. release decisions and figures come from different tables: a run in progress opens a gap ---
# Releases close the gap: nothing is published while a run is open, a published release is
# frozen, and the auditor keeps everyone − a group from being one person.


def test_a_run_in_progress_does_not_let_everyone_minus_a_group_single_out_one_person(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions import aggregator, runs
    from functions.read.releases import due_periods
    from tests.release_support import complete_runs

    ten, outsider = PEOPLE[0:10], PEOPLE[11]
    groups = {"grp-ten": ("Ten", ten)}
    day = date(2026, 6, 3)  # its week closed on 7 June: due on 15 June
    rng = random.Random(11)
    analyses = [
        analysis_row(rng, n, day, person, "analyzed", groups) for n, person in enumerate([*ten, outsider])
    ]
    insert(analytics_engine, analyses, groups)
    complete_runs(analytics_engine, date(2026, 6, 1), date(2026, 6, 7), NOW)
    viewer = _viewer(analytics_engine, monkeypatch)
    span = {"start_date": "2026-06-01", "end_date": "2026-06-07"}
    # tonight's run re-analyses the outsider's conversation, which continued the next day: the
    # analyzer has moved it, the aggregator has not rebuilt the dates yet (it runs at the end)
    import uuid

    with analytics_engine.begin() as connection:
        opened = runs.open_run(
            connection,
            run_date=day + timedelta(days=1),
            trigger="scheduler",
            force=False,
            idempotency_key=str(uuid.uuid4()),
            expected=1,
            deferred=0,
        )
        connection.execute(
            sa.text("UPDATE conversation_analysis SET analysis_date = :d WHERE user_id_hash = :u"),
            {"d": day + timedelta(days=1), "u": outsider},
        )
        assert due_periods(connection, get_settings(), TODAY) == []  # nothing is published meanwhile
    # a viewer is not paused any more: there is simply no release yet (no live figures)
    for path in ("/summary", "/daily-trend", "/group-breakdown"):
        answer = _get(viewer, API_PREFIX + path, **span)
        assert answer.status_code == 200, path
        assert answer.get_json()["disclosure"]["periods"] == [], path
    admin = _get_as(viewer, "local-dev-password", API_PREFIX + "/summary", **span)
    assert admin.status_code == 200  # admins see raw figures anyway

    with analytics_engine.begin() as connection:
        runs.record_outcome(
            connection,
            opened.run.run_id,
            runs.OutcomeRecord(
                analyses[-1]["conversation_id"],
                runs.Outcome.ANALYZED,
                analysis_date=day + timedelta(days=1),
                previous_analysis_date=day,
            ),
        )
    assert aggregator.aggregate_run(opened.run.run_id, engine=analytics_engine).completed_now
    everyone = _get(viewer, API_PREFIX + "/summary", **span).get_json()
    assert [p["period"] for p in everyone["disclosure"]["periods"]] == ["2026-W23"]  # published now
    group = _get(viewer, API_PREFIX + "/summary", group="grp-ten", **span).get_json()
    # a withheld cell is null now (it read as 0 before): the viewer cannot subtract it
    difference = everyone["total_time_saved"] - (group["total_time_saved"] or 0)
    outsider_row = analyses[-1]
    assert not (group["conversation_count"] and difference == outsider_row["time_saved_minutes"]), (
        "everyone − Ten is the outsider's time saved",
        difference,
    )


# --- 5. the feedback endpoint buffers and parses a body of any size ------------------------------


def test_a_huge_feedback_body_is_refused_before_it_is_read(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "feedback-token-for-tests-0123456789"
    monkeypatch.setenv("ANALYTICS_FEEDBACK_TOKEN", token)
    reset_settings_cache()
    client = create_app(services=ApiServices(get_settings(), clock=lambda: NOW)).test_client()
    body = '{"chat_id": "c", "user_id": "u", "minutes": 45, "pad": "' + "x" * (5 << 20) + '"}'
    response = client.post(
        API_PREFIX + "/feedback",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.get_data(as_text=True)[:200]
    assert response.get_json()["error"] == "http_error"


# --- 6. `apply` with nothing calibrated labels the raw estimate "calibrated" -------------------------


def test_apply_without_any_calibration_does_not_call_the_raw_figures_calibrated(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert(analytics_engine, _dataset(), GROUPS)
    viewer = _viewer(analytics_engine, monkeypatch, ANALYTICS_CALIBRATION="apply")
    page = _get(viewer, "/", days="30").get_data(as_text=True)
    assert "no calibration yet" in page
    # before: "Hours saved [calibrated] … (the middle half of people's answers)" over raw figures
    assert 'id="kpi-calibrated-badge"' not in page
    assert "the middle half of people's answers" not in page


# --- 7. the progress ETA counts only the runs dispatched so far -----------------------------------


def test_the_eta_of_a_backfill_counts_the_days_not_dispatched_yet() -> None:
    import io
    import uuid
    from types import SimpleNamespace

    from infra.progress import RunProgress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    now = [0.0]
    status = Terminal()
    progress = RunProgress(10, lambda run: "", out=io.StringIO(), status=status, clock=lambda: now[0])
    run_id = uuid.uuid4()

    def run(done: int) -> Any:
        return SimpleNamespace(
            id=run_id,
            is_final=False,
            conversations_expected=100,
            conversations_processed=done,
            conversations_skipped=0,
            conversations_failed=0,
        )

    progress.update([run(0)])  # the inline backfill dispatches day 1 of 10 and analyses it
    now[0] = 60.0
    progress.update([run(50)])  # half of day 1 in a minute: the backfill needs ~19 more minutes
    eta = status.getvalue().rsplit("ETA ", 1)[1]
    assert eta == "19m00s", "the ETA is that of day 1 alone"


# --- 8. the viewer's Everyone else group row has calibrated minutes but no calibration version ----
# Releases have no Everyone else row; a published group row's calibrated minutes name their version.


def test_the_everyone_else_group_row_names_its_calibration_version(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.release_support import complete_runs, publish

    groups = {"grp-half": ("Half", PEOPLE[0:6])}
    analyses = _dataset()
    for row in analyses:
        row["group_ids"] = ["grp-half"] if row["user_id_hash"] in PEOPLE[0:6] else []
    insert(analytics_engine, analyses, groups)
    _one_person_confirms(analytics_engine, analyses, minutes=60)
    with analytics_engine.begin() as connection:  # answers from 20 people (a viewer sees calibration)
        connection.execute(
            sa.text("UPDATE time_confirmations SET user_id_hash = 'someone-' || conversation_id")
        )
    monkeypatch.setenv("ANALYTICS_CALIBRATION", "show")
    reset_settings_cache()
    with analytics_engine.begin() as connection:
        recompute_dates(connection, record_calibration(connection, get_settings()))
    complete_runs(analytics_engine, date(2026, 5, 11), YESTERDAY, NOW)
    publish(analytics_engine, get_settings(), NOW + timedelta(days=7))
    viewer = _viewer(analytics_engine, monkeypatch, ANALYTICS_CALIBRATION="show")
    answer = _get(viewer, API_PREFIX + "/group-breakdown", days="30").get_json()
    assert answer["disclosure"]["periods"]
    assert all(row["group_id"] is not None for row in answer["rows"])  # no Everyone else row
    for row in answer["rows"]:
        if row["time_saved_calibrated_minutes"] is None:  # a calibrated category of too few people
            assert "calibration" in answer["disclosure"]["null_figures"]
        else:
            assert row["calibration_versions"] == [1] and row["calibration_version"] == 1


# --- 9. the viewer's health banner shows a failed run's error message -----------------------------


def test_the_viewer_health_banner_does_not_show_pipeline_errors(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    insert(analytics_engine, _dataset(), GROUPS)
    error = "dispatch failed: IntegrityError: [parameters: {'conversation_id': 'chat-secret-42'}]"
    with analytics_engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO processing_log (run_date, trigger, status, error_message) "
                "VALUES (:d, 'scheduler', 'failed', :e)"
            ),
            {"d": YESTERDAY, "e": error},
        )
    viewer = _viewer(analytics_engine, monkeypatch)
    page = _get(viewer, "/").get_data(as_text=True)
    assert 'id="health-banner"' in page  # the viewer still learns that processing needs attention
    assert "chat-secret-42" not in page and "IntegrityError" not in page


# --- 10. `run` and `backfill` exit 0 when a run failed or is still running at the timeout ---------


@pytest.mark.parametrize("status", ["failed", "running"])
def test_the_cli_exit_status_says_when_a_run_did_not_complete(
    monkeypatch: pytest.MonkeyPatch, status: str
) -> None:
    import uuid

    from click.testing import CliRunner

    from infra import cli as cli_module

    row = {
        "id": uuid.uuid4(),
        "run_date": YESTERDAY,
        "status": status,
        "conversations_expected": 5,
        "conversations_processed": 1,
        "estimates_reused": 0,
        "conversations_skipped": 0,
        "conversations_failed": 0,
        "conversations_deferred": 0,
        "late_arrivals": 0,
        "total_llm_requests": 0,
        "total_llm_cost_usd": 0,
        "total_llm_unpriced_tokens": 0,
        "error_message": "boom" if status == "failed" else None,
    }
    monkeypatch.setattr(cli_module, "_run_dates", lambda *args, **kwargs: [row])
    result = CliRunner().invoke(cli_module.cli, ["run", "--date", YESTERDAY.isoformat(), "--json"])
    assert result.exit_code != 0, result.output


# --- 11. the Action reads "4,5" (hours, decimal comma) after "more" as 4.5 minutes ----------------


@pytest.mark.parametrize(("typed", "minutes"), [("4,5", 270), ("4.5", 270), ("6", 360), ("400 min", 400)])
def test_the_action_reads_hours_with_a_decimal_comma_after_more(typed: str, minutes: int) -> None:
    import asyncio
    import importlib.util

    from shared.config import REPO_ROOT

    path = REPO_ROOT / "integrations" / "openwebui" / "time_savings_feedback.py"
    spec = importlib.util.spec_from_file_location("review_action", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    replies = iter(["more", typed])

    async def event_call(_: dict[str, Any]) -> str:
        return next(replies)

    answer = asyncio.run(module.Action()._ask(event_call, "question"))
    assert answer == {"preset": "more", "minutes": minutes}
