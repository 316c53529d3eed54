"""Analytics' read routes in the public REST API, declared relative to ``/api/v1``.

Thin adapters over the module's catalogue and KPIs: the artists of the account's
catalogue (merged ones left out) with their platform ids, and each artist's daily KPI
series (followers, monthly listeners, streams, views) summed across platforms, as the
dashboard charts them. The key scope is ``analytics.read``; another account's ids 404.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from aiohttp import web

from business.analytics import kpis
from business.analytics.catalog import Entity, EntityNotFound
from business.analytics.permissions import READ
from business.analytics.services import Services, services
from business.analytics.store import SeriesPoint, epoch
from business.analytics.v1_resources import (
    Artist,
    ArtistFilter,
    ArtistMetric,
    ArtistMetricFilter,
    ArtistMetricPage,
    ArtistPage,
    ArtistPlatform,
)
from dawserver.plugin_api import (
    NotFound,
    PublicOne,
    Request,
    Route,
    answer_one,
    answer_page,
    map_errors,
)

_api = map_errors((EntityNotFound, NotFound))
#: The most artists one list reads before paging.
MOST_ARTISTS = 100_000


def _artist(entity: Entity) -> Artist:
    return Artist(id=entity.entity_id, name=entity.name, platforms=[
        ArtistPlatform(source=link["source"], platform_id=link["platform_id"],
                       name=link["name"] or "", method=link["method"],
                       confidence=float(link["confidence"]))
        for link in entity.links])


async def _the_artist(module: Services, account_id: str, entity_id: str) -> Entity:
    entity = await module.catalog.get(account_id, entity_id)
    if entity.kind != "artist" or entity.merged_into:
        raise NotFound(f"the catalogue has no artist {entity_id!r}")
    return entity


def _day(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).date().isoformat()


def _days(kpi: kpis.Kpi, per_source: dict[str, list[SeriesPoint]],
          start: date) -> list[ArtistMetric]:
    """The KPI's days from ``start``; a running total sums each platform's latest reading
    (:func:`~business.analytics.kpis.carried_forward`, read from before ``start``)."""
    if kpi.running_total:
        per_source = kpis.carried_forward(per_source)
    low = epoch(start)
    parts: dict[int, dict[str, float]] = {}
    for source, points in per_source.items():
        for p in points:
            parts.setdefault(p.at, {})[source] = p.value
    return [ArtistMetric(id=f"{kpi.name}:{_day(p.at)}", metric=kpi.name, date=_day(p.at),
                         value=p.value, running_total=kpi.running_total,
                         sources=dict(sorted(parts[p.at].items())))
            for p in kpis.summed(per_source) if p.at >= low]


@_api
async def list_artists(request: Request) -> web.Response:
    """The artists of the account's analytics catalogue, by name; filter with
    `name_contains`."""
    needle = (request.query.name_contains or "").casefold()
    rows = await services(request.context).catalog.entities(request.account_id, "artist",
                                                            limit=MOST_ARTISTS)
    found = [_artist(e) for e in rows if needle in e.name.casefold()]
    return answer_page(request, ArtistPage, found, lambda a: (a.name, a.id))


@_api
async def get_artist(request: Request) -> web.Response:
    """One artist of the catalogue and its platform ids."""
    module = services(request.context)
    return answer_one(request, _artist(await _the_artist(module, request.account_id,
                                                         request.params["entity_id"])))


@_api
async def list_metrics(request: Request) -> web.Response:
    """The artist's KPIs day by day over `from`..`to` (UTC days, at most 366; default the
    last 28), each the sum over the platforms reporting it; filter with `metric`."""
    query: ArtistMetricFilter = request.query
    module = services(request.context)
    entity_id = request.params["entity_id"]
    await _the_artist(module, request.account_id, entity_id)  # 404 if not the account's
    start, end = query.start, query.end
    assert start is not None and end is not None  # the filter's defaults
    found: list[ArtistMetric] = []
    for kpi in kpis.KPIS:
        if query.metric in (None, kpi.name):
            back = min(kpis.LOOKBACK_DAYS, (start - date.min).days)  # not before year 1
            first = start - timedelta(days=back) if kpi.running_total else start
            found += _days(kpi, await kpis.kpi_sources(module.store, request.account_id,
                                                       entity_id, kpi, first, end), start)
    order = {k.name: n for n, k in enumerate(kpis.KPIS)}
    return answer_page(request, ArtistMetricPage, found,
                       lambda m: (order[m.metric], m.date))


ARTIST = "/analytics/artists/{entity_id}"

ROUTES = [
    Route(method="GET", path="/analytics/artists", handler=list_artists, permission=READ,
          response=ArtistPage, query=ArtistFilter),
    Route(method="GET", path=ARTIST, handler=get_artist, permission=READ,
          response=Artist, query=PublicOne),
    Route(method="GET", path=f"{ARTIST}/metrics", handler=list_metrics, permission=READ,
          response=ArtistMetricPage, query=ArtistMetricFilter),
]
