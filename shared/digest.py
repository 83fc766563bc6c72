"""The redacted, bounded transcript digest that an estimator sees and the analytics database stores.

What it keeps: what the user asked, in order, redacted (fenced code the user
pasted is replaced by ``[python code 40 lines]``, long asks are shortened with an
ellipsis marker that says how long they were). What it describes instead of
pasting: each answer by kind and size (``assistant: 420 words, python code 35
lines, 1 table``), regenerations, abandoned branches, attachments, the models.
Assistant text, system prompts and titles are never copied, and every piece of
user text (and the model names) goes through `shared.redaction.redact` before it
is placed in the digest; known people's names (`known_names`) become ``[NAME]``.

Size: the budget is in tokens, approximated as 4 characters each (the usual
figure for English with OpenAI tokenizers; Hungarian and German run a little
denser, so the bound errs on the generous side). When the digest does not fit,
asks are shortened more and more (600 → 300 → 160 → 80 characters, ending in
``… [N chars]`` with the full length); if that is
still too long, the first turns and the last turn stay and the middle is replaced
by one line that says how many turns were omitted and what they contained. The
text never exceeds ``4 × token_budget`` characters. Output is deterministic.

Features (`DigestFeatures`): words exclude fenced code; code lines, tables and
lists describe what the assistant produced; attachments count the files and
images of all kept messages.

Counts mode (``mode=DigestMode.COUNTS``, ``ANALYTICS_DIGEST_MODE=counts``): no text
of the conversation at all, not even redacted, and no model names. Each ask is
described like an answer, by its shape: words, characters, code blocks per
language, attachments, and the minutes since the previous message; the header
adds the span from the first to the last message. The digest says so in its
first line and `TranscriptDigest.counts_only` is set, so the estimator's prompt
can say what it is given.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from shared.config import DigestMode
from shared.conversation import Conversation, DigestFeatures, Message, TranscriptDigest
from shared.redaction import redact

__all__ = ["CHARS_PER_TOKEN", "build_digest"]

CHARS_PER_TOKEN = 4
_ASK_CAPS = (600, 300, 160, 80)  # characters per user message, tried in turn until the digest fits
_REDACTION_MARGIN = 400  # redacted characters kept beyond what is shown, so no item is cut unredacted
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)")
_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")
_LIST_ITEM = re.compile(r"^\s*([-*+]|\d{1,9}[.)])\s+(?=\S)")
_TABLE_CELL = re.compile(r"^:?-+:?$")
_WHITESPACE = re.compile(r"\s+")
_NAME_WORD = re.compile(r"[^\W\d_]+")
_REPEATED_NAME = re.compile(r"\[NAME\](?:[\s,.-]*\[NAME\])+")
_LANGUAGE_ALIASES = {
    "py": "python",
    "python3": "python",
    "js": "javascript",
    "jsx": "javascript",
    "ts": "typescript",
    "tsx": "typescript",
    "sh": "bash",
    "shell": "bash",
    "zsh": "bash",
    "console": "bash",
    "yml": "yaml",
    "c++": "cpp",
    "cs": "csharp",
    "c#": "csharp",
    "golang": "go",
    "rs": "rust",
    "md": "markdown",
    "ps1": "powershell",
    "postgresql": "sql",
    "psql": "sql",
}
# Fence labels outside this list are reported as "other": a label is free text and could be anything.
# fmt: off
_KNOWN_LANGUAGES = frozenset({
    "python", "javascript", "typescript", "java", "kotlin", "scala", "groovy", "c", "cpp", "csharp",
    "fsharp", "go", "rust", "swift", "objectivec", "php", "ruby", "perl", "lua", "r", "julia", "matlab",
    "dart", "elixir", "erlang", "haskell", "clojure", "ocaml", "zig", "nim", "fortran", "cobol", "vb",
    "bash", "powershell", "bat", "cmd", "fish", "sql", "plsql", "graphql", "json", "jsonc", "yaml", "toml",
    "ini", "xml", "html", "css", "scss", "less", "svg", "markdown", "latex", "tex", "csv", "tsv",
    "dockerfile", "makefile", "cmake", "nginx", "apache", "terraform", "hcl", "proto", "regex", "diff",
    "mermaid", "plantuml", "text", "plaintext", "txt", "log", "vue", "svelte", "jsx", "solidity", "asm",
    "wasm", "vhdl", "verilog", "abap", "apex",
})
# fmt: on
_UNLABELLED = "unlabelled"


def build_digest(
    conversation: Conversation,
    token_budget: int,
    *,
    known_names: Iterable[str] = (),
    regions: Iterable[str] | None = None,
    mode: DigestMode = DigestMode.FULL,
) -> TranscriptDigest:
    """Describe `conversation` in at most `token_budget` tokens (≈ 4 characters each), redacted.

    `known_names`: people's names to replace by ``[NAME]`` wherever the user's text
    mentions them (e.g. the Open WebUI users' names, `reader.load_known_names`); each
    part of a name counts, with up to 6 trailing letters for inflected forms
    ("Kovácsnak"). Other names are found where the text marks them (salutations,
    titles, sign-offs; see `shared.redaction_names`). `regions`: whose national phone
    formats the redaction knows (`ANALYTICS_PII_REGIONS`). `mode`: `DigestMode.COUNTS`
    leaves every text out (see the module documentation).
    """
    if token_budget < 1:
        raise ValueError("token_budget must be positive")
    max_chars = token_budget * CHARS_PER_TOKEN
    counts_only = mode is DigestMode.COUNTS
    cleaner = _Cleaner(_NameScrubber(known_names), tuple(regions) if regions is not None else None)
    turns, system_words, system_messages = _turns(conversation.messages, cleaner, counts_only=counts_only)
    answered = _Shape()
    for turn in turns:
        answered.add(turn.answer_shape)
    features = _features(conversation, turns, answered)
    if counts_only:
        header = _counts_header(conversation, features, answered, system_messages, system_words)
    else:
        header = _header(features, answered, system_messages, system_words, cleaner)

    text, truncated = _fit(header, turns, max_chars)
    if len(text) > max_chars:
        text, truncated = text[: max(0, max_chars - 1)].rstrip() + "…", True
    return TranscriptDigest(
        text=text,
        features=features,
        approx_tokens=math.ceil(len(text) / CHARS_PER_TOKEN),
        truncated=truncated,
        counts_only=counts_only,
    )


@dataclass(slots=True)
class _Shape:
    """What a text contains, by kind and size."""

    words: int = 0
    code_lines: Counter[str] = field(default_factory=Counter)
    code_blocks: Counter[str] = field(default_factory=Counter)
    tables: int = 0
    lists: int = 0
    list_items: int = 0
    display: str = ""  # the prose by line, whitespace collapsed, fenced code replaced by a size note

    def add(self, other: _Shape) -> None:
        self.words += other.words
        self.code_lines.update(other.code_lines)
        self.code_blocks.update(other.code_blocks)
        self.tables += other.tables
        self.lists += other.lists
        self.list_items += other.list_items


@dataclass(slots=True)
class _Turn:
    """A user message and the answers that followed it (the first turn may have no user message)."""

    ask: Message | None
    ask_shape: _Shape
    answers: list[Message] = field(default_factory=list)
    answer_shape: _Shape = field(default_factory=_Shape)
    cleaner: _Cleaner | None = None  # None in counts mode: no text is shown
    after_seconds: float | None = None  # from the previous message to the ask, when both are timed
    _redacted: str | None = None

    def redacted_ask(self) -> str:
        """The ask's display text, redacted once (a prefix long enough for the largest cap)."""
        if self._redacted is None:
            assert self.cleaner is not None
            prefix = _redacted_prefix(self.ask_shape.display, max(_ASK_CAPS), self.cleaner)
            self._redacted = _WHITESPACE.sub(" ", prefix).strip()
        return self._redacted

    def display_length(self) -> int:
        """Characters of the ask as shown when nothing is cut (lines joined by a space)."""
        return len(_WHITESPACE.sub(" ", self.ask_shape.display))


@dataclass(frozen=True, slots=True)
class _Cleaner:
    """Redaction, then known people's names: what every piece of user text goes through."""

    names: _NameScrubber
    regions: tuple[str, ...] | None

    def __call__(self, text: str) -> str:
        redacted = redact(text, self.regions)  # first: a name inside an e-mail address must not hide it
        return self.names(redacted)


class _NameScrubber:
    """Replaces known people's names (any part, inflected or unaccented forms too) by ``[NAME]``.

    Only capitalised words are candidates: a colleague called Will must not erase "will".
    """

    _MAX_SUFFIX = 6

    def __init__(self, names: Iterable[str]) -> None:
        self.parts = {
            _fold(part)
            for name in names
            if isinstance(name, str)
            for part in _NAME_WORD.findall(name)
            if len(part) >= 3
        }

    def __call__(self, text: str) -> str:
        if not self.parts:
            return text
        scrubbed = _NAME_WORD.sub(self._replace, text)
        return _REPEATED_NAME.sub("[NAME]", scrubbed)

    def _replace(self, match: re.Match[str]) -> str:
        text, start, end = match.string, match.start(), match.end()
        if text[start - 1 : start] == "[" and text[end : end + 1] == "]":
            return match.group(0)  # a placeholder such as [EMAIL]
        if not match.group(0)[:1].isupper():
            return match.group(0)  # names are written capitalised; "will" or "marketing" are words
        word = _fold(match.group(0))
        if word in self.parts:
            return "[NAME]"
        shortest = max(4, len(word) - self._MAX_SUFFIX)
        if any(word[:length] in self.parts for length in range(shortest, len(word))):
            return "[NAME]"
        return match.group(0)


def _fold(word: str) -> str:
    """Case- and accent-insensitive form: "Zsófiának" and "zsofianak" compare equal."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _turns(
    messages: Iterable[Message], cleaner: _Cleaner, *, counts_only: bool = False
) -> tuple[list[_Turn], int, int]:
    turns: list[_Turn] = []
    system_words = system_messages = 0
    previous: datetime | None = None
    for message in messages:
        if message.role == "system":
            system_messages += 1
            system_words += _analyse(message.text).words
        elif message.role == "user":
            after = None
            if previous is not None and message.timestamp is not None:
                after = max((message.timestamp - previous).total_seconds(), 0.0)
            turns.append(
                _Turn(
                    ask=message,
                    ask_shape=_analyse(message.text, display=not counts_only),
                    cleaner=None if counts_only else cleaner,
                    after_seconds=after,
                )
            )
        else:
            if not turns:
                turns.append(_Turn(ask=None, ask_shape=_Shape()))
            turns[-1].answers.append(message)
            turns[-1].answer_shape.add(_analyse(message.text))
        if message.timestamp is not None:
            previous = message.timestamp
    return turns, system_words, system_messages


def _analyse(text: str, *, display: bool = False) -> _Shape:
    """Count words, fenced code lines per language, markdown tables and lists of a message."""
    shape = _Shape()
    fence = ""
    language = _UNLABELLED
    previous_prose = ""
    list_kind = ""  # "bullet" or "ordered" while inside a list
    display_parts: list[str] = []
    block_lines = 0
    for line in text.splitlines():
        if fence:
            stripped = line.strip()
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = ""
                if display:
                    display_parts.append(_code_note(language, block_lines))
            else:
                shape.code_lines[language] += 1
                block_lines += 1
            continue
        opening = _FENCE.match(line)
        if opening:
            fence, language, block_lines = opening.group(1), _language(opening.group(2)), 0
            shape.code_blocks[language] += 1
            list_kind = ""
            continue
        item = _LIST_ITEM.match(line)
        shape.words += len(_WORD.findall(line, item.end(1) if item else 0))
        if display:
            display_parts.append(line)
        if _is_table_delimiter(line) and "|" in previous_prose:
            shape.tables += 1
        if item:
            kind = "ordered" if item.group(1)[0].isdigit() else "bullet"
            if list_kind != kind:
                shape.lists += 1
                list_kind = kind
            shape.list_items += 1
        elif line.strip() and not line[:1].isspace():
            list_kind = ""
        if line.strip():
            previous_prose = line
    if fence and display:  # an unclosed fence runs to the end of the message
        display_parts.append(_code_note(language, block_lines))
    if display:  # lines stay apart so that redaction sees a sign-off and the name under it
        lines = (_WHITESPACE.sub(" ", part).strip() for part in display_parts)
        shape.display = "\n".join(line for line in lines if line)
    return shape


def _language(info: str) -> str:
    name = info.strip().strip("{}.").lower()
    name = _LANGUAGE_ALIASES.get(name, name)
    if not name:
        return _UNLABELLED
    return name if name in _KNOWN_LANGUAGES else "other"


def _code_note(language: str, lines: int) -> str:
    kind = "code" if language == _UNLABELLED else f"{language} code"
    return f" [{kind} {lines} lines] "


def _is_table_delimiter(line: str) -> bool:
    stripped = line.strip()
    if "|" not in stripped or "-" not in stripped:
        return False
    cells = stripped.removeprefix("|").removesuffix("|").split("|")
    return all(_TABLE_CELL.match(cell.strip()) for cell in cells)


def _features(conversation: Conversation, turns: list[_Turn], assistant: _Shape) -> DigestFeatures:
    user_words = user_turns = assistant_turns = 0
    for turn in turns:
        if turn.ask is not None:
            user_turns += 1
            user_words += turn.ask_shape.words
        assistant_turns += sum(1 for answer in turn.answers if answer.role == "assistant")
    return DigestFeatures(
        user_turns=user_turns,
        assistant_turns=assistant_turns,
        user_words=user_words,
        assistant_words=assistant.words,
        code_lines_by_language=MappingProxyType(dict(_sorted_languages(assistant.code_lines))),
        tables=assistant.tables,
        attachments=sum(message.attachments for message in conversation.messages),
        regenerations=conversation.regenerations,
        abandoned_branches=conversation.abandoned_branches,
        models=conversation.models,
        side_by_side_answers=conversation.side_by_side_answers,
    )


def _sorted_languages(code_lines: Counter[str]) -> list[tuple[str, int]]:
    return sorted(code_lines.items(), key=lambda item: (-item[1], item[0]))


def _header(
    features: DigestFeatures, answered: _Shape, system_messages: int, system_words: int, cleaner: _Cleaner
) -> list[str]:
    counts = [
        _plural(features.user_turns, "user message"),
        _plural(features.assistant_turns, "assistant message"),
    ]
    if system_messages:
        counts.append(f"{_plural(system_messages, 'system message')} ({system_words} words, not shown)")
    lines = [f"Conversation: {', '.join(counts)}."]
    if features.models:
        lines.append("Models: " + cleaner(", ".join(features.models)) + ".")
    lines.extend(_effort_lines(features))
    lines.append(f"Assistant output in total: {_describe(answered, 0)}.")
    lines.append(
        "Turns (user asks redacted, long ones cut: '… [N chars]' gives the full length; answers by size):"
    )
    return lines


def _counts_header(
    conversation: Conversation,
    features: DigestFeatures,
    answered: _Shape,
    system_messages: int,
    system_words: int,
) -> list[str]:
    """The header of a counts-only digest: the same counts, no model names, plus the time span."""
    counts = [
        _plural(features.user_turns, "user message"),
        _plural(features.assistant_turns, "assistant message"),
    ]
    if system_messages:
        counts.append(f"{_plural(system_messages, 'system message')} ({system_words} words)")
    lines = [f"Conversation, counts only (no text of it is included): {', '.join(counts)}."]
    if features.models:
        lines.append(f"Answered by {_plural(len(features.models), 'model')}.")
    lines.extend(_effort_lines(features))
    stamps = [message.timestamp for message in conversation.messages if message.timestamp is not None]
    if len(stamps) >= 2:
        lines.append(
            f"Time from the first to the last message: {_minutes((max(stamps) - min(stamps)).total_seconds())}."
        )
    lines.append(f"Assistant output in total: {_describe(answered, 0)}.")
    lines.append("Turns (the shape of each user message and of the answers):")
    return lines


def _effort_lines(features: DigestFeatures) -> list[str]:
    extras = []
    if features.regenerations:
        extras.append(f"{_plural(features.regenerations, 'regenerated answer')}")
    if features.abandoned_branches:
        extras.append(f"{_plural(features.abandoned_branches, 'abandoned branch', 'abandoned branches')}")
    if features.side_by_side_answers:
        extras.append(
            f"{_plural(features.side_by_side_answers, 'answer')} from other models shown side by side "
            "(compared, not regenerated)"
        )
    if features.attachments:
        extras.append(f"{_plural(features.attachments, 'attachment')}")
    return ["Effort signals: " + ", ".join(extras) + "."] if extras else []


def _minutes(seconds: float) -> str:
    if seconds < 60:
        return "under a minute"
    return _plural(round(seconds / 60), "minute")


def _describe_ask(turn: _Turn) -> str:
    """A user message by its shape only: words, characters, code blocks, attachments, when."""
    assert turn.ask is not None
    shape = turn.ask_shape
    parts = [_plural(shape.words, "word"), _plural(len(turn.ask.text), "character")]
    for language, blocks in sorted(shape.code_blocks.items(), key=lambda item: (-item[1], item[0])):
        kind = "code" if language == _UNLABELLED else f"{language} code"
        parts.append(f"{kind} {_plural(blocks, 'block')} ({_plural(shape.code_lines[language], 'line')})")
    if turn.ask.attachments:
        parts.append(_plural(turn.ask.attachments, "attachment"))
    described = ", ".join(parts)
    if turn.after_seconds is not None:
        described += f"; {_minutes(turn.after_seconds)} after the previous message"
    return described


def _describe(shape: _Shape, attachments: int) -> str:
    parts = [_plural(shape.words, "word")]
    for language, lines in _sorted_languages(shape.code_lines):
        kind = "code" if language == _UNLABELLED else f"{language} code"
        parts.append(f"{kind} {_plural(lines, 'line')}")
    if shape.tables:
        parts.append(_plural(shape.tables, "table"))
    if shape.lists:
        parts.append(f"{_plural(shape.lists, 'list')} ({_plural(shape.list_items, 'item')})")
    if attachments:
        parts.append(_plural(attachments, "file"))
    return ", ".join(parts)


def _render_turn(number: int, turn: _Turn, cap: int) -> tuple[str, bool]:
    """Two lines: the (shortened) ask and the description of the answers; True when shortened."""
    shortened = False
    if turn.ask is None:
        ask_line = f"{number}. (no user message)"
    elif turn.cleaner is None:
        ask_line = f"{number}. user: {_describe_ask(turn)}"
    else:
        ask, shortened = _shorten(turn.redacted_ask(), cap, turn.display_length())
        attachments = f" [{_plural(turn.ask.attachments, 'attachment')}]" if turn.ask.attachments else ""
        ask_line = f"{number}. user: {ask or '(no text)'}{attachments}"
    if not turn.answers:
        return f"{ask_line}\n   assistant: no answer", shortened
    label = "assistant" if len(turn.answers) == 1 else f"assistant ({len(turn.answers)} messages)"
    files = sum(answer.attachments for answer in turn.answers)
    return f"{ask_line}\n   {label}: {_describe(turn.answer_shape, files)}", shortened


def _fit(header: list[str], turns: list[_Turn], max_chars: int) -> tuple[str, bool]:
    """The digest text within `max_chars` where possible, and whether anything was cut."""
    head = "\n".join(header)
    rendered: list[tuple[str, bool]] = []
    text = head
    for cap in _ASK_CAPS:
        rendered = [_render_turn(number, turn, cap) for number, turn in enumerate(turns, start=1)]
        text = "\n".join([head, *(line for line, _ in rendered)])
        if len(text) <= max_chars:
            return text, any(cut for _, cut in rendered)
    if len(turns) < 2:
        return text, True
    lines = [line for line, _ in rendered]
    prefix_lengths = [0]
    for line in lines[:-1]:
        prefix_lengths.append(prefix_lengths[-1] + len(line) + 1)
    fixed = len(head) + 1 + len(lines[-1]) + 1
    asked, answered = _Shape(), _Shape()
    omission = ""
    for kept in range(len(turns) - 2, -1, -1):  # keep turns[:kept] and the last; omit the middle
        asked.add(turns[kept].ask_shape)
        answered.add(turns[kept].answer_shape)
        omission = _omission_line(len(turns) - 1 - kept, asked, answered)
        if fixed + prefix_lengths[kept] + len(omission) <= max_chars:
            return "\n".join([head, *lines[:kept], omission, lines[-1]]), True
    return "\n".join([head, omission, lines[-1]]), True


def _omission_line(count: int, asked: _Shape, answered: _Shape) -> str:
    return (
        f"[… {_plural(count, 'turn')} omitted: user {_plural(asked.words, 'word')}; "
        f"assistant {_describe(answered, 0)} …]"
    )


def _redacted_prefix(text: str, shown: int, clean: _Cleaner) -> str:
    """`text` redacted; a long text only as far as needed to show `shown` characters safely."""
    window = max(4 * shown, shown + 2000)
    while True:
        if len(text) <= window:
            return clean(text)
        cut = max(text.rfind(" ", window // 2, window), text.rfind("\n", window // 2, window))
        redacted = clean(text[: cut if cut > 0 else window])
        if len(redacted) >= shown + _REDACTION_MARGIN:
            return redacted
        window *= 2


def _shorten(text: str, cap: int, original_length: int) -> tuple[str, bool]:
    if len(text) <= cap:
        return text, False
    marker = f" … [{original_length} chars]"
    room = max(0, cap - len(marker))
    cut = text.rfind(" ", room * 4 // 5, room)
    return text[: cut if cut > 0 else room].rstrip() + marker, True


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"
