"""accounts.passwords: argon2id hashes, imported bcrypt hashes, the dummy check, the policy."""

from __future__ import annotations

import time

import argon2
import bcrypt
import pytest

from accounts.errors import AccountError, WeakPassword
from accounts.passwords import (
    DEFAULT_PARAMETERS,
    PasswordPolicy,
    Passwords,
    Verification,
    dummy_verify,
    hash_password,
    meets_owasp_minimum,
    verify_password,
)

#: Cheap parameters for the tests that are not about cost (argon2's minimum memory).
FAST = Passwords(time_cost=1, memory_cost=8, parallelism=1)


def bcrypt_hash_as_made_elsewhere(password: str, prefix: str = "$2b$") -> str:
    """A bcrypt hash as PHP/OpenBSD made it: of the first 72 UTF-8 bytes, with ``prefix``."""
    made = bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds=4)).decode()
    return prefix + made[4:]


def test_default_hashes_are_argon2id_at_or_above_owasp_minimum() -> None:
    stored = hash_password("correct horse battery staple")
    params = argon2.extract_parameters(stored)
    assert params == argon2.profiles.RFC_9106_LOW_MEMORY == DEFAULT_PARAMETERS
    assert params.type is argon2.Type.ID
    # OWASP Password Storage Cheat Sheet: m=19 MiB, t=2, p=1 (or m=46 MiB, t=1).
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2 and params.parallelism >= 1
    assert meets_owasp_minimum(params.time_cost, params.memory_cost)
    assert verify_password(stored, "correct horse battery staple") == Verification(True, False)
    assert verify_password(stored, "correct horse battery stapler") == Verification(False, False)


@pytest.mark.parametrize(("t", "m", "meets"), [
    (1, 47104, True), (1, 47103, False), (2, 19456, True), (2, 19455, False),
    (3, 12288, True), (4, 9216, True), (5, 7168, True), (5, 7167, False), (1, 1024, False)])
def test_the_owasp_minimum_is_any_of_its_equal_settings(t: int, m: int, meets: bool) -> None:
    assert meets_owasp_minimum(t, m) is meets


def test_serve_warns_when_password_hashing_is_below_the_owasp_minimum() -> None:
    from click.testing import CliRunner

    from dawserver.cli import main  # noqa: F401 - registers the commands first
    from dawserver.commands.serve import _hashing

    with CliRunner().isolation() as (_, err, _):
        assert _hashing("1,1024,1") == (1, 1024, 1)
        assert _hashing("2,19456,1") == (2, 19456, 1)
    warned = err.getvalue().decode()
    assert warned.count("warning: --password-hashing") == 1 and "1,1024,1" in warned


def test_hashes_are_salted_and_verify_only_their_password() -> None:
    first, second = FAST.hash("s3cret-password"), FAST.hash("s3cret-password")
    assert first != second
    assert FAST.verify(first, "s3cret-password").ok
    assert FAST.verify(second, "s3cret-password").ok
    assert not FAST.verify(first, "s3cret-passwore").ok
    assert not FAST.verify(first, "").ok


def test_hash_with_weaker_parameters_verifies_and_asks_for_rehash() -> None:
    stronger = Passwords(time_cost=2, memory_cost=16, parallelism=1)
    old = FAST.hash("an old password")
    assert stronger.verify(old, "an old password") == Verification(ok=True, needs_rehash=True)
    assert verify_password(old, "an old password") == Verification(ok=True, needs_rehash=True)
    assert not stronger.verify(old, "another password").ok
    assert stronger.verify(stronger.hash("new"), "new") == Verification(ok=True, needs_rehash=False)


def test_argon2i_hash_verifies_and_asks_for_rehash_to_argon2id() -> None:
    argon2i = argon2.PasswordHasher.from_parameters(
        argon2.Parameters(type=argon2.Type.I, version=19, salt_len=16, hash_len=32,
                          time_cost=1, memory_cost=8, parallelism=1))
    stored = argon2i.hash("legacy-type")
    assert stored.startswith("$argon2i$")
    assert FAST.verify(stored, "legacy-type") == Verification(ok=True, needs_rehash=True)


@pytest.mark.parametrize("prefix", ["$2a$", "$2b$", "$2y$"])
def test_imported_bcrypt_hash_verifies_and_always_asks_for_rehash(prefix: str) -> None:
    stored = bcrypt_hash_as_made_elsewhere("imported password", prefix)
    assert stored.startswith(prefix)
    assert FAST.verify(stored, "imported password") == Verification(ok=True, needs_rehash=True)
    assert FAST.verify(stored, "imported passworD") == Verification(ok=False, needs_rehash=False)


def test_bcrypt_reference_vector_ignores_bytes_after_72() -> None:
    # From crypt_blowfish's own test vectors (Openwall): a 98-byte password, made in C.
    stored = "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui"
    password = ("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                "chars after 72 are ignored")
    assert len(password.encode()) > 72
    assert FAST.verify(stored, password) == Verification(ok=True, needs_rehash=True)
    assert FAST.verify(stored, password[:72] + "anything else").ok
    assert not FAST.verify(stored, "1" + password[1:]).ok


def test_bcrypt_cuts_bytes_not_characters_when_byte_72_splits_a_character() -> None:
    password = "a" * 71 + "é" + " and the rest"  # é is c3 a9: c3 is byte 72, a9 byte 73
    stored = bcrypt_hash_as_made_elsewhere(password, "$2y$")
    assert FAST.verify(stored, password).ok
    # The system that made the hash saw only c3 too: é and è (c3 a8) are the same to it.
    assert FAST.verify(stored, "a" * 71 + "è").ok
    # Cutting at the character boundary (71 bytes) would be a different password.
    assert not FAST.verify(stored, "a" * 71).ok
    assert not FAST.verify(stored, "a" * 70 + "b" + "é").ok


def test_bcrypt_password_of_exactly_72_bytes_is_used_whole() -> None:
    password = "€" * 24  # 3 bytes each
    stored = bcrypt_hash_as_made_elsewhere(password)
    assert FAST.verify(stored, password).ok
    assert not FAST.verify(stored, "€" * 23 + "£").ok


@pytest.mark.parametrize("stored", [
    "",
    "plain text password",
    "$2x$04$" + "a" * 53,  # crypt_blowfish's buggy 8-bit variant: never trusted
    "$2b$04$short",
    "$2b$04$" + "é" * 53,
    "$2b$99$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui",
    "$argon2id$garbage",
    "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$",
    "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$" + "A" * 43,
    "$pbkdf2-sha256$29000$N2bsnTOmFAKAsHYuBUBILQ$Ptz2Zn0ln4LkHC1A8TEa1DO0tJR7LDHwo1pwzlTp8fY",
    "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/",
])
def test_unknown_or_malformed_hash_is_refused_without_raising(stored: str) -> None:
    assert FAST.verify(stored, "any password at all") == Verification(ok=False, needs_rehash=False)


def test_non_text_arguments_and_unencodable_passwords_are_refused() -> None:
    stored = FAST.hash("text")
    assert not FAST.verify(None, "text").ok  # type: ignore[arg-type]
    assert not FAST.verify(stored, b"text").ok  # type: ignore[arg-type]
    assert not FAST.verify(stored, "\ud800").ok
    assert not FAST.verify(bcrypt_hash_as_made_elsewhere("text"), "\ud800").ok


def test_verification_has_no_truth_value() -> None:
    with pytest.raises(TypeError, match=r"\.ok"):
        bool(FAST.verify("", "x"))


def test_dummy_verify_runs_one_argon2_verification_with_current_parameters(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[argon2.Parameters] = []
    real_verify = argon2.PasswordHasher.verify

    def spy(self: argon2.PasswordHasher, hash: str, password: str) -> bool:
        seen.append(argon2.extract_parameters(hash))
        return real_verify(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    chosen = Passwords(time_cost=2, memory_cost=32, parallelism=2)
    assert chosen.dummy_verify("whatever was typed") is None
    assert seen == [chosen.parameters]
    seen.clear()
    dummy_verify("whatever was typed")
    assert seen == [DEFAULT_PARAMETERS]


def test_dummy_verify_takes_as_long_as_a_failed_real_verification() -> None:
    owasp = Passwords(time_cost=2, memory_cost=19 * 1024, parallelism=1)
    stored = owasp.hash("the real password")

    def timed(call: object) -> float:
        start = time.perf_counter()
        call()  # type: ignore[operator]
        return time.perf_counter() - start

    # Alternating rounds, the fastest of each: a busy machine slows both alike, where
    # five of one then five of the other could fall on either side of a load spike.
    rounds = [(timed(lambda: owasp.verify(stored, "a wrong guess")),
               timed(lambda: owasp.dummy_verify("a wrong guess"))) for _ in range(9)]
    real, dummy = (min(column) for column in zip(*rounds, strict=True))
    assert 0.5 < dummy / real < 2, (dummy, real)


def test_policy_accepts_reasonable_passwords() -> None:
    policy = PasswordPolicy()
    policy.check("ten chars!")
    policy.check("x" * 1024)
    policy.check("  spaces around are kept  ", email="someone@example.com")
    policy.check("ünïcødé ✓ pass")


@pytest.mark.parametrize(("password", "email", "message"), [
    ("nine char", None, "at least 10 characters; this one has 9"),
    ("", None, "at least 10 characters; this one has 0"),
    ("x" * 1025, None, "at most 1024 characters; this one has 1025"),
    (" " * 12, None, "not only spaces"),
    ("\t\n \u3000\u00a0" * 3, None, "not only spaces"),
    ("valid-\ud800-surrogate", None, "not valid text"),
    ("Alice@Example.com", "alice@example.com", "not your email"),
    (" alice@example.com ", "ALICE@example.com", "not your email"),
    (b"bytes password", None, "must be text"),
])
def test_policy_refuses_weak_passwords_with_a_clear_message(
        password: str, email: str | None, message: str) -> None:
    with pytest.raises(WeakPassword, match=message) as raised:
        PasswordPolicy().check(password, email=email)
    assert isinstance(raised.value, AccountError)


def test_policy_lengths_are_configurable() -> None:
    policy = PasswordPolicy(min_length=12, max_length=20)
    with pytest.raises(WeakPassword, match="at least 12"):
        policy.check("eleven char")
    policy.check("twelve chars")
    with pytest.raises(WeakPassword, match="at most 20"):
        policy.check("twenty-one characters")
