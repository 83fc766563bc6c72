"""Turn one Open WebUI chat (its JSON document, optionally its `chat_message` rows) into a `Conversation`.

Pure: no database, no clock unless none is given. Every input may be malformed;
the only exception that leaves this module is `SkipConversation`.

Where the messages come from, in order of preference:

1. `history.messages` + `history.currentId`: the conversation is the path from a
   root to `currentId`, found by walking up `parentId` (an edited first message
   makes a second root, so roots are never assumed unique). A `currentId` that
   points nowhere is replaced by the newest leaf (by timestamp, else the last in
   document order) and noted. A `parentId` cycle stops the walk and is noted.
2. The `messages` list, only when there is no history (it can be stale when a
   history exists: the backend's completion path never updates it).
3. The `chat_message` rows of the chat, only when the JSON holds no messages at
   all. They give messages and structure but **no timestamps**: `created_at` is
   the message timestamp only when the writer had one, otherwise the write time
   (a backfill stretched a 6-minute chat to 307 days), and a row cannot tell
   which. Such messages are counted, untimed; their `created_at` only orders
   rows when the newest leaf must be guessed.

Timestamps: numbers or numeric strings; above 10 000 000 000 they are
milliseconds; before 2020-01-01 or more than a day in the future, or NaN,
infinite, negative, boolean, they are invalid and the message is untimed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.conversation import Conversation, Message, bounded_tags
from shared.errors import ReasonCode, SkipConversation
from shared.openwebui.usage import conversation_usage

__all__ = [
    "ChatRecord",
    "MessageRecord",
    "build_conversation",
    "check_countable",
    "conversation_fingerprint",
    "decode_document",
    "decode_json_column",
    "epoch_to_datetime",
    "has_messages",
    "is_internal",
    "is_share_copy",
    "parse_conversation",
    "parse_timestamp",
    "primary_model",
]

_MILLISECONDS_ABOVE = 10_000_000_000
_EARLIEST_VALID = 1_577_836_800  # 2020-01-01T00:00:00Z
_FUTURE_TOLERANCE_SECONDS = 86_400
_IMAGE_BLOCK_TYPES = frozenset({"image_url", "image", "input_image"})
_TEXT_BLOCK_TYPES = frozenset({"text", "input_text", "output_text"})
_FINGERPRINT_VERSION = b"tsa-fingerprint-v1\n"  # bump when the encoding below changes
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SURROGATE = re.compile("[\ud800-\udfff]")
_KNOWN_ROLES = frozenset({"user", "assistant", "system"})


@dataclass(frozen=True, slots=True)
class ChatRecord:
    """The fields of a `chat` row that matter, as stored (epoch seconds, raw JSON)."""

    id: str
    user_id: str
    updated_at: Any
    document: Any = None  # the `chat` column: JSON text, bytes, or already decoded
    title: Any = None
    archived: Any = False
    meta: Any = None  # the `meta` column (absent in older versions)
    current_message_id: Any = None  # the `current_message_id` column (recent versions)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """The fields of a `chat_message` row that matter, as stored."""

    id: str  # "{chat_id}-{message_id}"
    role: Any
    parent_id: Any = None
    content: Any = None  # the JSON column as text: a plain string is quoted; may be the text 'null'
    # (read it as text: decoding twice would turn the string "42" into a number)
    model_id: Any = None
    files: Any = None  # JSON text, like content
    created_at: Any = None  # orders rows only; never used as a message timestamp


def parse_conversation(
    record: ChatRecord,
    message_records: Sequence[MessageRecord] | Callable[[], Sequence[MessageRecord]] = (),
    *,
    now: datetime | None = None,
) -> Conversation:
    """Check, decode and build (see `build_conversation`).

    `message_records` may be a callable: it is called only when the JSON holds no messages.
    """
    check_countable(record)
    document = decode_document(record.document)
    rows: Sequence[MessageRecord] = ()
    if not has_messages(document):
        rows = message_records() if callable(message_records) else message_records
    return build_conversation(record, document, rows, now=now)


def check_countable(record: ChatRecord) -> None:
    """SkipConversation for rows that are not someone's conversation: share copies, internal, ownerless."""
    if is_share_copy(record.user_id):
        raise SkipConversation("share-link copy of a chat", reason_code=ReasonCode.SHARE_COPY)
    if is_internal(record.meta):
        raise SkipConversation("internal chat (meta.internal)", reason_code=ReasonCode.INTERNAL_CHAT)
    if not isinstance(record.user_id, str) or not record.user_id:
        raise SkipConversation("the chat has no owner", reason_code=ReasonCode.NO_OWNER)


def decode_document(raw: Any) -> Mapping[str, Any] | None:
    """The chat JSON as a mapping; None for SQL NULL or JSON null. Anything else is malformed."""
    try:
        value = decode_json_column(raw, strict=True)
        if isinstance(value, str) and value.lstrip().startswith("{"):
            value = decode_json_column(value, strict=True)  # stored twice encoded
    except ValueError as error:
        raise SkipConversation(
            "chat JSON cannot be decoded", reason_code=ReasonCode.MALFORMED_DOCUMENT
        ) from error
    if value is None or isinstance(value, Mapping):
        return value
    raise SkipConversation(
        f"chat JSON is a {type(value).__name__}, not an object", reason_code=ReasonCode.MALFORMED_DOCUMENT
    )


def decode_json_column(value: Any, *, strict: bool = False) -> Any:
    """Decode a JSON column read as text. Not JSON: the text itself, or ValueError when `strict`."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError) as error:
        if strict:
            raise ValueError(str(error)) from None
        return value


def has_messages(document: Mapping[str, Any] | None) -> bool:
    """True when the JSON itself holds messages (a history map or a messages list)."""
    return bool(_history_map(document) or _message_list(document))


def is_share_copy(user_id: Any) -> bool:
    """Rows owned by `shared-<chat id>` are the snapshots behind share links, not conversations."""
    return isinstance(user_id, str) and user_id.startswith("shared-")


def chat_tags(meta: Any) -> tuple[str, ...]:
    """The chat's tags (`meta.tags`, the tag ids Open WebUI stores), bounded; () when absent or malformed."""
    meta = decode_json_column(meta)
    return bounded_tags(meta.get("tags")) if isinstance(meta, Mapping) else ()


def is_internal(meta: Any) -> bool:
    """`meta.internal` is JSON true: a note or a sub-agent's chat, not someone's work."""
    meta = decode_json_column(meta)
    return isinstance(meta, Mapping) and meta.get("internal") is True


def parse_timestamp(value: Any, *, now: datetime) -> datetime | None:
    """A message timestamp as an aware UTC datetime, or None when it is not a valid one."""
    return _timestamp(value, now.timestamp() + _FUTURE_TOLERANCE_SECONDS)


def _timestamp(value: Any, latest_valid: float) -> datetime | None:
    seconds = _number(value)
    if seconds is None:
        return None
    if seconds > _MILLISECONDS_ABOVE:
        seconds /= 1000
    if seconds < _EARLIEST_VALID or seconds > latest_valid:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


def epoch_to_datetime(value: Any) -> datetime:
    """A row's `created_at`/`updated_at` (epoch seconds, milliseconds tolerated); the epoch if invalid."""
    seconds = _number(value)
    if seconds is None:
        return _EPOCH
    if seconds > _MILLISECONDS_ABOVE:
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return _EPOCH


def build_conversation(
    record: ChatRecord,
    document: Mapping[str, Any] | None,
    message_records: Sequence[MessageRecord] = (),
    *,
    now: datetime | None = None,
) -> Conversation:
    """Reduce a chat to the branch the user kept; SkipConversation when there is nothing to measure."""
    check_countable(record)
    now = now or datetime.now(UTC)
    notes: list[str] = []

    nodes = _history_map(document)
    if nodes:
        tree = _Tree(nodes, _as_id(_history(document).get("currentId")), notes, now)
    elif listed := _message_list(document):
        notes.append("messages_list_used")
        tree = _Tree.chain(listed)
    elif message_records:
        notes.append("chat_message_rows_used_untimed")
        current_id = _as_id(_history(document).get("currentId")) or _as_id(record.current_message_id)
        tree = _Tree(_nodes_from_rows(record.id, message_records), current_id, notes, now)
    else:
        raise SkipConversation("the chat holds no messages", reason_code=ReasonCode.NO_MESSAGES)

    latest_valid = now.timestamp() + _FUTURE_TOLERANCE_SECONDS
    messages = tuple(
        _to_message(message_id, tree.nodes[message_id], latest_valid) for message_id in tree.path
    )
    models = tuple(dict.fromkeys(m.model for m in messages if m.role == "assistant" and m.model))
    title = record.title if isinstance(record.title, str) else (document or {}).get("title")
    return Conversation(
        conversation_id=record.id,
        user_id=record.user_id,
        source_updated_at=epoch_to_datetime(record.updated_at),
        messages=messages,
        title=_clean_text(title) if isinstance(title, str) else "",
        archived=bool(record.archived) if isinstance(record.archived, (bool, int)) else False,
        regenerations=tree.regenerations(),
        side_by_side_answers=tree.side_by_side_answers(),
        kept_answer_ids=tuple(
            message_id for message_id in tree.path if _role(tree.nodes[message_id]) == "assistant"
        ),
        abandoned_branches=tree.abandoned_branches(),
        models=models,
        tags=chat_tags(record.meta),
        notes=tuple(notes),
        fingerprint=conversation_fingerprint(messages),
        usage=conversation_usage(tree.nodes, tree.path, tree.children, tree.parents),
    )


def conversation_fingerprint(messages: Sequence[Message]) -> str:
    """sha256 over the kept branch's (role, text, timestamp); titles, tags and flags do not count."""
    digest = hashlib.sha256(_FINGERPRINT_VERSION)
    for message in messages:
        stamp = repr(message.timestamp.timestamp()) if message.timestamp else "-"
        # length prefixes keep the encoding unambiguous whatever the text contains
        digest.update(
            f"{len(message.role)}:{message.role}{len(message.text)}:{message.text}{stamp}\n".encode()
        )
    return digest.hexdigest()


def primary_model(conversation: Conversation) -> str | None:
    """The model that answered most messages on the kept branch; a tie goes to the one used last."""
    answers: dict[str, int] = {}
    last_use: dict[str, int] = {}
    for position, message in enumerate(conversation.messages):
        if message.role == "assistant" and message.model:
            answers[message.model] = answers.get(message.model, 0) + 1
            last_use[message.model] = position
    if not answers:
        return None
    return max(answers, key=lambda model: (answers[model], last_use[model]))


class _Tree:
    """Message nodes linked by parent id, and the kept path through them."""

    __slots__ = ("children", "nodes", "parents", "path")

    def __init__(
        self, nodes: dict[str, Mapping[str, Any]], current_id: str | None, notes: list[str], now: datetime
    ) -> None:
        self.nodes = nodes
        self.parents: dict[str, str | None] = {}
        self.children: dict[str | None, list[str]] = {}
        missing_parent: set[str] = set()
        for message_id, node in nodes.items():
            parent = _as_id(node.get("parentId"))
            if parent is not None and (parent not in nodes or parent == message_id):
                missing_parent.add(message_id)
                parent = None
            self.parents[message_id] = parent
            self.children.setdefault(parent, []).append(message_id)

        if current_id is not None and current_id in nodes:
            leaf = current_id
        else:
            notes.append(
                "current_id_broken_newest_leaf_used" if current_id else "current_id_missing_newest_leaf_used"
            )
            leaf = self._newest_leaf(now)

        path: list[str] = []
        seen: set[str] = set()
        step: str | None = leaf
        while step is not None:
            if step in seen:
                notes.append("parent_cycle_cut")
                break
            seen.add(step)
            path.append(step)
            step = self.parents[step]
        path.reverse()
        if path[0] in missing_parent:
            notes.append("missing_parent")
        self.path = path

    @classmethod
    def chain(cls, listed: list[Mapping[str, Any]]) -> _Tree:
        """The `messages` list: a single branch in list order, structure fields ignored."""
        tree = cls.__new__(cls)
        tree.nodes = {}
        for index, node in enumerate(listed):
            message_id = _as_id(node.get("id")) or f"#{index}"
            while message_id in tree.nodes:
                message_id += f"#{index}"
            tree.nodes[message_id] = node
        tree.path = list(tree.nodes)
        tree.parents = dict(zip(tree.path, [None, *tree.path[:-1]], strict=True))
        tree.children = {parent: [child] for child, parent in tree.parents.items()}
        return tree

    def _newest_leaf(self, now: datetime) -> str:
        """The leaf with the latest valid timestamp; with none timed, the last leaf in document order."""
        leaves = [message_id for message_id in self.nodes if message_id not in self.children]
        candidates = leaves or list(self.nodes)  # only cycles: any node will do
        newest, newest_key = candidates[-1], (False, 0.0, -1)
        for position, message_id in enumerate(candidates):
            stamp = parse_timestamp(self.nodes[message_id].get("timestamp"), now=now)
            key = (stamp is not None, stamp.timestamp() if stamp else 0.0, position)
            if key > newest_key:
                newest, newest_key = message_id, key
        return newest

    def answer_slots(self, user_message_id: str) -> list[list[str]]:
        """The assistant answers to a user message, one list per side-by-side model slot.

        Open WebUI's side-by-side chat: the user message lists several `models`, and
        the frontend creates one answer per model at once, each with its `model` and
        its `modelIdx` (the model's position in that list). Regenerating one of them
        adds an answer with the same `modelIdx`. So answers are grouped by `modelIdx`
        (by `model` when it is missing) only when the user message lists more than one
        model; otherwise every answer is in the one slot, whatever model gave it.
        """
        answers = [
            child
            for child in self.children.get(user_message_id, ())
            if _role(self.nodes[child]) == "assistant"
        ]
        if not answers:
            return []
        listed = self.nodes[user_message_id].get("models")
        if not isinstance(listed, list) or len({m for m in listed if isinstance(m, str)}) < 2:
            return [answers]
        slots: dict[tuple[str, Any], list[str]] = {}
        for answer in answers:
            node = self.nodes[answer]
            index = node.get("modelIdx")
            model = node.get("model")
            if isinstance(index, int) and not isinstance(index, bool):
                key: tuple[str, Any] = ("index", index)
            else:
                key = ("model", model if isinstance(model, str) else None)
            slots.setdefault(key, []).append(answer)
        return list(slots.values())

    def _kept_user_messages(self) -> list[str]:
        return [message_id for message_id in self.path if _role(self.nodes[message_id]) == "user"]

    def regenerations(self) -> int:
        """Answers beyond the first in each model slot under each user message of the kept path."""
        return sum(
            len(slot) - 1
            for message_id in self._kept_user_messages()
            for slot in self.answer_slots(message_id)
        )

    def side_by_side_answers(self) -> int:
        """Answers of the other models of side-by-side turns on the kept path (not regenerations)."""
        return sum(
            max(0, len(self.answer_slots(message_id)) - 1) for message_id in self._kept_user_messages()
        )

    def abandoned_branches(self) -> int:
        """Siblings of kept messages (edits and regenerations the user left), other roots included.

        The answers of the other models of a side-by-side turn are not branches the user left.
        """
        kept = set(self.path)
        abandoned = 0
        for message_id in self.path:
            parent = self.parents[message_id]
            siblings = [sibling for sibling in self.children.get(parent, ()) if sibling not in kept]
            if parent is not None and _role(self.nodes[message_id]) == "assistant":
                slots = self.answer_slots(parent)
                if len(slots) > 1:
                    own = next((slot for slot in slots if message_id in slot), [])
                    parallel = {answer for slot in slots if slot is not own for answer in slot}
                    siblings = [sibling for sibling in siblings if sibling not in parallel]
            abandoned += len(siblings)
        return abandoned


def _history(document: Mapping[str, Any] | None) -> Mapping[str, Any]:
    history = document.get("history") if isinstance(document, Mapping) else None
    return history if isinstance(history, dict) else {}


def _history_map(document: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    messages = _history(document).get("messages")
    if not isinstance(messages, dict):
        return {}
    return {str(key): value for key, value in messages.items() if isinstance(value, dict)}


def _message_list(document: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    listed = document.get("messages") if isinstance(document, Mapping) else None
    if not isinstance(listed, list):
        return []
    return [item for item in listed if isinstance(item, dict)]


def _nodes_from_rows(chat_id: str, records: Sequence[MessageRecord]) -> dict[str, Mapping[str, Any]]:
    """`chat_message` rows as history-shaped nodes, in write order, without timestamps."""
    prefix = f"{chat_id}-"

    def order(record: MessageRecord) -> tuple[float, str]:
        written = _number(record.created_at)
        return (written if written is not None else math.inf, str(record.id))

    nodes: dict[str, Mapping[str, Any]] = {}
    for record in sorted(records, key=order):
        row_id = str(record.id)
        message_id = row_id.removeprefix(prefix) or row_id
        nodes[message_id] = {
            "role": record.role,
            "parentId": _as_id(record.parent_id),
            "content": decode_json_column(record.content),
            "model": record.model_id,
            "files": decode_json_column(record.files),
        }
    return nodes


def _to_message(message_id: str, node: Mapping[str, Any], latest_valid: float) -> Message:
    role = _role(node)
    text, images = _flatten_content(node.get("content"))
    files = node.get("files")
    attachments = images + (sum(1 for item in files if item is not None) if isinstance(files, list) else 0)
    model = None
    if role == "assistant":
        candidate = node.get("model") or node.get("modelName")
        if isinstance(candidate, str):
            model = _clean_text(candidate.strip()) or None
    return Message(
        id=message_id,
        role=role,
        text=text,
        timestamp=_timestamp(node.get("timestamp"), latest_valid),
        model=model,
        attachments=attachments,
    )


def _role(node: Mapping[str, Any]) -> str:
    role = node.get("role")
    if not isinstance(role, str):
        return "unknown"
    if role in _KNOWN_ROLES:
        return role
    return _clean_text(role.strip().lower()) or "unknown"


def _flatten_content(content: Any) -> tuple[str, int]:
    """Content as text, and how many image blocks it carried (a string, a list of blocks, or None)."""
    if isinstance(content, str):
        return _clean_text(content), 0
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return "", 0
    parts: list[str] = []
    images = 0
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict):
            kind = block.get("type")
            if kind is not None and not isinstance(kind, str):  # e.g. a list: not a block type
                continue
            if kind in _IMAGE_BLOCK_TYPES:
                images += 1
            elif (kind in _TEXT_BLOCK_TYPES or kind is None) and isinstance(block.get("text"), str):
                parts.append(block["text"])
    return _clean_text("\n".join(parts)), images


def _clean_text(text: str) -> str:
    """Text that Postgres and UTF-8 accept: no NUL characters, no lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii() and _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    return text


def _as_id(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63:
        return str(value)
    return None


def _number(value: Any) -> float | None:
    """A finite, non-negative number from a JSON number or numeric string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if len(value) > 64:
            return None
        try:
            value = float(value.strip())
        except ValueError:
            return None
    elif isinstance(value, int):
        try:
            value = float(value)
        except OverflowError:
            return None
    if not isinstance(value, float) or not math.isfinite(value) or value < 0:
        return None
    return value
