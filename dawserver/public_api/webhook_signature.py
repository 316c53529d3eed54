"""Standard Webhooks signatures: sign a delivery, and verify one on the receiving end.

A delivery carries three headers (https://www.standardwebhooks.com/):

- ``Webhook-Id``: the message's id, the same on every retry (receivers dedupe by it);
- ``Webhook-Timestamp``: when this attempt was signed, integer Unix seconds;
- ``Webhook-Signature``: ``v1,`` then the base64 HMAC-SHA256 of ``"{id}.{timestamp}.{body}"``
  under the subscription's secret (several space-separated signatures may appear).

A secret is ``whsec_`` followed by the base64 of its random key bytes. Receivers call
:func:`verify` with the raw body (before any JSON parsing) and the headers; it refuses
a timestamp more than ``tolerance_s`` away from their clock (a replayed request) and
compares signatures in constant time. This module imports only the standard library,
so receivers may copy it as it is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

#: The secret's prefix (Standard Webhooks).
SECRET_PREFIX = "whsec_"
#: The signature scheme's prefix: HMAC-SHA256.
SCHEME = "v1"
#: How far a timestamp may be from the receiver's clock, either way (seconds).
DEFAULT_TOLERANCE_S = 300
ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER = (
    "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature")


class WebhookVerificationError(Exception):
    """A delivery whose headers or signature do not check out (answer it 400 or 401)."""


def new_secret() -> str:
    """A fresh secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise WebhookVerificationError(
            f"a webhook secret starts with {SECRET_PREFIX!r}; pass the secret shown when the "
            "subscription was created")
    try:
        return base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except ValueError:
        raise WebhookVerificationError(
            "the webhook secret is not valid base64 after 'whsec_'; copy it again") from None


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def signature(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``Webhook-Signature`` value (``v1,<base64>``) of one delivery."""
    signed = f"{msg_id}.{int(timestamp)}.".encode() + _as_bytes(body)
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return f"{SCHEME},{base64.b64encode(digest).decode('ascii')}"


def sign(secret: str, msg_id: str, body: bytes | str, *, timestamp: float | None = None
         ) -> dict[str, str]:
    """The three headers of a delivery of ``body`` signed now (or at ``timestamp``)."""
    when = int(time.time() if timestamp is None else timestamp)
    return {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(when),
            SIGNATURE_HEADER: signature(secret, msg_id, when, body)}


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    raise WebhookVerificationError(f"the delivery has no {name} header; is it a webhook?")


def verify(secret: str, body: bytes | str, headers: Mapping[str, str], *,
           tolerance_s: float = DEFAULT_TOLERANCE_S, now: float | None = None) -> None:
    """Check a received delivery; :class:`WebhookVerificationError` if it is not authentic.

    Parameters
    ----------
    secret:
        The subscription's ``whsec_...`` secret.
    body:
        The raw request body, exactly as received.
    headers:
        The request's headers (any case).
    tolerance_s:
        The most seconds the timestamp may differ from ``now``, either way.
    now:
        The receiver's clock (default ``time.time()``).
    """
    msg_id = _header(headers, ID_HEADER)
    stamp = _header(headers, TIMESTAMP_HEADER)
    sent = _header(headers, SIGNATURE_HEADER)
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError(
            f"{TIMESTAMP_HEADER} must be integer Unix seconds, got {stamp!r}") from None
    clock = time.time() if now is None else now
    if abs(clock - timestamp) > tolerance_s:
        raise WebhookVerificationError(
            f"{TIMESTAMP_HEADER} {timestamp} is {clock - timestamp:+.0f} s from this clock, "
            f"beyond the tolerance of {tolerance_s:g} s: a replayed delivery, or a clock to "
            "set right (NTP)")
    expected = signature(secret, msg_id, timestamp, body)
    # every candidate is compared (constant time each), whatever matched before
    matched = False
    for candidate in sent.split():
        matched |= hmac.compare_digest(candidate.encode(), expected.encode())
    if not matched:
        raise WebhookVerificationError(
            "no signature matches: the body was changed, or the secret is not this "
            "subscription's")
