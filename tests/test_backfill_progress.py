"""`serve` serves the dashboard first; the page shows the backfill's progress until every date is done."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions.api.app import create_app
from functions.api.services import ApiServices
from functions.backfill_progress import clear_backfill, read_backfill, write_backfill
from shared.config import get_settings, reset_settings_cache
from tests.api_dataset import TODAY, ZONE

AUTH = {"Authorization": "Bearer local-dev-password"}
NOW = datetime.combine(TODAY, time(12), ZONE)


def _run(engine: Engine, day_back: int, status: str) -> uuid.UUID:
    with engine.begin() as connection:
        return uuid.UUID(
            str(
                connection.execute(
                    sa.text(
                        "INSERT INTO processing_log (run_date, status, started_at, completed_at, trigger) "
                        "VALUES (:d, :s, :t, CASE WHEN :s = 'completed' THEN CAST(:t AS timestamptz) END, "
                        "'backfill') RETURNING id"
                    ),
                    {"d": TODAY - timedelta(days=day_back), "s": status, "t": NOW - timedelta(minutes=1)},
                ).scalar_one()
            )
        )


def _page() -> str:
    app = create_app(services=ApiServices(get_settings(), clock=lambda: NOW))
    response = app.test_client().get("/", headers=AUTH)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_page_shows_dates_done_of_total_with_an_eta_and_refreshes_until_done(
    analytics_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANALYTICS_LOCAL_STATE_DIR", str(tmp_path))
    reset_settings_cache()
    settings = get_settings()
    started = NOW - timedelta(seconds=60)
    write_backfill(settings, 4, started, [])
    page = _page()
    assert "Processing: 0 of 4 dates done</strong>, estimating time left" in page
    assert '<meta http-equiv="refresh" content="10">' in page

    done = _run(analytics_engine, 4, "completed")
    running = _run(analytics_engine, 3, "running")
    write_backfill(settings, 4, started, [done, running])
    with analytics_engine.connect() as connection:
        progress = read_backfill(connection, settings, NOW)
    assert progress is not None and (progress.done, progress.total) == (1, 4)
    assert progress.eta == timedelta(seconds=180)  # 60 s for one date, three to go
    assert "Processing: 1 of 4 dates done</strong>, about 3 min 00 s left" in _page()

    clear_backfill(settings)  # serve's backfill ended (or serve stopped)
    page = _page()
    assert "processing-banner" not in page and 'http-equiv="refresh"' not in page


def test_every_date_final_means_no_banner_and_an_unreadable_file_shows_nothing(
    analytics_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANALYTICS_LOCAL_STATE_DIR", str(tmp_path))
    reset_settings_cache()
    settings = get_settings()
    runs = [_run(analytics_engine, back, "completed") for back in (2, 1)]
    write_backfill(settings, 2, NOW - timedelta(minutes=5), runs)
    with analytics_engine.connect() as connection:
        assert read_backfill(connection, settings, NOW) is None
    (tmp_path / "backfill.json").write_text("{not json", encoding="utf-8")
    with analytics_engine.connect() as connection:
        assert read_backfill(connection, settings, NOW) is None  # unreadable: no banner, no error
