"""accounts.totp: codes as authenticator apps make them, no replay, recovery codes."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest

from accounts.totp import (
    RECOVERY_ALPHABET,
    hash_code,
    new_recovery_codes,
    new_secret,
    provisioning_uri,
    verify_code,
)

#: RFC 6238 appendix B: the SHA1 seed "12345678901234567890" in base32.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(("timestamp", "code"), [
    # RFC 6238 appendix B (SHA1), the last 6 of its 8 digits
    (59, "287082"),
    (1111111109, "081804"),
    (1111111111, "050471"),
    (1234567890, "005924"),
    (2000000000, "279037"),
    (20000000000, "353130"),
])
def test_codes_match_rfc_6238_test_vectors(timestamp: int, code: str) -> None:
    assert verify_code(RFC_SECRET, code, None, now=timestamp) == timestamp // 30


def test_one_step_either_side_is_accepted_and_two_are_not() -> None:
    secret, now = new_secret(), 1_700_000_015.0
    step = int(now) // 30
    app = pyotp.TOTP(secret)
    for offset in (-1, 0, 1):
        assert verify_code(secret, app.at(now + 30 * offset), None, now=now) == step + offset
    for offset in (-3, -2, 2, 3):
        assert verify_code(secret, app.at(now + 30 * offset), None, now=now) is None


def test_a_used_code_or_an_older_one_is_refused() -> None:
    secret, now = new_secret(), 1_700_000_000.0
    app = pyotp.TOTP(secret)
    step = verify_code(secret, app.at(now), None, now=now)
    assert step == int(now) // 30
    assert verify_code(secret, app.at(now), step, now=now) is None
    assert verify_code(secret, app.at(now), step, now=now + 20) is None
    assert verify_code(secret, app.at(now - 30), step, now=now) is None
    assert verify_code(secret, app.at(now + 30), step, now=now) == step + 1


def test_spaces_are_ignored_and_other_shapes_refused() -> None:
    assert verify_code(RFC_SECRET, " 287 082 ", None, now=59) == 1
    assert verify_code(RFC_SECRET, "287-082", None, now=59) == 1
    for typed in ["28708", "2870820", "94287082", "", "abcdef", "２８７０８２", "287082\x00"]:
        assert verify_code(RFC_SECRET, typed, None, now=59) is None, typed
    assert verify_code(RFC_SECRET, 287082, None, now=59) is None  # type: ignore[arg-type]
    assert verify_code(RFC_SECRET, "287083", None, now=59) is None


def test_now_may_be_an_aware_datetime_but_not_a_naive_one() -> None:
    aware = datetime.fromtimestamp(1111111109, tz=UTC)
    assert verify_code(RFC_SECRET, "081804", None, now=aware) == 1111111109 // 30
    with pytest.raises(ValueError, match="no timezone"):
        verify_code(RFC_SECRET, "081804", None, now=aware.replace(tzinfo=None))


def test_now_defaults_to_the_current_time() -> None:
    secret = new_secret()
    step = verify_code(secret, pyotp.TOTP(secret).now(), None)
    assert step is not None and abs(step - time.time() // 30) <= 1


def test_new_secrets_are_160_bit_base32_and_distinct() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert re.fullmatch("[A-Z2-7]{32}", secret)
        assert len(base64.b32decode(secret)) == 20


def test_provisioning_uri_is_what_authenticator_apps_read() -> None:
    secret = new_secret()
    uri = provisioning_uri(secret, "alice@example.com")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Max Booster Studio:alice@example.com"
    query = parse_qs(parts.query)
    assert query["secret"] == [secret]
    assert query["issuer"] == ["Max Booster Studio"]
    parsed = pyotp.parse_uri(uri)
    assert (parsed.secret, parsed.digits, parsed.interval) == (secret, 6, 30)
    assert parsed.digest().name == "sha1"
    other = provisioning_uri(secret, "bob@example.com", issuer="Studio Test")
    assert parse_qs(urlsplit(other).query)["issuer"] == ["Studio Test"]


def test_recovery_codes_are_distinct_and_unambiguous() -> None:
    assert len(RECOVERY_ALPHABET) == 32 and not set("ilou") & set(RECOVERY_ALPHABET)
    codes = new_recovery_codes()
    assert len(codes) == len(set(codes)) == 10
    for code in codes:
        assert re.fullmatch("[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}", code), code
    assert len(new_recovery_codes(3)) == 3
    assert set(new_recovery_codes(10)).isdisjoint(codes)


def test_hash_code_forgives_case_spaces_dashes_and_lookalike_letters() -> None:
    stored = hash_code("ab0c1-de1fg")
    assert stored == hashlib.sha256(b"ab0c1de1fg").hexdigest()
    for typed in ["AB0C1-DE1FG", "ab0c1de1fg", " ab0c1 de1fg ", "abOc1-deLfg", "aboci-delfg",
                  "ab0c1 - de1fg", "ab-0c-1d-e1-fg"]:
        assert hash_code(typed) == stored, typed
    assert hash_code("ab0c1-de1fh") != stored
    assert hash_code("ab0c1-de1f") != stored
