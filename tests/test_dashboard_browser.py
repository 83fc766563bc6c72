"""The dashboard in a real headless Chromium (Debian's), driven by Playwright over loopback.

Screenshots go to `test-artifacts/` (git-ignored). Skipped when Chromium or the
Playwright package is missing; CI installs both.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions.api.app import create_app
from functions.api.services import ApiServices
from shared.config import get_settings
from tests.api_dataset import TODAY, ZONE, seed
from tests.loopback import serve_wsgi

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "local-dev-password"


@pytest.fixture
def live_server(analytics_engine: Engine) -> Iterator[str]:
    """The api app with the known dataset and a failed last run, on a loopback port."""
    seed(analytics_engine)
    with analytics_engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO processing_log (run_date, status, started_at, completed_at, error_message) "
                "VALUES (:d, 'failed', :t, :t, 'the Open WebUI database was unreachable')"
            ),
            {"d": TODAY - timedelta(days=1), "t": datetime.combine(TODAY, time(0, 31), ZONE)},
        )
    services = ApiServices(get_settings(), clock=lambda: datetime.combine(TODAY, time(12), ZONE))
    with serve_wsgi(create_app(services=services)) as url:
        yield url


@pytest.fixture
def page() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.csp_violations = []  # type: ignore[attr-defined]
        page.on(
            "console",
            lambda message: (
                "Content Security Policy" in message.text and page.csp_violations.append(message.text)
            ),  # type: ignore[attr-defined]
        )
        try:
            yield page
        finally:
            context.close()
            browser.close()


def _charts_loaded(page: Any) -> int:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('img.chart')).filter(i => i.complete && i.naturalWidth > 0).length"
    )


def test_dashboard_end_to_end(live_server: str, page: Any, tmp_path: Path) -> None:
    expect = playwright_api.expect

    page.goto(live_server + "/")
    expect(page).to_have_url(live_server + "/login")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("Wrong password.")
    page.screenshot(path=str(ARTIFACTS / "dashboard-login-error.png"))

    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(live_server + "/")
    expect(page.locator("#kpi-hours .value")).to_contain_text(" h")
    expect(page.locator("#kpi-hours .band")).to_contain_text("likely between")
    expect(page.locator("#kpi-estimator")).to_contain_text("Mixed")
    expect(page.locator("#health-banner")).to_contain_text("failed")
    expect(page.locator("#by-user code").first).to_have_text(re.compile(r"^[0-9a-f]{10}$"))
    page.wait_for_function("() => Array.from(document.querySelectorAll('img.chart')).every(i => i.complete)")
    assert _charts_loaded(page) == 4  # trend, model, category, tag
    page.screenshot(path=str(ARTIFACTS / "dashboard-30-days.png"), full_page=True)
    thirty_days = page.locator("#kpi-conversations .value").inner_text()

    page.click("nav.presets >> text=7 days")
    expect(page).to_have_url(live_server + "/?days=7")
    expect(page.locator("a.pill.active")).to_have_text("7 days")
    assert page.locator("#kpi-conversations .value").inner_text() != thirty_days

    page.select_option("#group", label="Engineering (6)")
    page.click("#filters button[type=submit]")
    expect(page.locator(".range-note")).to_contain_text("group Engineering")
    expect(page.locator("#group")).to_have_value("grp-eng")
    page.wait_for_function("() => Array.from(document.querySelectorAll('img.chart')).every(i => i.complete)")
    page.screenshot(path=str(ARTIFACTS / "dashboard-group.png"), full_page=True)

    with page.expect_download() as download_info:
        page.click("#csv-download")
    saved = tmp_path / "export.csv"
    download_info.value.save_as(saved)
    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert rows[0][:3] == ["conversation_id", "user_pseudonym", "analysis_date"]
    assert len(rows) > 1

    page.click("#logout")
    expect(page).to_have_url(live_server + "/login")
    page.goto(live_server + "/")
    expect(page).to_have_url(live_server + "/login")
    assert page.csp_violations == []  # type: ignore[attr-defined]
