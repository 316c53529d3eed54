"""Single-use, expiring tokens for the links sent by email (verify, reset, invite).

A token is 256 random bits, URL-safe base64 (43 characters), put in the link and never
stored: the store keeps :func:`hash_token` (SHA-256 hex) with the purpose, the expiry and the
time of use. SHA-256 without salt is enough for a 256-bit random secret; it only keeps a
leaked table from being a list of working links.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

__all__ = ["LIFETIMES", "TOKEN_BYTES", "LinkPurpose", "expires_at", "hash_token",
           "new_link_token"]

#: Random bytes in a token (256 bits).
TOKEN_BYTES = 32


class LinkPurpose(StrEnum):
    """What a link is for; a token made for one purpose is refused for another."""

    VERIFY = "verify"
    RESET = "reset"
    INVITE = "invite"


#: How long a link stays usable after it is sent.
LIFETIMES: Mapping[LinkPurpose, timedelta] = MappingProxyType({
    LinkPurpose.VERIFY: timedelta(hours=48),
    LinkPurpose.RESET: timedelta(hours=1),
    LinkPurpose.INVITE: timedelta(days=7),
})


def new_link_token() -> tuple[str, str]:
    """A new ``(token, token_hash)``: mail the token, store the hash."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest of a link token: what is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def expires_at(purpose: LinkPurpose | str, now: datetime) -> datetime:
    """When a link of ``purpose`` sent at ``now`` stops working (:data:`LIFETIMES`)."""
    try:
        purpose = LinkPurpose(purpose)
    except ValueError:
        known = ", ".join(p.value for p in LinkPurpose)
        raise ValueError(f"unknown link purpose {purpose!r}: use one of {known}") from None
    return now + LIFETIMES[purpose]
