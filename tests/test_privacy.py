"""Privacy by construction: after a full run over planted-PII data, neither the logs nor any text or JSON
column of the analytics database holds planted PII, a raw user id, a name, an e-mail or a secret."""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from functions import dispatcher
from infra.local_queues import inline_queue
from infra.openwebui_fixture import ChatBuilder, OpenWebUIFixture
from shared.config import get_settings, reset_settings_cache
from shared.db import reset_engines
from tests.fake_openai import FakeOpenAIServer, fake_openai_fixture  # noqa: F401 - fixture
from tests.pipeline_support import BUDAPEST

DAY = date(2026, 11, 17)
PLANTED = [
    "zsofia.kovacs@example.hu",
    "+36 30 987 6543",
    "06 1 234 5678",
    "DE89370400440532013000",
    "5555 5555 5555 4444",
    "192.168.17.42",
    "2001:db8::8a2e:370:7334",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "eyJhbGciOiJIUzI1NiJ9.eyJpZCI6InVzZXItMSJ9.c2lnbmF0dXJlLXZhbHVl",
    "https://admin:hunter2@intranet.example.com/reports",
]
SECRETS = {
    "OPENAI_API_KEY": "sk-privacy-test-openai-key-0123456789",
    "ANALYTICS_HMAC_KEY": "privacy-test-hmac-key-0123456789abcdef",
    "ANALYTICS_DASHBOARD_PASSWORD": "privacy-test-dashboard-password",
    "ANALYTICS_TASK_SECRET": "privacy-test-task-secret-0123456789",
}
USER_IDS = ["7f3c2a10-user-real-id-aaaa", "9b1d4e22-user-real-id-bbbb"]
NAMES = ["Zsófia Kovács", "Bence Tóth"]


@pytest.fixture
def planted(
    tmp_path: Path, analytics_url: str, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixture = OpenWebUIFixture.sqlite(tmp_path / "webui.db")
    for user_id, name in zip(USER_IDS, NAMES, strict=True):
        fixture.add_user(user_id, name=name, email=f"{user_id}@corp.example")
    fixture.add_group("Payroll", USER_IDS)
    for index, value in enumerate(PLANTED):
        chat = ChatBuilder(datetime(2026, 11, 17, 9 + index % 8, 0, tzinfo=BUDAPEST))
        chat.turn(
            f"Hi, I am {NAMES[index % 2]}. Please check {value} and reply.",
            f"Sure {NAMES[index % 2]}, " * 5,
            think=0,
        )
        chat.turn(f"Also forward it to {value}", "Done. " * 10)
        fixture.add_chat(USER_IDS[index % 2], chat, title=f"About {value}")
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", fixture.url)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    reset_settings_cache()
    reset_engines()


def _forbidden() -> list[str]:
    values = [*PLANTED, *USER_IDS, *NAMES, *SECRETS.values(), "@corp.example"]
    return values + [v.replace(" ", "") for v in PLANTED if " " in v]


def test_logs_and_database_hold_no_personal_data_or_secrets(
    planted: None, analytics_engine: Engine, fake_openai: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = get_settings()
    with caplog.at_level(logging.DEBUG):
        result = dispatcher.dispatch(target_date=DAY, settings=settings, queue=inline_queue(settings))
    assert result.expected == len(PLANTED)

    log_text = "\n".join(record.getMessage() for record in caplog.records)
    for value in _forbidden():
        assert value not in log_text, f"{value!r} reached the logs"

    sent = "\n".join(str(body) for body in fake_openai.requests)
    for value in [*PLANTED, *USER_IDS, *SECRETS.values(), "@corp.example"]:
        assert value not in sent, f"{value!r} was sent to the estimator"

    with analytics_engine.connect() as connection:
        columns = connection.execute(
            sa.text(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY')"
            )
        ).all()
        assert len(columns) > 20
        for table, column in columns:
            values = connection.execute(sa.text(f'SELECT "{column}"::text FROM "{table}"')).scalars().all()
            dump = "\n".join(v for v in values if v)
            for value in _forbidden():
                assert value not in dump, f"{value!r} found in {table}.{column}"


# Words that occur nowhere else: if any reaches the estimator or the database, user text leaked.
UNIQUE_WORDS = ["quixotrambulant", "zephyrlonguine", "vorpalmintwhisk", "krummelbarsten", "pöttyösnyúlkerék"]


@pytest.fixture
def counts_only_source(
    tmp_path: Path, analytics_url: str, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixture = OpenWebUIFixture.sqlite(tmp_path / "webui.db")
    for user_id, name in zip(USER_IDS, NAMES, strict=True):
        fixture.add_user(user_id, name=name, email=f"{user_id}@corp.example")
    for index, word in enumerate(UNIQUE_WORDS):
        # model ids are a dimension of the analytics (stored for the model breakdown), not conversation text
        chat = ChatBuilder(datetime(2026, 11, 17, 9 + index, 0, tzinfo=BUDAPEST))
        chat.system(f"You are the {word} assistant.")
        chat.turn(
            f"Dear {word.title()},\nplease explain {word} and call {PLANTED[1]}.\n```{word}\nx = 1\n```",
            f"{word} means nothing. " * 5,
            think=0,
        )
        chat.turn(f"Thanks, {word} again: {PLANTED[index]}\nBest regards,\n{word.title()}", "Done.")
        fixture.add_chat(USER_IDS[index % 2], chat, title=f"About {word}")
    monkeypatch.setenv("ANALYTICS_DIGEST_MODE", "counts")
    monkeypatch.setenv("OPENWEBUI_DATABASE_URL", fixture.url)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    reset_settings_cache()
    reset_engines()


def test_counts_mode_sends_and_stores_no_user_text(
    counts_only_source: None, analytics_engine: Engine, fake_openai: FakeOpenAIServer
) -> None:
    settings = get_settings()
    result = dispatcher.dispatch(target_date=DAY, settings=settings, queue=inline_queue(settings))
    assert result.expected == len(UNIQUE_WORDS)

    assert len(fake_openai.requests) == len(UNIQUE_WORDS)  # the estimator was asked, once per chat
    sent = "\n".join(str(body) for body in fake_openai.requests)
    assert "counts only" in sent and "no text of the conversation" in sent  # the prompt says what it gets
    assert "2 user messages" in sent and "other code 1 block (1 line)" in sent  # and it gets the shapes
    forbidden = [*UNIQUE_WORDS, *(word.title() for word in UNIQUE_WORDS), *PLANTED[:5], "please explain"]
    for value in forbidden:
        assert value.lower() not in sent.lower(), f"{value!r} was sent to the estimator in counts mode"

    with analytics_engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT conversation_summary, prompt_version, status FROM conversation_analysis")
        ).all()
        assert [row.status for row in rows] == ["analyzed"] * len(UNIQUE_WORDS)
        assert all(row.prompt_version.endswith("+counts") for row in rows)
        assert all(row.conversation_summary.startswith("Conversation, counts only") for row in rows)
        columns = connection.execute(
            sa.text(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY')"
            )
        ).all()
        for table, column in columns:
            values = connection.execute(sa.text(f'SELECT "{column}"::text FROM "{table}"')).scalars().all()
            dump = "\n".join(v for v in values if v).lower()
            for value in [*UNIQUE_WORDS, *PLANTED[:5], "please explain"]:
                assert value.lower() not in dump, f"{value!r} found in {table}.{column}"


def test_switching_to_counts_mode_rewrites_the_stored_summaries(
    counts_only_source: None,
    analytics_engine: Engine,
    fake_openai: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A forced re-run after the switch replaces every full-mode digest (an unforced run only picks up
    changed conversations, so the README tells operators to force a backfill after switching)."""
    monkeypatch.setenv("ANALYTICS_DIGEST_MODE", "full")
    reset_settings_cache()
    settings = get_settings()
    dispatcher.dispatch(target_date=DAY, settings=settings, queue=inline_queue(settings))
    with analytics_engine.connect() as connection:
        summaries = connection.execute(
            sa.text("SELECT conversation_summary FROM conversation_analysis")
        ).scalars()
        assert any("please explain" in summary for summary in summaries)  # full mode shows the asks

    monkeypatch.setenv("ANALYTICS_DIGEST_MODE", "counts")
    reset_settings_cache()
    settings = get_settings()
    calls = len(fake_openai.requests)
    rerun = dispatcher.dispatch(target_date=DAY, force=True, settings=settings, queue=inline_queue(settings))
    assert rerun.expected == len(UNIQUE_WORDS)
    assert len(fake_openai.requests) == calls + len(UNIQUE_WORDS)  # estimated again, not reused
    with analytics_engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT conversation_summary, task_description, prompt_version FROM conversation_analysis"
            )
        ).all()
    assert len(rows) == len(UNIQUE_WORDS)
    for row in rows:
        assert row.prompt_version.endswith("+counts")
        assert row.conversation_summary.startswith("Conversation, counts only")
        for value in [*UNIQUE_WORDS, "please explain"]:
            assert value not in row.conversation_summary.lower()
