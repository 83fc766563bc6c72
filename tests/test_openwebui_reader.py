"""Reading Open WebUI conversations exactly: the document parser (pure) and the reader (SQLite and Postgres)."""

from __future__ import annotations

import importlib
import json
import math
import re
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from infra.openwebui_fixture import (
    MILLISECONDS,
    OLD_SCHEMA,
    OMIT,
    SQL_NULL,
    BulkChat,
    ChatBuilder,
    OpenWebUIFixture,
    SchemaOptions,
    raw_json,
    realistic_chat,
)
from shared.conversation import Conversation, Message
from shared.errors import SkipConversation
from shared.openwebui import document as doc
from shared.openwebui import reader
from shared.openwebui.document import ChatRecord, MessageRecord, parse_conversation, primary_model
from shared.timing import attribution_date, measure

BUDAPEST = ZoneInfo("Europe/Budapest")
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
MONDAY_9AM = datetime(2026, 3, 2, 9, 0, tzinfo=BUDAPEST)


# --- fixtures --------------------------------------------------------------------


class Source:
    """An Open WebUI database for one test, and the read-only engine the product would use."""

    def __init__(self, fixture: OpenWebUIFixture) -> None:
        self.fixture = fixture
        self.engine = fixture.read_only_engine()

    def dispose(self) -> None:
        self.engine.dispose()
        self.fixture.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def make_source(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Callable[..., Source]]:
    """Build the test's Open WebUI database (one per test) on SQLite or the embedded Postgres."""
    made: list[Source] = []

    def make(options: SchemaOptions | None = None) -> Source:
        options = options or SchemaOptions()
        if request.param == "sqlite":
            fixture = OpenWebUIFixture.sqlite(tmp_path / "webui.db", options)
        else:
            fixture = OpenWebUIFixture.postgres(request.getfixturevalue("fresh_database_url"), options)
        made.append(Source(fixture))
        return made[-1]

    yield make
    for source in made:
        source.dispose()


@pytest.fixture
def source(make_source: Callable[..., Source]) -> Source:
    return make_source()


def _record(document: Any, **fields: Any) -> ChatRecord:
    values = {"id": "chat-1", "user_id": "user-1", "updated_at": 1_772_000_000, "document": document}
    values.update(fields)
    return ChatRecord(**values)


def _parse(document: Any, rows: tuple[MessageRecord, ...] = (), **fields: Any) -> Conversation:
    return parse_conversation(_record(document, **fields), rows, now=NOW)


def _texts(conversation: Conversation) -> list[str]:
    return [message.text for message in conversation.messages]


# --- timestamps ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1_772_000_000, datetime.fromtimestamp(1_772_000_000, UTC)),
        (1_772_000_000.5, datetime.fromtimestamp(1_772_000_000.5, UTC)),
        ("1772000000", datetime.fromtimestamp(1_772_000_000, UTC)),
        (" 1772000000.25 ", datetime.fromtimestamp(1_772_000_000.25, UTC)),
        (1_772_000_000_123, datetime.fromtimestamp(1_772_000_000.123, UTC)),  # milliseconds
        ("1772000000123", datetime.fromtimestamp(1_772_000_000.123, UTC)),
        (1_577_836_800, datetime(2020, 1, 1, tzinfo=UTC)),  # the first valid second
        (1_577_836_799, None),  # 2019
        (0, None),
        (-1_772_000_000, None),
        (NOW.timestamp() + 86_400, NOW + timedelta(days=1)),  # a day of clock skew is tolerated
        (NOW.timestamp() + 86_401, None),
        (float("nan"), None),
        (float("inf"), None),
        ("nan", None),
        ("1e400", None),
        (10**400, None),
        (True, None),
        (False, None),
        (None, None),
        ("yesterday", None),
        ([1_772_000_000], None),
        ({"t": 1}, None),
        ("9" * 100, None),
    ],
)
def test_timestamps_are_normalised_or_rejected(raw: Any, expected: datetime | None) -> None:
    assert doc.parse_timestamp(raw, now=NOW) == expected


# --- the document parser -----------------------------------------------------------


def test_kept_branch_follows_current_id_not_the_newest_answer() -> None:
    chat = ChatBuilder(MONDAY_9AM)
    question = chat.user("Write a haiku")
    first = chat.assistant("first try", model="gpt-4o")
    chat.regenerate(question, "second try", model="llama3.1:8b")
    chat.regenerate(question, "third try", model="gpt-4o-mini")
    chat.select(first)  # the user switched back to the first answer
    chat.user("Now in German", after=120)
    chat.assistant("Ein Haiku", model="gpt-4o")

    conversation = _parse(chat.document())

    assert _texts(conversation) == ["Write a haiku", "first try", "Now in German", "Ein Haiku"]
    assert conversation.regenerations == 2
    assert conversation.abandoned_branches == 2
    assert conversation.models == ("gpt-4o",)
    assert conversation.notes == ()


def test_edited_first_message_makes_two_roots_and_the_kept_one_wins() -> None:
    chat = ChatBuilder(MONDAY_9AM)
    original = chat.user("Summarise this")
    chat.assistant("A summary")
    edited = chat.edit(original, "Summarise this in Hungarian")
    chat.assistant("Összefoglaló")
    document = chat.document()
    roots = [m for m in document["history"]["messages"].values() if m["parentId"] is None]
    assert {root["id"] for root in roots} == {original, edited}

    conversation = _parse(document)

    assert _texts(conversation) == ["Summarise this in Hungarian", "Összefoglaló"]
    assert conversation.abandoned_branches == 1
    assert conversation.regenerations == 0


def test_stale_messages_list_is_ignored_when_history_exists() -> None:
    chat = ChatBuilder(MONDAY_9AM)
    chat.turn("first prompt", "first answer")
    chat.turn("second prompt", "second answer")
    conversation = _parse(chat.document(messages_list="stale"))
    assert _texts(conversation) == ["first prompt", "first answer", "second prompt", "second answer"]


def test_messages_list_is_used_without_history() -> None:
    chat = ChatBuilder(MONDAY_9AM)
    chat.turn("old chat", "old answer")
    conversation = _parse(chat.document(history=False))
    assert _texts(conversation) == ["old chat", "old answer"]
    assert "messages_list_used" in conversation.notes
    assert all(message.timestamp is not None for message in conversation.messages)


@pytest.mark.parametrize("current_id", ["does-not-exist", OMIT, None, 42, ""])
def test_broken_current_id_falls_back_to_the_newest_leaf_with_a_note(current_id: Any) -> None:
    chat = ChatBuilder(MONDAY_9AM)
    question = chat.user("question")
    chat.assistant("answer one", after=5)
    newest = chat.regenerate(question, "answer two", after=60)
    conversation = _parse(chat.document(current_id=current_id))
    assert conversation.messages[-1].id == newest
    assert any(note.startswith("current_id_") for note in conversation.notes)


def test_newest_leaf_by_timestamp_beats_document_order() -> None:
    chat = ChatBuilder(MONDAY_9AM)
    question = chat.user("question")
    late = chat.assistant("late answer", after=600)
    chat.regenerate(question, "early answer", timestamp=int(MONDAY_9AM.timestamp()) + 40)
    conversation = _parse(chat.document(current_id="gone"))
    assert conversation.messages[-1].id == late


def test_newest_leaf_without_timestamps_is_the_last_in_document_order() -> None:
    chat = ChatBuilder(MONDAY_9AM)
    question = chat.user("question", timestamp=OMIT)
    chat.assistant("one", timestamp=OMIT)
    last = chat.regenerate(question, "two", timestamp=OMIT)
    conversation = _parse(chat.document(current_id=OMIT))
    assert conversation.messages[-1].id == last


def test_parent_cycle_terminates_with_a_note() -> None:
    messages = {
        "a": {"id": "a", "parentId": "c", "role": "user", "content": "A", "timestamp": 1_772_000_000},
        "b": {"id": "b", "parentId": "a", "role": "assistant", "content": "B", "timestamp": 1_772_000_010},
        "c": {"id": "c", "parentId": "b", "role": "user", "content": "C", "timestamp": 1_772_000_020},
    }
    conversation = _parse({"history": {"messages": messages, "currentId": "c"}})
    assert _texts(conversation) == ["A", "B", "C"]
    assert "parent_cycle_cut" in conversation.notes


def test_self_parent_and_missing_parent_are_roots() -> None:
    messages = {
        "a": {"id": "a", "parentId": "a", "role": "user", "content": "self", "timestamp": 1_772_000_000},
        "b": {"id": "b", "parentId": "gone", "role": "user", "content": "orphan", "timestamp": 1_772_000_100},
        "c": {
            "id": "c",
            "parentId": "b",
            "role": "assistant",
            "content": "reply",
            "timestamp": 1_772_000_101,
        },
    }
    conversation = _parse({"history": {"messages": messages, "currentId": "c"}})
    assert _texts(conversation) == ["orphan", "reply"]
    assert "missing_parent" in conversation.notes


def test_list_of_blocks_content_images_and_files_are_attachments() -> None:
    chat = ChatBuilder(MONDAY_9AM)
    chat.user(
        [
            {"type": "text", "text": "Mi van ezen a képen? 🖼️"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "mystery", "payload": 1},
            {"type": "text", "text": "Kérlek röviden."},
        ],
        files=[{"type": "file", "name": "report.pdf"}],
    )
    chat.assistant([{"type": "text", "text": "Egy macska."}])
    chat.user(None)
    conversation = _parse(chat.document())
    first, answer, empty = conversation.messages
    assert first.text == "Mi van ezen a képen? 🖼️\nKérlek röviden."
    assert first.attachments == 2
    assert answer.text == "Egy macska."
    assert empty.text == ""


def test_models_come_from_assistant_messages_only_and_primary_model_breaks_ties_by_last_use() -> None:
    chat = ChatBuilder(MONDAY_9AM, model="gpt-4o")
    chat.user("imported question", extra={"model": "chatgpt-import-user-model"})
    chat.assistant("a", model="gpt-4o")
    chat.turn("q2", "b")
    chat.assistant("c", model="claude", parent=chat.path()[-2]["id"])  # a regeneration by another model
    chat.turn("q3", "d")
    chat.assistant("e", model="claude", parent=chat.path()[-2]["id"])
    conversation = _parse(chat.document())
    assert [m.model for m in conversation.messages] == [None, "gpt-4o", None, "claude", None, "claude"]
    assert conversation.models == ("gpt-4o", "claude")
    assert conversation.regenerations == 2
    assert primary_model(conversation) == "claude"  # 2 answers each: the last used wins


def test_primary_model_counts_answers_and_prefers_the_last_used_on_a_tie() -> None:
    def conversation_of(models: list[str | None]) -> Conversation:
        messages = tuple(
            Message(id=str(index), role="assistant", text="x", timestamp=None, model=model)
            for index, model in enumerate(models)
        )
        return Conversation("c", "u", NOW, messages)

    assert primary_model(conversation_of(["a", "b", "b"])) == "b"
    assert primary_model(conversation_of(["b", "a", "a", "b", "a"])) == "a"
    assert primary_model(conversation_of(["a", "b"])) == "b"  # tie: the last used
    assert primary_model(conversation_of(["b", "a", "a", "b"])) == "b"
    assert primary_model(conversation_of([None, None])) is None


def test_fingerprint_ignores_row_flags_and_titles_but_not_content() -> None:
    chat = ChatBuilder(MONDAY_9AM)
    chat.turn("question", "answer")
    document = chat.document()
    base = _parse(document)
    renamed = document | {"title": "Renamed", "tags": ["work"]}
    assert (
        _parse(renamed, title="Renamed", archived=True, updated_at=1_790_000_000).fingerprint
        == base.fingerprint
    )
    changed = json.loads(json.dumps(document))
    changed["history"]["messages"][chat.current_id]["content"] = "another answer"
    assert _parse(changed).fingerprint != base.fingerprint


def test_json_id_differs_from_the_row_id() -> None:
    chat = ChatBuilder(MONDAY_9AM, chat_id="row-id")
    chat.turn("q", "a")
    conversation = _parse(chat.document(json_id="local:temporary-browser-id"), id="row-id")
    assert conversation.conversation_id == "row-id"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{not json", "malformed_document"),
        ("[1, 2, 3]", "malformed_document"),
        ('"just a string"', "malformed_document"),
        ("42", "malformed_document"),
        ("[" * 100_000, "malformed_document"),
        ("null", "no_messages"),
        (None, "no_messages"),
        ("{}", "no_messages"),
        ('{"history": {"messages": {}}, "messages": []}', "no_messages"),
        ('{"history": "weird", "messages": "also weird"}', "no_messages"),
    ],
)
def test_unusable_documents_are_skipped_with_a_reason(raw: Any, reason: str) -> None:
    with pytest.raises(SkipConversation) as raised:
        _parse(raw)
    assert raised.value.reason_code == reason


def test_double_encoded_json_and_bytes_are_decoded() -> None:
    chat = ChatBuilder(MONDAY_9AM)
    chat.turn("q", "a")
    text = json.dumps(chat.document())
    assert _texts(_parse(json.dumps(text))) == ["q", "a"]
    assert _texts(_parse(text.encode())) == ["q", "a"]


def test_share_copies_internal_and_ownerless_rows_are_skipped() -> None:
    chat = ChatBuilder(MONDAY_9AM)
    chat.turn("q", "a")
    cases = [
        ({"user_id": "shared-chat-1"}, "share_copy"),
        ({"meta": '{"internal": true}'}, "internal_chat"),
        ({"meta": {"internal": True}}, "internal_chat"),
        ({"user_id": None}, "no_owner"),
    ]
    for fields, reason in cases:
        with pytest.raises(SkipConversation) as raised:
            _parse(chat.document(), **fields)
        assert raised.value.reason_code == reason
    for meta in ('{"internal": false}', '{"internal": "true"}', "null", "{broken", None, "[]"):
        assert _parse(chat.document(), meta=meta).messages


def test_text_is_made_safe_for_utf8_and_postgres() -> None:
    document = {"messages": [{"role": "user", "content": "a\x00b \ud800 c", "timestamp": 1_772_000_000}]}
    (message,) = _parse(document).messages
    assert message.text == "ab \ufffd c"
    message.text.encode("utf-8")


def test_chat_message_rows_give_structure_but_never_timestamps() -> None:
    rows = (
        MessageRecord(id="chat-1-u1", role="user", content='"Hello there"', created_at=1_700_000_000),
        MessageRecord(
            id="chat-1-a1",
            role="assistant",
            parent_id="u1",
            content='"Hi!"',
            model_id="gpt-4o",
            created_at=1_700_000_001,
        ),
        MessageRecord(
            id="chat-1-a2",
            role="assistant",
            parent_id="u1",
            content="null",
            files="null",
            created_at=1_700_000_050,
        ),
    )
    conversation = _parse({"title": "no messages in the JSON"}, rows)
    assert _texts(conversation) == ["Hello there", ""]
    assert [m.timestamp for m in conversation.messages] == [None, None]
    assert conversation.regenerations == 1
    assert "chat_message_rows_used_untimed" in conversation.notes
    with pytest.raises(SkipConversation) as raised:
        measure(conversation.messages, 10)
    assert raised.value.reason_code == "too_few_timestamps"


def test_chat_message_rows_follow_the_json_current_id() -> None:
    rows = (
        MessageRecord(id="chat-1-u1", role="user", content='"q"', created_at=1),
        MessageRecord(id="chat-1-a1", role="assistant", parent_id="u1", content='"kept"', created_at=2),
        MessageRecord(id="chat-1-a2", role="assistant", parent_id="u1", content='"newer"', created_at=3),
    )
    conversation = _parse({"history": {"currentId": "a1"}}, rows)
    assert _texts(conversation) == ["q", "kept"]
    conversation = _parse(None, rows, current_message_id="a1")
    assert _texts(conversation) == ["q", "kept"]


def test_untimed_json_is_not_repaired_from_chat_message_created_at() -> None:
    chat = ChatBuilder(MONDAY_9AM)
    chat.user("six minute chat", timestamp=OMIT)
    chat.assistant("answer", timestamp=OMIT)
    rows = tuple(
        MessageRecord(id=f"chat-1-{m['id']}", role=m["role"], content=json.dumps(m["content"]), created_at=ts)
        for m, ts in zip(
            chat.messages.values(), (1_750_000_000, 1_776_500_000), strict=True
        )  # 307 days apart
    )
    conversation = _parse(chat.document(), rows)
    assert [m.timestamp for m in conversation.messages] == [None, None]


# --- property-based: the parser never raises anything but SkipConversation ---------


@contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    def fail(*_: Any) -> None:
        raise TimeoutError("the parser hung")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_ids = st.sampled_from(["a", "b", "c", "d", "e", "f"])
_timestamps = (
    st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["1772000000", "1772000000000", "-5", "nan", "inf", "1e400", "", "x", True, None])
    | st.integers(min_value=1_577_836_800, max_value=1_800_000_000)
)
_contents = (
    st.text(max_size=50)
    | st.none()
    | st.lists(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "image_url", "other"]) | _json_values, "text": _json_values}
        ),
        max_size=3,
    )
    | _json_values
)
_messages = st.fixed_dictionaries(
    {
        "id": _ids | _json_values,
        "parentId": st.none() | _ids | _json_values,
        "role": st.sampled_from(["user", "assistant", "system", "tool", ""]) | _json_values,
        "content": _contents,
        "timestamp": _timestamps,
    },
    optional={
        "model": _json_values | st.text(max_size=10),
        "files": _json_values,
        "childrenIds": _json_values,
    },
)
_trees = st.fixed_dictionaries(
    {
        "history": st.fixed_dictionaries(
            {"messages": st.dictionaries(_ids, _messages | _json_values, max_size=6)},
            optional={"currentId": _ids | _json_values},
        )
        | _json_values,
    },
    optional={
        "messages": st.lists(_messages | _json_values, max_size=5) | _json_values,
        "title": _json_values,
    },
)
_rows = st.lists(
    st.builds(
        MessageRecord,
        id=st.sampled_from(["chat-1-a", "chat-1-b", "chat-1-c", "x", ""]),
        role=_json_values,
        parent_id=st.none() | _ids | _json_values,
        content=st.text(max_size=20) | _json_values,
        model_id=_json_values,
        files=st.text(max_size=10) | _json_values,
        created_at=_timestamps,
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_trees | _json_values, rows=_rows, meta=_json_values | st.text(max_size=20))
def test_random_documents_only_ever_raise_skip(document: Any, rows: list[MessageRecord], meta: Any) -> None:
    with _time_limit(5):
        for raw in (document, json.dumps(document)):
            try:
                conversation = parse_conversation(_record(raw, meta=meta), rows, now=NOW)
            except SkipConversation:
                continue
            assert conversation.messages
            assert len(conversation.fingerprint) == 64
            assert all(m.timestamp is None or m.timestamp.tzinfo is UTC for m in conversation.messages)
            assert conversation.regenerations >= 0 and conversation.abandoned_branches >= 0


@settings(max_examples=100, deadline=None)
@given(
    parents=st.lists(st.integers(min_value=-1, max_value=40), min_size=1, max_size=40),
    current=st.integers(min_value=-1, max_value=45),
)
def test_random_trees_with_cycles_terminate_on_a_path(parents: list[int], current: int) -> None:
    messages = {
        str(index): {
            "id": str(index),
            "parentId": None if parent < 0 else str(parent),
            "role": "user" if index % 2 else "assistant",
            "content": f"m{index}",
            "timestamp": 1_772_000_000 + index,
        }
        for index, parent in enumerate(parents)
    }
    with _time_limit(5):
        conversation = _parse({"history": {"messages": messages, "currentId": str(current)}})
    ids = [m.id for m in conversation.messages]
    assert len(ids) == len(set(ids))
    for child, parent in zip(ids[1:], ids, strict=False):
        assert messages[child]["parentId"] == parent


def test_huge_strings_are_handled() -> None:
    big = "é" * 2_000_000
    conversation = _parse({"messages": [{"role": "user", "content": big, "timestamp": "1772000000"}]})
    assert conversation.messages[0].text == big


# --- the reader: listing by local date -------------------------------------------


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _simple_chat(start: datetime, *offsets_minutes: float, chat_id: str | None = None) -> ChatBuilder:
    chat = ChatBuilder(start, chat_id=chat_id)
    previous = 0.0
    for index, offset in enumerate(offsets_minutes):
        gap = (offset - previous) * 60
        previous = offset
        if index % 2 == 0:
            chat.user(f"question {index}", after=gap)
        else:
            chat.assistant(f"answer {index}", after=gap)
    return chat


@pytest.mark.parametrize(
    ("day", "hours"), [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25), (date(2026, 6, 1), 24)]
)
def test_local_day_bounds_follow_dst(day: date, hours: int) -> None:
    start, end = reader.local_day_bounds(day, BUDAPEST)
    assert end - start == timedelta(hours=hours)
    assert start.astimezone(BUDAPEST).replace(tzinfo=None) == datetime.combine(day, datetime.min.time())


@pytest.mark.parametrize("day", [date(2026, 3, 29), date(2026, 10, 25)])
def test_chat_at_2330_on_a_dst_day_is_listed_for_that_day(source: Source, day: date) -> None:
    user = source.fixture.add_user()
    late = datetime(day.year, day.month, day.day, 23, 30, tzinfo=BUDAPEST)
    early_next = late + timedelta(hours=1)  # 00:30 the next day
    ambiguous = datetime(2026, 10, 25, 2, 30, tzinfo=BUDAPEST, fold=1)  # the second 02:30 (CET)
    late_id = source.fixture.add_chat(user, _simple_chat(late - timedelta(minutes=5), 0, 1, 5))
    next_id = source.fixture.add_chat(user, _simple_chat(early_next - timedelta(minutes=5), 0, 1, 5))
    ambiguous_id = source.fixture.add_chat(user, _simple_chat(ambiguous - timedelta(minutes=5), 0, 5))

    listed = {ref.id for ref in reader.list_conversation_ids_for_local_date(source.engine, day, BUDAPEST)}
    following = {
        ref.id
        for ref in reader.list_conversation_ids_for_local_date(
            source.engine, day + timedelta(days=1), BUDAPEST
        )
    }

    assert late_id in listed and late_id not in following
    assert next_id in following and next_id not in listed
    assert (ambiguous_id in listed) == (day == date(2026, 10, 25))
    conversation = reader.load_conversation(source.engine, late_id)
    assert attribution_date(measure(conversation.messages, 10), BUDAPEST) == day


def test_chat_spanning_midnight_counts_for_the_date_of_its_last_message(source: Source) -> None:
    user = source.fixture.add_user()
    start = datetime(2026, 5, 11, 23, 50, tzinfo=BUDAPEST)
    chat_id = source.fixture.add_chat(user, _simple_chat(start, 0, 1, 8, 9, 25, 26))

    conversation = reader.load_conversation(source.engine, chat_id)
    timing = measure(conversation.messages, 10)

    assert attribution_date(timing, BUDAPEST) == date(2026, 5, 12)
    assert timing.first_message_at.astimezone(BUDAPEST).date() == date(2026, 5, 11)
    assert [
        r.id for r in reader.list_conversation_ids_for_local_date(source.engine, date(2026, 5, 12), BUDAPEST)
    ] == [chat_id]
    assert reader.list_conversation_ids_for_local_date(source.engine, date(2026, 5, 11), BUDAPEST) == []


def test_archived_later_is_changed_since_but_attributed_to_its_last_message(source: Source) -> None:
    user = source.fixture.add_user()
    chat = _simple_chat(datetime(2026, 5, 11, 14, 0, tzinfo=BUDAPEST), 0, 1, 3)
    archived_at = datetime(2026, 5, 13, 8, 0, tzinfo=BUDAPEST)
    chat_id = source.fixture.add_chat(user, chat, archived=True, updated_at=_epoch(archived_at))

    start_of_day, _ = reader.local_day_bounds(date(2026, 5, 11), BUDAPEST)
    changed = reader.list_changed_since(source.engine, start_of_day)
    conversation = reader.load_conversation(source.engine, chat_id)

    assert [ref.id for ref in changed] == [chat_id]
    assert changed[0].updated_at == archived_at.astimezone(UTC)
    assert conversation.archived is True
    assert attribution_date(measure(conversation.messages, 10), BUDAPEST) == date(2026, 5, 11)


def test_list_changed_since_bounds_order_and_aware_datetimes(source: Source) -> None:
    user = source.fixture.add_user()
    base = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)
    ids = [
        source.fixture.add_chat(user, _simple_chat(base, 0, 1), updated_at=_epoch(base) + offset)
        for offset in (30, 0, 10, 20)
    ]
    refs = reader.list_changed_since(
        source.engine, base + timedelta(seconds=10), until=base + timedelta(seconds=30)
    )
    assert [ref.id for ref in refs] == [ids[2], ids[3]]
    assert all(ref.user_id == user and ref.updated_at.tzinfo is not None for ref in refs)
    fractional = reader.list_changed_since(source.engine, base + timedelta(seconds=9, milliseconds=500))
    assert [ref.id for ref in fractional] == [ids[2], ids[3], ids[0]]
    with pytest.raises(ValueError, match="aware"):
        reader.list_changed_since(source.engine, datetime(2026, 4, 1))


def test_every_chat_id_is_paged_once_in_key_order_and_refs_keep_the_listings_filters(source: Source) -> None:
    user = source.fixture.add_user()
    start = datetime(2025, 5, 12, 10, 0, tzinfo=BUDAPEST)
    ids = [source.fixture.add_chat(user, _simple_chat(start, 0, 1)) for _ in range(7)]
    share = source.fixture.add_chat(f"shared-{ids[0]}", _simple_chat(start, 0, 1))
    internal = source.fixture.add_chat(user, _simple_chat(start, 0, 1), meta={"internal": True})
    later = source.fixture.add_chat(user, _simple_chat(start + timedelta(days=30), 0, 1))
    pages = list(reader.iter_chat_id_batches(source.engine, batch_size=3))
    assert [len(page) for page in pages] == [3, 3, 3, 1]
    paged = [chat_id for page in pages for chat_id in page]
    assert sorted(paged) == sorted([*ids, share, internal, later])  # each id once
    with source.engine.connect() as connection:  # in the database's own order, which keyset paging needs
        ordered = connection.execute(sa.text("SELECT id FROM chat ORDER BY id")).scalars().all()
    assert paged == list(ordered)
    assert list(reader.iter_chat_id_batches(source.engine, batch_size=10)) == [paged]

    refs = reader.load_refs(source.engine, paged, until=start + timedelta(days=1))
    assert {ref.id for ref in refs} == set(ids)  # no share copy, no internal chat, nothing later
    assert all(ref.user_id == user and ref.updated_at.tzinfo is not None for ref in refs)


def test_share_copies_and_internal_chats_are_not_listed_or_loaded(source: Source) -> None:
    user = source.fixture.add_user()
    start = datetime(2026, 6, 3, 10, 0, tzinfo=BUDAPEST)
    kept = source.fixture.add_chat(user, _simple_chat(start, 0, 1), meta={"tags": []})
    archived = source.fixture.add_chat(user, _simple_chat(start, 0, 2), archived=True)
    share_copy = source.fixture.add_chat(f"shared-{kept}", _simple_chat(start, 0, 1), share_id=None)
    internal = source.fixture.add_chat(user, _simple_chat(start, 0, 3), meta={"internal": True})
    null_meta = source.fixture.add_chat(user, _simple_chat(start, 0, 4), meta=None)  # the text 'null'
    sql_null_meta = source.fixture.add_chat(user, _simple_chat(start, 0, 5), meta=SQL_NULL)
    string_flag = source.fixture.add_chat(user, _simple_chat(start, 0, 6), meta={"internal": "yes"})

    listed = {
        ref.id for ref in reader.list_conversation_ids_for_local_date(source.engine, start.date(), BUDAPEST)
    }

    assert listed == {kept, archived, null_meta, sql_null_meta, string_flag}
    for chat_id, reason in ((share_copy, "share_copy"), (internal, "internal_chat"), ("nope", "not_found")):
        with pytest.raises(SkipConversation) as raised:
            reader.load_conversation(source.engine, chat_id)
        assert raised.value.reason_code == reason
    assert reader.load_conversation(source.engine, archived).archived is True
    assert reader.load_conversation_ref(source.engine, internal).user_id == user
    assert reader.load_conversation_ref(source.engine, "nope") is None


def test_reader_round_trips_content_exactly(source: Source) -> None:
    user = source.fixture.add_user(name="Kovács Éva")
    chat = ChatBuilder(MONDAY_9AM)
    chat.user("Árvíztűrő tükörfúrógép — Größenordnung, Straße, Übermut 😀🚀")
    chat.assistant([{"type": "text", "text": "Kész ✅"}, {"type": "image_url", "image_url": {"url": "x"}}])
    chat.user("ms timestamp", timestamp=MILLISECONDS, after=60)
    chat.assistant("missing timestamp", timestamp=OMIT)
    chat.user("string timestamp", timestamp=str(int(chat.clock) + 90), after=90)
    chat_id = source.fixture.add_chat(user, chat)

    conversation = reader.load_conversation(source.engine, chat_id)

    assert _texts(conversation) == [
        "Árvíztűrő tükörfúrógép — Größenordnung, Straße, Übermut 😀🚀",
        "Kész ✅",
        "ms timestamp",
        "missing timestamp",
        "string timestamp",
    ]
    stamps = [m.timestamp for m in conversation.messages]
    assert stamps[3] is None
    assert stamps[2] == datetime.fromtimestamp(int(MONDAY_9AM.timestamp()) + 92, UTC)
    assert conversation.messages[1].attachments == 1
    assert measure(conversation.messages, 10).timed_messages == 4


def test_branches_and_fingerprint_through_the_database(source: Source) -> None:
    user = source.fixture.add_user()
    chat = ChatBuilder(MONDAY_9AM, chat_id="row-id")
    question = chat.user("Explain DST")
    kept = chat.assistant("First explanation")
    chat.regenerate(question, "Second explanation", model="llama3.1:8b")
    chat.select(kept)
    document = chat.document(json_id="browser-local-id")
    source.fixture.add_chat(user, document, chat_id="row-id", updated_at=chat.last_timestamp)
    source.fixture.add_chat(
        user, chat, chat_id="renamed-copy", title="Another title", archived=True, pinned=True
    )

    conversation = reader.load_conversation(source.engine, "row-id")
    copy = reader.load_conversation(source.engine, "renamed-copy")

    assert conversation.conversation_id == "row-id"
    assert _texts(conversation) == ["Explain DST", "First explanation"]
    assert (conversation.regenerations, conversation.abandoned_branches) == (1, 1)
    assert copy.fingerprint == conversation.fingerprint
    assert copy.title == "Another title"


def test_chat_message_fallback_and_null_texts(source: Source) -> None:
    user = source.fixture.add_user()
    chat = ChatBuilder(MONDAY_9AM, chat_id="rows-only")
    chat.turn("Szia! Kérdés a táblázatról", "Válasz")
    source.fixture.add_chat(
        user, {"title": "t", "history": {"currentId": chat.current_id}}, chat_id="rows-only"
    )
    source.fixture.add_chat_message_rows("rows-only", user, chat.messages.values())
    source.fixture.add_chat_message_row(
        id="rows-only-stray",
        chat_id="rows-only",
        user_id=user,
        role="assistant",
        content=None,
        parent_id=None,
        files=None,
        created_at=1_780_000_000,
    )
    source.fixture.add_chat(user, raw_json("null"), chat_id="null-chat")

    conversation = reader.load_conversation(source.engine, "rows-only")

    assert _texts(conversation) == ["Szia! Kérdés a táblázatról", "Válasz"]
    assert all(m.timestamp is None for m in conversation.messages)
    assert conversation.models == ("gpt-4o",)
    with pytest.raises(SkipConversation) as raised:
        reader.load_conversation(source.engine, "null-chat")
    assert raised.value.reason_code == "no_messages"
    bulk = dict(reader.iter_conversations(source.engine, ["rows-only", "null-chat"]))
    assert _texts(bulk["rows-only"]) == _texts(conversation)
    assert isinstance(bulk["null-chat"], SkipConversation)
    streamed = dict(reader.iter_conversations(source.engine, batch_size=1))  # a cursor stays open meanwhile
    assert _texts(streamed["rows-only"]) == _texts(conversation)
    assert streamed["null-chat"].reason_code == "no_messages"


def test_old_version_database_without_newer_columns_and_tables(make_source: Callable[..., Source]) -> None:
    source = make_source(OLD_SCHEMA)
    alice = source.fixture.add_user(role="admin")
    bob = source.fixture.add_user()
    chat_id = source.fixture.add_chat(alice, _simple_chat(MONDAY_9AM, 0, 1, 4))
    source.fixture.add_chat(alice, {"title": "empty"}, chat_id="empty")
    group = source.fixture.add_group("Finance", [alice, bob])
    source.fixture.add_group("Nobody", [])

    assert [
        r.id for r in reader.list_conversation_ids_for_local_date(source.engine, MONDAY_9AM.date(), BUDAPEST)
    ] == [chat_id]
    assert len(reader.load_conversation(source.engine, chat_id).messages) == 3
    with pytest.raises(SkipConversation):
        reader.load_conversation(source.engine, "empty")
    groups = {g.name: g for g in reader.load_user_groups(source.engine)}
    assert groups["Finance"].id == group and set(groups["Finance"].member_ids) == {alice, bob}
    assert groups["Nobody"].member_ids == ()
    assert [g.name for g in reader.load_user_groups_of(source.engine, bob)] == ["Finance"]
    assert reader.load_user_role(source.engine, alice) == "admin"


def test_groups_roles_and_reserved_table_names(source: Source) -> None:
    admin = source.fixture.add_user(role="admin", name="Admin", email="admin@example.com")
    member = source.fixture.add_user(role="user")
    pending = source.fixture.add_user(role="pending")
    engineering = source.fixture.add_group("Engineering", [admin, member])
    source.fixture.add_group("Sales", [member, pending])

    groups = reader.load_user_groups(source.engine)

    assert sorted((g.name, sorted(g.member_ids)) for g in groups) == [
        ("Engineering", sorted([admin, member])),
        ("Sales", sorted([member, pending])),
    ]
    assert [g.id for g in reader.load_user_groups_of(source.engine, admin)] == [engineering]
    assert sorted(g.name for g in reader.load_user_groups_of(source.engine, member)) == [
        "Engineering",
        "Sales",
    ]
    assert reader.load_user_groups_of(source.engine, "stranger") == []
    assert reader.load_user_role(source.engine, admin) == "admin"
    assert reader.load_user_role(source.engine, pending) == "pending"
    assert reader.load_user_role(source.engine, "stranger") is None
    assert reader.load_known_names(source.engine) == ["Admin", "Test User"]
    assert reader.load_known_names(source.engine, [admin, "stranger"]) == ["Admin"]
    assert reader.load_known_names(source.engine, []) == []


def test_group_user_ids_json_with_null_text(make_source: Callable[..., Source]) -> None:
    source = make_source(SchemaOptions(group_member=False, group_user_ids=True))
    user = source.fixture.add_user()
    source.fixture.add_group("Listed", [user])
    source.fixture._insert(
        "group", {"id": "g-null", "user_id": "x", "name": "Null members", "user_ids": None}
    )
    groups = {g.name: g.member_ids for g in reader.load_user_groups(source.engine)}
    assert groups == {"Listed": (user,), "Null members": ()}


def test_iter_conversations_by_ids_and_by_window(source: Source) -> None:
    user = source.fixture.add_user()
    start = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    ids = [source.fixture.add_chat(user, _simple_chat(start + timedelta(hours=i), 0, 1, 2)) for i in range(7)]
    share = source.fixture.add_chat("shared-x", _simple_chat(start, 0, 1))

    by_ids = list(
        reader.iter_conversations(source.engine, [ids[3], "missing", share, ids[0], ids[3]], batch_size=2)
    )
    assert [chat_id for chat_id, _ in by_ids] == [ids[3], "missing", share, ids[0]]
    assert isinstance(by_ids[0][1], Conversation)
    assert [getattr(outcome, "reason_code", None) for _, outcome in by_ids] == [
        None,
        "not_found",
        "share_copy",
        None,
    ]

    window = list(
        reader.iter_conversations(
            source.engine, since=start + timedelta(hours=2), until=start + timedelta(hours=5), batch_size=2
        )
    )
    assert [chat_id for chat_id, _ in window] == ids[2:5]
    everything = list(reader.iter_conversations(source.engine, batch_size=3))
    assert [chat_id for chat_id, _ in everything] == ids
    single = reader.load_conversation(source.engine, ids[4])
    assert dict(everything)[ids[4]] == single


def test_listing_query_uses_the_updated_at_index(source: Source) -> None:
    user = source.fixture.add_user()
    rows = [
        BulkChat(
            id=f"chat-{index}",
            user_id=user,
            document=_simple_chat(MONDAY_9AM, 0, 1).document(),
            updated_at=_epoch(MONDAY_9AM) + index * 600,
        )
        for index in range(300)
    ]
    source.fixture.bulk_add_chats(rows, batch_size=128)
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    sa.event.listen(source.engine, "before_cursor_execute", capture)
    refs = reader.list_conversation_ids_for_local_date(source.engine, MONDAY_9AM.date(), BUDAPEST)
    sa.event.remove(source.engine, "before_cursor_execute", capture)
    assert len(refs) == 90  # 09:00 … 23:50 every 10 minutes
    statement, parameters = next((s, p) for s, p in captured if "updated_at >=" in s)

    with source.engine.connect() as connection:
        if source.engine.dialect.name == "sqlite":
            plan = " ".join(
                str(row) for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            )
            assert re.search(r"USING (COVERING )?INDEX updated_at_user_id_idx", plan), plan
        else:
            connection.exec_driver_sql(
                "SET enable_seqscan = off"
            )  # a 300-row table would be scanned otherwise
            plan = " ".join(row[0] for row in connection.exec_driver_sql("EXPLAIN " + statement, parameters))
            assert "updated_at_user_id_idx" in plan, plan


def test_bulk_insert_and_realistic_chats_read_back(source: Source) -> None:
    import random

    rng = random.Random(7)
    user = source.fixture.add_user()
    builders = [realistic_chat(rng, MONDAY_9AM + timedelta(hours=i)) for i in range(30)]
    source.fixture.bulk_add_chats(
        BulkChat(id=b.chat_id, user_id=user, document=b.document(), updated_at=b.last_timestamp)
        for b in builders
    )
    loaded = dict(reader.iter_conversations(source.engine, [b.chat_id for b in builders]))
    for builder in builders:
        conversation = loaded[builder.chat_id]
        assert isinstance(conversation, Conversation)
        assert [m.id for m in conversation.messages] == [m["id"] for m in builder.path()]
        assert 4 <= len(builder.messages) <= 40
    assert not math.isnan(sum(measure(c.messages, 10).active_minutes for c in loaded.values()))


def test_malformed_json_text_in_sqlite_is_a_skip_not_a_failed_listing(tmp_path: Any) -> None:
    fixture = OpenWebUIFixture.sqlite(tmp_path / "webui.db")
    engine: Engine = fixture.read_only_engine()
    try:
        user = fixture.add_user()
        good = fixture.add_chat(user, _simple_chat(MONDAY_9AM, 0, 1))
        bad = fixture.add_chat(user, raw_json("{broken"), updated_at=_epoch(MONDAY_9AM))
        fixture.add_chat(user, _simple_chat(MONDAY_9AM, 0, 2), chat_id="bad-meta", meta=raw_json("{broken"))
        listed = {
            r.id for r in reader.list_conversation_ids_for_local_date(engine, MONDAY_9AM.date(), BUDAPEST)
        }
        assert listed == {good, bad, "bad-meta"}
        with pytest.raises(SkipConversation) as raised:
            reader.load_conversation(engine, bad)
        assert raised.value.reason_code == "malformed_document"
        assert reader.load_conversation(engine, "bad-meta").messages
    finally:
        engine.dispose()
        fixture.dispose()


@pytest.mark.parametrize(
    "module_name",
    [
        "shared.openwebui",
        "shared.openwebui.document",
        "shared.openwebui.reader",
        "shared.timing",
        "shared.digest",
        "shared.pseudonym",
        "infra.openwebui_fixture",
    ],
)
def test_public_surfaces_are_declared(module_name: str) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ names {name!r}, which does not exist"
        assert not name.startswith("_")
