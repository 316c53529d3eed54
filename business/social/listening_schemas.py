"""Typed input and output of the listening and inbox routes, job and event."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from dawserver.plugin_api import Model, Query


class ListenRun(BaseModel):
    """The ``social.listen`` job's payload: the query polled."""

    query_id: str


class ReplyRun(BaseModel):
    """The ``social.reply`` job's payload: the answer sent."""

    reply_id: str


class SpikeAlert(BaseModel):
    """Event ``social.listening_spike``: a stream's last hour spiked."""

    account_id: str
    alert_id: str
    query_id: str
    kind: str
    term: str
    network: str
    last_hour: int
    baseline: float
    at: float


class QueryIn(Model):
    """A new stream: a keyword, a hashtag, the channel's mentions or its direct messages."""

    channel_id: str
    kind: Literal["keyword", "hashtag", "mention", "dm"]
    term: str = Field("", max_length=200)
    sensitivity: float = 3.0
    min_count: int = 10
    cooldown_s: float = 10800.0
    notify_email: str = Field("", max_length=320, pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$")


class QueryOut(Model):
    query_id: str
    channel_id: str
    network: str
    kind: str
    term: str
    sensitivity: float
    min_count: int
    cooldown_s: float
    notify_email: str
    since: str
    polled_at: float | None
    last_error: str
    last_alert_at: float | None
    created_at: float


class PollOut(Model):
    new: int
    pages: int
    spike: bool


class ItemOut(Model):
    item_id: str
    query_id: str
    network: str
    remote_id: str
    text: str
    author: str
    url: str
    posted_at: float
    received_at: float
    language: str
    sentiment: str
    score: float | None
    assignee: str
    rule_id: str
    first_response_at: float | None
    responder: str
    response_s: float | None
    author_id: str = ""
    thread: str = ""


class InboxQuery(Query):
    assignee: str = ""
    open: bool = False


class Assign(Model):
    assignee: str = Field(min_length=1, max_length=200)


class RuleIn(Model):
    kind: Literal["keyword", "language", "round_robin"]
    team: list[str] = Field(min_length=1, max_length=50)
    pattern: str = ""
    language: str = ""
    ordinal: int = 0


class RuleOut(Model):
    rule_id: str
    ordinal: int
    kind: str
    pattern: str
    language: str
    team: list[str]
    next_index: int


class AlertOut(Model):
    alert_id: str
    query_id: str
    at: float
    last_hour: int
    baseline: float


class ResponseFigures(Model):
    items: int
    answered: int
    median_first_response_s: float | None
    mean_first_response_s: float | None


class AssigneeFigures(ResponseFigures):
    assignee: str


class ResponseReport(ResponseFigures):
    """First-response times, overall and per assignee ("" = nobody)."""

    by_assignee: list[AssigneeFigures]


class ReplyIn(Model):
    """An answer to an inbox item: a public reply, or a direct message to its author."""

    kind: Literal["reply", "dm"] = "reply"
    text: str = Field(min_length=1, max_length=10_000)


class ReplyOut(Model):
    reply_id: str
    item_id: str
    channel_id: str
    network: str
    kind: str
    target: str
    text: str
    person: str
    state: str
    attempts: int
    job_id: str
    remote_id: str
    url: str
    error: str
    created_at: float
    sent_at: float | None
