"""HTTP routes of the analytics plug-in (``/api/analytics/...``), declared through the
plug-in API. Every query is scoped by ``request.account_id``: another account's ids
answer 404 like missing ones. Who may do what: :mod:`.permissions`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

from business.analytics import kpis, olap
from business.analytics.catalog import CatalogError, EntityNotFound
from business.analytics.connections import ConnectionError_, SourceNotFound
from business.analytics.permissions import CATALOG, QUERY, READ, SOURCES
from business.analytics.runs import DONE, RunNotFound
from business.analytics.schemas import (
    AuditOut,
    BackfillIn,
    CatalogQuery,
    EntityOut,
    FreshnessOut,
    KpiQuery,
    KpisOut,
    MergeIn,
    PlatformOut,
    RunOut,
    SeriesOut,
    SeriesQuery,
    SourceIn,
    SourceOut,
    SplitIn,
    SqlIn,
    SqlOut,
)
from business.analytics.services import backfill, services
from business.analytics.sources import spec_of
from business.analytics.sources.base import Credentials
from business.analytics.store import growth
from dawserver.plugin_api import (
    BadRequest,
    NotFound,
    Reply,
    Request,
    Route,
    Unprocessable,
    map_errors,
)
from jobs import UnknownJob

#: The domain's errors as HTTP errors (the first rule that matches decides).
_api = map_errors(
    ((SourceNotFound, RunNotFound, EntityNotFound), NotFound),
    ((ConnectionError_, CatalogError), Unprocessable),
    (olap.QueryRefused, BadRequest),
)


def _person(request: Request) -> str:
    return request.user or request.account_id


# -- sources --------------------------------------------------------------------------------

@_api
async def list_sources(request: Request) -> Any:
    """The account's connected sources (never their credentials)."""
    found = await services(request.context).connections.list(request.account_id)
    return [c.public() for c in found]


@_api
async def connect_source(request: Request) -> Any:
    """Connect a source (credentials sealed at rest); it runs on its schedule from now."""
    body: SourceIn = request.body
    connection = await services(request.context).connections.connect(
        request.account_id, body.source, body.entity_kind, body.entity_id,
        Credentials(body.client_id, body.client_secret, body.api_key, body.refresh_token),
        _person(request), body.entity_name)
    return Reply(connection.public(), status=201)


@_api
async def disconnect_source(request: Request) -> Any:
    """Disconnect a source: its credentials are forgotten, its points stay."""
    connection = await services(request.context).connections.disconnect(
        request.account_id, request.params["source_id"])
    return connection.public()


@_api
async def start_backfill(request: Request) -> Any:
    """Back-fill a connected source for a day range, as a job (202, its run)."""
    module = services(request.context)
    connection = await module.connections.get(request.account_id, request.params["source_id"])
    body: BackfillIn = request.body
    spec = spec_of(connection.source)
    if not spec.history:
        raise Unprocessable(f"{spec.title} answers current counts only, so it cannot be "
                            "back-filled; it is read daily on its schedule")
    if connection.state != "active":
        raise Unprocessable(f"the source is {connection.state}: connect it again first "
                            f"({connection.last_error or 'no credentials'})")
    run, _ = await backfill(request.context, connection, body.start, body.end)
    return Reply(await _run_out(request, run), status=202)


async def _run_out(request: Request, run: Any) -> dict[str, Any]:
    queue = request.context.background.queue
    try:
        job = await queue.get(request.account_id, run.job_id)
    except UnknownJob:
        # finished jobs are purged after a while; the run row still says how it ended
        return {**run.public(),
                "progress": 1.0 if run.state == DONE else run.fraction(),
                "job_state": run.state, "job_note": ""}
    return {**run.public(), "progress": max(job.progress if not job.finished else 0.0,
                                            run.fraction()) if job.state != "done" else 1.0,
            "job_state": job.state, "job_note": job.note}


@_api
async def get_run(request: Request) -> Any:
    """An ingestion run: the days stored so far, its job's state and progress."""
    run = await services(request.context).runs.get(request.account_id,
                                                   request.params["run_id"])
    return await _run_out(request, run)


@_api
async def source_runs(request: Request) -> Any:
    """A connected source's runs, newest first."""
    module = services(request.context)
    connection = await module.connections.get(request.account_id, request.params["source_id"])
    return [await _run_out(request, run) for run in
            await module.runs.of_source(request.account_id, connection.source_id)]


@_api
async def freshness(request: Request) -> Any:
    """Per source: when its last batch was fetched and when it became queryable."""
    return await services(request.context).store.freshness(request.account_id)


# -- series ---------------------------------------------------------------------------------

@_api
async def series(request: Request) -> Any:
    """A metric's series for a catalogue entity (summed across platforms) or one platform
    id, with growth over 7, 28 and 90 days to its last day."""
    query: SeriesQuery = request.query
    module = services(request.context)
    if query.entity:
        await module.catalog.get(request.account_id, query.entity)  # 404 if not the account's
        found = await module.store.series(
            request.account_id, metric=query.metric, grain=query.grain, entity_id=query.entity,
            start=query.start, end=query.end, by_source=query.by_source)
    elif query.source and query.platform_id:
        found = await module.store.series(
            request.account_id, metric=query.metric, grain=query.grain,
            platform=(query.source, query.platform_kind, query.platform_id),
            start=query.start, end=query.end, by_source=query.by_source)
    else:
        raise BadRequest("name a catalogue entity (entity=...) or a platform id (source=..."
                         "&platform_id=...)")
    total = found.pop("total")
    until = query.end or (datetime.fromtimestamp(total[-1].at, UTC).date() if total
                          else date.today())
    return {"metric": query.metric, "grain": query.grain,
            "total": [[p.at, p.value] for p in total],
            "sources": {name: [[p.at, p.value] for p in points]
                        for name, points in found.items()},
            "growth": growth(query.metric, total, until)}


@_api
async def entity_kpis(request: Request) -> Any:
    """A catalogue entity's KPIs (followers, monthly listeners, streams, views) summed
    across the platforms reporting each: the value over the range, growth over 7, 28 and
    90 days to its last day, and one daily series per platform."""
    query: KpiQuery = request.query
    end = query.end or datetime.now(UTC).date()  # points are UTC days
    start = query.start or end - timedelta(days=27)
    module = services(request.context)
    await module.catalog.get(request.account_id, query.entity)  # 404 if not the account's
    found = await kpis.entity_kpis(module.store, request.account_id, query.entity, start, end)
    return {"entity_id": query.entity, "first_day": start.isoformat(),
            "last_day": end.isoformat(), "kpis": found}


async def list_platforms(request: Request) -> Any:
    """The sources that can be connected: credentials each asks for, whether it can be
    back-filled, and the KPI each metric feeds."""
    return kpis.platforms()


# -- catalogue -------------------------------------------------------------------------------

def _entity_out(entity: Any) -> dict[str, Any]:
    return {"entity_id": entity.entity_id, "kind": entity.kind, "name": entity.name,
            "artist_name": entity.artist_name, "isrc": entity.isrc, "upc": entity.upc,
            "duration_ms": entity.duration_ms, "merged_into": entity.merged_into,
            "links": [{k: link[k] for k in ("source", "platform_kind", "platform_id",
                                            "method", "confidence", "manual", "name", "isrc")}
                      for link in entity.links]}


@_api
async def catalog(request: Request) -> Any:
    """The account's catalogue: entities with their platform ids and match confidence."""
    query: CatalogQuery = request.query
    found = await services(request.context).catalog.entities(
        request.account_id, query.kind, limit=query.limit, offset=query.offset)
    return [_entity_out(e) for e in found]


@_api
async def catalog_entity(request: Request) -> Any:
    """One catalogue entity and its links."""
    return _entity_out(await services(request.context).catalog.get(
        request.account_id, request.params["entity_id"]))


@_api
async def merge(request: Request) -> Any:
    """Merge entities into this one (audited; re-ingestion keeps it)."""
    body: MergeIn = request.body
    return _entity_out(await services(request.context).catalog.merge(
        request.account_id, request.params["entity_id"], body.others, _person(request)))


@_api
async def split(request: Request) -> Any:
    """Split platform ids off this entity into a new one (audited; re-ingestion keeps it)."""
    body: SplitIn = request.body
    entity = await services(request.context).catalog.split(
        request.account_id, request.params["entity_id"],
        [(link.source, link.platform_kind, link.platform_id) for link in body.links],
        _person(request), body.name)
    return Reply(_entity_out(entity), status=201)


@_api
async def audit(request: Request) -> Any:
    """Who merged and split what, newest first."""
    return await services(request.context).catalog.audit(request.account_id)


# -- SQL ---------------------------------------------------------------------------------------

@_api
async def run_sql(request: Request) -> Any:
    """Run one read-only SELECT (DuckDB SQL) over the account's own ``points`` and
    ``links``; no file system, no other account's rows."""
    body: SqlIn = request.body
    engine = await olap.load(request.context.database(), request.account_id)
    try:
        result = await asyncio.to_thread(engine.sql, body.sql, body.max_rows)
    finally:
        engine.close()
    return {"columns": result.columns, "rows": result.rows, "truncated": result.truncated}


A = "/api/analytics"
ROUTES = [
    Route(method="GET", path=f"{A}/sources", handler=list_sources, permission=READ,
          response=list[SourceOut]),
    Route(method="POST", path=f"{A}/sources", handler=connect_source, permission=SOURCES,
          body=SourceIn, response=SourceOut, status=201),
    Route(method="DELETE", path=f"{A}/sources/{{source_id}}", handler=disconnect_source,
          permission=SOURCES, response=SourceOut),
    Route(method="POST", path=f"{A}/sources/{{source_id}}/backfill", handler=start_backfill,
          permission=SOURCES, body=BackfillIn, response=RunOut, status=202),
    Route(method="GET", path=f"{A}/sources/{{source_id}}/runs", handler=source_runs,
          permission=READ, response=list[RunOut]),
    Route(method="GET", path=f"{A}/runs/{{run_id}}", handler=get_run, permission=READ,
          response=RunOut),
    Route(method="GET", path=f"{A}/freshness", handler=freshness, permission=READ,
          response=list[FreshnessOut]),
    Route(method="GET", path=f"{A}/series", handler=series, permission=READ,
          query=SeriesQuery, response=SeriesOut),
    Route(method="GET", path=f"{A}/kpis", handler=entity_kpis, permission=READ,
          query=KpiQuery, response=KpisOut),
    Route(method="GET", path=f"{A}/platforms", handler=list_platforms, permission=READ,
          response=list[PlatformOut]),
    Route(method="GET", path=f"{A}/catalog", handler=catalog, permission=READ,
          query=CatalogQuery, response=list[EntityOut]),
    Route(method="GET", path=f"{A}/catalog/{{entity_id}}", handler=catalog_entity,
          permission=READ, response=EntityOut),
    Route(method="POST", path=f"{A}/catalog/{{entity_id}}/merge", handler=merge,
          permission=CATALOG, body=MergeIn, response=EntityOut),
    Route(method="POST", path=f"{A}/catalog/{{entity_id}}/split", handler=split,
          permission=CATALOG, body=SplitIn, response=EntityOut, status=201),
    Route(method="GET", path=f"{A}/audit", handler=audit, permission=READ,
          response=list[AuditOut]),
    Route(method="POST", path=f"{A}/sql", handler=run_sql, permission=QUERY, body=SqlIn,
          response=SqlOut),
]

