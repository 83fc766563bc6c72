"""The shapes a conversation takes on its way through the pipeline.

Source row → `Conversation` (reader) → `Timing` (timing) and `TranscriptDigest`
(digest, redacted) → estimator. These are plain frozen dataclasses so every stage
can be tested on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

__all__ = [
    "MAX_TAGS",
    "MAX_TAG_LENGTH",
    "Conversation",
    "DigestFeatures",
    "Message",
    "ModelUsage",
    "Timing",
    "TranscriptDigest",
    "bounded_tags",
]

MAX_TAGS = 20  # tags kept per conversation (the first ones, in the chat's order)
MAX_TAG_LENGTH = 64  # characters kept of each tag


def bounded_tags(raw: Any) -> tuple[str, ...]:
    """The tags of a chat as given, bounded; anything that is not a list of strings gives none.

    Tags are written by people and may hold anything: each string is kept as it is
    except for characters PostgreSQL text cannot hold (NUL, lone surrogates), cut to
    `MAX_TAG_LENGTH` characters; blank and repeated tags are dropped and at most
    `MAX_TAGS` are kept. Never raises.
    """
    if not isinstance(raw, list):
        return ()
    kept: dict[str, None] = {}
    for item in raw:
        if len(kept) >= MAX_TAGS:
            break
        if not isinstance(item, str):
            continue
        text = "".join(
            ch for ch in item[: MAX_TAG_LENGTH * 4] if ch != "\x00" and not "\ud800" <= ch <= "\udfff"
        )
        text = text[:MAX_TAG_LENGTH]
        if text.strip():
            kept.setdefault(text, None)
    return tuple(kept)


@dataclass(frozen=True, slots=True)
class Message:
    """One message on the kept branch."""

    id: str
    role: str  # "user", "assistant" or "system"
    text: str  # content flattened to text (string or list-of-blocks content)
    timestamp: datetime | None  # aware UTC; None when the source had no valid timestamp
    model: str | None = None  # which model answered (assistant messages only)
    attachments: int = 0  # files attached to the message


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Tokens one model used in one conversation (see `shared.openwebui.usage`)."""

    model: str
    answers: int  # assistant messages that carried usage
    input_tokens: int  # prompt side, cached tokens included
    output_tokens: int
    cached_tokens: int  # part of input_tokens, billed at the cached price
    generation_seconds: float = 0.0  # Ollama's reported durations, when present

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class Conversation:
    """A chat row of Open WebUI, reduced to the branch the user kept (root → currentId)."""

    conversation_id: str  # the chat row id (not the id inside the JSON)
    user_id: str  # raw source user id: pseudonymise before storing, never log
    source_updated_at: datetime  # chat.updated_at, aware UTC
    messages: tuple[Message, ...]
    title: str = ""
    archived: bool = False
    regenerations: int = 0  # extra assistant answers under the kept branch's user messages
    abandoned_branches: int = 0  # branches the user left (edits, regenerations not kept)
    models: tuple[str, ...] = ()  # models that answered on the kept branch, first use order
    tags: tuple[str, ...] = ()  # chat.meta.tags, bounded (`bounded_tags`)
    notes: tuple[str, ...] = ()  # repairs made while reading (e.g. currentId pointed nowhere)
    fingerprint: str = ""  # sha256 of the kept branch's content; equal fingerprints = same conversation
    side_by_side_answers: int = 0  # answers of the other models of side-by-side turns (not regenerations)
    kept_answer_ids: tuple[str, ...] = ()  # message ids of the kept branch's assistant answers (ratings)
    usage: tuple[ModelUsage, ...] = ()  # tokens per model: kept answers and their regenerations


@dataclass(frozen=True, slots=True)
class Timing:
    """Measured working time. Minutes are whole; active + idle == total."""

    first_message_at: datetime
    last_message_at: datetime
    total_minutes: int
    active_minutes: int
    idle_minutes: int
    timed_messages: int


@dataclass(frozen=True, slots=True)
class DigestFeatures:
    """Countable facts about a conversation, used by the heuristic and sent with the digest."""

    user_turns: int = 0
    assistant_turns: int = 0
    user_words: int = 0
    assistant_words: int = 0
    code_lines_by_language: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    tables: int = 0
    attachments: int = 0
    regenerations: int = 0
    abandoned_branches: int = 0
    models: tuple[str, ...] = ()
    side_by_side_answers: int = 0

    @property
    def code_lines(self) -> int:
        return sum(self.code_lines_by_language.values())


@dataclass(frozen=True, slots=True)
class TranscriptDigest:
    """The redacted, bounded description of a conversation that an estimator sees."""

    text: str
    features: DigestFeatures
    approx_tokens: int
    truncated: bool = False
    counts_only: bool = False  # no text of the conversation at all (ANALYTICS_DIGEST_MODE=counts)
