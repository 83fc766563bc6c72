"""Pseudonymous user ids: HMAC-SHA256 of the Open WebUI user id under a secret key.

The same user always maps to the same 64-character hex string under one key, so
per-user breakdowns work; without the key the mapping cannot be reversed or
recomputed from a list of candidate ids (unlike a hash with a public salt).
"""

from __future__ import annotations

import hashlib
import hmac

from shared.config import Settings, get_settings
from shared.errors import ConfigurationError

__all__ = ["pseudonymise", "pseudonymise_with_settings"]


def pseudonymise(user_id: str, key: str | bytes) -> str:
    """The hex HMAC-SHA256 (64 characters) of `user_id` under `key`."""
    key_bytes = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if not key_bytes:
        raise ConfigurationError("the pseudonymisation key (ANALYTICS_HMAC_KEY) is empty")
    return hmac.new(key_bytes, user_id.encode("utf-8", errors="surrogatepass"), hashlib.sha256).hexdigest()


def pseudonymise_with_settings(user_id: str, settings: Settings | None = None) -> str:
    """`pseudonymise` under the configured key (`ANALYTICS_HMAC_KEY`)."""
    settings = settings or get_settings()
    return pseudonymise(user_id, settings.hmac_key.get_secret_value())
