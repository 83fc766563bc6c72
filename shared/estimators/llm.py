"""The LLM estimator: the `openai` SDK against OpenAI or any compatible server.

One estimate is one request, plus at most one corrective request when the answer
is invalid. Requests use temperature 0, a fixed seed and strict JSON-schema
structured output. A server that rejects `json_schema` is asked for
`json_object` instead, and one that rejects temperature or seed is asked without
them; each instance remembers what its server refused, so the rejection is paid
once. Our own validation checks every answer whatever the mode.

Failures, and what the caller should do:

- 429, 5xx, timeouts, connection errors → `RetryableError` (429 carries the
  server's `Retry-After`).
- 401, 403, 404 and other request errors (bad key, unknown model, unsupported
  parameter) → `RetryableError` too: they are operator errors that hit every
  conversation alike, so the work waits in the queue until the key or model is
  fixed instead of being recorded as failed.
- The server refuses this input (400 `context_length_exceeded`,
  `content_policy_violation`, `invalid_prompt`) → `EstimationFailed("input_rejected")`.
- A refusal, or finish reason `content_filter` → `EstimationFailed` with reason
  `refused` or `content_filter`.
- Invalid output (bad JSON, missing fields, numbers out of range or out of order,
  finish reason `length`) twice in a row → `EstimationFailed("invalid_output")`.

`RetryableError` and `EstimationFailed` carry the tokens spent so far in their
`usage` field (an `EstimateUsage`), so a run's cost includes failed estimates.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from shared.config import DigestMode, Settings
from shared.conversation import TranscriptDigest
from shared.errors import (
    AnalyticsError,
    ConfigurationError,
    EstimationFailed,
    InvalidAnswerError,
    ReasonCode,
    RetryableError,
)
from shared.estimators.base import Estimate, EstimateUsage
from shared.estimators.pricing import request_cost_usd
from shared.estimators.prompt import (
    ANSWER_SCHEMA,
    ANSWER_SCHEMA_NAME,
    build_correction,
    build_messages,
    prompt_version,
)
from shared.estimators.ratelimit import RateLimiter, shared_rate_limiter
from shared.estimators.validation import EstimateAnswer, parse_answer

__all__ = ["SEED", "LlmEstimator"]

_log = logging.getLogger(__name__)

SEED = 20261128  # fixed so repeated estimates of one digest agree as far as the server allows
_KEYLESS_PLACEHOLDER = "unused"  # the SDK needs a key; keyless local servers ignore it
_CORRECTIVE_RETRIES = 1
_OPTIONAL_PARAMETERS = ("temperature", "seed")
_INPUT_REJECTED_CODES = frozenset({"context_length_exceeded", "content_policy_violation", "invalid_prompt"})
_OPERATOR_STATUS_HINTS = {
    401: "check OPENAI_API_KEY",
    403: "check the key's permissions for this model",
    404: "check ANALYTICS_OPENAI_MODEL and OPENAI_BASE_URL",
}
_MENTIONS_JSON_SCHEMA = re.compile(r"response_format|json_schema|structured output", re.IGNORECASE)


def _build_client(settings: Settings) -> openai.OpenAI:
    api_key = settings.openai_api_key.get_secret_value()
    if not api_key and not settings.openai_base_url:
        raise ConfigurationError("the LLM estimator needs OPENAI_API_KEY or OPENAI_BASE_URL")
    # max_retries=0: retrying is the task queue's job (backoff, Retry-After, attempt limits).
    # SDK retries would hold the instance, bypass the rate limiter and hide failures.
    return openai.OpenAI(
        api_key=api_key or _KEYLESS_PLACEHOLDER,
        base_url=settings.openai_base_url or None,
        timeout=settings.llm_timeout_seconds,
        max_retries=0,
    )


@dataclass
class _Tally:
    """Requests and tokens spent on one estimate, over every request made for it."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    def add(self, completion: ChatCompletion) -> None:
        usage = completion.usage
        if usage is None:
            return
        self.prompt_tokens += usage.prompt_tokens or 0
        self.completion_tokens += usage.completion_tokens or 0
        details = usage.prompt_tokens_details
        self.cached_tokens += (details.cached_tokens or 0) if details else 0

    def usage(self, model: str, prices: dict[str, dict[str, float]]) -> EstimateUsage:
        cost = request_cost_usd(
            model,
            prices,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cached_tokens=self.cached_tokens,
        )
        return EstimateUsage(
            requests=self.requests,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cached_tokens=self.cached_tokens,
            cost_usd=cost,
        )


def _finite_float(value: str | None) -> float | None:
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _retry_after_seconds(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (delta seconds or HTTP date); None if absent."""
    milliseconds = _finite_float(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return max(milliseconds / 1000, 0.0)
    value = headers.get("retry-after")
    seconds = _finite_float(value)
    if seconds is None and value:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return None if seconds is None else max(seconds, 0.0)


def _rejected_parameter(error: openai.APIStatusError) -> str | None:
    """The optional request feature a 400/422 complains about, if any."""
    param = (error.param or "").lower()
    if param in _OPTIONAL_PARAMETERS:
        return param
    if param.startswith("response_format") or _MENTIONS_JSON_SCHEMA.search(error.message or ""):
        return "response_format"
    return None


def _translate(error: openai.OpenAIError) -> AnalyticsError:
    """Map an SDK error onto our error family (see the module docstring)."""
    if isinstance(error, openai.RateLimitError):
        return RetryableError(
            f"LLM rate limit (429): {error.message}",
            retry_after_seconds=_retry_after_seconds(error.response.headers),
        )
    if isinstance(error, openai.APITimeoutError):
        return RetryableError("LLM request timed out")
    if isinstance(error, openai.APIConnectionError):
        return RetryableError(f"cannot reach the LLM server: {error.__cause__ or error.message}")
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        if status >= 500:
            return RetryableError(
                f"LLM server error ({status}): {error.message}",
                retry_after_seconds=_retry_after_seconds(error.response.headers),
            )
        if status == 400 and error.code in _INPUT_REJECTED_CODES:
            return EstimationFailed(
                f"the LLM server rejected this input: {error.message}", reason_code=ReasonCode.INPUT_REJECTED
            )
        hint = _OPERATOR_STATUS_HINTS.get(status, "check the LLM settings")
        return RetryableError(f"LLM request rejected ({status}, {hint}): {error.message}")
    return RetryableError(f"LLM request failed: {error}")


def _checked_answer(completion: ChatCompletion) -> tuple[EstimateAnswer, dict[str, Any]]:
    """The validated answer, or `InvalidAnswerError`; refusals raise `EstimationFailed`."""
    if not completion.choices:
        raise InvalidAnswerError(["the response contained no choices"])
    choice = completion.choices[0]
    if choice.finish_reason == "content_filter":
        raise EstimationFailed(
            "the LLM's content filter stopped the answer", reason_code=ReasonCode.CONTENT_FILTER
        )
    if choice.message.refusal:
        raise EstimationFailed(
            f"the LLM refused: {choice.message.refusal[:200]}", reason_code=ReasonCode.REFUSED
        )
    if choice.finish_reason == "length":
        raise InvalidAnswerError(
            ["the answer was cut off (length limit); reply with the short JSON object only"]
        )
    return parse_answer(choice.message.content)


class LlmEstimator:
    """Estimates manual time with an LLM; thread-safe, one instance per process is enough."""

    name = "llm"

    def __init__(
        self,
        settings: Settings,
        client: openai.OpenAI | None = None,
        *,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.model: str | None = settings.openai_model
        self.prompt_version = prompt_version(settings.digest_mode is DigestMode.COUNTS)
        self._model = settings.openai_model
        self._prices = settings.llm_prices
        self._client = client if client is not None else _build_client(settings)
        self.rate_limiter = rate_limiter or shared_rate_limiter(settings.llm_rpm)
        self._adapt_lock = threading.Lock()
        self._response_format = "json_schema"  # becomes "json_object" if the server rejects it
        self._omitted: frozenset[str] = frozenset()  # optional parameters the server rejected

    @property
    def response_format_mode(self) -> str:
        """`json_schema`, or `json_object` once the server has rejected structured output."""
        return self._response_format

    def estimate(self, digest: TranscriptDigest) -> Estimate:
        tally = _Tally()
        messages = build_messages(digest)
        problems: list[str] = []
        try:
            for attempt in range(1 + _CORRECTIVE_RETRIES):
                completion = self._complete(messages, tally)
                try:
                    answer, raw = _checked_answer(completion)
                except InvalidAnswerError as invalid:
                    problems = invalid.problems
                    _log.info("LLM answer invalid (attempt %d): %s", attempt + 1, invalid)
                    content = completion.choices[0].message.content if completion.choices else None
                    messages = [*messages, *build_correction(content, problems)]
                    continue
                return Estimate(
                    low=answer.low,
                    most_likely=answer.most_likely,
                    high=answer.high,
                    confidence=answer.confidence,
                    task_category=answer.task_category,
                    task_description=answer.task_description,
                    reasoning=answer.reasoning,
                    estimator=self.name,
                    model=self._model,
                    prompt_version=prompt_version(digest.counts_only),
                    usage=tally.usage(self._model, self._prices),
                    raw_response=raw,
                )
        except (RetryableError, EstimationFailed) as error:
            error.usage = tally.usage(self._model, self._prices)  # what the failed estimate spent
            raise
        raise EstimationFailed(
            "invalid LLM output after a corrective retry: " + "; ".join(problems),
            reason_code=ReasonCode.INVALID_OUTPUT,
            usage=tally.usage(self._model, self._prices),
        )

    def _complete(self, messages: list[dict[str, str]], tally: _Tally) -> ChatCompletion:
        """One answered request, adapting once to each optional feature the server rejects."""
        while True:
            response_format, omitted = self._response_format, self._omitted
            self.rate_limiter.acquire()
            tally.requests += 1
            try:
                completion = self._client.chat.completions.create(
                    **self._request(messages, response_format, omitted)
                )
            except (openai.BadRequestError, openai.UnprocessableEntityError) as error:
                if not self._adapt(error, response_format, omitted):
                    raise _translate(error) from error
                continue
            except openai.OpenAIError as error:
                raise _translate(error) from error
            if not isinstance(completion, ChatCompletion):  # e.g. a proxy's HTML page with status 200
                raise RetryableError("the LLM server answered with something other than a chat completion")
            tally.add(completion)
            return completion

    def _request(
        self, messages: list[dict[str, str]], response_format: str, omitted: frozenset[str]
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self._model, "messages": messages}
        if "temperature" not in omitted:
            request["temperature"] = 0
        if "seed" not in omitted:
            request["seed"] = SEED
        if response_format == "json_schema":
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": ANSWER_SCHEMA_NAME, "strict": True, "schema": ANSWER_SCHEMA},
            }
        else:
            request["response_format"] = {"type": "json_object"}
        return request

    def _adapt(self, error: openai.APIStatusError, response_format: str, omitted: frozenset[str]) -> bool:
        """Stop sending what the server rejected; False if there is nothing left to drop."""
        rejected = _rejected_parameter(error)
        with self._adapt_lock:
            if rejected == "response_format" and response_format == "json_schema":
                if self._response_format == "json_schema":
                    self._response_format = "json_object"
                    _log.warning(
                        "LLM server rejected json_schema output; using json_object (%s)", error.message
                    )
                return True
            if rejected in _OPTIONAL_PARAMETERS and rejected not in omitted:
                if rejected not in self._omitted:
                    self._omitted = self._omitted | {rejected}
                    _log.warning("LLM server rejected %r; sending requests without it", rejected)
                return True
        return False
