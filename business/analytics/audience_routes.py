"""Routes of the audience and benchmarking pages (``/api/analytics/audience``,
``/api/analytics/benchmark``).

Every query is scoped by ``request.account_id``: another account's entity, as the
benchmarked artist or as a peer, answers 404 like a missing one.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from business.analytics.audience import AudienceBook
from business.analytics.benchmark import BadPeers, benchmark
from business.analytics.catalog import EntityNotFound
from business.analytics.permissions import READ
from business.analytics.playlist_routes import PlaylistQuery
from business.analytics.services import services
from dawserver.plugin_api import BadRequest, Model, NotFound, Request, Route, map_errors

_api = map_errors((EntityNotFound, NotFound))


class AudienceQuery(PlaylistQuery):
    """A day range (default: the 28 days to today) and optionally one catalogue entity."""


class BenchmarkQuery(PlaylistQuery):
    """The artist (``entity``), a day range, and optionally its peers (comma-separated
    catalogue entity ids; none: the account's artists of a similar size)."""

    peers: str = Field("", max_length=3400)

    @field_validator("peers")
    @classmethod
    def _peers(cls, value: str) -> str:
        return ",".join(p.strip() for p in value.split(",") if p.strip())


class ShareOut(Model):
    key: str
    value: float
    share: float
    numeric: str | None = None
    name: str | None = None


class AudienceOut(Model):
    source: str
    metric: str
    countries: list[ShareOut]
    cities: list[ShareOut]
    ages: list[ShareOut]
    genders: list[ShareOut]


class PeerOut(Model):
    entity_id: str
    name: str
    value: float


class BenchmarkKpiOut(Model):
    title: str
    value: float | None
    percentile: float | None
    p25: float | None
    median: float | None
    p75: float | None
    peers: list[PeerOut]


class BenchmarkOut(Model):
    entity_id: str
    name: str
    first_day: str
    last_day: str
    peer_set: str
    peers: list[str]
    kpis: dict[str, BenchmarkKpiOut]


@_api
async def audience(request: Request) -> Any:
    """Countries, cities, age bands and genders per platform and metric over the range."""
    query: AudienceQuery = request.query
    module = services(request.context)
    entity = None
    if query.entity:
        entity = (await module.catalog.get(request.account_id, query.entity)).entity_id
    start, end = query.days()
    return await AudienceBook(module.store.db).audience(request.account_id, start, end, entity)


@_api
async def compare(request: Request) -> Any:
    """An artist's KPIs with its peers' quartiles and its percentile rank."""
    query: BenchmarkQuery = request.query
    if not query.entity:
        raise BadRequest("name the artist: entity=<catalogue entity id>")
    module = services(request.context)
    start, end = query.days()
    peers = [p for p in query.peers.split(",") if p]
    try:
        return await benchmark(module.store, module.catalog, request.account_id,
                               query.entity, start, end, peers)
    except BadPeers as err:
        raise BadRequest(str(err)) from err


A = "/api/analytics"
AUDIENCE_ROUTES = [
    Route(method="GET", path=f"{A}/audience", handler=audience, permission=READ,
          query=AudienceQuery, response=list[AudienceOut]),
    Route(method="GET", path=f"{A}/benchmark", handler=compare, permission=READ,
          query=BenchmarkQuery, response=BenchmarkOut),
]
