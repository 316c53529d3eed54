"""Signed access tokens: who may open which project, in which role.

A token is ``base64url(json claims) + "." + base64url(HMAC-SHA256(secret, claims))``.
Claims: ``p`` project id (``"*"`` for a server administrator), ``r`` role,
``u`` user name, ``iat`` issue time (seconds since the epoch, float) and an
optional ``exp``.  Revocation is by (project, user, time): a token issued
before the user's revocation time is refused (see :mod:`collab.store`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .errors import AuthError

ALL_PROJECTS = "*"
SECRET_FILE = "secret.key"


class Role(StrEnum):
    """A user's role on a project; later roles include the rights of earlier ones."""

    VIEWER = "viewer"
    EDITOR = "editor"
    OWNER = "owner"

    def at_least(self, minimum: Role) -> bool:
        """Whether this role is ``minimum`` or a later one (holds all its rights)."""
        order = list(Role)
        return order.index(self) >= order.index(minimum)

    @property
    def can_edit(self) -> bool:
        """Whether document updates from this role are accepted."""
        return self in (Role.EDITOR, Role.OWNER)

    @property
    def can_manage(self) -> bool:
        """Whether this role may issue tokens and revoke members."""
        return self is Role.OWNER

    @classmethod
    def parse(cls, value: str) -> Role:
        """The role named ``value`` or :class:`AuthError` listing the valid names."""
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(r.value for r in cls)
            raise AuthError(f"unknown role {value!r}; use one of {names}") from None


@dataclass(frozen=True)
class Grant:
    """The verified content of a token."""

    project_id: str
    role: Role
    user: str
    issued_at: float
    expires_at: float | None = None

    @property
    def is_admin(self) -> bool:
        """Whether the token is valid for every project."""
        return self.project_id == ALL_PROJECTS

    def allows(self, project_id: str) -> bool:
        """Whether this grant covers ``project_id``."""
        return self.is_admin or self.project_id == project_id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _create_whole(path: Path, text: str) -> None:
    """Write ``path`` (mode 0600) with ``text`` unless it exists, never seen half-written:
    servers starting at once on one data folder each write their own file and link it in
    place (an atomic step that fails if another got there first), so all of them read
    the one whole secret that won."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another server's won: all read it
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)


class TokenSigner:
    """Issues and verifies tokens with one server secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise AuthError("the token secret must be at least 16 bytes")
        self._secret = secret

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> TokenSigner:
        """Load the secret from ``data_dir/secret.key``, creating it (mode 0600) if absent."""
        path = Path(data_dir) / SECRET_FILE
        if not path.exists():
            _create_whole(path, secrets.token_hex(32))
        return cls(path.read_text().strip().encode("ascii"))

    def issue(
        self,
        project_id: str,
        role: Role | str,
        user: str = "local",
        *,
        ttl_seconds: float | None = None,
        now: float | None = None,
    ) -> str:
        """A signed token giving ``user`` the ``role`` on ``project_id``."""
        issued = time.time() if now is None else now
        claims = {"p": project_id, "r": Role.parse(str(getattr(role, "value", role))).value,
                  "u": user, "iat": issued}
        if ttl_seconds is not None:
            claims["exp"] = issued + ttl_seconds
        body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str | None, *, now: float | None = None) -> Grant:
        """The :class:`Grant` of a genuine, unexpired token, else :class:`AuthError`."""
        if not token:
            raise AuthError("no token given; pass ?token=... or 'Authorization: Bearer ...'")
        body, _, signature = token.partition(".")
        if not token.isascii() or not signature or not hmac.compare_digest(
                signature, self._sign(body)):
            raise AuthError("token signature is invalid (wrong server or altered token)")
        try:
            claims = json.loads(_unb64(body))
            grant = Grant(str(claims["p"]), Role.parse(claims["r"]), str(claims["u"]),
                          float(claims["iat"]), claims.get("exp"))
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthError(f"token claims are unreadable: {exc}") from None
        current = time.time() if now is None else now
        if grant.expires_at is not None and current > grant.expires_at:
            raise AuthError("token has expired; ask for a new one")
        return grant

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode("ascii"), hashlib.sha256).digest())
