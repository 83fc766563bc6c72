"""One exception family for the product; each class tells the caller what to do.

    AnalyticsError                  base, never raised directly
    ├── ConfigurationError          settings cannot work: refuse to start
    ├── RetryableError              transient (LLM 429/5xx/timeout, DB drop): answer non-2xx, the queue retries
    ├── PermanentError              retrying cannot help: record the `reason_code`, answer 2xx
    │   ├── SkipConversation        the conversation cannot be measured (too few timestamps, malformed)
    │   └── EstimationFailed        the estimator refused or kept answering invalid output
    │       └── InvalidAnswerError  one invalid LLM answer (`problems`): asked once more, then `invalid_output`
    ├── RequestRejected             a caller's request is invalid (bad parameter, oversized payload): 4xx
    │   ├── InvalidParameter        query parameters out of bounds or inconsistent, one `Problem` each: 422
    │   ├── AuthenticationFailed    missing or wrong credentials: 401 (403 when `forbidden`)
    │   │   └── RateLimited         too many failed sign-ins from one client: 429 with `Retry-After`
    │   ├── LabelsRejected          (functions.calibration) an admin's labels file cannot be read: 400
    │   ├── ChatNotFound            (functions.api.feedback) no such chat in Open WebUI: 404
    │   ├── NotTheOwner             (functions.api.feedback) the chat belongs to someone else: 403
    │   ├── AnswerLimitReached      (functions.api.feedback) a person's answers for today are used up: 429
    │   └── ViewerRefused           (functions.read.side) a filter or route the viewer role may not use: 403
    ├── ChartRenderFailed           (functions.api.charts) a chart missed its time or memory budget: error image, 503
    └── AlreadyCounted              a concurrent delivery counted this outcome first: roll our writes back

Every exception the product defines is in this tree (tests/test_errors.py checks);
the ones local to one module live there and are listed with it. Entry points map
these to HTTP status codes; for Cloud Tasks the code decides between retry
(non-2xx) and done (2xx).

Why a conversation was not analysed is a `ReasonCode`, raised with the error and
stored as its string (`conversation_analysis.skip_reason`, `run_outcomes.reason`);
`RETRIED_BY_NEXT_RUN` are the failures the next run plans again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from shared.estimators.base import EstimateUsage

__all__ = [
    "RETRIED_BY_NEXT_RUN",
    "AlreadyCounted",
    "AnalyticsError",
    "AuthenticationFailed",
    "ConfigurationError",
    "EstimationFailed",
    "InvalidAnswerError",
    "InvalidParameter",
    "PermanentError",
    "Problem",
    "RateLimited",
    "ReasonCode",
    "RequestRejected",
    "RetryableError",
    "SkipConversation",
    "validation_problems",
]


class ReasonCode(StrEnum):
    """Why a conversation was skipped or failed; the stored value is the string."""

    # skipped: the conversation cannot be measured
    SKIPPED = "skipped"  # a skip without a more precise reason
    TOO_FEW_TIMESTAMPS = "too_few_timestamps"
    MALFORMED_DOCUMENT = "malformed_document"
    NO_MESSAGES = "no_messages"
    NO_OWNER = "no_owner"
    SHARE_COPY = "share_copy"
    INTERNAL_CHAT = "internal_chat"
    NOT_FOUND = "not_found"  # deleted in Open WebUI
    # failed: the estimator could not judge it
    PERMANENT_ERROR = "permanent_error"  # a permanent error without a more precise reason
    ESTIMATION_FAILED = "estimation_failed"
    INPUT_REJECTED = "input_rejected"
    CONTENT_FILTER = "content_filter"
    REFUSED = "refused"
    INVALID_OUTPUT = "invalid_output"
    # failed: the pipeline gave up, the next run tries again
    TRANSIENT_ERROR = "transient_error"  # transient errors outlasted the queue's attempts
    ENQUEUE_FAILED = "enqueue_failed"  # the dispatcher could not enqueue its task


RETRIED_BY_NEXT_RUN = frozenset({ReasonCode.TRANSIENT_ERROR, ReasonCode.ENQUEUE_FAILED})
"""Failures that say nothing about the conversation: the dispatcher plans it again."""


class AnalyticsError(Exception):
    """Base of every error this product raises on purpose."""


class ConfigurationError(AnalyticsError):
    """The settings cannot work; the message names the variable."""


class RetryableError(AnalyticsError):
    """A transient failure: the work should be retried later.

    `usage` is what the attempt spent before it failed (an estimator's tokens), if anything.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after_seconds: float | None = None,
        usage: EstimateUsage | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
        self.usage = usage


class PermanentError(AnalyticsError):
    """Retrying cannot help; the reason is recorded and the task acknowledged."""

    reason_code: ReasonCode = ReasonCode.PERMANENT_ERROR

    def __init__(self, message: str, *, reason_code: ReasonCode | None = None) -> None:
        super().__init__(message)
        if reason_code is not None:
            self.reason_code = reason_code


class SkipConversation(PermanentError):
    """The conversation cannot be measured; `reason_code` says why (e.g. `too_few_timestamps`)."""

    reason_code = ReasonCode.SKIPPED


class EstimationFailed(PermanentError):
    """The estimator refused or returned invalid output after its corrective retry.

    `usage` is what the failed estimate spent (its requests and tokens), so a run's
    cost includes it.
    """

    reason_code = ReasonCode.ESTIMATION_FAILED

    def __init__(
        self, message: str, *, reason_code: ReasonCode | None = None, usage: EstimateUsage | None = None
    ) -> None:
        super().__init__(message, reason_code=reason_code)
        self.usage = usage


class InvalidAnswerError(EstimationFailed):
    """One answer of the LLM cannot be used; `problems` lists every reason, one per entry.

    The LLM estimator asks once more with the problems; a second invalid answer is
    recorded as `invalid_output`.
    """

    reason_code = ReasonCode.INVALID_OUTPUT

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class RequestRejected(AnalyticsError):
    """The caller's request is invalid; answered with `status_code`."""

    status_code = 400

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        if status_code is not None:
            self.status_code = status_code


@dataclass(frozen=True, slots=True)
class Problem:
    """One parameter at fault and what is wrong with it."""

    parameter: str
    message: str

    def __str__(self) -> str:
        return f"{self.parameter}: {self.message}"


class _ValidationError(Protocol):
    """What is read of a pydantic `ValidationError` (kept structural: no pydantic import here)."""

    def errors(self, *, include_url: bool = ...) -> Sequence[Any]: ...


def validation_problems(error: _ValidationError, *, whole: str = "query") -> tuple[Problem, ...]:
    """A pydantic validation error as one `Problem` per error; `whole` names an error of the whole input."""
    return tuple(
        Problem(
            ".".join(str(part) for part in item["loc"]) or whole,
            "unknown parameter" if item["type"] == "extra_forbidden" else str(item["msg"]),
        )
        for item in error.errors(include_url=False)
    )


class InvalidParameter(RequestRejected):
    """Query parameters are out of bounds or inconsistent with each other (422); one `Problem` each."""

    status_code = 422

    def __init__(self, parameter: str, message: str) -> None:
        self.problems: tuple[Problem, ...] = (Problem(parameter, message),)
        super().__init__(str(self.problems[0]))

    @classmethod
    def of(cls, problems: Iterable[Problem]) -> InvalidParameter:
        """Several problems at once (at least one), e.g. from `validation_problems`."""
        found = tuple(problems)
        if not found:
            raise ValueError("InvalidParameter needs at least one problem")
        error = cls(found[0].parameter, found[0].message)
        error.problems = found
        error.args = ("; ".join(str(problem) for problem in found),)
        return error

    @classmethod
    def from_validation(cls, error: _ValidationError, *, whole: str = "query") -> InvalidParameter:
        """The problems of a pydantic validation error of the parameters."""
        return cls.of(validation_problems(error, whole=whole))

    @property
    def parameter(self) -> str:
        """The first parameter at fault."""
        return self.problems[0].parameter

    @property
    def problem(self) -> str:
        """What is wrong with the first parameter at fault."""
        return self.problems[0].message


class AuthenticationFailed(RequestRejected):
    """Missing or wrong credentials (401), or valid credentials without admin rights (403)."""

    status_code = 401


class RateLimited(AuthenticationFailed):
    """Too many failed attempts from one client: 429 with `Retry-After`."""

    status_code = 429

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"too many failed sign-in attempts; retry in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class AlreadyCounted(AnalyticsError):
    """A duplicate delivery lost the race to count a conversation's outcome: its transaction rolls back."""
