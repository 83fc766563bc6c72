"""One exception family for the product; each class tells the caller what to do.

    AnalyticsError                  base, never raised directly
    ├── ConfigurationError          settings cannot work: refuse to start
    ├── RetryableError              transient (LLM 429/5xx/timeout, DB drop): answer non-2xx, the queue retries
    ├── PermanentError              retrying cannot help: record the reason, answer 2xx
    │   ├── SkipConversation        the conversation cannot be measured (too few timestamps, malformed)
    │   └── EstimationFailed        the estimator refused or kept answering invalid output
    ├── RequestRejected             a caller's request is invalid (bad parameter, oversized payload): 4xx
    │   └── AuthenticationFailed    missing or wrong credentials: 401 (403 when `forbidden`)
    └── AlreadyCounted              a concurrent delivery counted this outcome first: roll our writes back

Entry points map these to HTTP status codes; for Cloud Tasks the code decides
between retry (non-2xx) and done (2xx).
"""

from __future__ import annotations

__all__ = [
    "AlreadyCounted",
    "AnalyticsError",
    "AuthenticationFailed",
    "ConfigurationError",
    "EstimationFailed",
    "PermanentError",
    "RequestRejected",
    "RetryableError",
    "SkipConversation",
]


class AnalyticsError(Exception):
    """Base of every error this product raises on purpose."""


class ConfigurationError(AnalyticsError):
    """The settings cannot work; the message names the variable."""


class RetryableError(AnalyticsError):
    """A transient failure: the work should be retried later."""

    def __init__(self, message: str, *, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class PermanentError(AnalyticsError):
    """Retrying cannot help; the reason is recorded and the task acknowledged."""

    reason_code = "permanent_error"

    def __init__(self, message: str, *, reason_code: str | None = None) -> None:
        super().__init__(message)
        if reason_code is not None:
            self.reason_code = reason_code


class SkipConversation(PermanentError):
    """The conversation cannot be measured; `reason_code` says why (e.g. `too_few_timestamps`)."""

    reason_code = "skipped"


class EstimationFailed(PermanentError):
    """The estimator refused or returned invalid output after its corrective retry."""

    reason_code = "estimation_failed"


class RequestRejected(AnalyticsError):
    """The caller's request is invalid; answered with `status_code`."""

    status_code = 400

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        if status_code is not None:
            self.status_code = status_code


class AuthenticationFailed(RequestRejected):
    """Missing or wrong credentials (401), or valid credentials without admin rights (403)."""

    status_code = 401


class AlreadyCounted(AnalyticsError):
    """A duplicate delivery lost the race to count a conversation's outcome: its transaction rolls back."""
