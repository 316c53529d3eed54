"""accounts.links: link tokens, their hashes, purposes and lifetimes."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from accounts.links import (
    LIFETIMES,
    LinkPurpose,
    expires_at,
    hash_token,
    new_link_token,
)


def test_token_is_256_random_bits_urlsafe_and_stored_as_its_sha256() -> None:
    token, token_hash = new_link_token()
    assert len(token) == 43 and set(token) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(base64.urlsafe_b64decode(token + "=")) == 32
    assert token_hash == hashlib.sha256(token.encode()).hexdigest() == hash_token(token)
    assert token not in token_hash


def test_tokens_are_distinct() -> None:
    tokens = [new_link_token()[0] for _ in range(500)]
    assert len(set(tokens)) == 500


def test_hash_token_tells_tokens_apart() -> None:
    assert hash_token("a") != hash_token("b")
    assert hash_token("abc") == hash_token("abc")


def test_purposes_and_their_lifetimes() -> None:
    assert [p.value for p in LinkPurpose] == ["verify", "reset", "invite"]
    assert LinkPurpose("reset") is LinkPurpose.RESET and LinkPurpose.RESET == "reset"
    assert dict(LIFETIMES) == {
        LinkPurpose.VERIFY: timedelta(hours=48),
        LinkPurpose.RESET: timedelta(hours=1),
        LinkPurpose.INVITE: timedelta(days=7),
    }
    with pytest.raises(TypeError):
        LIFETIMES[LinkPurpose.RESET] = timedelta(days=365)  # type: ignore[index]


def test_expires_at_adds_the_lifetime_of_the_purpose() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert expires_at(LinkPurpose.RESET, now) == datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
    assert expires_at("verify", now) == datetime(2026, 1, 3, 12, 0, tzinfo=UTC)
    assert expires_at("invite", now) == datetime(2026, 1, 8, 12, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="unknown link purpose 'login': use one of verify"):
        expires_at("login", now)
