"""The receivers' verification helper: Standard Webhooks signatures, tolerance, tampering."""

from __future__ import annotations

import base64
import ipaddress
import time
from datetime import UTC, datetime

import pytest
from public_addresses_cases import NOT_PUBLIC
from standardwebhooks.webhooks import Webhook as SpecWebhook
from standardwebhooks.webhooks import WebhookVerificationError as SpecError

from dawserver.public_api.webhook_signature import (
    DEFAULT_TOLERANCE_S,
    WebhookVerificationError,
    new_secret,
    sign,
    signature,
    verify,
)

BODY = '{"data":{"order_id":"o1"},"timestamp":"2026-12-03T15:00:00.000Z","type":"marketplace.sale"}'


def test_signatures_match_the_standard_webhooks_library_both_ways() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    now = int(time.time())
    ours = sign(secret, "msg_1", BODY, timestamp=now)
    spec = SpecWebhook(secret)
    assert ours["Webhook-Signature"] == spec.sign("msg_1", datetime.fromtimestamp(now, UTC),
                                                  BODY)
    assert spec.verify(BODY, {k.lower(): v for k, v in ours.items()}) == {
        "data": {"order_id": "o1"}, "timestamp": "2026-12-03T15:00:00.000Z",
        "type": "marketplace.sale"}
    verify(secret, BODY.encode(), ours)  # bytes or text alike


def test_a_changed_body_another_secret_or_another_id_is_refused() -> None:
    secret = new_secret()
    headers = sign(secret, "msg_1", BODY)
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verify(secret, BODY.replace("o1", "o2"), headers)
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verify(new_secret(), BODY, headers)
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verify(secret, BODY, {**headers, "Webhook-Id": "msg_2"})
    with pytest.raises(SpecError):  # the spec's library agrees
        SpecWebhook(secret).verify(BODY.replace("o1", "o2"),
                                   {k.lower(): v for k, v in headers.items()})


@pytest.mark.parametrize("skew", [-DEFAULT_TOLERANCE_S + 5, -60, 0, 60,
                                  DEFAULT_TOLERANCE_S - 5])
def test_a_clock_skew_within_the_tolerance_is_accepted(skew: int) -> None:
    secret, now = new_secret(), 1_800_000_000
    headers = sign(secret, "msg_1", BODY, timestamp=now + skew)
    verify(secret, BODY, headers, now=now)


@pytest.mark.parametrize("skew", [-DEFAULT_TOLERANCE_S - 5, -3600, DEFAULT_TOLERANCE_S + 5,
                                  86400])
def test_a_clock_skew_beyond_the_tolerance_is_refused(skew: int) -> None:
    secret, now = new_secret(), 1_800_000_000
    headers = sign(secret, "msg_1", BODY, timestamp=now + skew)
    with pytest.raises(WebhookVerificationError, match="beyond the tolerance of 300 s"):
        verify(secret, BODY, headers, now=now)
    verify(secret, BODY, headers, now=now, tolerance_s=abs(skew) + 1)  # a wider tolerance


def test_one_matching_signature_among_several_is_enough() -> None:
    secret, old = new_secret(), new_secret()
    headers = sign(secret, "msg_1", BODY)
    stale = signature(old, "msg_1", int(headers["Webhook-Timestamp"]), BODY)
    verify(secret, BODY, {**headers, "Webhook-Signature": f"{stale} "
                                                           f"{headers['Webhook-Signature']}"})
    with pytest.raises(WebhookVerificationError):
        verify(secret, BODY, {**headers, "Webhook-Signature": stale})


def test_missing_or_malformed_headers_say_what_is_wrong() -> None:
    secret = new_secret()
    headers = sign(secret, "msg_1", BODY)
    for name in ("Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"):
        partial = {k: v for k, v in headers.items() if k != name}
        with pytest.raises(WebhookVerificationError, match=f"no {name} header"):
            verify(secret, BODY, partial)
    with pytest.raises(WebhookVerificationError, match="integer Unix seconds"):
        verify(secret, BODY, {**headers, "Webhook-Timestamp": "yesterday"})
    with pytest.raises(WebhookVerificationError, match="starts with 'whsec_'"):
        verify("plain-secret", BODY, headers)
    verify(secret, BODY, {k.lower(): v for k, v in headers.items()})  # any header case


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_webhooks_never_post_to_addresses_that_are_not_global(address: str) -> None:
    from dawserver.public_api.webhooks.settings import WebhookSettings
    from dawserver.public_api.webhooks.targets import refusal

    assert refusal(ipaddress.ip_address(address), WebhookSettings()) is not None
    assert refusal(ipaddress.ip_address("8.8.8.8"), WebhookSettings()) is None
