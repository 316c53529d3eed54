"""Request and answer models of the milestone and alert routes."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import Field

from business.analytics.alerts import DEFAULT_COOLDOWN_S
from business.analytics.milestones import KINDS
from dawserver.plugin_api import Model, Query

_KIND = "^(" + "|".join(KINDS) + ")$"


class MilestoneQuery(Query):
    """Which milestones: a kind, a catalogue entity, from a day on."""

    kind: str = Field("", pattern="^(|" + "|".join(KINDS) + ")$")
    entity: str = Field("", max_length=64)
    since: date | None = None
    limit: int = Field(100, ge=1, le=1000)


class MilestoneOut(Model):
    """A milestone of one platform series (``text``: one sentence for people)."""

    milestone_id: str
    kind: str
    source: str
    entity_kind: str
    platform_id: str
    entity_id: str
    entity_name: str
    metric: str
    day: str
    value: float
    threshold: float | None
    detail: dict[str, Any]
    alerted: bool
    created_at: float
    text: str


class ThresholdIn(Model):
    """A threshold of one metric (all the account's series, or one catalogue entity's)."""

    metric: str = Field(min_length=1, max_length=60, examples=["followers_count"])
    value: float = Field(gt=0, le=1e12)
    entity_id: str = Field("", max_length=64)


class ThresholdOut(Model):
    threshold_id: str
    metric: str
    value: float
    entity_id: str
    created_by: str
    created_at: float


class PreferencesIn(Model):
    """A person's alert preferences on this account."""

    email: bool = True
    kinds: list[str] = Field(default_factory=lambda: list(KINDS))
    cooldown_s: float = Field(DEFAULT_COOLDOWN_S, ge=0, le=30 * 86400)


class PreferencesOut(Model):
    email: bool
    kinds: list[str]
    cooldown_s: float
