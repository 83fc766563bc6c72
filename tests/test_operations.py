"""Operations: liveness without credentials, one access-log line per request, the demo banner,
the phone variant of the charts, and `serve` refusing a reachable address with a weak password."""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, time
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from functions.api.access_log import ACCESS_LOGGER
from functions.api.app import API_PREFIX, ROUTES, create_app
from functions.api.services import ApiServices
from infra.local_stack import check_listen_address, is_loopback
from shared.config import Settings, get_settings, reset_settings_cache
from shared.errors import ConfigurationError
from shared.logs import _JsonFormatter
from tests.api_dataset import TODAY, ZONE, seed

AUTH = {"Authorization": "Bearer local-dev-password"}


@pytest.fixture
def client(analytics_engine: Engine) -> FlaskClient:
    seed(analytics_engine)
    services = ApiServices(get_settings(), clock=lambda: datetime.combine(TODAY, time(12), ZONE))
    return create_app(services=services).test_client()


def test_healthz_answers_liveness_without_credentials_and_nothing_else(client: FlaskClient) -> None:
    route = next(route for route in ROUTES if route.path == "/healthz")
    assert route.access == "public" and route.methods == ("GET",)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get("/healthz", headers={"Authorization": "Bearer wrong"}).get_json() == {"status": "ok"}
    assert client.post("/healthz").status_code == 405
    # the detailed health stays admin-only
    assert client.get(API_PREFIX + "/health").status_code == 401


def test_one_access_log_line_per_request_with_the_route_pattern_and_no_query(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    client.get(API_PREFIX + "/summary?days=7&group=grp-eng", headers=AUTH)
    client.get("/charts/model.svg?days=7", headers=AUTH)
    client.get(API_PREFIX + "/summary?days=0", headers=AUTH)
    client.get(API_PREFIX + "/summary")
    client.get("/no/such/page?email=someone@example.com")
    lines = [record for record in caplog.records if record.name == ACCESS_LOGGER]
    assert [record.getMessage().rsplit(" ", 2)[0] for record in lines] == [
        f"GET {API_PREFIX}/summary 200",
        "GET /charts/<any('daily-trend','model','category','tag','group'):chart>.svg 200",
        f"GET {API_PREFIX}/summary 422",
        f"GET {API_PREFIX}/summary 401",
        "GET <no route> 404",
    ]
    for record in lines:
        assert re.search(r" \d+\.\d ms$", record.getMessage())
        text = record.getMessage()
        assert "grp-eng" not in text and "someone@" not in text and "days=" not in text

    entry = json.loads(_JsonFormatter().format(lines[0]))  # production's JSON lines carry the fields
    assert entry["route"] == f"{API_PREFIX}/summary"
    assert entry["httpRequest"]["requestMethod"] == "GET" and entry["httpRequest"]["status"] == 200
    assert entry["httpRequest"]["latency"].endswith("s") and entry["duration_ms"] >= 0
    assert set(entry) == {"severity", "time", "logger", "message", "httpRequest", "route", "duration_ms"}


def test_the_demo_banner_shows_exactly_when_the_demo_source_is_read(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ANALYTICS_LOCAL_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", f"sqlite:///{tmp_path / 'demo-webui.db'}")
    reset_settings_cache()
    assert get_settings().uses_demo_source
    demo_page = _page(monkeypatch)
    assert 'id="demo-banner"' in demo_page and "Demo data." in demo_page

    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", f"sqlite:///{tmp_path / 'webui.db'}")
    reset_settings_cache()
    assert not get_settings().uses_demo_source
    assert 'id="demo-banner"' not in _page(monkeypatch)
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", "postgresql+pg8000://reader:pw@webui.internal/openwebui")
    reset_settings_cache()
    assert not get_settings().uses_demo_source


def _page(monkeypatch: pytest.MonkeyPatch) -> str:
    services = ApiServices(get_settings(), clock=lambda: datetime.combine(TODAY, time(12), ZONE))
    response = create_app(services=services).test_client().get("/", headers=AUTH)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_phones_get_charts_drawn_for_their_width(client: FlaskClient) -> None:
    page = client.get("/", headers=AUTH).get_data(as_text=True)
    # the trend and the model, category and tag breakdowns
    assert page.count('media="(max-width: 640px)"') == 4
    assert page.count('class="table-scroll"') >= 4
    for chart, wide_width in (("daily-trend", 960), ("model", 480), ("category", 480)):
        wide = client.get(f"/charts/{chart}.svg?days=30", headers=AUTH).get_data(as_text=True)
        narrow = client.get(f"/charts/{chart}.svg?days=30&size=narrow", headers=AUTH).get_data(as_text=True)
        assert f'viewBox="0 0 {wide_width} ' in wide
        narrow_width = int(re.search(r'viewBox="0 0 (\d+) ', narrow).group(1))  # type: ignore[union-attr]
        assert narrow_width <= 380  # about as wide as a phone shows it: text is not scaled down
        assert "font-size:12px" in narrow.replace(" ", "") or "font-size: 12px" in narrow


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_addresses_are_always_allowed(host: str) -> None:
    assert is_loopback(host)
    check_listen_address(host, Settings())


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "analytics.corp.example"])
def test_a_reachable_address_needs_a_real_password(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not is_loopback(host)
    with pytest.raises(ConfigurationError, match=r"refusing to listen on .*ANALYTICS_DASHBOARD_PASSWORD"):
        check_listen_address(host, Settings())  # the default password
    monkeypatch.setenv("ANALYTICS_DASHBOARD_PASSWORD", "short-pw")
    with pytest.raises(ConfigurationError, match="shorter than 12"):
        check_listen_address(host, Settings())
    monkeypatch.setenv("ANALYTICS_DASHBOARD_PASSWORD", "changeme")
    with pytest.raises(ConfigurationError, match="placeholder"):
        check_listen_address(host, Settings())
    monkeypatch.setenv("ANALYTICS_DASHBOARD_PASSWORD", "a long and private passphrase")
    check_listen_address(host, Settings())
