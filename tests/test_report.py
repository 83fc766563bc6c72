"""The monthly report: served, written by the CLI, and printed to A4 PDF by a real Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from functions.aggregates import recompute_dates
from functions.api.app import create_app
from functions.api.services import ApiServices
from functions.value import record_rates
from infra.cli import cli
from shared.config import get_settings, reset_settings_cache
from tests.ground_truth_support import add_confirmation
from tests.loopback import serve_wsgi
from tests.value_dataset import DAY, GROUP_RATES, USERS, ZONE, insert_dataset

AUTH = {"Authorization": "Bearer local-dev-password"}
MONTH = DAY.strftime("%Y-%m")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def seeded(analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The hand-computed dataset (tests/value_dataset.py), valued at 45 EUR/h, on DAY."""
    monkeypatch.setenv("ANALYTICS_HOURLY_RATE", "45")
    monkeypatch.setenv("ANALYTICS_CURRENCY", "EUR")
    monkeypatch.setenv("ANALYTICS_GROUP_HOURLY_RATES", json.dumps(GROUP_RATES))
    monkeypatch.setenv("ANALYTICS_MIN_GROUP_SIZE", "1")
    reset_settings_cache()
    settings = get_settings()
    with analytics_engine.begin() as connection:
        insert_dataset(connection, settings)
        record_rates(connection, settings, DAY)
        recompute_dates(connection, [DAY])
    return analytics_engine


def _client(now: datetime | None = None) -> Any:
    clock = now or datetime.combine(DAY + timedelta(days=40), time(12), ZONE)
    return create_app(services=ApiServices(get_settings(), clock=lambda: clock)).test_client()


def test_the_report_shows_the_headline_figures(seeded: Engine) -> None:
    response = _client().get(f"/report?month={MONTH}", headers=AUTH)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert "<script" not in html
    assert "2.0 h" in html and "0.3 – 4.0 h" in html  # 120 min saved, band 20–240
    assert "105.00 EUR" in html and "likely 20.00 – 210.00 EUR" in html
    assert "4.00 USD" in html and "6.0 k tokens of unpriced models" in html
    assert "50.0" in html and "8.3 – 100.0" in html  # hours per 100 USD
    # the model answering "most time per dollar": gpt-4o-mini, 1 h for 0.15 USD
    assert re.search(r"<strong>gpt-4o-mini</strong> saved the most time per dollar: 666.7 hours", html)
    assert 'id="calibration">not calibrated: no confirmations yet<' in html
    assert "Legal" in html and "Support" in html
    assert (
        "/report.css" in html
        and "/charts/daily-trend.svg?start_date=2026-05-01&amp;end_date=2026-05-31" in html
    )


def test_the_report_states_how_far_the_estimates_were_checked(seeded: Engine) -> None:
    """The calibration line is the calibration report's, not a fixed text."""
    add_confirmation(seeded, "c1", USERS["A"], confirmed_minutes=90)
    add_confirmation(seeded, "c2", USERS["A"], confirmed_minutes=30)
    html = _client().get(f"/report?month={MONTH}", headers=AUTH).get_data(as_text=True)
    status = re.search(r'id="calibration">([^<]*)<', html)
    assert status is not None
    minimum = get_settings().calibration_min_confirmations
    assert status.group(1).endswith(f"not enough confirmations (2 of {minimum})"), status.group(1)


def test_the_report_needs_the_admin_and_valid_parameters(seeded: Engine) -> None:
    client = _client()
    assert client.get(f"/report?month={MONTH}").status_code == 401
    for query in (
        "month=2026-13",
        "month=May",
        f"month={MONTH}&start_date=2026-05-01",
        "start_date=2026-05-01",
        "start_date=2026-05-09&end_date=2026-05-01",
        "colour=red",
    ):
        response = client.get(f"/report?{query}", headers=AUTH)
        assert response.status_code == 422, query
        assert response.get_json()["error"] == "invalid_parameter"


def test_a_custom_range_and_the_default_last_full_month(seeded: Engine) -> None:
    client = _client(datetime.combine(DAY.replace(month=6, day=3), time(9), ZONE))
    custom = client.get("/report?start_date=2026-05-10&end_date=2026-05-10", headers=AUTH).get_data(
        as_text=True
    )
    assert "10 May 2026 – 10 May 2026" in custom and "105.00 EUR" in custom
    default = client.get("/report", headers=AUTH).get_data(as_text=True)
    assert "1 May 2026 – 31 May 2026" in default


def test_without_money_the_report_shows_hours_and_tokens_only(
    seeded: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANALYTICS_HOURLY_RATE")
    reset_settings_cache()
    html = _client().get(f"/report?month={MONTH}", headers=AUTH).get_data(as_text=True)
    assert "2.0 h" in html
    assert "EUR" not in html and "USD</" not in html and "4.00 USD" not in html


def test_the_cli_writes_the_same_report_as_a_standalone_file(seeded: Engine, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", "--month", MONTH, "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "105.00 EUR" in html and "<style>" in html and "data:image/svg+xml;base64," in html
    assert "<link" not in html and "<script" not in html
    bad = CliRunner().invoke(cli, ["report", "--month", "2026-13", "--out", str(out)])
    assert bad.exit_code == 2


def test_reprice_cli_applies_current_rates_on_purpose(
    seeded: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANALYTICS_HOURLY_RATE", "60")
    reset_settings_cache()
    before = _client().get(f"/report?month={MONTH}", headers=AUTH).get_data(as_text=True)
    assert "105.00 EUR" in before  # the recorded rate still holds
    result = CliRunner().invoke(cli, ["reprice", "--from", DAY.isoformat()])
    assert result.exit_code == 0, result.output
    after = _client().get(f"/report?month={MONTH}", headers=AUTH).get_data(as_text=True)
    assert "120.00 EUR" in after


# --- printed by a real Chromium ------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser_page(seeded: Engine) -> Iterator[tuple[Any, str]]:
    import playwright.sync_api as playwright_api

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `apt-get install chromium` (the CI script .ci/run does)")
    from tests.test_dashboard_browser import CHROMIUM_ARGS

    clock = datetime.combine(DAY + timedelta(days=40), time(12), ZONE)
    app = create_app(services=ApiServices(get_settings(), clock=lambda: clock))
    with serve_wsgi(app) as url, playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(extra_http_headers=AUTH)
        page = context.new_page()
        try:
            yield page, url
        finally:
            context.close()
            browser.close()


@pytest.mark.browser
def test_the_report_prints_on_one_or_two_a4_pages(browser_page: tuple[Any, str], tmp_path: Path) -> None:
    if not shutil.which("pdftotext") or not shutil.which("pdfinfo"):
        pytest.fail(
            "poppler-utils is not installed: `apt-get install poppler-utils` (the CI script .ci/run does)"
        )
    page, url = browser_page
    violations: list[str] = []
    page.on(
        "console",
        lambda message: "Content Security Policy" in message.text and violations.append(message.text),
    )
    page.goto(f"{url}/report?month={MONTH}")
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = tmp_path / "report.pdf"
    page.emulate_media(media="print")
    page.pdf(path=str(pdf), format="A4", print_background=True, prefer_css_page_size=True)
    page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
    page.screenshot(path=str(ARTIFACTS / "report-first-page.png"))
    shutil.copy(pdf, ARTIFACTS / "report.pdf")

    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))  # type: ignore[union-attr]
    size = re.search(r"^Page size:\s+([\d.]+) x ([\d.]+) pts", info, re.M)
    assert size is not None and (round(float(size.group(1))), round(float(size.group(2)))) == (595, 842)  # A4
    assert 1 <= pages <= 2, info
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    words = " ".join(text.split())
    for figure in ("2.0 h", "105.00 EUR", "20.00 – 210.00", "4.00 USD", "50.0", "not calibrated"):
        assert figure in words, figure
    assert violations == []
