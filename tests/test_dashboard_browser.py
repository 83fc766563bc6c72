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

import playwright.sync_api as playwright_api
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions.api.app import create_app
from functions.api.services import ApiServices
from shared.config import get_settings
from tests.api_dataset import TODAY, ZONE, seed
from tests.loopback import serve_wsgi

pytestmark = pytest.mark.browser

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
        pytest.fail("chromium is not installed: `apt-get install chromium` (the CI script .ci/run does)")
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


SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs"
UPDATE_SCREENSHOTS = "ANALYTICS_UPDATE_SCREENSHOTS"  # `make screenshots`: refresh the README's images


@pytest.fixture
def demo_server(tmp_path: Path, analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The api app over the demo database as `make run` builds it, its last 60 days processed."""
    yield from _demo(tmp_path, monkeypatch)


VIEWER_PASSWORD = "viewer-password-for-the-browser"


@pytest.fixture
def viewer_demo_server(
    tmp_path: Path, analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The demo as above, with a viewer password: its runs publish the closed weeks and months."""
    monkeypatch.setenv("ANALYTICS_VIEWER_PASSWORD", VIEWER_PASSWORD)
    yield from _demo(tmp_path, monkeypatch)


def _demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from functions import dispatcher
    from infra.demo_data import build_demo_database
    from infra.local_queues import inline_queue
    from shared.config import reset_settings_cache
    from shared.db import reset_engines

    monkeypatch.setenv("ANALYTICS_LOCAL_STATE_DIR", str(tmp_path))
    reset_settings_cache()
    demo = get_settings().demo_source_path
    build_demo_database(demo, zone=get_settings().zone)
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", f"sqlite:///{demo}")
    reset_settings_cache()
    reset_engines()
    settings = get_settings()
    last = datetime.now(settings.zone).date() - timedelta(days=1)
    dispatcher.backfill(last - timedelta(days=59), last, settings=settings, queue=inline_queue(settings))
    with serve_wsgi(create_app(services=ApiServices(settings))) as url:
        yield url


def test_demo_dashboard_at_desktop_and_phone_width(demo_server: str, page: Any) -> None:
    """Screenshots at 1400 px and 390 px (`test-artifacts/`, and `docs/` with ANALYTICS_UPDATE_SCREENSHOTS=1)."""
    import os

    expect = playwright_api.expect
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(demo_server + "/login")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#demo-banner")).to_contain_text("Demo data.")
    expect(page.locator("#kpi-estimator")).to_contain_text("Heuristic")
    expect(page.locator("#kpi-hours .change")).to_contain_text("vs previous period")
    page.wait_for_function("() => Array.from(document.querySelectorAll('img.chart')).every(i => i.complete)")
    assert _charts_loaded(page) == 4
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1400
    desktop = ARTIFACTS / "dashboard-1400.png"
    page.screenshot(path=str(desktop), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('img.chart')).every(i => i.complete && i.currentSrc.includes('size=narrow'))"
    )
    assert _charts_loaded(page) == 4
    assert (
        page.evaluate("() => document.documentElement.scrollWidth") <= 390
    )  # the page itself never scrolls sideways
    # the charts are drawn about as wide as they are shown, so their 12 px text stays readable
    scales = page.evaluate(
        "() => Array.from(document.querySelectorAll('img.chart')).map(i => i.clientWidth / i.naturalWidth)"
    )
    assert all(scale > 0.8 for scale in scales), scales
    tables = page.evaluate(
        """() => Array.from(document.querySelectorAll('.table-scroll')).filter(t => t.offsetParent).map(t => ({
            scrolls: t.scrollWidth > t.clientWidth,
            hint: getComputedStyle(t, '::before').content,
            sticky: getComputedStyle(t.querySelector('td, th')).position,
        }))"""
    )
    assert tables and any(table["scrolls"] for table in tables)
    assert all("Scroll sideways" in table["hint"] and table["sticky"] == "sticky" for table in tables)
    for card in ("#by-model", "#by-category", "#by-user", "#by-group"):  # the key column is on screen
        hours = page.locator(f"{card} th", has_text="Hours saved")
        box = hours.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390, (card, box)
    user_table = page.locator("#by-user .table-scroll")
    user_table.evaluate("t => t.scrollLeft = t.scrollWidth")  # scrolled: the pseudonym column stays
    assert page.locator("#by-user tbody tr td").first.is_visible()
    user_table.evaluate("t => t.scrollLeft = 0")
    phone = ARTIFACTS / "dashboard-390.png"
    page.screenshot(path=str(phone), full_page=True)
    assert page.csp_violations == []  # type: ignore[attr-defined]
    if os.environ.get(UPDATE_SCREENSHOTS) == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        shutil.copyfile(desktop, SCREENSHOTS / "dashboard.png")
        shutil.copyfile(phone, SCREENSHOTS / "dashboard-phone.png")


def test_the_viewer_dashboard_at_desktop_and_phone_width(viewer_demo_server: str, page: Any) -> None:
    """A viewer's page over the demo's releases: published weeks, no per-person panel, no breakdowns
    by model or category; screenshots at 1400 px and 390 px (and `docs/` with ANALYTICS_UPDATE_SCREENSHOTS=1)."""
    import os

    expect = playwright_api.expect
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(viewer_demo_server + "/login")
    page.fill("#password", VIEWER_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#disclosure-note")).to_contain_text("as published on")
    expect(page.locator("#disclosure-note")).to_contain_text("published week")
    for admin_only in ("#by-user", "#by-model", "#by-category", "#csv-download"):
        assert page.locator(admin_only).count() == 0, admin_only
    expect(page.locator("#by-group")).to_be_visible()
    page.wait_for_function("() => Array.from(document.querySelectorAll('img.chart')).every(i => i.complete)")
    assert _charts_loaded(page) == 1  # the trend, one point per published week (breakdown charts: admins)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1400
    desktop = ARTIFACTS / "dashboard-viewer-1400.png"
    page.screenshot(path=str(desktop), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('img.chart')).every(i => i.complete && i.currentSrc.includes('size=narrow'))"
    )
    assert _charts_loaded(page) == 1
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    phone = ARTIFACTS / "dashboard-viewer-390.png"
    page.screenshot(path=str(phone), full_page=True)
    assert page.csp_violations == []  # type: ignore[attr-defined]
    if os.environ.get(UPDATE_SCREENSHOTS) == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        shutil.copyfile(desktop, SCREENSHOTS / "dashboard-viewer.png")
        shutil.copyfile(phone, SCREENSHOTS / "dashboard-viewer-phone.png")


def test_the_calibration_panel_in_the_browser(analytics_engine: Engine, page: Any) -> None:
    """People's own answers against the estimates: the admin's panel, its figures and its scatter chart."""
    import random

    from tests.ground_truth_support import add_analysis, add_confirmation

    seed(analytics_engine)
    rng = random.Random(7)
    for index in range(24):  # coding: people say about 1.6 × the estimate; writing: too few answers
        category = "coding" if index < 20 else "writing"
        most_likely = rng.randint(15, 240)
        conversation = f"calibrated-{index}"
        add_analysis(
            analytics_engine,
            conversation,
            user_id_hash=f"{index:064x}",
            most_likely=most_likely,
            low=most_likely // 2,
            high=most_likely * 2,
            category=category,
            day=TODAY - timedelta(days=2),
        )
        confirmed = max(1, round(most_likely * 1.6 * rng.lognormvariate(0, 0.25)))
        add_confirmation(analytics_engine, conversation, f"{index:064x}", confirmed_minutes=confirmed)
    services = ApiServices(get_settings(), clock=lambda: datetime.combine(TODAY, time(12), ZONE))
    with serve_wsgi(create_app(services=services)) as url:
        page.goto(url + "/login")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        panel = page.locator("#calibration")
        playwright_api.expect(panel).to_contain_text("24 answers, 24 compared with an estimate")
        table = page.locator("#calibration-table")
        playwright_api.expect(table).to_contain_text("Coding")
        coding = table.locator("tr", has_text="Coding").first.inner_text()
        bias = re.search(r"×(\d+\.\d+)", coding)
        assert bias is not None and 1.3 < float(bias.group(1)) < 1.9, coding
        playwright_api.expect(table.locator("tr", has_text="Writing").first).to_contain_text(
            "not enough confirmations (4 of 20)"
        )
        panel.scroll_into_view_if_needed()
        page.wait_for_function("() => document.querySelector('#calibration-chart').complete")
        assert page.evaluate("() => document.querySelector('#calibration-chart').naturalWidth") > 0
        panel.screenshot(path=str(ARTIFACTS / "dashboard-calibration.png"))
