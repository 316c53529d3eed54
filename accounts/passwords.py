"""Password hashing, verification and the policy new passwords must meet.

New hashes are argon2id with the parameters of RFC 9106's second recommended option,
argon2-cffi's ``argon2.profiles.RFC_9106_LOW_MEMORY``: 64 MiB of memory
(``memory_cost=65536`` KiB), 3 passes (``time_cost=3``), 4 lanes (``parallelism=4``), a
16-byte random salt and a 32-byte tag. That is above every option of the OWASP Password
Storage Cheat Sheet, whose minimum is argon2id with 19 MiB, 2 passes and 1 lane (or 46 MiB
and 1 pass).

A stored argon2 hash made with other parameters still verifies (they are read from the hash)
and then reports ``needs_rehash=True``, so that the caller stores a fresh hash of the password
it has just checked.

bcrypt hashes (``$2a$``, ``$2b$``, ``$2y$``) imported from other systems are verified, never
created, and always report ``needs_rehash=True``. The systems that made them (OpenBSD, PHP,
crypt_blowfish, older pyca/bcrypt) used only the first 72 bytes of the UTF-8 password, even
where byte 72 falls inside a character; bcrypt 5 refuses longer input, so the same 72 bytes
are cut here. ``$2x$`` (crypt_blowfish's buggy 8-bit variant) and every other format are
refused. Verification never raises: a malformed or unknown hash is simply ``ok=False``.

:func:`dummy_verify` does one argon2 verification with the current parameters against a
hash of nothing, for sign-in attempts with an unknown email: such an attempt takes as long as
one with a known email and a wrong password. Its hash has random salt and tag, so making it
costs nothing and no password matches it.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import secrets
from dataclasses import dataclass

import argon2
import bcrypt
from argon2.exceptions import InvalidHashError, VerificationError

from accounts.errors import WeakPassword

__all__ = [
    "DEFAULT_PARAMETERS",
    "PasswordPolicy",
    "Passwords",
    "Verification",
    "dummy_verify",
    "hash_password",
    "verify_password",
]

#: The argon2id parameters of new hashes (RFC 9106 low-memory: t=3, m=64 MiB, p=4).
DEFAULT_PARAMETERS: argon2.Parameters = argon2.profiles.RFC_9106_LOW_MEMORY

#: bcrypt variants we verify; ``$2y$`` (PHP) is the same algorithm as ``$2b$``.
_BCRYPT_PREFIXES = {"$2a$": b"$2a$", "$2b$": b"$2b$", "$2y$": b"$2b$"}

#: How many bytes of the password bcrypt ever used.
_BCRYPT_MAX_BYTES = 72


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of checking a password against a stored hash.

    Attributes
    ----------
    ok : bool
        The password matches the hash.
    needs_rehash : bool
        Only meaningful when ``ok``: the hash is bcrypt or argon2 with other parameters than
        the current ones; store ``hash_password(password)`` in its place.
    """

    ok: bool
    needs_rehash: bool

    def __bool__(self) -> bool:
        raise TypeError("a Verification has no truth value: test its .ok")


_REFUSED = Verification(ok=False, needs_rehash=False)


#: The OWASP Password Storage Cheat Sheet's equally strong least argon2id settings:
#: (memory in KiB, passes), one lane.
OWASP_MINIMUMS = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))


def meets_owasp_minimum(time_cost: int, memory_kib: int) -> bool:
    """Whether argon2id with these costs is at least one of :data:`OWASP_MINIMUMS`."""
    return any(memory_kib >= memory and time_cost >= passes
               for memory, passes in OWASP_MINIMUMS)


class Passwords:
    """Hashes and verifies passwords with argon2id of the given parameters.

    The module-level functions use one instance with :data:`DEFAULT_PARAMETERS`; tests and
    benchmarks make their own with cheaper or dearer ones.

    Parameters
    ----------
    time_cost : int
        Passes over the memory.
    memory_cost : int
        Memory in KiB.
    parallelism : int
        Lanes (threads).
    """

    def __init__(self, time_cost: int = DEFAULT_PARAMETERS.time_cost,
                 memory_cost: int = DEFAULT_PARAMETERS.memory_cost,
                 parallelism: int = DEFAULT_PARAMETERS.parallelism) -> None:
        self._parameters = dataclasses.replace(
            DEFAULT_PARAMETERS, time_cost=time_cost, memory_cost=memory_cost,
            parallelism=parallelism)
        self._hasher = argon2.PasswordHasher.from_parameters(self._parameters)
        self._dummy_hash = _unmatchable_hash(self._parameters)

    def __repr__(self) -> str:
        p = self.parameters
        return (f"Passwords(time_cost={p.time_cost}, memory_cost={p.memory_cost}, "
                f"parallelism={p.parallelism})")

    @property
    def parameters(self) -> argon2.Parameters:
        """The argon2 parameters of new hashes."""
        return self._parameters

    def hash(self, password: str) -> str:
        """A new argon2id hash of ``password`` (PHC string format, random salt)."""
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> Verification:
        """Check ``password`` against ``stored_hash`` (argon2 or bcrypt); never raises."""
        if not isinstance(stored_hash, str) or not isinstance(password, str):
            return _REFUSED
        if stored_hash.startswith("$argon2"):
            try:
                self._hasher.verify(stored_hash, password)
            except (VerificationError, InvalidHashError, UnicodeError):
                return _REFUSED
            return Verification(ok=True, needs_rehash=self._hasher.check_needs_rehash(stored_hash))
        prefix = _BCRYPT_PREFIXES.get(stored_hash[:4])
        if prefix is not None and _bcrypt_matches(prefix, stored_hash[4:], password):
            return Verification(ok=True, needs_rehash=True)
        return _REFUSED

    def dummy_verify(self, password: str) -> None:
        """Spend the time of one failed argon2 verification (for an unknown account)."""
        with contextlib.suppress(VerificationError, InvalidHashError, UnicodeError, TypeError):
            self._hasher.verify(self._dummy_hash, password)


def _unmatchable_hash(parameters: argon2.Parameters) -> str:
    """An argon2id hash string with ``parameters``, random salt and random tag."""
    salt, tag = (base64.b64encode(secrets.token_bytes(n)).decode().rstrip("=")
                 for n in (parameters.salt_len, parameters.hash_len))
    return (f"$argon2id$v={parameters.version}$m={parameters.memory_cost},"
            f"t={parameters.time_cost},p={parameters.parallelism}${salt}${tag}")


def _bcrypt_matches(prefix: bytes, rest: str, password: str) -> bool:
    """bcrypt check of the first 72 UTF-8 bytes, as the system that made the hash did."""
    try:
        stored = prefix + rest.encode("ascii")
        secret = password.encode("utf-8")[:_BCRYPT_MAX_BYTES]
        return bcrypt.checkpw(secret, stored)
    except (ValueError, TypeError):  # UnicodeError is a ValueError; bcrypt: "Invalid salt"
        return False


_DEFAULT = Passwords()


def hash_password(password: str) -> str:
    """A new argon2id hash of ``password`` with :data:`DEFAULT_PARAMETERS`."""
    return _DEFAULT.hash(password)


def verify_password(stored_hash: str, password: str) -> Verification:
    """Check ``password`` against ``stored_hash``; see :meth:`Passwords.verify`."""
    return _DEFAULT.verify(stored_hash, password)


def dummy_verify(password: str) -> None:
    """Spend the time of one real verification; call it when no account has the email."""
    _DEFAULT.dummy_verify(password)


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """What a new password must be; lengths count characters (Unicode code points).

    Parameters
    ----------
    min_length : int
        Fewest characters (10: NIST SP 800-63B asks for at least 8, OWASP for 8 with MFA).
    max_length : int
        Most characters, so that nobody makes us hash megabytes.
    """

    min_length: int = 10
    max_length: int = 1024

    def check(self, password: str, email: str | None = None) -> None:
        """Raise :class:`~accounts.errors.WeakPassword` if ``password`` is not acceptable.

        Parameters
        ----------
        password : str
            The new password, exactly as typed.
        email : str, optional
            The account's email: the password may not be the same (case and surrounding
            spaces ignored).
        """
        if not isinstance(password, str):
            raise WeakPassword(f"a password must be text, not {type(password).__name__}")
        if len(password) < self.min_length:
            raise WeakPassword(f"choose a password of at least {self.min_length} characters; "
                               f"this one has {len(password)}")
        if len(password) > self.max_length:
            raise WeakPassword(f"choose a password of at most {self.max_length} characters; "
                               f"this one has {len(password)}")
        if not password.strip():
            raise WeakPassword("choose a password that is not only spaces")
        try:
            password.encode("utf-8")
        except UnicodeError:
            raise WeakPassword("the password holds characters that are not valid text "
                               "(unpaired surrogates); type it again") from None
        if email is not None and password.strip().casefold() == email.strip().casefold():
            raise WeakPassword("choose a password that is not your email address")
