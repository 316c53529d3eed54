"""Two-step sign-in: TOTP codes (RFC 6238) and single-use recovery codes.

Codes are what authenticator apps expect: 6 digits, a 30-second step, HMAC-SHA1, from a
160-bit base32 secret (:func:`pyotp.random_base32`). A code is accepted for the current step
and one step either side (clock drift), and never for a step at or before the last one
accepted for the account: a code seen once, on the wire or over a shoulder, cannot be used
again.

Recovery codes are 10 characters of Crockford's base32 alphabet (no ``i``, ``l``, ``o``,
``u``), written ``xxxxx-xxxxx``, about 50 bits each. Only :func:`hash_code` (SHA-256 of the
normalised code) is stored; normalising forgives case, spaces, dashes and the letters people
type for the digits they read (``o`` for ``0``, ``i``/``l`` for ``1``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from datetime import datetime

import pyotp

__all__ = [
    "DIGITS",
    "ISSUER",
    "RECOVERY_ALPHABET",
    "STEP_SECONDS",
    "hash_code",
    "new_recovery_codes",
    "new_secret",
    "provisioning_uri",
    "verify_code",
]

DIGITS = 6
STEP_SECONDS = 30
#: Steps accepted either side of the current one.
WINDOW = 1
ISSUER = "Max Booster Studio"
#: Crockford's base32, lower case: no letters that read like digits or like each other.
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

_CODE = re.compile(rf"[0-9]{{{DIGITS}}}")
_CONFUSABLES = str.maketrans({"o": "0", "i": "1", "l": "1"})
_SEPARATORS = re.compile(r"[\s\-]+")


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)  # digest: SHA1


def new_secret() -> str:
    """A new base32 secret of 160 bits (32 characters) for an authenticator app."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str, issuer: str = ISSUER) -> str:
    """The ``otpauth://totp/...`` URI to show as a QR code when two-step sign-in is set up."""
    return _totp(secret).provisioning_uri(name=email, issuer_name=issuer)


def verify_code(secret: str, code: str, last_step: int | None,
                now: datetime | float | None = None) -> int | None:
    """Check a 6-digit code; return the time step it matched, or ``None``.

    Parameters
    ----------
    secret : str
        The account's base32 secret.
    code : str
        What the person typed; spaces are ignored (``"123 456"``).
    last_step : int or None
        The step returned by the last accepted code; codes of this step or earlier are
        refused (no replay). Store the returned step in its place.
    now : datetime or float, optional
        A timezone-aware datetime or a POSIX timestamp; the current time by default.
    """
    if not isinstance(code, str):
        return None
    code = _SEPARATORS.sub("", code)
    if _CODE.fullmatch(code) is None:
        return None
    if now is None:
        now = time.time()
    elif isinstance(now, datetime) and now.tzinfo is None:
        raise ValueError(f"now={now!r} has no timezone: pass an aware datetime or a timestamp")
    totp = _totp(secret)
    current = totp.timecode(now)
    nearby = [current + sign * k for k in range(1, WINDOW + 1) for sign in (-1, 1)]
    for step in [current, *nearby]:
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_codes(n: int = 10) -> list[str]:
    """``n`` distinct recovery codes, ``xxxxx-xxxxx``; show them once, store their hashes."""
    codes: list[str] = []
    while len(codes) < n:
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))
        code = f"{raw[:5]}-{raw[5:]}"
        if code not in codes:
            codes.append(code)
    return codes


def hash_code(code: str) -> str:
    """SHA-256 hex of a recovery code, normalised (case, spaces, dashes, o/i/l)."""
    normal = _SEPARATORS.sub("", code).lower().translate(_CONFUSABLES)
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()
