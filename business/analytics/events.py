"""Our own modules as sources: the platform events analytics stores as points.

Each consumed event has a pydantic payload model here (the contract its producer keeps)
and a pure function from a valid payload to points and identities:

- ``presave.release_day`` (:class:`PresaveReleaseDay`, published by distribution's
  pre-save campaigns): the campaign's pre-save count on the release day, source
  ``presave``, one ``presaves`` point per release.
- ``distribution.statement_imported`` (:class:`StatementImported`): the lines of an
  imported store statement, source ``distribution``: per statement, ISRC, store,
  territory and currency, ``statement_units`` and ``statement_revenue_minor`` (minor
  units: cents), the period's totals stamped on its first day. The statement is a
  dimension, so two statements starting on the same day (a supplementary one) add up
  while a redelivered statement overwrites itself.
- ``social.post_metrics`` (:class:`PostMetrics`): a published post's counts on one day,
  source ``social``, entity the account's channel on that network, the post as the
  ``post`` dimension (as the X connector stores posts).

Delivery is at least once: a point's key (source, entity, metric, dimensions, day) makes
a repeat overwrite, never add. A payload that does not fit its model is logged and
dropped (:class:`BadEvent`), since raising would have the bus retry it for ever.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pydantic import BaseModel, Field, NonNegativeInt, ValidationError

from business.analytics.sources.records import Identity, Point

PRESAVE_EVENT = "presave.release_day"
STATEMENT_EVENT = "distribution.statement_imported"
POST_METRICS_EVENT = "social.post_metrics"


class BadEvent(ValueError):
    """A consumed event whose payload does not fit its model (``field``: where)."""

    def __init__(self, name: str, field: str, detail: str) -> None:
        super().__init__(f"event {name}: {field}: {detail}; fix the producer's payload")
        self.field = field


class PresaveReleaseDay(BaseModel):
    account_id: str = Field(min_length=1)
    release_id: str = Field(min_length=1)
    release_date: date
    presaves: NonNegativeInt
    title: str = ""
    artist: str = ""


class StatementLine(BaseModel):
    store: str = Field(min_length=1)
    territory: str = Field(min_length=2, max_length=8)
    isrc: str = Field(pattern=r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")
    units: NonNegativeInt
    #: Earnings in minor units (cents); the store keeps no negative values, so a refund
    #: line is netted by the producer, never sent negative.
    amount_minor: NonNegativeInt
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    title: str = ""


class StatementImported(BaseModel):
    account_id: str = Field(min_length=1)
    statement_id: str = Field(min_length=1)
    period_start: date
    period_end: date
    lines: list[StatementLine]


class PostMetrics(BaseModel):
    account_id: str = Field(min_length=1)
    network: str = Field(min_length=1)
    channel_id: str = Field(min_length=1)
    post_id: str = Field(min_length=1)
    day: date
    metrics: dict[str, NonNegativeInt] = Field(min_length=1)


@dataclass
class Consumed:
    """What one event gives the store: points and identities of one account."""

    account_id: str
    points: list[Point] = field(default_factory=list)
    identities: list[Identity] = field(default_factory=list)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _presave(event: PresaveReleaseDay) -> Consumed:
    return Consumed(event.account_id, [Point(
        "presave", "release", event.release_id, "presaves", _midnight(event.release_date),
        event.presaves)], [Identity("presave", "release", event.release_id, event.title,
                                    artist_name=event.artist)])


def _statement(event: StatementImported) -> Consumed:
    units: dict[tuple, int] = {}
    revenue: dict[tuple, int] = {}
    titles: dict[str, str] = {}
    for line in event.lines:
        key = (line.isrc, (("currency", line.currency), ("statement", event.statement_id),
                           ("store", line.store), ("territory", line.territory)))
        units[key] = units.get(key, 0) + line.units
        revenue[key] = revenue.get(key, 0) + line.amount_minor
        titles[line.isrc] = line.title or titles.get(line.isrc, "")
    at = _midnight(event.period_start)
    out = Consumed(event.account_id)
    for (isrc, dims), count in units.items():
        out.points.append(Point("distribution", "track", isrc, "statement_units", at, count,
                                dims))
        out.points.append(Point("distribution", "track", isrc, "statement_revenue_minor", at,
                                revenue[(isrc, dims)], dims))
    out.identities = [Identity("distribution", "track", isrc, title or isrc, isrc=isrc)
                      for isrc, title in titles.items()]
    return out


def _post_metrics(event: PostMetrics) -> Consumed:
    entity = f"{event.network}:{event.channel_id}"
    return Consumed(event.account_id, [
        Point("social", "artist", entity, metric, _midnight(event.day), value,
              (("post", event.post_id),)) for metric, value in sorted(event.metrics.items())])


#: Event name -> (payload model, what it gives).
CONSUMED: dict[str, tuple[type[BaseModel], Callable[..., Consumed]]] = {
    PRESAVE_EVENT: (PresaveReleaseDay, _presave),
    STATEMENT_EVENT: (StatementImported, _statement),
    POST_METRICS_EVENT: (PostMetrics, _post_metrics),
}


def consume(name: str, payload: dict) -> Consumed | None:
    """The points and identities of event ``name`` (None: an event analytics ignores);
    a payload that does not fit raises :class:`BadEvent` naming the field."""
    found = CONSUMED.get(name)
    if found is None:
        return None
    model, convert = found
    try:
        event = model.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"]) or "(the payload)"
        raise BadEvent(name, where, error["msg"]) from None
    if isinstance(event, StatementImported) and event.period_end < event.period_start:
        raise BadEvent(name, "period_end", "is before period_start")
    return convert(event)
