"""Hostile and broken input: malformed chats never crash the analyzer or leave partial rows;
bad task payloads are acknowledged, recorded and named in the log, not retried forever."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from functions import analyzer, runs
from infra.local_queues import inline_queue
from infra.openwebui_fixture import OpenWebUIFixture
from shared.config import get_settings, reset_settings_cache
from shared.db import reset_engines
from shared.queue import TASK_SECRET_HEADER
from tests.pipeline_support import rows

DAY = date(2026, 11, 19)
T0 = int(datetime(2026, 11, 19, 9, 0, tzinfo=UTC).timestamp())

_timestamps = st.one_of(
    st.integers(min_value=T0 - 10**6, max_value=T0 + 10**6),
    st.integers(min_value=-(10**12), max_value=10**14),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.none(),
    st.booleans(),
    st.just(str(T0)),
    st.just(T0 * 1000),
)
_ids = st.sampled_from(["a", "b", "c", "d", "e", None, 7, ""])
_messages = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d", "e"]),
    st.fixed_dictionaries(
        {},
        optional={
            "id": _ids,
            "parentId": _ids,
            "childrenIds": st.lists(_ids, max_size=3),
            "role": st.sampled_from(["user", "assistant", "system", "tool", None, 3]),
            "content": st.one_of(
                st.text(max_size=50),
                st.lists(
                    st.dictionaries(st.sampled_from(["type", "text", "image_url"]), st.text(max_size=10))
                ),
                st.none(),
                st.integers(),
            ),
            "timestamp": _timestamps,
            "model": st.one_of(st.text(max_size=10), st.none(), st.integers()),
        },
    ),
    max_size=5,
)
_documents = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "history": st.one_of(
                st.fixed_dictionaries({"messages": _messages}, optional={"currentId": _ids}),
                st.text(max_size=5),
                st.none(),
            ),
            "messages": st.one_of(
                st.lists(st.dictionaries(st.text(max_size=5), _timestamps), max_size=4), st.none()
            ),
            "title": st.text(max_size=10),
        },
    ),
    st.lists(st.integers(), max_size=3),
    st.text(max_size=20),
    st.none(),
)


@pytest.fixture
def hostile_source(tmp_path: Path, analytics_url: str, monkeypatch: pytest.MonkeyPatch) -> OpenWebUIFixture:
    fixture = OpenWebUIFixture.sqlite(tmp_path / "webui.db")
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", fixture.url)
    reset_settings_cache()
    reset_engines()
    return fixture


def _open_run(engine: Engine, expected: int) -> uuid.UUID:
    with engine.begin() as connection:
        return runs.open_run(
            connection,
            run_date=DAY,
            trigger="manual",
            force=False,
            idempotency_key=None,
            expected=expected,
            deferred=0,
        ).run_id


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_documents)
def test_random_chat_documents_never_crash_the_analyzer(
    hostile_source: OpenWebUIFixture, analytics_engine: Engine, document: Any
) -> None:
    chat_id = f"hostile-{uuid.uuid4()}"
    raw = json.dumps(document, allow_nan=True)
    hostile_source.add_chat("user-1", raw, chat_id=chat_id, updated_at=T0)
    run_id = _open_run(analytics_engine, 1)
    settings_ = get_settings()
    result = analyzer.analyze(
        {"run_id": str(run_id), "conversation_id": chat_id}, settings=settings_, queue=inline_queue(settings_)
    )
    assert result.outcome in ("analyzed", "skipped")
    stored = rows(
        analytics_engine, "SELECT * FROM conversation_analysis WHERE conversation_id = :c", c=chat_id
    )
    assert len(stored) == 1
    row = stored[0]
    if row["status"] == "skipped":
        assert row["skip_reason"] and row["manual_time_low"] is None and row["analysis_date"] is None
    else:
        assert row["manual_time_most_likely"] is not None and row["analysis_date"] is not None
    assert (
        rows(analytics_engine, "SELECT status FROM processing_log WHERE id = :r", r=run_id)[0]["status"]
        == "completed"
    )


@pytest.mark.parametrize(
    ("label", "content"),
    [
        ("a 10 MB message", "x" * 10_000_000),
        ("control characters and lone surrogates", "\x00\x01\ud800 broken \udfff"),
        ("non-UTF-8 bytes decoded leniently", b"\xff\xfe\xfa caf\xe9".decode("latin-1")),
    ],
)
def test_extreme_messages_are_measured_or_skipped_not_crashed(
    hostile_source: OpenWebUIFixture, analytics_engine: Engine, label: str, content: str
) -> None:
    document = {
        "history": {
            "currentId": "m2",
            "messages": {
                "m1": {"id": "m1", "parentId": None, "role": "user", "content": content, "timestamp": T0},
                "m2": {
                    "id": "m2",
                    "parentId": "m1",
                    "role": "assistant",
                    "content": "ok",
                    "timestamp": T0 + 60,
                },
            },
        }
    }
    raw = json.dumps(document, ensure_ascii=True)
    hostile_source.add_chat("user-1", raw, chat_id="extreme", updated_at=T0 + 60)
    run_id = _open_run(analytics_engine, 1)
    settings_ = get_settings()
    result = analyzer.analyze(
        {"run_id": str(run_id), "conversation_id": "extreme"},
        settings=settings_,
        queue=inline_queue(settings_),
    )
    assert result.outcome == "analyzed", label
    summary = rows(analytics_engine, "SELECT conversation_summary FROM conversation_analysis")[0][
        "conversation_summary"
    ]
    assert len(summary) <= get_settings().digest_token_budget * 4 + 200


def _post(function: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    client = functions_framework.create_app(target=function, source="main.py").test_client()
    secret = get_settings().task_secret.get_secret_value()
    return client.post("/", data=body, headers={TASK_SECRET_HEADER: secret, **(headers or {})})


@pytest.mark.parametrize(
    ("function", "body", "problem"),
    [
        ("analyze", b"x" * 200_000, "limit is"),
        ("analyze", b"{not json", "not JSON"),
        ("analyze", b"[1, 2, 3]", "JSON object"),
        ("analyze", json.dumps({"run_id": "nope", "conversation_id": "c"}).encode(), "run_id"),
        ("analyze", json.dumps({"run_id": str(uuid.uuid4())}).encode(), "conversation_id"),
        ("analyze", json.dumps({"run_id": str(uuid.uuid4()), "conversation_id": "c", "x": 1}).encode(), "x"),
        (
            "analyze",
            json.dumps({"run_id": str(uuid.uuid4()), "conversation_id": "c"}).encode(),
            "does not exist",
        ),
        ("aggregate", b"\xff\xfe\x00", "not JSON"),
        ("aggregate", json.dumps({"run_id": "../../etc/passwd"}).encode(), "not a UUID"),
        ("aggregate", json.dumps({"run_id": "1; DROP TABLE processing_log"}).encode(), "not a UUID"),
    ],
)
def test_bad_task_payloads_are_acknowledged_recorded_and_logged(
    analytics_engine: Engine, caplog: pytest.LogCaptureFixture, function: str, body: bytes, problem: str
) -> None:
    with caplog.at_level(logging.WARNING):
        response = _post(function, body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == "rejected"
    assert problem in response.get_json()["reason"]
    recorded = rows(analytics_engine, "SELECT function_name, reason, body_bytes FROM task_rejections")
    assert len(recorded) == 1 and recorded[0]["function_name"] == function
    assert recorded[0]["body_bytes"] == len(body)
    assert any(
        "rejected a task payload" in r.getMessage() and problem in r.getMessage() for r in caplog.records
    )
    # the tables survived the injection attempt
    assert rows(analytics_engine, "SELECT count(*) AS n FROM processing_log")[0]["n"] == 0


def test_a_bad_dispatch_body_is_a_client_error(analytics_engine: Engine) -> None:
    response = _post("dispatch", json.dumps({"date": "2026-13-45"}).encode())
    assert response.status_code == 400
    assert "date" in response.get_json()["error"]


def test_pipeline_entry_points_answer_only_post(analytics_engine: Engine) -> None:
    client = functions_framework.create_app(target="analyze", source="main.py").test_client()
    assert client.get("/").status_code == 405


def test_a_misconfigured_source_keeps_the_task_queued_and_says_why(
    analytics_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", f"mysql://nobody@/{tmp_path}/nothing")
    reset_settings_cache()
    run_id = _open_run(analytics_engine, 1)
    response = _post("analyze", json.dumps({"run_id": str(run_id), "conversation_id": "c"}).encode())
    assert response.status_code == 500  # not 2xx: the queue keeps it until the deployment is fixed
    assert response.get_json()["status"] == "misconfigured"
    assert "unsupported database URL" in response.get_json()["reason"]
    assert rows(analytics_engine, "SELECT count(*) AS n FROM run_outcomes")[0]["n"] == 0
