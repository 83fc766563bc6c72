"""Read Open WebUI's database (SQLite or Postgres), read only, with SQLAlchemy Core.

The source schema differs between Open WebUI versions, so the columns of `chat`,
`chat_message`, `user`, `group` and `group_member` are reflected once per engine
and only those that exist are selected: an older database without `meta`,
`archived`, `chat_message` or `group_member` reads like a new one. JSON columns
are read as text (`CAST(... AS TEXT)`) and decoded here, so a malformed value
becomes a skipped conversation instead of a failed query.

Which conversations a night covers, the two building blocks:

* `list_changed_since(engine, start_of_day)`: every chat whose `updated_at` is at
  or after a moment. `chat.updated_at` is the last change, so a chat whose last
  message is on day D has `updated_at` on D *or later* (archiving and pinning bump
  it). The pipeline selects by "changed since the start of D" and then
* attributes each conversation to the local date of its last message
  (`shared.timing.attribution_date`), not to the day it was read.

An import keeps the export's `updated_at`, so no window lists an imported chat;
`iter_chat_id_batches` pages through every chat id (keyset over the primary key,
ids only) so the dispatcher can find the ones it has never seen, and `load_refs`
reads those few with the listings' filters.

`list_conversation_ids_for_local_date` gives the chats whose `updated_at` falls on
one local day: ``[00:00, next day 00:00)`` in the zone, as aware datetimes, so a
DST day is 23 or 25 hours long. Both use the `updated_at_user_id_idx
(updated_at, user_id)` index with a range condition on its first column (SQLite
and Postgres alike).

Share-link copies (`user_id LIKE 'shared-%'`) are excluded in SQL; internal chats
(`meta.internal` is JSON true) are excluded in SQL when the `meta` column is JSON
(Postgres) or SQLite's JSON functions exist, guarded against malformed values,
and always again when a chat is loaded.
"""

from __future__ import annotations

import json
import math
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.sql import quoted_name

from shared.conversation import Conversation
from shared.errors import ConfigurationError, ReasonCode, SkipConversation
from shared.openwebui.document import (
    ChatRecord,
    MessageRecord,
    build_conversation,
    check_countable,
    decode_document,
    decode_json_column,
    epoch_to_datetime,
    has_messages,
    parse_conversation,
)

__all__ = [
    "ConversationRef",
    "Rating",
    "UserGroup",
    "iter_chat_id_batches",
    "iter_conversations",
    "list_changed_since",
    "list_conversation_ids_for_local_date",
    "load_conversation",
    "load_conversation_ref",
    "load_known_names",
    "load_ratings",
    "load_refs",
    "load_user_groups",
    "load_user_groups_of",
    "load_user_role",
    "local_day_bounds",
]

_DEFAULT_BATCH_SIZE = 500
_ID_PAGE_SIZE = 10_000  # ids per keyset page of `iter_chat_id_batches`
_JSON_TYPES = (sa.JSON, postgresql.JSON, postgresql.JSONB)


@dataclass(frozen=True, slots=True)
class ConversationRef:
    """A chat row found by a listing: enough to enqueue it and to detect a change."""

    id: str
    user_id: str
    updated_at: datetime  # chat.updated_at, aware UTC


class UserGroup(NamedTuple):
    """An Open WebUI user group and its members' (raw) user ids."""

    id: str
    name: str
    member_ids: tuple[str, ...]


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of local midnight on `day` and on the next day (a DST day is 23 or 25 h)."""
    # fold=0 (the default) picks the first instant of a repeated midnight and the instant
    # after a skipped one: both are the real start of the local day.
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def list_conversation_ids_for_local_date(engine: Engine, day: date, zone: ZoneInfo) -> list[ConversationRef]:
    """Chats whose `updated_at` falls on the local `day` in `zone` (see the module docstring)."""
    start, end = local_day_bounds(day, zone)
    return list_changed_since(engine, start, until=end)


def list_changed_since(
    engine: Engine, moment: datetime, *, until: datetime | None = None
) -> list[ConversationRef]:
    """Chats with `moment <= updated_at < until`, oldest change first; share copies and internal chats left out."""
    schema = _source_schema(engine)
    chat = schema.chat
    statement = (
        sa.select(chat.c.id, chat.c.user_id, chat.c.updated_at)
        .where(*schema.window_conditions(moment, until))
        .order_by(chat.c.updated_at, chat.c.id)
    )
    with engine.connect() as connection:
        return [
            ConversationRef(id=row.id, user_id=row.user_id, updated_at=epoch_to_datetime(row.updated_at))
            for row in connection.execute(statement)
        ]


def iter_chat_id_batches(engine: Engine, batch_size: int = _ID_PAGE_SIZE) -> Iterator[list[str]]:
    """Every chat id, in pages of `batch_size`, keyset-paged over the primary key (`id > last`).

    Only the id is read (an index-only scan of the primary key on SQLite and Postgres), so
    paging through a million chats reads no chat document; share copies and internal chats
    are among them and are left out by `load_refs`. Each page is its own short query: no
    transaction or cursor stays open on Open WebUI's database between pages. On Postgres a
    page comes back as one JSON array (`json_agg(id ORDER BY id)`), some six times faster
    than decoding one row per id; the order is the database's own collation either way.
    """
    chat = _source_schema(engine).chat
    as_json = engine.dialect.name == "postgresql"
    after: str | None = None
    while True:
        statement = sa.select(chat.c.id).order_by(chat.c.id).limit(batch_size)
        if after is not None:
            statement = statement.where(chat.c.id > after)
        with engine.connect() as connection:
            if as_json:
                ids = statement.subquery()
                aggregated = sa.func.json_agg(postgresql.aggregate_order_by(ids.c.id, ids.c.id))
                text = connection.execute(sa.select(sa.cast(aggregated, sa.Text))).scalar_one()
                page = [str(chat_id) for chat_id in json.loads(text)] if text else []
            else:
                page = [str(chat_id) for chat_id in connection.execute(statement).scalars()]
        if page:
            yield page
        if len(page) < batch_size:
            return
        after = page[-1]


def load_refs(engine: Engine, ids: Sequence[str], *, until: datetime | None = None) -> list[ConversationRef]:
    """The chats of `ids` with `updated_at < until`, share copies and internal chats left out (as listed)."""
    schema = _source_schema(engine)
    chat = schema.chat
    refs: list[ConversationRef] = []
    with engine.connect() as connection:
        for offset in range(0, len(ids), _DEFAULT_BATCH_SIZE):
            statement = sa.select(chat.c.id, chat.c.user_id, chat.c.updated_at).where(
                chat.c.id.in_(list(ids[offset : offset + _DEFAULT_BATCH_SIZE])),
                *schema.window_conditions(None, until),
            )
            refs.extend(
                ConversationRef(id=row.id, user_id=row.user_id, updated_at=epoch_to_datetime(row.updated_at))
                for row in connection.execute(statement)
            )
    return refs


def load_conversation(engine: Engine, chat_id: str, *, now: datetime | None = None) -> Conversation:
    """The conversation of one chat row; SkipConversation (with a reason code) when it is not one."""
    schema = _source_schema(engine)
    with engine.connect() as connection:
        row = connection.execute(schema.chat_select().where(schema.chat.c.id == chat_id)).first()
        if row is None:
            raise SkipConversation(f"chat {chat_id!r} does not exist", reason_code=ReasonCode.NOT_FOUND)
        return parse_conversation(
            schema.chat_record(row), lambda: schema.message_records(connection, [chat_id])[chat_id], now=now
        )


def load_conversation_ref(engine: Engine, chat_id: str) -> ConversationRef | None:
    """The id, owner and `updated_at` of any chat row (share copies and internal chats too); None if absent."""
    chat = _source_schema(engine).chat
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(chat.c.id, chat.c.user_id, chat.c.updated_at).where(chat.c.id == chat_id)
        ).first()
    if row is None:
        return None
    user_id = row.user_id if isinstance(row.user_id, str) else ""
    return ConversationRef(id=str(row.id), user_id=user_id, updated_at=epoch_to_datetime(row.updated_at))


def iter_conversations(
    engine: Engine,
    ids: Iterable[str] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_size: int = _DEFAULT_BATCH_SIZE,
    now: datetime | None = None,
) -> Iterator[tuple[str, Conversation | SkipConversation]]:
    """Load many conversations in batches: `(chat id, Conversation or the SkipConversation it raised)`.

    With `ids`, those chats in that order (`IN` queries of `batch_size`). Without,
    every chat changed in ``[since, until)`` (either bound optional), streamed with
    a server-side cursor (`yield_per`) in `updated_at` order, share copies and
    internal chats left out as in the listings.
    """
    schema = _source_schema(engine)
    with engine.connect() as connection:
        if ids is not None:
            batches: Iterator[Sequence[Row[Any]]] = _rows_by_ids(connection, schema, ids, batch_size)
        else:
            statement = (
                schema.chat_select()
                .where(*schema.window_conditions(since, until))
                .order_by(schema.chat.c.updated_at, schema.chat.c.id)
            )
            result = connection.execution_options(yield_per=batch_size).execute(statement)
            batches = result.partitions()
        for batch in batches:
            yield from _parse_batch(connection, schema, batch, now)


def load_user_groups(engine: Engine) -> list[UserGroup]:
    """Every user group with its members: from `group_member` when it exists, else `group.user_ids`."""
    schema = _source_schema(engine)
    if schema.group is None:
        return []
    group = schema.group
    columns: list[sa.ColumnElement[Any]] = [group.c.id, group.c.name]
    if "user_ids" in group.c and schema.group_member is None:
        columns.append(sa.cast(group.c.user_ids, sa.Text).label("user_ids"))
    with engine.connect() as connection:
        rows = connection.execute(sa.select(*columns).order_by(group.c.id)).all()
        members: dict[str, list[str]] = {}
        if schema.group_member is not None:
            member = schema.group_member
            statement = sa.select(member.c.group_id, member.c.user_id).order_by(
                member.c.group_id, member.c.user_id
            )
            for group_id, user_id in connection.execute(statement):
                if isinstance(user_id, str):
                    members.setdefault(str(group_id), []).append(user_id)
    groups = []
    for row in rows:
        if schema.group_member is not None:
            member_ids = members.get(str(row.id), [])
        else:
            member_ids = _member_ids(getattr(row, "user_ids", None))
        groups.append(
            UserGroup(
                id=str(row.id),
                name=row.name if isinstance(row.name, str) else "",
                member_ids=tuple(dict.fromkeys(member_ids)),
            )
        )
    return groups


def load_user_groups_of(engine: Engine, user_id: str) -> list[UserGroup]:
    """The groups `user_id` belongs to."""
    return [group for group in load_user_groups(engine) if user_id in group.member_ids]


def load_known_names(engine: Engine, user_ids: Iterable[str] | None = None) -> list[str]:
    """The display names (and usernames, where the column exists) of some users, or of all.

    For scrubbing: `shared.digest.build_digest(..., known_names=...)` replaces them by ``[NAME]``.
    """
    schema = _source_schema(engine)
    if schema.user is None or "name" not in schema.user.c:
        return []
    user = schema.user
    columns = [user.c.name] + ([user.c.username] if "username" in user.c else [])
    statement = sa.select(*columns)
    if user_ids is not None:
        statement = statement.where(user.c.id.in_(list(dict.fromkeys(user_ids))))
    with engine.connect() as connection:
        names = {value for row in connection.execute(statement) for value in row if isinstance(value, str)}
    return sorted(name for name in names if name.strip())


def load_user_role(engine: Engine, user_id: str) -> str | None:
    """The Open WebUI role (`pending`, `user`, `admin`) of a user, or None when unknown."""
    schema = _source_schema(engine)
    if schema.user is None:
        return None
    with engine.connect() as connection:
        role = connection.execute(
            sa.select(schema.user.c.role).where(schema.user.c.id == user_id)
        ).scalar_one_or_none()
    return role if isinstance(role, str) else None


class Rating(NamedTuple):
    """A person's rating of one answer in Open WebUI (`feedback` rows of type `rating`)."""

    message_id: str
    rating: int | None  # 1 (thumbs up), -1 (thumbs down), None when unreadable
    score: int | None  # the optional 1–10 rating of the details form
    updated_at: datetime


def load_ratings(engine: Engine, chat_id: str) -> list[Rating]:
    """The ratings of a chat's answers, oldest change first; [] when the database has no `feedback` table.

    `meta.chat_id` is matched in SQL (`->>` on Postgres, `json_extract` on SQLite, guarded by
    `json_valid` so a malformed row cannot fail the query); `data` and `meta` are decoded here.
    """
    schema = _source_schema(engine)
    feedback = schema.feedback
    if feedback is None:
        return []
    meta_chat: sa.ColumnElement[Any]
    if engine.dialect.name == "sqlite":
        meta_chat = sa.case(
            (sa.func.json_valid(feedback.c.meta) == 1, sa.func.json_extract(feedback.c.meta, "$.chat_id")),
            else_=None,
        )
    else:
        meta_chat = sa.cast(feedback.c.meta, postgresql.JSONB)["chat_id"].astext
    statement = (
        sa.select(
            sa.cast(feedback.c.data, sa.Text).label("data"),
            sa.cast(feedback.c.meta, sa.Text).label("meta"),
            feedback.c.updated_at,
        )
        .where(feedback.c.type == "rating", meta_chat == chat_id)
        .order_by(feedback.c.updated_at)
    )
    ratings = []
    with engine.connect() as connection:
        for row in connection.execute(statement):
            meta = decode_json_column(row.meta)
            data = decode_json_column(row.data)
            if not isinstance(meta, Mapping) or not isinstance(meta.get("message_id"), str):
                continue
            data = data if isinstance(data, Mapping) else {}
            details = data.get("details")
            ratings.append(
                Rating(
                    message_id=meta["message_id"],
                    rating=_small_int(data.get("rating"), {1, -1}),
                    score=_small_int(
                        details.get("rating") if isinstance(details, Mapping) else None, set(range(1, 11))
                    ),
                    updated_at=epoch_to_datetime(row.updated_at),
                )
            )
    return ratings


def _small_int(value: Any, allowed: set[int]) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number in allowed else None


# --- batches -----------------------------------------------------------------------


def _rows_by_ids(
    connection: Connection, schema: _SourceSchema, ids: Iterable[str], batch_size: int
) -> Iterator[list[Any]]:
    """Rows for `ids` in the given order; a missing id yields its id alone (a str) in place."""
    chunk: list[str] = []
    for chat_id in dict.fromkeys(ids):
        chunk.append(chat_id)
        if len(chunk) >= batch_size:
            yield _fetch_chunk(connection, schema, chunk)
            chunk = []
    if chunk:
        yield _fetch_chunk(connection, schema, chunk)


def _fetch_chunk(connection: Connection, schema: _SourceSchema, chunk: list[str]) -> list[Any]:
    found = {
        row.id: row for row in connection.execute(schema.chat_select().where(schema.chat.c.id.in_(chunk)))
    }
    return [found.get(chat_id, chat_id) for chat_id in chunk]


def _parse_batch(
    connection: Connection, schema: _SourceSchema, batch: Sequence[Any], now: datetime | None
) -> Iterator[tuple[str, Conversation | SkipConversation]]:
    """Parse a batch; the chats whose JSON holds no messages get their `chat_message` rows in one query."""
    results: list[tuple[str, Conversation | SkipConversation | None]] = []
    waiting: dict[str, tuple[ChatRecord, Mapping[str, Any] | None]] = {}
    for row in batch:
        if isinstance(row, str):
            results.append(
                (row, SkipConversation(f"chat {row!r} does not exist", reason_code=ReasonCode.NOT_FOUND))
            )
            continue
        record = schema.chat_record(row)
        try:
            check_countable(record)
            document = decode_document(record.document)
        except SkipConversation as skipped:
            results.append((record.id, skipped))
            continue
        if schema.chat_message is not None and not has_messages(document):
            waiting[record.id] = (record, document)
            results.append((record.id, None))
        else:
            results.append((record.id, _build(record, document, (), now)))
    if waiting:
        rows_by_chat = schema.message_records(connection, list(waiting))
        for index, (chat_id, outcome) in enumerate(results):
            if outcome is None and chat_id in waiting:
                record, document = waiting[chat_id]
                results[index] = (chat_id, _build(record, document, rows_by_chat[chat_id], now))
    for chat_id, outcome in results:
        if outcome is not None:
            yield chat_id, outcome


def _build(
    record: ChatRecord,
    document: Mapping[str, Any] | None,
    message_records: Sequence[MessageRecord],
    now: datetime | None,
) -> Conversation | SkipConversation:
    try:
        return build_conversation(record, document, message_records, now=now)
    except SkipConversation as skipped:
        return skipped


# --- the reflected schema ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SourceSchema:
    """The tables and columns this database actually has, as Core table objects."""

    chat: sa.TableClause
    chat_message: sa.TableClause | None
    user: sa.TableClause | None
    group: sa.TableClause | None
    group_member: sa.TableClause | None
    internal_filter: sa.ColumnElement[bool] | None
    feedback: sa.TableClause | None = None  # ratings; absent before Open WebUI had them

    def chat_select(self) -> sa.Select[Any]:
        chat = self.chat
        columns: list[Any] = [
            chat.c.id,
            chat.c.user_id,
            chat.c.updated_at,
            sa.cast(chat.c.chat, sa.Text).label("chat"),
        ]
        columns += [chat.c[name] for name in ("title", "archived", "current_message_id") if name in chat.c]
        if "meta" in chat.c:
            columns.append(sa.cast(chat.c.meta, sa.Text).label("meta"))
        return sa.select(*columns)

    def chat_record(self, row: Row[Any]) -> ChatRecord:
        fields = row._mapping
        return ChatRecord(
            id=str(fields["id"]),
            user_id=fields["user_id"],
            updated_at=fields["updated_at"],
            document=fields["chat"],
            title=fields.get("title"),
            archived=fields.get("archived") or False,
            meta=fields.get("meta"),
            current_message_id=fields.get("current_message_id"),
        )

    def window_conditions(
        self, since: datetime | None, until: datetime | None
    ) -> list[sa.ColumnElement[bool]]:
        chat = self.chat
        conditions: list[sa.ColumnElement[bool]] = []
        if since is not None:
            conditions.append(chat.c.updated_at >= _epoch_bound(since))
        if until is not None:
            conditions.append(chat.c.updated_at < _epoch_bound(until))
        conditions.append(sa.not_(chat.c.user_id.like("shared-%")))
        if self.internal_filter is not None:
            conditions.append(self.internal_filter)
        return conditions

    def message_records(self, connection: Connection, chat_ids: list[str]) -> dict[str, list[MessageRecord]]:
        """The `chat_message` rows of the chats, per chat id (empty lists when the table is absent)."""
        by_chat: dict[str, list[MessageRecord]] = {chat_id: [] for chat_id in chat_ids}
        table = self.chat_message
        if table is None or not chat_ids:
            return by_chat
        columns: list[Any] = [table.c.id, table.c.chat_id, table.c.role]
        for name in ("parent_id", "model_id", "created_at"):
            if name in table.c:
                columns.append(table.c[name])
        for name in ("content", "files"):
            if name in table.c:
                columns.append(sa.cast(table.c[name], sa.Text).label(name))
        statement = sa.select(*columns).where(table.c.chat_id.in_(chat_ids))
        for row in connection.execute(statement):
            fields = row._mapping
            by_chat.setdefault(fields["chat_id"], []).append(
                MessageRecord(
                    id=str(fields["id"]),
                    role=fields["role"],
                    parent_id=fields.get("parent_id"),
                    content=fields.get("content"),
                    model_id=fields.get("model_id"),
                    files=fields.get("files"),
                    created_at=fields.get("created_at"),
                )
            )
        return by_chat


_schemas: weakref.WeakKeyDictionary[Engine, _SourceSchema] = weakref.WeakKeyDictionary()
_schemas_lock = threading.Lock()

# Our column types, whatever the source declares: JSON is read as text and decoded here.
_CHAT_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "id": sa.Text(),
    "user_id": sa.Text(),
    "title": sa.Text(),
    "chat": sa.Text(),
    "updated_at": sa.BigInteger(),
    "archived": sa.Boolean(),
    "meta": sa.Text(),
    "current_message_id": sa.Text(),
}
_CHAT_MESSAGE_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "id": sa.Text(),
    "chat_id": sa.Text(),
    "role": sa.Text(),
    "parent_id": sa.Text(),
    "content": sa.Text(),
    "model_id": sa.Text(),
    "files": sa.Text(),
    "created_at": sa.BigInteger(),
}
_USER_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "id": sa.Text(),
    "role": sa.Text(),
    "name": sa.Text(),
    "username": sa.Text(),
}
_GROUP_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "id": sa.Text(),
    "name": sa.Text(),
    "user_ids": sa.Text(),
}
_GROUP_MEMBER_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {"group_id": sa.Text(), "user_id": sa.Text()}
_FEEDBACK_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "id": sa.Text(),
    "type": sa.Text(),
    "data": sa.JSON(),
    "meta": sa.JSON(),
    "updated_at": sa.BigInteger(),
}


def _source_schema(engine: Engine) -> _SourceSchema:
    """Reflect the source tables once per engine (the schema changes only with an Open WebUI upgrade)."""
    with _schemas_lock:
        cached = _schemas.get(engine)
    if cached is not None:
        return cached
    inspector = sa.inspect(engine)
    tables = set(inspector.get_table_names())
    if "chat" not in tables:
        raise ConfigurationError("the source database has no `chat` table: is it Open WebUI's?")

    def table(
        name: str, wanted: dict[str, sa.types.TypeEngine[Any]], required: set[str]
    ) -> sa.TableClause | None:
        if name not in tables:
            return None
        present = {column["name"]: column["type"] for column in inspector.get_columns(name)}
        if not required <= present.keys():
            return None
        columns = [sa.column(column, wanted[column]) for column in wanted if column in present]
        return sa.table(quoted_name(name, quote=True), *columns)

    chat = table("chat", _CHAT_COLUMNS, {"id", "user_id", "chat", "updated_at"})
    if chat is None:
        raise ConfigurationError("the source `chat` table lacks id, user_id, chat or updated_at")
    meta_type = (
        {column["name"]: column["type"] for column in inspector.get_columns("chat")}.get("meta")
        if "meta" in chat.c
        else None
    )
    schema = _SourceSchema(
        chat=chat,
        chat_message=table("chat_message", _CHAT_MESSAGE_COLUMNS, {"id", "chat_id", "role"}),
        user=table("user", _USER_COLUMNS, {"id", "role"}),
        group=table("group", _GROUP_COLUMNS, {"id", "name"}),
        group_member=table("group_member", _GROUP_MEMBER_COLUMNS, {"group_id", "user_id"}),
        internal_filter=_internal_filter(engine, chat, meta_type),
        feedback=table("feedback", _FEEDBACK_COLUMNS, {"type", "data", "meta", "updated_at"}),
    )
    with _schemas_lock:
        _schemas[engine] = schema
    return schema


def _internal_filter(
    engine: Engine, chat: sa.TableClause, meta_type: sa.types.TypeEngine[Any] | None
) -> sa.ColumnElement[bool] | None:
    """`meta.internal` is not JSON true, in SQL that cannot fail on malformed meta; None when unsafe."""
    if meta_type is None:
        return None
    meta = chat.c.meta
    if engine.dialect.name == "postgresql":
        if not isinstance(meta_type, _JSON_TYPES):
            return None  # text meta could be malformed: filter on load only
        internal = sa.cast(meta, postgresql.JSONB).contains({"internal": True})
        return sa.not_(sa.func.coalesce(internal, sa.false()))
    if engine.dialect.name == "sqlite" and _sqlite_has_json(engine):
        internal = sa.case(
            (sa.func.json_valid(meta) == 1, sa.func.json_type(meta, "$.internal") == "true"),
            else_=sa.false(),
        )
        return sa.not_(sa.func.coalesce(internal, sa.false()))
    return None


def _sqlite_has_json(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(sa.select(sa.func.json_type('{"a": true}', "$.a")))
    except sa.exc.OperationalError:
        return False
    return True


def _epoch_bound(moment: datetime) -> int:
    """Whole epoch seconds `s` with `updated_at >= s` ⇔ `updated_at >= moment` for integer columns."""
    if moment.tzinfo is None:
        raise ValueError("use an aware datetime: a naive one has no defined instant")
    return math.ceil(moment.timestamp())


def _member_ids(raw: Any) -> list[str]:
    value = decode_json_column(raw)
    if isinstance(value, str):  # a JSON list stored as a JSON string
        value = decode_json_column(value)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]
