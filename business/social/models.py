"""What the social module holds: channels, posts, their per-channel targets, approvals.

Times are UTC epoch seconds. A post's ``version`` grows with every edit; a dispatch
made for an older version does nothing. States (docs/social.md):

``draft -> pending_approval -> approved -> scheduled -> publishing -> published | failed``,
and ``expired`` (not approved in time, or pending over 90 days) and ``cancelled``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DRAFT, PENDING, APPROVED, SCHEDULED = "draft", "pending_approval", "approved", "scheduled"
PUBLISHING, PUBLISHED, FAILED = "publishing", "published", "failed"
EXPIRED, CANCELLED = "expired", "cancelled"
POST_STATES = (DRAFT, PENDING, APPROVED, SCHEDULED, PUBLISHING, PUBLISHED, FAILED, EXPIRED,
               CANCELLED)
#: States a post may be edited or deleted in (later ones have left, or are leaving).
EDITABLE = frozenset({DRAFT, PENDING, APPROVED, SCHEDULED, EXPIRED, FAILED})
#: States whose publish time holds a queue slot.
HOLDS_SLOT = frozenset({DRAFT, PENDING, APPROVED, SCHEDULED, PUBLISHING, PUBLISHED})

ACTIVE, NEEDS_RECONNECT, DISCONNECTED = "active", "needs_reconnect", "disconnected"
CHANNEL_STATES = (ACTIVE, NEEDS_RECONNECT, DISCONNECTED)


def awaiting_retry(state: str, attempts: int | None) -> bool:
    """Whether a target was attempted and is back to ``scheduled`` for its retry (a lost
    answer, a 5xx): it may be out on its network already."""
    return state == SCHEDULED and (attempts or 0) > 0


#: How long a post may wait for approval before it expires.
PENDING_LIMIT_S = 90 * 86_400.0
MAX_TIERS = 3
APPROVER_KINDS = ("person", "team", "role")


@dataclass(frozen=True)
class Approver:
    """Who may approve a tier: a ``person`` (id), anyone in a ``team`` (id), or anyone
    holding an organisation ``role`` (name) in the post's account."""

    kind: str
    value: str

    def to_dict(self) -> dict[str, str]:
        return {self.kind: self.value}


@dataclass(frozen=True)
class Channel:
    """A connected account on one network (its tokens stay in the store, sealed)."""

    account_id: str
    channel_id: str
    network: str
    remote_id: str
    name: str
    handle: str
    state: str
    expires_at: float | None
    scope: str
    token_generation: int
    last_error: str
    connected_by: str
    created_at: float
    updated_at: float
    tiers: tuple[tuple[Approver, ...], ...] = ()
    slots: tuple[dict[str, Any], ...] = ()
    time_zone: str = "UTC"
    #: ``(person_id, access)`` pairs (:mod:`.rights`); a person not named: their role's.
    rights: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ChannelTokens:
    """A channel's tokens, opened, with what orders them (generation, issue times)."""

    access_token: str
    refresh_token: str
    expires_at: float | None
    scope: str
    generation: int
    issued_at: float
    refresh_issued_at: float | None


@dataclass
class PostTarget:
    """One channel a post goes to, with its own variant (None: the post's own field)."""

    channel_id: str
    network: str = ""
    text: str | None = None
    media: list[dict[str, Any]] | None = None
    link: str | None = None
    first_comment: str | None = None
    state: str = DRAFT
    approval_tier: int = 0
    dedupe_key: str = ""
    remote_id: str = ""
    url: str = ""
    error: str = ""
    attempts: int = 0
    version: int = 1
    job_id: str = ""               # the social.publish job that runs this arming
    arm: int = 0                   # how often dispatch was armed (retries, sweeps)
    arm_attempts: int = 0          # publish attempts since the last arming
    publishing_until: float = 0.0  # a 'publishing' target older than this is looked at
    published_at: float | None = None
    #: When the first publish attempt began (None: never attempted); a retry only takes a
    #: remote post with the same text for this one if it was created after that.
    first_attempt_at: float | None = None


@dataclass
class Post:
    """One post: a base text and fields, and a target per channel."""

    account_id: str
    post_id: str
    author_id: str
    text: str
    media: list[dict[str, Any]]
    link: str | None
    first_comment: str | None
    campaign: str
    publish_at: float | None
    time_zone: str
    state: str
    version: int
    submitted_at: float | None
    created_at: float
    updated_at: float
    targets: list[PostTarget] = field(default_factory=list)
