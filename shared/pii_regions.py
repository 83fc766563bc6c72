"""The default phone regions of the redaction, on their own so that the settings can name them
without importing the redaction (phonenumbers and the name lists: a cold start's worth)."""

from __future__ import annotations

__all__ = ["DEFAULT_PII_REGIONS"]

DEFAULT_PII_REGIONS: tuple[str, ...] = (
    "HU", "DE", "AT", "GB", "FR", "IT", "ES", "NL", "PL", "CZ", "SK", "RO", "US", "CA",
)  # fmt: skip
"""The regions whose national phone formats the redaction recognises by default (`shared.redaction`)."""
