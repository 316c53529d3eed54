"""Routes of saved dashboards (``/api/analytics/dashboards...``): list, save, change,
share, delete, a widget's figures, and its export as CSV or Parquet.

Every query is scoped by ``request.account_id`` and the person: another account's
dashboard, and another person's unshared one, answer 404 like a missing one.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from business.analytics.dashboard_schemas import (
    DashboardIn,
    DashboardOut,
    ExportQuery,
    ShareIn,
    WidgetDataOut,
)
from business.analytics.dashboards import DashboardNotFound, NothingToShow, NotTheOwner
from business.analytics.exports import csv_bytes, parquet_bytes
from business.analytics.permissions import DASHBOARDS, READ, SHARE
from business.analytics.services import services
from dawserver.plugin_api import (
    Forbidden,
    Media,
    NotFound,
    Reply,
    Request,
    Route,
    Unprocessable,
    map_errors,
)

_api = map_errors((DashboardNotFound, NotFound), (NotTheOwner, Forbidden),
                  (NothingToShow, Unprocessable))
CSV, PARQUET = "text/csv", "application/vnd.apache.parquet"


def _person(request: Request) -> str:
    return request.user or request.account_id


def _ids(request: Request) -> tuple[str, str, str]:
    return request.account_id, _person(request), request.params["dashboard_id"]


@_api
async def list_dashboards(request: Request) -> Any:
    """The person's own dashboards and the team's shared ones."""
    return await services(request.context).dashboards.list(request.account_id,
                                                           _person(request))


@_api
async def create_dashboard(request: Request) -> Any:
    """Save a new dashboard of one's own (unshared)."""
    found = await services(request.context).dashboards.create(
        request.account_id, _person(request), request.body)
    return Reply(found, status=201)


@_api
async def get_dashboard(request: Request) -> Any:
    """One dashboard (one's own, or shared)."""
    return await services(request.context).dashboards.get(*_ids(request))


@_api
async def update_dashboard(request: Request) -> Any:
    """Replace one's own dashboard's name, filters and widgets."""
    return await services(request.context).dashboards.update(*_ids(request), request.body)


@_api
async def share_dashboard(request: Request) -> Any:
    """Share one's own dashboard with the team, or stop sharing it."""
    body: ShareIn = request.body
    return await services(request.context).dashboards.share(*_ids(request), body.shared)


@_api
async def delete_dashboard(request: Request) -> Any:
    """Delete one's own dashboard; the deleted one."""
    return await services(request.context).dashboards.delete(*_ids(request))


@_api
async def widget_data(request: Request) -> Any:
    """A widget's figures: rows of day, entity, source and value over the filters' range."""
    return await services(request.context).dashboards.widget_data(
        *_ids(request), request.params["widget_id"])


@_api
async def export_widget(request: Request) -> Any:
    """A widget's figures as a CSV (formula-safe) or Parquet file."""
    query: ExportQuery = request.query
    data = await services(request.context).dashboards.widget_data(
        *_ids(request), request.params["widget_id"])
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", f"{data['widget_id']}-{data['first_day']}-"
                  f"{data['last_day']}")
    if query.format == "csv":
        body, media = csv_bytes(data["columns"], data["rows"]), CSV
    else:
        body = await asyncio.to_thread(parquet_bytes, data["columns"], data["rows"])
        media = PARQUET
    return Reply(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{name}.{query.format}"'})


A = "/api/analytics/dashboards"
D = f"{A}/{{dashboard_id}}"
DASHBOARD_ROUTES = [
    Route(method="GET", path=A, handler=list_dashboards, permission=READ,
          response=list[DashboardOut]),
    Route(method="POST", path=A, handler=create_dashboard, permission=DASHBOARDS,
          body=DashboardIn, response=DashboardOut, status=201),
    Route(method="GET", path=D, handler=get_dashboard, permission=READ,
          response=DashboardOut),
    Route(method="PUT", path=D, handler=update_dashboard, permission=DASHBOARDS,
          body=DashboardIn, response=DashboardOut),
    Route(method="POST", path=f"{D}/share", handler=share_dashboard, permission=SHARE,
          body=ShareIn, response=DashboardOut),
    Route(method="DELETE", path=D, handler=delete_dashboard, permission=DASHBOARDS,
          response=DashboardOut),
    Route(method="GET", path=f"{D}/widgets/{{widget_id}}/data", handler=widget_data,
          permission=READ, response=WidgetDataOut),
    Route(method="GET", path=f"{D}/widgets/{{widget_id}}/export", handler=export_widget,
          permission=READ, query=ExportQuery, response=Media(CSV, PARQUET)),
]
