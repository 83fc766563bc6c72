"""Labels anyone can write (model ids, group names, categories) never take the dashboard down.

pygal 3.1 loops forever on a horizontal bar label over about 60 characters; these tests
render every chart and the page with 255-character, unicode, right-to-left, HTML-looking
and control-character labels against a real database, each within a second, and show
that a render which still runs away is cut off with an error image.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

import pygal
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from functions.aggregates import recompute_dates
from functions.api import charts
from functions.api.app import ROUTES, create_app
from functions.api.services import ApiServices
from shared.config import get_settings, reset_settings_cache
from tests.api_dataset import TODAY, USERS, ZONE, seed
from tests.test_auth import PASSWORD, bearer

NOW = datetime.combine(TODAY, datetime.min.time(), ZONE) + timedelta(hours=10)
BEDROCK = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0"
HOSTILE_LABELS = [
    "m" * 254 + "Z",  # 255 characters, the column's limit
    BEDROCK,
    "\u202eevil\u202c right-to-left override " * 6,
    "שלום עולם مرحبا بالعالم " * 8,
    '<script>alert("x")</script><img src=x onerror=alert(1)>' * 4,
    "tab\there\x01\x07bell\u200bzero-width\u2028line" * 5,
    "😀" * 200,
    "  ",
]
# the chart names the chart route accepts, read from ROUTES so that a chart added later is covered
CHARTS = re.findall(
    r"'([^']+)'", next(route.path for route in ROUTES if route.endpoint == "chart").split("any(")[1]
)


@pytest.fixture
def hostile_client(analytics_engine: Engine) -> FlaskClient:
    seed(analytics_engine)
    with analytics_engine.begin() as connection:
        ids = connection.execute(
            sa.text("SELECT conversation_id FROM conversation_analysis WHERE status = 'analyzed' ORDER BY 1")
        ).scalars()
        for number, conversation_id in enumerate(list(ids)[: len(HOSTILE_LABELS) * 3]):
            label = HOSTILE_LABELS[number % len(HOSTILE_LABELS)]
            connection.execute(
                sa.text(
                    "UPDATE conversation_analysis SET primary_model = :m, models_used = ARRAY[:m, :m2] "
                    "WHERE conversation_id = :c"
                ),
                {"m": label, "m2": "=" + label[:100], "c": conversation_id},
            )
        for number, label in enumerate(HOSTILE_LABELS):
            group_id = f"hostile-{number}"
            connection.execute(
                sa.text("INSERT INTO user_groups (group_id, name, member_count) VALUES (:g, :n, 6)"),
                {"g": group_id, "n": label * 3},  # group names are unbounded text: up to 765 here
            )
            connection.execute(
                sa.text("INSERT INTO group_members (group_id, user_id_hash) VALUES (:g, :u)"),
                [{"g": group_id, "u": user} for user in USERS[:6]],
            )
            connection.execute(
                sa.text(
                    "UPDATE conversation_analysis SET group_ids = group_ids || :g WHERE user_id_hash = ANY(:u)"
                ),
                {"g": [group_id], "u": USERS[:6]},
            )
        dates = connection.execute(
            sa.text("SELECT DISTINCT analysis_date FROM conversation_analysis")
        ).scalars()
        recompute_dates(connection, set(dates))
    services = ApiServices(get_settings(), clock=lambda: NOW)
    return create_app(services=services).test_client()


def _timed(client: FlaskClient, url: str) -> tuple[float, bytes, int]:
    started = time.perf_counter()
    response = client.get(url, headers=bearer(PASSWORD))
    return time.perf_counter() - started, response.get_data(), response.status_code


def test_every_chart_and_the_page_render_hostile_labels_within_a_second(hostile_client: FlaskClient) -> None:
    assert set(CHARTS) >= {"daily-trend", "model", "category", "group"}
    for query in ("days=90", "days=90&group=hostile-0", "days=7"):
        for chart in CHARTS:
            seconds, body, status = _timed(hostile_client, f"/charts/{chart}.svg?{query}")
            assert status == 200, (chart, query, status)
            assert seconds < 1.0, (chart, query, seconds)
            assert body.startswith(b"<?xml") or body.startswith(b"<svg"), chart
            assert b"<script" not in body and b"<img" not in body  # labels are text, escaped
            assert b"\x01" not in body and "\u202e".encode() not in body
        seconds, body, status = _timed(hostile_client, f"/?{query}")
        assert status == 200 and seconds < 1.0, (query, status, seconds)
        page = body.decode()
        assert "<script>alert" not in page  # escaped in the tables
        assert "&lt;script&gt;alert" in page
    # the model chart shortens, the table next to it shows every label whole
    _, svg, _ = _timed(hostile_client, "/charts/model.svg?days=90")
    assert "arn:aws:bedrock:us-…0240620-v1:0".encode() in svg
    assert BEDROCK.encode() not in svg
    _, page, _ = _timed(hostile_client, "/?days=90")
    assert BEDROCK in page.decode()
    assert "m" * 254 + "Z" in page.decode()


def test_chart_labels_are_visible_bounded_and_keep_the_tail() -> None:
    assert charts.chart_label("gpt-4o-mini") == "gpt-4o-mini"
    assert charts.chart_label(BEDROCK) == "arn:aws:bedrock:us-…0240620-v1:0"
    for label in [*HOSTILE_LABELS, "x" * 1_000_000]:
        shown = charts.chart_label(label)
        assert 1 <= len(shown) <= charts.MAX_LABEL_CHARS
        assert not re.search(r"[\x00-\x1f\u200b\u2028\u202a-\u202e\u2066-\u2069]", shown), shown
    assert charts.chart_label("  \x00 ") == "–"
    assert charts.chart_label("a" * 1_000_000 + "-v2:0").endswith("aaaa-v2:0")  # the tail of any length


def test_a_runaway_render_is_cut_off_with_an_error() -> None:
    # pygal's own loop, as our charts avoid it: a 100-character label, no shortening
    runaway = pygal.HorizontalBar(js=[], width=480, height=200, x_title="Hours saved", truncate_label=-1)
    runaway.x_labels = ["y" * 100]
    runaway.add("hours", [1])
    started = time.perf_counter()
    with pytest.raises(charts.ChartRenderFailed, match=r"longer than 0\.5 s"):
        charts.render_bounded(runaway.render, budget_seconds=0.5)
    assert time.perf_counter() - started < 1.5
    with pytest.raises(charts.ChartRenderFailed, match="MemoryError"):
        charts.render_bounded(lambda: b"x" * (2 * 1024**3), budget_seconds=5)
    assert charts.render_bounded(lambda: b"<svg/>") == b"<svg/>"


def test_a_chart_over_its_budget_answers_an_error_image(
    hostile_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the route, with a budget no render can meet: an error SVG with 503, at once."""
    monkeypatch.setenv("ANALYTICS_CHART_RENDER_SECONDS", "0.001")
    reset_settings_cache()
    client = create_app(services=ApiServices(get_settings(), clock=lambda: NOW)).test_client()
    for chart in CHARTS:
        started = time.perf_counter()
        response = client.get(f"/charts/{chart}.svg?days=90", headers=bearer(PASSWORD))
        assert response.status_code == 503, chart
        assert response.mimetype == "image/svg+xml"
        assert b"could not be drawn" in response.get_data()
        assert time.perf_counter() - started < 1.0
