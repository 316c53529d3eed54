"""accounts.api_keys: the key format, its checksum and the stored hash."""

from __future__ import annotations

import hashlib
import re
import zlib

import pytest

from accounts.api_keys import (
    BASE62,
    KEY_LENGTH,
    NewKey,
    checksum_ok,
    hash_key,
    is_test_key,
    new_key,
)


def crc_of(text: str) -> int:
    """Decode the last 6 characters of ``text`` from base62 (the checksum, read back)."""
    value = 0
    for char in text[-6:]:
        value = value * 62 + BASE62.index(char)
    return value


def with_checksum(body: str) -> str:
    """``body`` plus a correct checksum, made without accounts.api_keys."""
    value, digits = zlib.crc32(body.encode()), ""
    for _ in range(6):
        value, digit = divmod(value, 62)
        digits = BASE62[digit] + digits
    return body + digits


def test_base62_is_digits_then_upper_then_lower() -> None:
    assert BASE62 == "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize(("test", "prefix"), [(False, "mbk_live_"), (True, "mbk_test_")])
def test_new_key_has_the_documented_shape(test: bool, prefix: str) -> None:
    key = new_key(test=test)
    assert KEY_LENGTH == 45 == len(key.secret)
    assert re.fullmatch(re.escape(prefix) + "[0-9A-Za-z]{36}", key.secret)
    assert crc_of(key.secret) == zlib.crc32(key.secret[:-6].encode())
    assert key.prefix == key.secret[:12] and key.prefix.startswith(prefix)
    assert key.key_hash == hashlib.sha256(key.secret.encode()).hexdigest() == hash_key(key.secret)
    assert checksum_ok(key.secret)
    assert is_test_key(key.secret) is test


def test_new_keys_are_random_and_the_secret_stays_out_of_repr() -> None:
    keys = [new_key() for _ in range(200)]
    assert len({k.secret for k in keys}) == 200
    assert len({k.secret[9:39] for k in keys}) == 200
    # every base62 digit turns up in the random part (6000 draws of 62 values)
    assert set("".join(k.secret[9:39] for k in keys)) == set(BASE62)
    assert keys[0].secret not in repr(keys[0])
    assert keys[0].key_hash in repr(keys[0])
    assert isinstance(keys[0], NewKey)


def test_checksum_is_left_padded_to_six_characters() -> None:
    # find a body whose CRC32 is small enough to need padding (< 62**5)
    body = next(b for b in (f"mbk_live_{i:030d}" for i in range(100_000))
                if zlib.crc32(b.encode()) < 62**5)
    key = with_checksum(body)
    assert key[-6] == "0"
    assert checksum_ok(key)


def test_any_single_changed_character_is_caught() -> None:
    secret = new_key().secret
    for position, original in enumerate(secret):
        for replacement in BASE62 + "_-":
            if replacement == original:
                continue
            changed = secret[:position] + replacement + secret[position + 1:]
            assert not checksum_ok(changed), (position, replacement)


@pytest.mark.parametrize("body", [
    "mbk_prod_" + "a" * 30,
    "mbk_Live_" + "a" * 30,
    "MBK_live_" + "a" * 30,
    "ghp_live_" + "a" * 30,
    "mbk_live_" + "a" * 29,
    "mbk_live_" + "a" * 31,
    "mbk_live" + "a" * 31,
    "mbk_live_" + "a" * 29 + "-",
    "mbk_live_" + "a" * 29 + "\u0663",  # an Arabic-Indic digit is not base62
])
def test_wrong_prefix_length_or_alphabet_is_refused_even_with_a_good_crc(body: str) -> None:
    assert not checksum_ok(with_checksum(body))


def test_the_good_crc_helper_makes_keys_the_module_accepts() -> None:
    assert checksum_ok(with_checksum("mbk_live_" + "a" * 30))
    assert checksum_ok(with_checksum("mbk_test_" + "Z" * 30))
    assert is_test_key(with_checksum("mbk_test_" + "Z" * 30))


@pytest.mark.parametrize("text", ["", "mbk_live_", None, b"mbk_live_", 12345])
def test_non_keys_are_refused_without_raising(text: object) -> None:
    assert not checksum_ok(text)  # type: ignore[arg-type]
    assert not is_test_key(text)  # type: ignore[arg-type]


def test_surrounding_whitespace_or_a_truncated_key_is_refused() -> None:
    secret = new_key(test=True).secret
    assert not checksum_ok(f" {secret}")
    assert not checksum_ok(f"{secret}\n")
    assert not checksum_ok(secret[:-1])
    assert not is_test_key(secret[:-1])
    assert not is_test_key(secret.replace("mbk_test_", "mbk_live_"))


def test_hash_key_is_sha256_hex_of_the_text() -> None:
    assert hash_key("mbk_live_x") == hashlib.sha256(b"mbk_live_x").hexdigest()
    assert len(hash_key("anything")) == 64
    assert hash_key("a") != hash_key("b")
