"""API keys in GitHub's style: recognisable by their prefix, checkable without a lookup.

A key reads ``mbk_live_`` or ``mbk_test_``, then 30 random base62 characters (about 178
bits, from :mod:`secrets`), then 6 base62 characters of the CRC32 (:func:`zlib.crc32`) of
everything before them, 45 characters in all. The checksum lets a secret scanner, a log
filter or the server itself tell a real key from a typo or a look-alike before any database
lookup. Only :func:`hash_key` (SHA-256) of a key is stored; the key is shown once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import zlib
from dataclasses import dataclass, field

__all__ = ["KEY_LENGTH", "NewKey", "checksum_ok", "hash_key", "is_test_key", "new_key"]

#: The digits of base62, in value order.
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
LIVE_PREFIX = "mbk_live_"
TEST_PREFIX = "mbk_test_"
RANDOM_LENGTH = 30
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(LIVE_PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
#: How much of a key is kept in clear to show in lists ("mbk_live_a1B…").
DISPLAY_PREFIX_LENGTH = 12

_KEY = re.compile(rf"mbk_(?:live|test)_[0-9A-Za-z]{{{RANDOM_LENGTH + CHECKSUM_LENGTH}}}")


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly made key: show ``secret`` once, store ``key_hash`` and ``prefix``."""

    secret: str = field(repr=False)
    key_hash: str
    prefix: str


def new_key(test: bool = False) -> NewKey:
    """Make a new live key, or a test key with ``test=True``."""
    body = (TEST_PREFIX if test else LIVE_PREFIX) + "".join(
        secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    secret = body + _checksum(body)
    return NewKey(secret=secret, key_hash=hash_key(secret), prefix=secret[:DISPLAY_PREFIX_LENGTH])


def checksum_ok(text: str) -> bool:
    """Whether ``text`` has the shape of a key and its checksum matches (no lookup)."""
    if not isinstance(text, str) or _KEY.fullmatch(text) is None:
        return False
    body, checksum = text[:-CHECKSUM_LENGTH], text[-CHECKSUM_LENGTH:]
    return _checksum(body) == checksum


def is_test_key(text: str) -> bool:
    """Whether ``text`` is a well-formed test key (``mbk_test_``)."""
    return checksum_ok(text) and text.startswith(TEST_PREFIX)


def hash_key(text: str) -> str:
    """The SHA-256 hex digest of a key: what is stored and looked up."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _checksum(body: str) -> str:
    """CRC32 of ``body`` in base62, left-padded with ``0`` to 6 characters."""
    value = zlib.crc32(body.encode("ascii"))
    digits = []
    while value:
        value, digit = divmod(value, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits)).rjust(CHECKSUM_LENGTH, BASE62[0])
