"""Real Open WebUI-shaped databases and chat documents, for tests, demo data and benchmarks.

The tables use Open WebUI's own table and column names and types (`chat.chat` is
JSON, `created_at`/`updated_at` are BigInteger epoch seconds, `chat_message.id`
is ``"{chat_id}-{message_id}"``, ...), on SQLite or Postgres. `SchemaOptions`
leaves out what older versions lack (`OLD_SCHEMA`: no `meta`, `pinned`,
`folder_id`, `chat_message`, `group_member`).

    fixture = OpenWebUIFixture.sqlite(tmp_path / "webui.db")
    alice = fixture.add_user(name="Alice")
    chat = ChatBuilder(start=datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    question = chat.user("Írj egy SQL lekérdezést")
    chat.assistant("```sql\\nSELECT 1;\\n```", after=2)
    chat.regenerate(question, "Another answer")
    fixture.add_chat(alice, chat)

Documents are shaped like the frontend saves them: ``history.messages`` (id,
parentId, childrenIds, role, content, timestamp in seconds, model, modelName,
done, usage), ``history.currentId``, the ``messages`` list of the displayed
branch, and a chat-level ``timestamp`` in milliseconds.
"""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.db import make_engine

__all__ = [
    "AUTO",
    "CURRENT_SCHEMA",
    "MILLISECONDS",
    "OLD_SCHEMA",
    "OMIT",
    "SQL_NULL",
    "BulkChat",
    "ChatBuilder",
    "OpenWebUIFixture",
    "SchemaOptions",
    "chat_times",
    "create_schema",
    "raw_json",
    "realistic_chat",
]


class _Marker:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


AUTO: Any = _Marker("AUTO")  # the builder's clock (timestamps) or the natural default (parents, columns)
OMIT: Any = _Marker("OMIT")  # leave the key out of the message
MILLISECONDS: Any = _Marker("MILLISECONDS")  # the builder's clock, written in milliseconds
SQL_NULL: Any = _Marker("SQL_NULL")  # a real SQL NULL in a JSON column (None writes the text 'null')


@dataclass(frozen=True, slots=True)
class SchemaOptions:
    """Which newer parts of Open WebUI's schema exist."""

    chat_meta: bool = True  # chat.meta (JSON, default '{}') and chat.folder_id
    chat_pinned: bool = True
    chat_archived: bool = True
    chat_recent_columns: bool = True  # current_message_id, last_read_at, summary (recent versions)
    chat_message: bool = True  # the chat_message table (0.8+)
    group_member: bool = True  # the group_member table (newer); else members in group.user_ids
    group_user_ids: bool = False  # the older group.user_ids JSON column
    feedback: bool = True  # the feedback table (ratings of answers)


CURRENT_SCHEMA = SchemaOptions()
OLD_SCHEMA = SchemaOptions(
    chat_meta=False,
    chat_pinned=False,
    chat_recent_columns=False,
    chat_message=False,
    group_member=False,
    group_user_ids=True,
    feedback=False,
)


def create_schema(engine: Engine, options: SchemaOptions = CURRENT_SCHEMA) -> sa.MetaData:
    """Create Open WebUI's tables (as its migrations leave them) in an empty database."""
    metadata = sa.MetaData()
    chat_columns: list[Any] = [
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("user_id", sa.String),
        sa.Column("title", sa.Text),
        sa.Column("chat", sa.JSON),
        sa.Column("created_at", sa.BigInteger),
        sa.Column("updated_at", sa.BigInteger),
        sa.Column("share_id", sa.Text, unique=True, nullable=True),
    ]
    if options.chat_archived:
        chat_columns.append(sa.Column("archived", sa.Boolean, default=False))
    if options.chat_pinned:
        chat_columns.append(sa.Column("pinned", sa.Boolean, default=False, nullable=True))
    if options.chat_meta:
        chat_columns.append(sa.Column("meta", sa.JSON, server_default="{}"))
        chat_columns.append(sa.Column("folder_id", sa.Text, nullable=True))
    if options.chat_recent_columns:
        chat_columns.append(sa.Column("current_message_id", sa.Text, nullable=True))
        chat_columns.append(sa.Column("last_read_at", sa.BigInteger, nullable=True))
        chat_columns.append(sa.Column("summary", sa.Text, nullable=True))
    chat_table = sa.Table("chat", metadata, *chat_columns)
    sa.Index("updated_at_user_id_idx", chat_table.c.updated_at, chat_table.c.user_id)
    if options.chat_archived:
        sa.Index("user_id_archived_idx", chat_table.c.user_id, chat_table.c.archived)
    if options.chat_meta:
        sa.Index("folder_id_idx", chat_table.c.folder_id)

    if options.chat_message:
        message_table = sa.Table(
            "chat_message",
            metadata,
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("chat_id", sa.Text, sa.ForeignKey("chat.id", ondelete="CASCADE"), nullable=False),
            sa.Column("user_id", sa.Text, index=True),
            sa.Column("role", sa.Text, nullable=False),
            sa.Column("parent_id", sa.Text, nullable=True),
            sa.Column("content", sa.JSON, nullable=True),
            sa.Column("output", sa.JSON, nullable=True),
            sa.Column("model_id", sa.Text, nullable=True),
            sa.Column("files", sa.JSON, nullable=True),
            sa.Column("sources", sa.JSON, nullable=True),
            sa.Column("embeds", sa.JSON, nullable=True),
            sa.Column("meta", sa.JSON, nullable=True),
            sa.Column("done", sa.Boolean, default=True),
            sa.Column("status_history", sa.JSON, nullable=True),
            sa.Column("error", sa.JSON, nullable=True),
            sa.Column("usage", sa.JSON, nullable=True),
            sa.Column("context_summary", sa.Text, nullable=True),
            sa.Column("created_at", sa.BigInteger, index=True),
            sa.Column("updated_at", sa.BigInteger),
        )
        sa.Index("chat_message_chat_parent_idx", message_table.c.chat_id, message_table.c.parent_id)

    sa.Table(
        "user",
        metadata,
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("name", sa.String),
        sa.Column("email", sa.String),
        sa.Column("role", sa.String),
        sa.Column("profile_image_url", sa.Text),
        sa.Column("last_active_at", sa.BigInteger),
        sa.Column("updated_at", sa.BigInteger),
        sa.Column("created_at", sa.BigInteger),
        sa.Column("api_key", sa.String, nullable=True, unique=True),
        sa.Column("settings", sa.JSON, nullable=True),
        sa.Column("info", sa.JSON, nullable=True),
        sa.Column("oauth_sub", sa.Text, nullable=True, unique=True),
    )
    group_columns: list[Any] = [
        sa.Column("id", sa.Text, unique=True, primary_key=True),
        sa.Column("user_id", sa.Text),
        sa.Column("name", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("data", sa.JSON, nullable=True),
        sa.Column("meta", sa.JSON, nullable=True),
        sa.Column("permissions", sa.JSON, nullable=True),
        sa.Column("created_at", sa.BigInteger),
        sa.Column("updated_at", sa.BigInteger),
    ]
    if options.group_user_ids:
        group_columns.append(sa.Column("user_ids", sa.JSON, nullable=True))
    sa.Table("group", metadata, *group_columns)
    if options.group_member:
        sa.Table(
            "group_member",
            metadata,
            sa.Column("id", sa.Text, unique=True, primary_key=True),
            sa.Column("group_id", sa.Text, sa.ForeignKey("group.id", ondelete="CASCADE"), nullable=False),
            sa.Column("user_id", sa.Text, nullable=False),
            sa.Column("created_at", sa.BigInteger, nullable=True),
            sa.Column("updated_at", sa.BigInteger, nullable=True),
            sa.UniqueConstraint("group_id", "user_id", name="uq_group_member_group_user"),
        )
    if options.feedback:
        sa.Table(  # open_webui/models/feedbacks.py
            "feedback",
            metadata,
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("user_id", sa.Text),
            sa.Column("version", sa.BigInteger, default=0),
            sa.Column("type", sa.Text),
            sa.Column("data", sa.JSON, nullable=True),
            sa.Column("meta", sa.JSON, nullable=True),
            sa.Column("snapshot", sa.JSON, nullable=True),
            sa.Column("created_at", sa.BigInteger),
            sa.Column("updated_at", sa.BigInteger),
        )
    metadata.create_all(engine)
    return metadata


# --- chat documents ------------------------------------------------------------------


class ChatBuilder:
    """A message tree shaped like Open WebUI's frontend writes it, with a clock for timestamps.

    Each added message becomes the current leaf; its parent defaults to the previous
    current leaf. `regenerate`, `edit` and `select` make and switch branches.
    """

    def __init__(
        self,
        start: datetime | float,
        *,
        chat_id: str | None = None,
        title: str = "New Chat",
        model: str = "gpt-4o",
        new_id: Callable[[], str] | None = None,
    ) -> None:
        self._new_id = new_id or (lambda: str(uuid.uuid4()))
        self.chat_id = chat_id or self._new_id()
        self.title = title
        self.model = model
        self.clock = start.timestamp() if isinstance(start, datetime) else float(start)
        self.first_clock = self.clock
        self.messages: dict[str, dict[str, Any]] = {}
        self.current_id: str | None = None

    # -- adding messages -----------------------------------------------------------

    def user(
        self,
        content: Any,
        *,
        after: float = 30.0,
        parent: Any = AUTO,
        files: Sequence[Mapping[str, Any]] | None = None,
        timestamp: Any = AUTO,
        message_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Add a user message `after` seconds after the previous one; returns its id."""
        message: dict[str, Any] = {"role": "user", "content": content, "models": [self.model]}
        if files:
            message["files"] = [dict(item) for item in files]
        return self._add(
            message, after=after, parent=parent, timestamp=timestamp, message_id=message_id, extra=extra
        )

    def assistant(
        self,
        content: Any,
        *,
        after: float = 2.0,
        parent: Any = AUTO,
        model: str | None = None,
        timestamp: Any = AUTO,
        done: bool = True,
        message_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Add an assistant answer (timestamp = when the request started, as the backend does)."""
        model = model or self.model
        message: dict[str, Any] = {
            "role": "assistant",
            "content": content,
            "model": model,
            "modelName": model.upper(),
            "modelIdx": 0,
            "userContext": None,
            "done": done,
            "usage": {"prompt_tokens": 100, "completion_tokens": max(1, len(str(content)) // 4)},
        }
        return self._add(
            message, after=after, parent=parent, timestamp=timestamp, message_id=message_id, extra=extra
        )

    def system(self, content: str, *, after: float = 0.0, timestamp: Any = AUTO) -> str:
        return self._add(
            {"role": "system", "content": content}, after=after, parent=AUTO, timestamp=timestamp
        )

    def turn(
        self, ask: Any, answer: Any, *, think: float = 60.0, answer_after: float = 1.0
    ) -> tuple[str, str]:
        """A user message `think` seconds after the previous message, and its answer."""
        question = self.user(ask, after=think)
        return question, self.assistant(answer, after=answer_after)

    def side_by_side(
        self, ask: Any, answers: Sequence[tuple[str, Any]], *, think: float = 60.0, answer_after: float = 1.0
    ) -> tuple[str, list[str]]:
        """A turn answered by several models at once, as Open WebUI's side-by-side chat writes it:
        the user message lists the `models`; one answer per model, all with the same timestamp,
        each with its `model` and `modelIdx` (its place in that list). The last answer is current."""
        question = self._add(
            {"role": "user", "content": ask, "models": [model for model, _ in answers]},
            after=think,
            parent=AUTO,
            timestamp=AUTO,
        )
        ids = []
        for index, (model, content) in enumerate(answers):
            ids.append(
                self.assistant(
                    content,
                    after=answer_after if index == 0 else 0.0,
                    parent=question,
                    model=model,
                    extra={"modelIdx": index},
                )
            )
        return question, ids

    def regenerate(self, user_message_id: str, content: Any, *, after: float = 20.0, **options: Any) -> str:
        """Another answer to `user_message_id` (a sibling of its earlier answers); it becomes current."""
        return self.assistant(content, after=after, parent=user_message_id, **options)

    def edit(self, message_id: str, content: Any, *, after: float = 20.0, **options: Any) -> str:
        """An edited copy of a user message: a sibling under the same parent (a new root for the first)."""
        parent = self.messages[message_id]["parentId"]
        return self.user(content, after=after, parent=parent, **options)

    def select(self, message_id: str) -> ChatBuilder:
        """Make `message_id` the kept leaf (the user switched branches)."""
        self.current_id = message_id
        return self

    def _add(
        self,
        message: dict[str, Any],
        *,
        after: float,
        parent: Any,
        timestamp: Any,
        message_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        self.clock += after
        message_id = message_id or self._new_id()
        parent_id = self.current_id if parent is AUTO else parent
        node: dict[str, Any] = {"id": message_id, "parentId": parent_id, "childrenIds": []}
        node.update(message)
        if timestamp is AUTO:
            node["timestamp"] = int(self.clock)
        elif timestamp is MILLISECONDS:
            node["timestamp"] = int(self.clock * 1000)
        elif timestamp is not OMIT:
            node["timestamp"] = timestamp
        if extra:
            node.update(extra)
        if parent_id is not None and parent_id in self.messages:
            self.messages[parent_id]["childrenIds"].append(message_id)
        self.messages[message_id] = node
        self.current_id = message_id
        return message_id

    # -- reading back ----------------------------------------------------------------

    def path(self, leaf: str | None = None) -> list[dict[str, Any]]:
        """The messages from the root to `leaf` (default: the current leaf)."""
        chain: list[dict[str, Any]] = []
        step = leaf or self.current_id
        while step is not None and step in self.messages:
            chain.append(self.messages[step])
            step = self.messages[step]["parentId"]
        return chain[::-1]

    @property
    def last_timestamp(self) -> int:
        """The clock's current value in whole epoch seconds (the latest message's time)."""
        return int(self.clock)

    def document(
        self,
        *,
        history: bool = True,
        messages_list: str = "branch",
        current_id: Any = AUTO,
        json_id: str | None = None,
    ) -> dict[str, Any]:
        """The `chat` column's JSON.

        `messages_list`: ``"branch"`` (the displayed branch, as the frontend saves it),
        ``"stale"`` (only the first message, as the backend completion path leaves it)
        or ``"none"``. `current_id`: AUTO, OMIT or any raw value (e.g. an id that does not exist).
        """
        path = self.path()
        document: dict[str, Any] = {
            "id": json_id or self.chat_id,
            "title": self.title,
            "models": [self.model],
            "params": {},
            "tags": [],
            "timestamp": int(self.first_clock * 1000),
            "files": [],
        }
        if history:
            history_part: dict[str, Any] = {"messages": json.loads(json.dumps(self.messages))}
            if current_id is AUTO:
                history_part["currentId"] = self.current_id
            elif current_id is not OMIT:
                history_part["currentId"] = current_id
            document["history"] = history_part
        if messages_list == "branch":
            document["messages"] = json.loads(json.dumps(path))
        elif messages_list == "stale":
            document["messages"] = json.loads(json.dumps(path[:1]))
        return document


_PROSE = [
    "Could you explain how this works and give an example?",
    "Make it shorter and more formal, please.",
    "Írj egy rövid összefoglalót a negyedéves jelentésről, magyarul.",
    "Kérlek, javítsd ki a hibát ebben a függvényben: a dátumokat rosszul kezeli.",
    "Bitte formuliere die E-Mail an den Kunden höflicher. Grüße und Dankeschön!",
    "Fasse die Besprechung in fünf Stichpunkten zusammen.",
    "What are the trade-offs between these two approaches? 🤔",
    "Translate this paragraph to English and keep the tone friendly.",
    "Create a table comparing the three vendors by price and support.",
    "Write a SQL query that returns monthly revenue per region.",
]
_ANSWER_PARTS = [
    "Here is a summary of the main points you asked about. ",
    "The key idea is to separate parsing from validation, so each part can be tested. ",
    "Összefoglalva: a bevétel 12%-kal nőtt, a költségek stagnáltak. ",
    "Zusammengefasst: Der Umsatz ist gestiegen, die Kosten sind stabil geblieben. ",
    "Consider the edge cases: empty input, very large values and time zones. ",
]
_CODE_BLOCKS = [
    "```python\ndef monthly_totals(rows):\n    totals = {}\n    for row in rows:\n"
    "        key = row.date.strftime('%Y-%m')\n        totals[key] = totals.get(key, 0) + row.amount\n"
    "    return totals\n```",
    "```sql\nSELECT region, date_trunc('month', sold_at) AS month, sum(amount)\nFROM sales\n"
    "GROUP BY 1, 2\nORDER BY 1, 2;\n```",
    "```bash\nset -euo pipefail\npython -m venv .venv\n.venv/bin/pip install -r requirements.txt\n```",
]
_TABLE = (
    "| Vendor | Price | Support |\n|---|---:|---|\n| A | 10 | email |\n| B | 12 | 24/7 |\n| C | 9 | none |"
)
_LIST = "- first point\n- second point\n- third point"
_MODELS = ("gpt-4o", "gpt-4o-mini", "llama3.1:8b")


def realistic_chat(rng: random.Random, start: datetime, *, chat_id: str | None = None) -> ChatBuilder:
    """A plausible chat, the same for the same `rng` state: 4–30 messages on the kept branch,
    think times mostly under the idle threshold, some long breaks, occasional regenerations
    and edits, prose in English, Hungarian and German, code, tables, lists."""

    def new_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    model = rng.choice(_MODELS)
    chat = ChatBuilder(start, chat_id=chat_id, title=rng.choice(_PROSE)[:40], model=model, new_id=new_id)
    turns = rng.randint(2, 15)
    for index in range(turns):
        think = rng.choice((15, 40, 90, 180, 400)) if rng.random() > 0.1 else rng.randint(900, 7200)
        ask = rng.choice(_PROSE) + (" " + rng.choice(_PROSE) if rng.random() < 0.3 else "")
        question = chat.user(ask, after=0 if index == 0 else think)
        answer = "".join(rng.choices(_ANSWER_PARTS, k=rng.randint(1, 8)))
        if rng.random() < 0.35:
            answer += "\n\n" + rng.choice(_CODE_BLOCKS)
        if rng.random() < 0.15:
            answer += "\n\n" + _TABLE
        if rng.random() < 0.25:
            answer += "\n\n" + _LIST
        chat.assistant(answer, after=rng.uniform(0, 2))
        if rng.random() < 0.08:
            chat.regenerate(question, rng.choice(_ANSWER_PARTS) + "(second try)", after=rng.uniform(10, 60))
        if index and rng.random() < 0.04:
            edited = chat.edit(question, ask + " (edited)", after=rng.uniform(10, 60))
            chat.assistant(answer, after=1, parent=edited)
    return chat


# --- databases ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BulkChat:
    """One chat row for `OpenWebUIFixture.bulk_add_chats`."""

    id: str
    user_id: str
    document: Mapping[str, Any]
    updated_at: int
    created_at: int | None = None
    title: str = "New Chat"
    archived: bool = False


@dataclass
class OpenWebUIFixture:
    """An Open WebUI database being filled by a test (SQLite file or Postgres URL)."""

    engine: Engine
    options: SchemaOptions = CURRENT_SCHEMA
    metadata: sa.MetaData = field(init=False)

    def __post_init__(self) -> None:
        self.metadata = create_schema(self.engine, self.options)

    @classmethod
    def sqlite(cls, path: Path | str, options: SchemaOptions = CURRENT_SCHEMA) -> OpenWebUIFixture:
        return cls(sa.create_engine(f"sqlite:///{path}"), options)

    @classmethod
    def postgres(cls, url: str, options: SchemaOptions = CURRENT_SCHEMA) -> OpenWebUIFixture:
        return cls(make_engine(url), options)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)

    def read_only_engine(self) -> Engine:
        """An engine opened the way the product opens Open WebUI's database (read only)."""
        return make_engine(self.url, read_only=True)

    def dispose(self) -> None:
        self.engine.dispose()

    def _table(self, name: str) -> sa.Table:
        return self.metadata.tables[name]

    def _insert(self, name: str, values: Mapping[str, Any]) -> None:
        """Insert one row; JSON columns get `json.dumps(value)` (None → the text 'null', as
        SQLAlchemy writes it for Open WebUI), `SQL_NULL` → NULL, `raw_json(text)` → the text."""
        table = self._table(name)
        expressions: dict[str, Any] = {}
        parameters: dict[str, Any] = {}
        for key, value in values.items():
            column_type = table.c[key].type
            if isinstance(column_type, sa.JSON):
                parameter = sa.bindparam(key, type_=sa.Text)
                expressions[key] = sa.cast(parameter, sa.JSON) if self._is_postgres else parameter
                parameters[key] = (
                    None
                    if value is SQL_NULL
                    else str(value)
                    if isinstance(value, _Raw)
                    else json.dumps(value)
                )
            else:
                expressions[key] = sa.bindparam(key, type_=column_type)
                parameters[key] = value
        with self.engine.begin() as connection:
            connection.execute(sa.insert(table).values(expressions), parameters)

    @property
    def _is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def add_user(
        self,
        user_id: str | None = None,
        *,
        name: str = "Test User",
        email: str | None = None,
        role: str = "user",
        created_at: int = 1_767_225_600,
    ) -> str:
        user_id = user_id or str(uuid.uuid4())
        self._insert(
            "user",
            {
                "id": user_id,
                "name": name,
                "email": email or f"{user_id[:8]}@example.com",
                "role": role,
                "profile_image_url": "/user.png",
                "last_active_at": created_at,
                "updated_at": created_at,
                "created_at": created_at,
                "settings": SQL_NULL,
                "info": SQL_NULL,
            },
        )
        return user_id

    def add_group(
        self, name: str, member_ids: Sequence[str], *, group_id: str | None = None, owner_id: str = "admin"
    ) -> str:
        """A group; members go to `group_member` or to `group.user_ids`, whichever the schema has."""
        group_id = group_id or str(uuid.uuid4())
        values: dict[str, Any] = {
            "id": group_id,
            "user_id": owner_id,
            "name": name,
            "description": f"{name} team",
            "permissions": {},
            "created_at": 1_767_225_600,
            "updated_at": 1_767_225_600,
        }
        if self.options.group_user_ids:
            values["user_ids"] = list(member_ids)
        self._insert("group", values)
        if self.options.group_member:
            for member in member_ids:
                self._insert(
                    "group_member",
                    {
                        "id": str(uuid.uuid4()),
                        "group_id": group_id,
                        "user_id": member,
                        "created_at": 1_767_225_600,
                    },
                )
        return group_id

    def add_chat(
        self,
        user_id: str,
        chat: ChatBuilder | Mapping[str, Any] | str | None,
        *,
        chat_id: str | None = None,
        title: str | None = None,
        created_at: int | None = None,
        updated_at: int | None = None,
        archived: bool = False,
        pinned: bool = False,
        meta: Any = AUTO,
        tags: Sequence[str] | None = None,
        share_id: str | None = None,
        chat_message_rows: bool = False,
    ) -> str:
        """Insert a chat row. `chat`: a builder, a document, a raw JSON text (written as is) or None.

        `updated_at` defaults to the builder's last timestamp. `meta` AUTO means the
        column default `{}`. `tags` go into `meta.tags` as Open WebUI keeps them: the tag
        ids, i.e. the names lower-cased with spaces as underscores (`Q4 Report` → `q4_report`).
        With `chat_message_rows`, the messages are also written to
        `chat_message` the way Open WebUI does (see `add_chat_message_rows`).
        """
        document: Any
        if isinstance(chat, ChatBuilder):
            chat_id = chat_id or chat.chat_id
            title = title if title is not None else chat.title
            document = chat.document()
            default_time = chat.last_timestamp
        else:
            document = _Raw(chat) if isinstance(chat, str) else SQL_NULL if chat is None else chat
            default_time = 1_772_000_000
        chat_id = chat_id or str(uuid.uuid4())
        values: dict[str, Any] = {
            "id": chat_id,
            "user_id": user_id,
            "title": title if title is not None else "New Chat",
            "chat": document,
            "created_at": created_at if created_at is not None else default_time,
            "updated_at": updated_at if updated_at is not None else default_time,
            "share_id": share_id,
        }
        if self.options.chat_archived:
            values["archived"] = archived
        if self.options.chat_pinned:
            values["pinned"] = pinned
        if tags is not None:
            meta = {**(meta if isinstance(meta, Mapping) else {}), "tags": list(tags)}
        if self.options.chat_meta and meta is not AUTO:
            values["meta"] = meta
        self._insert("chat", values)
        if chat_message_rows and isinstance(chat, ChatBuilder):
            self.add_chat_message_rows(chat_id, user_id, chat.messages.values())
        return chat_id

    def add_rating(
        self,
        user_id: str,
        chat_id: str,
        message_id: str,
        rating: int,
        *,
        model_id: str = "gpt-4o",
        score: int | None = None,
        reason: str | None = None,
        comment: str | None = None,
        at: int = 1_781_000_000,
        feedback_id: str | None = None,
    ) -> str:
        """A 👍 (1) / 👎 (-1) on an answer, written as Open WebUI 0.12.4 writes it.

        The frontend's `feedbackHandler` posts `type 'rating'`, `data` = the message's
        annotation (`rating`, and from the details form `details.rating` 1–10, `reason`,
        `comment`, `tags`) plus `model_id`, and `meta` with `chat_id`, `message_id`,
        `message_index`, `arena`; `FeedbackTable.insert_new_feedback` adds a uuid, `version`
        0 and `created_at`/`updated_at` in epoch seconds. Changing a rating updates the same
        row (same id, new `updated_at`): pass the `feedback_id` returned before.
        """
        data: dict[str, Any] = {"rating": rating, "model_id": model_id}
        if score is not None:
            data["details"] = {"rating": score}
        if reason is not None:
            data["reason"] = reason
        if comment is not None:
            data["comment"] = comment
        meta = {
            "arena": False,
            "model_id": model_id,
            "message_id": message_id,
            "message_index": 2,
            "chat_id": chat_id,
        }
        if feedback_id is not None:
            table = self._table("feedback")
            parameter = sa.bindparam("data", type_=sa.Text)
            with self.engine.begin() as connection:
                connection.execute(
                    sa.update(table)
                    .where(table.c.id == feedback_id)
                    .values(
                        data=sa.cast(parameter, sa.JSON) if self._is_postgres else parameter, updated_at=at
                    ),
                    {"data": json.dumps(data)},
                )
            return feedback_id
        feedback_id = str(uuid.uuid4())
        self._insert(
            "feedback",
            {
                "id": feedback_id,
                "user_id": user_id,
                "version": 0,
                "type": "rating",
                "data": data,
                "meta": meta,
                "snapshot": {"chat": {"id": chat_id}},
                "created_at": at,
                "updated_at": at,
            },
        )
        return feedback_id

    def add_chat_message_rows(
        self,
        chat_id: str,
        user_id: str,
        messages: Iterable[Mapping[str, Any]],
        *,
        write_time: int = 1_780_000_000,
    ) -> None:
        """Write messages to `chat_message` as Open WebUI does: a missing timestamp becomes `write_time`."""
        for message in messages:
            self._insert(
                "chat_message",
                {
                    "id": f"{chat_id}-{message['id']}",
                    "chat_id": chat_id,
                    "user_id": user_id,
                    "role": message.get("role", "user"),
                    "parent_id": message.get("parentId"),
                    "content": message.get("content"),
                    "output": message.get("output"),  # None → the text 'null', as Open WebUI writes it
                    "model_id": message.get("model"),
                    "files": message.get("files"),
                    "done": message.get("done", True),
                    "usage": message.get("usage"),
                    "created_at": message.get("timestamp", write_time),
                    "updated_at": write_time,
                },
            )

    def add_chat_message_row(self, **columns: Any) -> None:
        """One raw `chat_message` row (JSON columns: values are serialised; `raw_json(...)` as is)."""
        self._insert("chat_message", columns)

    def bulk_add_chats(self, chats: Iterable[BulkChat], *, batch_size: int = 2000) -> int:
        """Insert many chats fast (COPY on Postgres with pg8000, executemany batches otherwise)."""
        count = 0
        batch: list[BulkChat] = []
        for chat in chats:
            batch.append(chat)
            if len(batch) >= batch_size:
                count += self._write_batch(batch)
                batch = []
        if batch:
            count += self._write_batch(batch)
        return count

    def _write_batch(self, batch: list[BulkChat]) -> int:
        columns = ["id", "user_id", "title", "chat", "created_at", "updated_at"]
        if self.options.chat_archived:
            columns.append("archived")
        rows = []
        for chat in batch:
            row = [
                chat.id,
                chat.user_id,
                chat.title,
                json.dumps(chat.document),
                chat.created_at if chat.created_at is not None else chat.updated_at,
                chat.updated_at,
            ]
            if self.options.chat_archived:
                row.append(chat.archived)
            rows.append(row)
        if self._is_postgres and self.engine.dialect.driver == "pg8000":
            buffer = io.StringIO()
            csv.writer(buffer).writerows(rows)
            buffer.seek(0)
            raw = self.engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute(
                    f"COPY chat ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)",
                    stream=buffer,  # type: ignore[call-arg]  # pg8000's COPY extension to DB-API
                )
                raw.commit()
            finally:
                raw.close()
        else:
            statement = sa.insert(self._table("chat")).values(
                {name: sa.bindparam(name, type_=sa.Text if name == "chat" else None) for name in columns}
            )
            with self.engine.begin() as connection:
                connection.execute(statement, [dict(zip(columns, row, strict=True)) for row in rows])
        return len(rows)


class _Raw(str):
    """A JSON column value written exactly as given (e.g. malformed JSON, or the text 'null')."""


def raw_json(text: str) -> str:
    """Mark `text` to be written verbatim into a JSON column."""
    return _Raw(text)


def chat_times(start: datetime, *minutes: float) -> list[datetime]:
    """Aware datetimes at `start` plus each offset in minutes (a test convenience)."""
    return [start + timedelta(minutes=offset) for offset in minutes]
