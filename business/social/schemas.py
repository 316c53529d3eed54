"""The social API's request and answer models (validation and the OpenAPI document),
and the payloads of its events.

Times go in as ISO 8601 with an offset, or a local time with ``time_zone`` (an IANA
name); they come out as ISO 8601 in the post's zone. Tokens never appear in any model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from business.social.models import CHANNEL_STATES, MAX_TIERS, POST_STATES
from dawserver.plugin_api import Model, Query

Text = Field(None, max_length=100_000)


class MediaRef(Model):
    """A media file from the platform (an asset id) and what it is."""

    asset_id: str = Field(min_length=1, max_length=200)
    kind: Literal["image", "video", "audio"]
    content_type: str = Field(min_length=3, max_length=100, examples=["video/mp4"])
    size_bytes: int = Field(ge=0)
    duration_s: float | None = Field(None, ge=0)
    width: int | None = Field(None, ge=1)
    height: int | None = Field(None, ge=1)


class TargetIn(Model):
    """One channel of a post; set fields override the post's own (its variant)."""

    channel_id: str = Field(min_length=1, max_length=100)
    text: str | None = Text
    media: list[MediaRef] | None = Field(None, max_length=35)
    link: str | None = Field(None, max_length=2000)
    first_comment: str | None = Field(None, max_length=10_000)


class PostIn(Model):
    """A post from the composer: a base text and fields, and its channels."""

    text: str = Field("", max_length=100_000)
    media: list[MediaRef] = Field(default_factory=list, max_length=35)
    link: str | None = Field(None, max_length=2000)
    first_comment: str | None = Field(None, max_length=10_000)
    campaign: str = Field("", max_length=200)
    publish_at: str | None = Field(None, description="ISO 8601 with an offset, or a local "
                                   "time with time_zone", examples=["2026-05-01T09:00+02:00"])
    time_zone: str | None = Field(None, max_length=64, examples=["Europe/Berlin"])
    targets: list[TargetIn] = Field(min_length=1, max_length=50)


class PostEdit(Model):
    """Changes to a post: only the fields sent change (null clears a field)."""

    text: str | None = Field(None, max_length=100_000)
    media: list[MediaRef] | None = Field(None, max_length=35)
    link: str | None = Field(None, max_length=2000)
    first_comment: str | None = Field(None, max_length=10_000)
    campaign: str | None = Field(None, max_length=200)
    publish_at: str | None = None
    time_zone: str | None = Field(None, max_length=64)
    targets: list[TargetIn] | None = Field(None, min_length=1, max_length=50)


class TargetOut(Model):
    """A post's channel, its variant and its progress."""

    channel_id: str
    network: str
    text: str | None
    media: list[MediaRef] | None
    link: str | None
    first_comment: str | None
    state: str
    approval_tier: int
    dedupe_key: str
    remote_id: str
    url: str
    error: str
    attempts: int
    version: int
    published_at: float | None = None


class PostOut(Model):
    """A stored post."""

    post_id: str
    author_id: str
    text: str
    media: list[MediaRef]
    link: str | None
    first_comment: str | None
    campaign: str
    publish_at: str | None
    time_zone: str
    state: str = Field(json_schema_extra={"examples": list(POST_STATES)})
    version: int
    submitted_at: float | None
    created_at: float
    updated_at: float
    targets: list[TargetOut]


class PostsQuery(Query):
    """Filters of the post list."""

    state: str = ""
    campaign: str = ""
    channel: str = ""


class CalendarQuery(Query):
    """A calendar window (``from``/``to``: ISO 8601 with an offset) and its filters."""

    start: str = Field(alias="from")
    end: str = Field(alias="to")
    channel: str = ""
    campaign: str = ""
    state: str = ""


class CalendarEntry(Model):
    """One post in a calendar view."""

    post_id: str
    publish_at: str
    publish_at_epoch: float
    time_zone: str
    state: str
    campaign: str
    text: str
    channels: list[str]
    networks: list[str]
    version: int


class Decision(Model):
    """An approval or rejection, with a note; ``channel_ids`` limits it to some channels."""

    note: str = Field("", max_length=2000)
    channel_ids: list[str] | None = None


class ApproverIn(Model):
    """One approver: exactly one of a person's id, a team's id, an organisation role."""

    person: str | None = Field(None, min_length=1, max_length=100)
    team: str | None = Field(None, min_length=1, max_length=100)
    role: str | None = Field(None, min_length=1, max_length=100)


class Workflow(Model):
    """A channel's approval tiers (at most 3; empty: posts need no approval)."""

    tiers: list[list[ApproverIn]] = Field(default_factory=list, max_length=MAX_TIERS)


class RightIn(Model):
    """One person's access to a channel (business/social/rights.py)."""

    person: str = Field(min_length=1, max_length=100)
    access: Literal["publish", "approval", "view"]


class ChannelRights(Model):
    """A channel's per-person rights; a person not named keeps their role's."""

    rights: list[RightIn] = Field(default_factory=list, max_length=1000)


class Slot(Model):
    """A weekly queue slot: ``mon``..``sun`` and ``HH:MM`` in the channel's time zone."""

    weekday: str = Field(examples=["mon"])
    time: str = Field(examples=["09:30"])


class Slots(Model):
    """A channel's weekly queue slots and their time zone."""

    time_zone: str = Field("UTC", max_length=64)
    slots: list[Slot] = Field(default_factory=list, max_length=200)


class NextSlotQuery(Query):
    """From when to look for a free slot (ISO 8601 with an offset; default now)."""

    after: str = ""


class NextSlot(Model):
    """The channel's next free queue slot (null: it has no slots)."""

    channel_id: str
    at: str | None
    at_epoch: float | None


class CallerRights(Model):
    """What the caller may do with a channel: ``access`` (``publish``, ``approval`` or
    ``view``: the channel's right for them, capped by their role), whether the channel
    ``named`` them (else their role decides) and whether they ``manage`` the channel."""

    access: Literal["publish", "approval", "view"]
    named: bool
    manage: bool


class ChannelOut(Model):
    """A connected channel (its tokens are never shown) and what the caller may do with
    it (``my_rights``)."""

    channel_id: str
    network: str
    remote_id: str
    name: str
    handle: str
    state: str = Field(json_schema_extra={"examples": list(CHANNEL_STATES)})
    expires_at: float | None
    scope: str
    last_error: str
    connected_by: str
    reconnect_url: str | None
    created_at: float
    updated_at: float
    my_rights: CallerRights


class ConnectQuery(Query):
    """Reconnect ``channel_id`` instead of connecting a new channel."""

    channel_id: str = ""


class Callback(Query):
    """What the network sends back: ``state`` and ``code``, or ``error``."""

    state: str = ""
    code: str | None = None
    error: str | None = None


class AuditOut(Model):
    """One step of a post's or channel's history."""

    action: str
    actor: str
    detail: dict
    at: float


class PostApproved(BaseModel):
    """Event ``social.post_approved``: every channel of the post passed its workflow."""

    account_id: str
    post_id: str
    author_id: str
    version: int
    approved_by: str
    publish_at: str | None


class PostRejected(BaseModel):
    """Event ``social.post_rejected``: an approver sent the post back to its author."""

    account_id: str
    post_id: str
    author_id: str
    version: int
    rejected_by: str
    note: str


class PostExpired(BaseModel):
    """Event ``social.post_expired``: not approved in time; its author should know."""

    account_id: str
    post_id: str
    author_id: str
    reason: str
    publish_at: str | None


class ChannelNeedsReconnect(BaseModel):
    """Event ``social.channel_needs_reconnect``: the network refused to refresh the
    channel's grant; someone must connect it again at ``reconnect_url``."""

    account_id: str
    channel_id: str
    network: str
    name: str
    connected_by: str
    reconnect_url: str
    reason: str



class PostPublished(BaseModel):
    """Event ``social.post_published``: a network accepted one channel of a post."""

    account_id: str
    post_id: str
    channel_id: str
    network: str
    author_id: str
    remote_id: str
    url: str
    publish_at: str | None
    published_at: float


class PostFailed(BaseModel):
    """Event ``social.post_failed``: one channel of a post ended failed with the network's
    reason; ``retry_url`` (POST) tries it again."""

    account_id: str
    post_id: str
    channel_id: str
    network: str
    author_id: str
    reason: str
    attempts: int
    retry_url: str


class PublishRun(BaseModel):
    """Payload of a ``social.publish`` job: one channel of one version of a post."""

    post_id: str
    channel_id: str
    version: int
