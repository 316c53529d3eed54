"""What the accounts package keeps: accounts, memberships, invitations, keys, sessions."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AccountKind(StrEnum):
    """A person signs in; an organisation (artist, label) or a team has members."""

    PERSON = "person"
    ORGANISATION = "organisation"
    TEAM = "team"


class AccountStatus(StrEnum):
    """Whether an account may be used."""

    ACTIVE = "active"
    DISABLED = "disabled"
    DELETED = "deleted"


class OrgRole(StrEnum):
    """A person's role in an organisation; later roles include the rights of earlier ones."""

    VIEWER = "viewer"
    MEMBER = "member"
    ADMIN = "admin"
    OWNER = "owner"

    def at_least(self, minimum: OrgRole) -> bool:
        """Whether this role holds every right of ``minimum``."""
        order = list(OrgRole)
        return order.index(self) >= order.index(minimum)


#: The organisation roles built in; plug-ins declare more (e.g. ``approver``, ``finance``),
#: which hold no built-in right.
BUILT_IN_ORG_ROLES = tuple(role.value for role in OrgRole)
#: The plans an account may be on (API rate limits: accounts.ratelimit).
PLANS = ("free", "paid")
#: The data region of an account when none is given.
DEFAULT_REGION = "default"


def new_id(prefix: str) -> str:
    """A new opaque id: ``prefix`` + 20 random hex digits (80 bits)."""
    return f"{prefix}_{secrets.token_hex(10)}"


def normalise_email(email: str) -> str:
    """The form an address is looked up by: surrounding spaces dropped, lower case."""
    return email.strip().lower()


@dataclass(frozen=True)
class Account:
    """A person or an organisation."""

    account_id: str
    kind: AccountKind
    name: str
    status: AccountStatus
    plan: str
    region: str
    created_at: float
    updated_at: float
    email: str | None = None
    email_verified_at: float | None = None
    password_hash: str | None = field(default=None, repr=False)
    totp_secret: str | None = field(default=None, repr=False)
    totp_last_step: int | None = None
    totp_enabled_at: float | None = None

    @property
    def is_person(self) -> bool:
        """Whether this account signs in (a person), rather than having members."""
        return self.kind is AccountKind.PERSON

    @property
    def active(self) -> bool:
        """Whether the account may sign in and act."""
        return self.status is AccountStatus.ACTIVE

    @property
    def two_factor(self) -> bool:
        """Whether sign-in asks for a second factor (TOTP)."""
        return self.totp_enabled_at is not None


@dataclass(frozen=True)
class Membership:
    """A person in an organisation, with a role."""

    account_id: str
    person_id: str
    role: str
    created_at: float


@dataclass(frozen=True)
class Invitation:
    """An invitation into an organisation, sent by email."""

    account_id: str
    invitation_id: str
    email: str
    role: str
    invited_by: str
    expires_at: float
    created_at: float
    accepted_by: str | None = None
    accepted_at: float | None = None
    revoked_at: float | None = None

    def open_at(self, now: float) -> bool:
        """Whether it can still be accepted at ``now``."""
        return self.accepted_at is None and self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True)
class LinkRecord:
    """What a single-use link stands for (its token itself is never stored)."""

    purpose: str
    person_id: str
    data: dict[str, Any]
    expires_at: float
    created_at: float
    used_at: float | None = None


@dataclass(frozen=True)
class SessionRecord:
    """A signed-in session; ``key_hash`` is the hash of the cookie's secret id."""

    key_hash: str
    session_id: str
    person_id: str
    csrf_token: str
    created_at: float
    last_seen_at: float
    expires_at: float
    user_agent: str = ""
    address: str = ""
    #: The person's roles changed since this id was issued: the next request gets a new one.
    rotate: bool = False


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key (its secret is never stored, only its hash)."""

    key_hash: str
    key_id: str
    owner_id: str
    created_by: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    test: bool
    created_at: float
    expires_at: float | None = None
    last_used_at: float | None = None
    revoked_at: float | None = None

    def usable_at(self, now: float) -> bool:
        """Whether the key may be used at ``now`` (not revoked, not expired)."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True)
class AuditEvent:
    """One security event: who did what to what, from where."""

    account_id: str
    event_id: str
    at: float
    actor_id: str
    action: str
    target: str
    address: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class ProjectGrant:
    """A project role granted to a person or a team."""

    project_id: str
    grantee_id: str
    role: str
    granted_by: str
    created_at: float
