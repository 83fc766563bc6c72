"""The dimension registry: everything a dimension needs follows from its entry; tags end to end."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from functions import dispatcher
from functions.aggregates import recompute_dates
from functions.api.app import API_PREFIX, ROUTES, create_app
from functions.api.services import ApiServices
from functions.dimensions import DIMENSIONS, FILTER_DIMENSIONS, STORED_DIMENSIONS, Dimension
from functions.read.csv_export import CSV_COLUMNS
from functions.read.schemas import BreakdownResponse, ExportQuery, SummaryQuery
from infra.local_queues import inline_queue
from infra.openwebui_fixture import ChatBuilder, OpenWebUIFixture
from shared.config import get_settings, reset_settings_cache
from shared.conversation import MAX_TAG_LENGTH, MAX_TAGS, bounded_tags
from shared.db import reset_engines
from shared.openwebui import reader
from shared.roles import ADMIN_ONLY
from tests.pipeline_support import CHAT_TAGS, assert_books_balance, build_dataset, rows
from tests.test_schema import _analysis, _insert_analysis

_MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


# --- the registry --------------------------------------------------------------------


def test_every_stored_dimension_has_its_breakdown_route_and_filter() -> None:
    routes = {route.path: route for route in ROUTES}
    for dimension in STORED_DIMENSIONS:
        route = routes[API_PREFIX + dimension.route]
        assert route.response is BreakdownResponse
        assert route.summary == dimension.title
        # breakdowns by a stored dimension are not in a viewer's releases: admin-only
        assert route.description == dimension.description
        assert route.access == ADMIN_ONLY
    for dimension in FILTER_DIMENSIONS:
        assert dimension.filter_parameter in SummaryQuery.model_fields
        assert dimension.filter_parameter in ExportQuery.model_fields
    # the spec's and the earlier paths stay
    assert {API_PREFIX + "/model-breakdown", API_PREFIX + "/category-breakdown"} <= set(routes)


def test_every_dimension_has_a_chart_and_a_csv_column() -> None:
    adapter = create_app().url_map.bind("localhost")
    for dimension in DIMENSIONS:
        endpoint, values = adapter.match(f"/charts/{dimension.chart}.svg")
        assert (endpoint, values) == ("chart", {"chart": dimension.chart})
        if dimension.stored:
            assert dimension.csv_column in CSV_COLUMNS
    with pytest.raises(Exception, match="404"):
        adapter.match("/charts/nothing.svg")


@pytest.mark.parametrize("name", ["total", "Model", "with space", "x" * 17, ""])
def test_a_dimension_name_must_fit_the_table(name: str) -> None:
    with pytest.raises(ValueError, match="identifier"):
        Dimension(name=name, values_sql="tags", label="X", noun="x", description="", disclosure="partition")


def test_disclosure_rules() -> None:
    rules = {dimension.name: dimension.disclosure for dimension in DIMENSIONS}
    assert rules == {
        "model": "partition",
        "category": "partition",
        "tag": "overlapping",
        "group": "overlapping",
    }


# --- tags as read from Open WebUI ----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["q4_report", "customer"], ("q4_report", "customer")),
        (["a", "a", "b"], ("a", "b")),
        (["", "   ", "x"], ("x",)),
        ([1, None, {"a": 1}, ["b"], True, "ok"], ("ok",)),
        (["a\x00b", "\ud800c"], ("ab", "c")),
        (["=HYPERLINK(1)", "<script>"], ("=HYPERLINK(1)", "<script>")),  # stored as given
        (["x" * 10_000], ("x" * MAX_TAG_LENGTH,)),
        ([f"t{n}" for n in range(10_000)], tuple(f"t{n}" for n in range(MAX_TAGS))),
        ("q4_report", ()),
        (None, ()),
        ({"tags": ["a"]}, ()),
    ],
)
def test_tags_are_bounded_and_never_crash(raw: object, expected: tuple[str, ...]) -> None:
    assert bounded_tags(raw) == expected


def test_the_reader_takes_tags_from_chat_meta(tmp_path: Path) -> None:
    fixture = OpenWebUIFixture.sqlite(tmp_path / "webui.db")
    user = fixture.add_user(name="Ann", email="ann@corp.example")

    def chat(**options: object) -> str:
        builder = ChatBuilder(_MONDAY)
        builder.user("Draft the Q4 report")
        builder.assistant("Here is a draft", after=60)
        return fixture.add_chat(user, builder, **options)  # type: ignore[arg-type]

    tagged = chat(tags=["q4_report", "customer"])
    untagged = chat()
    hostile = chat(meta={"tags": ["ok", 7, "x" * 500, "a\x00b"] + [f"n{i}" for i in range(100)]})
    malformed = chat(meta="{not json")
    not_a_list = chat(meta={"tags": "q4_report"})
    engine = fixture.read_only_engine()
    try:

        def tags_of(chat_id: str) -> tuple[str, ...]:
            return reader.load_conversation(engine, chat_id).tags

        assert tags_of(tagged) == ("q4_report", "customer")
        assert tags_of(untagged) == ()
        hostile_tags = tags_of(hostile)
        assert hostile_tags[:3] == ("ok", "x" * MAX_TAG_LENGTH, "ab") and len(hostile_tags) == MAX_TAGS
        assert tags_of(malformed) == ()
        assert tags_of(not_a_list) == ()
    finally:
        engine.dispose()
        fixture.dispose()


def test_tags_flow_from_open_webui_to_the_breakdown(
    tmp_path: Path, analytics_url: str, analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = date(2026, 11, 20)
    data = build_dataset(tmp_path / "webui.db", days=[day], chats_per_day=10)
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", data.url)
    monkeypatch.setenv("ANALYTICS_QUEUE_BACKEND", "inline")
    reset_settings_cache()
    reset_engines()
    settings = get_settings()
    dispatcher.dispatch(target_date=day, settings=settings, queue=inline_queue(settings))

    analysed = rows(
        analytics_engine,
        "SELECT conversation_id, tags FROM conversation_analysis WHERE status = 'analyzed'",
    )
    assert analysed
    assert {tuple(a["tags"]) for a in analysed} <= {tuple(tags) for tags in CHAT_TAGS}
    assert any(len(a["tags"]) > 1 for a in analysed)
    assert_books_balance(analytics_engine)  # includes the tag rows of daily_breakdowns
    breakdown = rows(
        analytics_engine,
        "SELECT dimension_value, conversation_count FROM daily_breakdowns WHERE dimension = 'tag' AND group_id = ''",
    )
    expected = {tag for a in analysed for tag in a["tags"]}
    assert {row["dimension_value"] for row in breakdown} == expected


# --- a third estimator is data -------------------------------------------------------


def test_a_third_estimator_needs_no_schema_change(analytics_engine: Engine) -> None:
    day = date(2026, 11, 27)
    for number, estimator in enumerate(("llm", "rules_v2", "rules_v2")):
        _insert_analysis(analytics_engine, _analysis(conversation_id=f"c-{number}", estimator=estimator))
    with analytics_engine.begin() as connection:
        recompute_dates(connection, [day])
    services = ApiServices(get_settings(), clock=lambda: datetime(2026, 11, 28, 12, tzinfo=UTC))
    client = create_app(services=services).test_client()
    auth = {"Authorization": "Bearer local-dev-password"}
    body = client.get(API_PREFIX + "/summary?days=1", headers=auth).get_json()
    assert body["estimators"] == {"llm": 1, "rules_v2": 2}
    assert (body["estimator"], body["llm_estimated_count"], body["heuristic_estimated_count"]) == (
        "mixed",
        1,
        0,
    )
    rows = client.get(API_PREFIX + "/model-breakdown?days=1", headers=auth).get_json()["rows"]
    assert rows[0]["estimators"] == {"llm": 1, "rules_v2": 2}
    page = client.get("/?days=1", headers=auth).get_data(as_text=True)
    assert "2 by rules_v2" in page
