"""Who may call the pipeline functions (dispatch, analyze, aggregate).

* Cloud Tasks / Cloud Scheduler in production: an OIDC token (`Authorization:
  Bearer`) signed by Google, whose audience is the function's URL and whose
  e-mail is the invoker service account. Cloud Run's IAM check already ran; this is
  the second lock on the door, and it pins the caller to one service account.
* Local runs and tests: a shared secret header, compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from shared.auth import bearer_token
from shared.config import QueueBackend, Settings
from shared.errors import AuthenticationFailed
from shared.queue import TASK_SECRET_HEADER

__all__ = ["google_oidc_verifier", "verify_pipeline_caller"]

OidcVerifier = Callable[[str, str], Mapping[str, Any]]


class Headers(Protocol):
    """Request headers: a dict or werkzeug's `Headers`."""

    def get(self, key: str, default: str, /) -> str: ...


def google_oidc_verifier(token: str, audience: str) -> Mapping[str, Any]:
    """Verify a Google-signed ID token (fetches Google's public certificates)."""
    from google.auth.transport import requests as google_requests
    from google.oauth2 import id_token

    return id_token.verify_oauth2_token(token, google_requests.Request(), audience=audience)


def _bearer(headers: Headers) -> str:
    token = bearer_token(headers.get("Authorization", ""))
    if token is None:
        raise AuthenticationFailed("missing OIDC bearer token")
    return token


def verify_pipeline_caller(
    headers: Headers,
    settings: Settings,
    *,
    audience: str,
    service_account: str,
    verifier: OidcVerifier = google_oidc_verifier,
) -> None:
    """Raise AuthenticationFailed unless the request comes from the expected caller."""
    if settings.queue_backend is QueueBackend.CLOUD_TASKS and not settings.tasks_emulator_host:
        token = _bearer(headers)
        try:
            claims = verifier(token, audience)
        except Exception as exc:  # any verification problem is the caller's, not ours
            raise AuthenticationFailed(f"invalid OIDC token: {type(exc).__name__}") from exc
        if not claims.get("email_verified") or not hmac.compare_digest(
            str(claims.get("email", "")), service_account
        ):
            raise AuthenticationFailed("OIDC token is not from the expected service account", status_code=403)
        return
    presented = headers.get(TASK_SECRET_HEADER, "")
    expected = settings.task_secret.get_secret_value()
    if not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise AuthenticationFailed(f"missing or wrong {TASK_SECRET_HEADER} header")
