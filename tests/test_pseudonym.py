"""Pseudonymous user ids: keyed, stable, 64 hex characters, never the raw id."""

from __future__ import annotations

import re

import pytest

from shared.config import Settings, reset_settings_cache
from shared.errors import ConfigurationError
from shared.pseudonym import pseudonymise, pseudonymise_with_settings

KEY = "k" * 32


def test_known_value_of_hmac_sha256() -> None:
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
    assert pseudonymise("what do ya want for nothing?", "Jefe") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_pseudonyms_are_64_hex_characters_and_stable() -> None:
    user_id = "3f2a9c1e-7b4d-4e8a-9f01-2c3d4e5f6a7b"
    pseudonym = pseudonymise(user_id, KEY)
    assert re.fullmatch(r"[0-9a-f]{64}", pseudonym)
    assert pseudonymise(user_id, KEY) == pseudonym
    assert pseudonymise(user_id, KEY.encode()) == pseudonym
    assert user_id not in pseudonym


def test_different_keys_and_users_give_different_pseudonyms() -> None:
    assert pseudonymise("alice", KEY) != pseudonymise("bob", KEY)
    assert pseudonymise("alice", KEY) != pseudonymise("alice", KEY + "x")


def test_unicode_user_ids() -> None:
    assert len(pseudonymise("kovács.éva😀", KEY)) == 64
    assert len(pseudonymise("lone \ud800 surrogate", KEY)) == 64


def test_empty_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="ANALYTICS_HMAC_KEY"):
        pseudonymise("alice", "")
    with pytest.raises(ConfigurationError):
        pseudonymise("alice", b"")


def test_with_settings_uses_the_configured_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_HMAC_KEY", KEY)
    assert pseudonymise_with_settings("alice", Settings()) == pseudonymise("alice", KEY)
    monkeypatch.setenv("ANALYTICS_HMAC_KEY", "another-key-of-enough-length-1234")
    reset_settings_cache()
    assert pseudonymise_with_settings("alice") == pseudonymise("alice", "another-key-of-enough-length-1234")
