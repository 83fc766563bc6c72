"""Token usage of a conversation, per model, from the assistant messages Open WebUI stored.

Pure: no database, no settings. Every value may be malformed or hostile; nothing
here raises, a value that is not a plausible token count is ignored.

Where Open WebUI 0.12.4 puts usage on an assistant message (history node):

* ``usage``: what the backend's middleware saved after the completion, passed
  through its ``normalize_usage`` (``backend/open_webui/utils/response.py``), so it
  carries the provider's own fields *and* the normalised ``input_tokens`` /
  ``output_tokens`` / ``total_tokens``:
  - OpenAI and compatible servers: ``prompt_tokens`` / ``completion_tokens``, cached
    prompt tokens in ``prompt_tokens_details.cached_tokens`` (Responses API:
    ``input_tokens_details.cached_tokens``);
  - Ollama (converted by ``convert_ollama_usage_to_openai``): ``prompt_eval_count`` /
    ``eval_count`` with ``total_duration``, ``eval_duration``, ... in nanoseconds,
    and text such as ``"N/A"`` in ``response_token/s``;
  - llama.cpp: ``prompt_n`` / ``predicted_n``;
  - Anthropic-style ``cache_read_input_tokens``, which are *not* part of
    ``input_tokens`` there.
  When a tool-calling answer made several model calls, ``merge_usage`` sums the
  normalised ``input_tokens`` / ``output_tokens`` but keeps only the latest
  ``prompt_tokens`` / ``completion_tokens``; so the normalised fields are read first.
* ``info.usage``, or Ollama's raw fields directly under ``info`` (older frontends).

Which messages count: every assistant answer on the kept branch, and every
assistant sibling of an answer on it (regenerations, which were paid for too).
Answers on branches the user abandoned by editing a question are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.conversation import ModelUsage

__all__ = ["MAX_TOKENS_PER_MESSAGE", "ModelUsage", "TokenUsage", "conversation_usage", "message_usage"]

MAX_TOKENS_PER_MESSAGE = 50_000_000  # above this a count is not a real request's; it is ignored
_MAX_SECONDS_PER_MESSAGE = 86_400.0
_MAX_MODEL_LENGTH = 255
_NANOSECONDS = 1_000_000_000

_INPUT_KEYS = ("input_tokens", "prompt_tokens", "prompt_eval_count", "prompt_n")
_OUTPUT_KEYS = ("output_tokens", "completion_tokens", "eval_count", "predicted_n")
_CACHED_DETAIL_KEYS = ("prompt_tokens_details", "input_tokens_details")


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens of one model call (or one answer's calls), prompt side including cached tokens."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0  # part of input_tokens, billed at the cached price
    generation_seconds: float = 0.0  # Ollama's total_duration, when reported

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def _count(value: Any) -> int | None:
    """A token count: a non-negative whole JSON number up to the bound; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_TOKENS_PER_MESSAGE else None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return _count(int(value))
    return None


def _first_count(usage: Mapping[str, Any], keys: Sequence[str]) -> int | None:
    for key in keys:
        count = _count(usage.get(key))
        if count:  # 0 may be a placeholder next to the real field (Open WebUI uses `or`)
            return count
    for key in keys:
        if _count(usage.get(key)) == 0:
            return 0
    return None


def _cached(usage: Mapping[str, Any]) -> int:
    for key in _CACHED_DETAIL_KEYS:
        details = usage.get(key)
        if isinstance(details, Mapping):
            cached = _count(details.get("cached_tokens"))
            if cached is not None:
                return cached
    return _count(usage.get("cached_tokens")) or 0


def _seconds(usage: Mapping[str, Any]) -> float:
    duration = usage.get("total_duration")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)):
        return 0.0
    seconds = float(duration) / _NANOSECONDS
    return seconds if math.isfinite(seconds) and 0 <= seconds <= _MAX_SECONDS_PER_MESSAGE else 0.0


def _from_mapping(usage: Mapping[str, Any]) -> TokenUsage | None:
    input_tokens = _first_count(usage, _INPUT_KEYS)
    output_tokens = _first_count(usage, _OUTPUT_KEYS)
    if input_tokens is None and output_tokens is None:
        return None
    input_tokens = input_tokens or 0
    cache_read = _count(usage.get("cache_read_input_tokens"))
    if cache_read and not any(isinstance(usage.get(key), Mapping) for key in _CACHED_DETAIL_KEYS):
        # Anthropic's shape: cache reads come on top of input_tokens
        input_tokens = min(input_tokens + cache_read, 2 * MAX_TOKENS_PER_MESSAGE)
        cached = cache_read
    else:
        cached = min(_cached(usage), input_tokens)
    return TokenUsage(input_tokens, output_tokens or 0, cached, _seconds(usage))


def message_usage(node: Mapping[str, Any]) -> TokenUsage | None:
    """The usage an assistant message carries, in any shape Open WebUI writes; None without one."""
    candidates: list[Any] = [node.get("usage")]
    info = node.get("info")
    if isinstance(info, Mapping):
        candidates += [info.get("usage"), info]
    for candidate in candidates:
        if isinstance(candidate, Mapping):
            found = _from_mapping(candidate)
            if found is not None:
                return found
    return None


def _model_of(node: Mapping[str, Any]) -> str:
    candidate = node.get("model") or node.get("modelName")
    if not isinstance(candidate, str):
        return "unknown"
    cleaned = "".join(ch for ch in candidate.strip() if ch.isprintable())[:_MAX_MODEL_LENGTH]
    return cleaned or "unknown"


def _paid_answers(
    nodes: Mapping[str, Mapping[str, Any]],
    path: Sequence[str],
    children: Mapping[str | None, Sequence[str]],
    parents: Mapping[str, str | None],
) -> list[str]:
    """Assistant messages on the kept path and their assistant siblings, each once, in order."""
    seen: dict[str, None] = {}
    for message_id in path:
        if nodes[message_id].get("role") != "assistant":
            continue
        for sibling in children.get(parents.get(message_id), (message_id,)):
            if sibling in nodes and nodes[sibling].get("role") == "assistant":
                seen.setdefault(sibling)
        seen.setdefault(message_id)
    return list(seen)


def conversation_usage(
    nodes: Mapping[str, Mapping[str, Any]],
    path: Sequence[str],
    children: Mapping[str | None, Sequence[str]],
    parents: Mapping[str, str | None],
) -> tuple[ModelUsage, ...]:
    """Per model (first answer order), the tokens of the kept answers and their regenerations."""
    totals: dict[str, list[Any]] = {}
    for message_id in _paid_answers(nodes, path, children, parents):
        usage = message_usage(nodes[message_id])
        if usage is None:
            continue
        row = totals.setdefault(_model_of(nodes[message_id]), [0, 0, 0, 0, 0.0])
        row[0] += 1
        row[1] += usage.input_tokens
        row[2] += usage.output_tokens
        row[3] += usage.cached_tokens
        row[4] += usage.generation_seconds
    return tuple(
        ModelUsage(model, answers, inputs, outputs, cached, round(seconds, 3))
        for model, (answers, inputs, outputs, cached, seconds) in totals.items()
    )
