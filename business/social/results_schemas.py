"""Typed input and output of the results routes and the metric-collection job."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from dawserver.plugin_api import Model, Query


class CollectRun(BaseModel):
    """The ``social.collect_metrics`` job's payload: the channel whose posts are read."""

    channel_id: str


class ResultsQuery(Query):
    """A report window (``from``/``to``: ISO 8601 with an offset), filters, format."""

    start: str = Field(alias="from")
    end: str = Field(alias="to")
    channel: str = ""
    campaign: str = ""
    format: Literal["json", "csv"] = "json"


class Metrics(Model):
    """Metrics by our names; None: the network does not report it (or not read yet)."""

    impressions: int | None = None
    reach: int | None = None
    likes: int | None = None
    comments: int | None = None
    shares: int | None = None
    clicks: int | None = None
    video_views: int | None = None


class Figures(Model):
    """Metrics with link clicks, attributed conversions, revenue and ratios."""

    metrics: Metrics
    link_clicks: int
    presaves: int
    sales: int
    revenue_cents: dict[str, int]
    click_through_rate: float | None
    conversion_rate: float | None
    revenue_per_click_cents: dict[str, float | None]


class ChannelResult(Model):
    """One channel of a post: its latest reading and what its short link brought."""

    channel_id: str
    network: str
    url: str
    published_at: float | None
    metrics_at: float | None
    metrics: Metrics
    link_clicks: int
    presaves: int
    sales: int
    revenue_cents: dict[str, int]


class PostResult(Figures):
    """One published post: its channels summed."""

    post_id: str
    campaign: str
    text: str
    published_at: float | None
    channels: list[ChannelResult]


class Totals(Figures):
    """Every post of the report summed."""

    posts: int


class ResultsReport(Model):
    """The results of posts published in ``[from, to)``."""

    start: float
    end: float
    posts: list[PostResult]
    totals: Totals


class Reading(Model):
    """One stored reading of one channel of a post."""

    channel_id: str
    network: str
    taken_at: float
    metrics: Metrics
