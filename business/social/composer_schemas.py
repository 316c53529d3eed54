"""Request and answer models of the composer's check and the best-time suggestions."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from business.social.schemas import MediaRef, TargetIn
from dawserver.plugin_api import Model, Query


class CheckIn(Model):
    """A post as the composer holds it (nothing is stored): base fields and channels."""

    text: str = Field("", max_length=100_000)
    media: list[MediaRef] = Field(default_factory=list, max_length=35)
    link: str | None = Field(None, max_length=2000)
    first_comment: str | None = Field(None, max_length=10_000)
    targets: list[TargetIn] = Field(min_length=1, max_length=50)


class CheckProblem(Model):
    """One problem of one field; an ``error`` blocks, a ``warning`` is advice."""

    field: str
    code: str
    message: str
    severity: Literal["error", "warning"]


class Preview(Model):
    """What the network will show: the text (with the link added where the network has
    no link cards), the link card, the media and the first comment."""

    text: str
    link_card: str | None
    media: list[MediaRef]
    first_comment: str | None


class ChannelCheck(Model):
    """One channel's variant as its network sees it."""

    channel_id: str
    network: str
    network_name: str
    name: str
    handle: str
    preview: Preview
    length: int
    max_length: int
    unit: str
    notes: list[str]
    links_clickable: bool
    first_comment_allowed: bool
    problems: list[CheckProblem]
    ok: bool


class CheckOut(Model):
    """Every channel's check; ``ok`` when no channel has an error."""

    ok: bool
    channels: list[ChannelCheck]


class BestTimesQuery(Query):
    """How many suggestions (1 to 10)."""

    count: int = Field(3, ge=1, le=10)


class BestTime(Model):
    """A weekday and hour in the channel's zone, its next occurrence and why."""

    weekday: str
    time: str
    score: float | None
    posts: int
    next_at: str
    next_at_epoch: float
    reason: str


class BestTimes(Model):
    """Suggestions from the channel's history (``source`` "history") or general
    defaults ("defaults", with the reason)."""

    channel_id: str
    network: str
    time_zone: str
    source: Literal["history", "defaults"]
    sample: int
    min_sample: int
    reason: str
    suggestions: list[BestTime]
