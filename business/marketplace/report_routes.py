"""The seller's sales reports and customer CSV (``/api/marketplace/reports/...``):
:mod:`.reports` over the account's own orders; another account's beat answers 404."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from business.marketplace.errors import NotFoundHere
from business.marketplace.permissions import READ, SELL
from business.marketplace.reports import customers_csv, sales
from business.marketplace.services import services
from dawserver.plugin_api import Media, Model, NotFound, Query, Reply, Request, Route, map_errors

_api = map_errors((NotFoundHere, NotFound))
M = "/api/marketplace/reports"


class ReportQuery(Query):
    """The report's period in Unix seconds (default: the last 30 days)."""

    since: float | None = Field(None, ge=0)
    until: float | None = Field(None, ge=0)


class Figure(Model):
    """Revenue (minor units) and number of sales of one key in one currency."""

    key: str
    currency: str
    revenue: int
    sales: int
    title: str | None = None


class SalesReportOut(Model):
    """The seller's paid sales in the period, by beat, tier, country and UTC day."""

    since: float
    until: float
    beat_id: str | None
    total: list[Figure]
    by_beat: list[Figure]
    by_tier: list[Figure]
    by_country: list[Figure]
    by_day: list[Figure]


def _period(request: Request) -> dict[str, Any]:
    query: ReportQuery = request.query
    return {"since": query.since, "until": query.until}


@_api
async def sales_report(request: Request) -> Any:
    """The account's sales report."""
    return await sales(services(request.context).store.db, request.account_id,
                       **_period(request))


@_api
async def beat_report(request: Request) -> Any:
    """One of the account's beats' sales report (another account's beat: 404)."""
    return await sales(services(request.context).store.db, request.account_id,
                       beat_id=request.params["beat_id"], **_period(request))


@_api
async def customers_export(request: Request) -> Any:
    """The account's customers as CSV (names and emails only of those who agreed)."""
    text = await customers_csv(services(request.context).store.db, request.account_id)
    return Reply(text.encode(), media_type="text/csv", headers={
        "Content-Disposition": 'attachment; filename="customers.csv"',
        "Cache-Control": "no-store"})


ROUTES = [
    Route(method="GET", path=f"{M}/sales", handler=sales_report, permission=READ,
          query=ReportQuery, response=SalesReportOut),
    Route(method="GET", path=f"{M}/sales/beats/{{beat_id}}", handler=beat_report,
          permission=READ, query=ReportQuery, response=SalesReportOut),
    Route(method="GET", path=f"{M}/customers.csv", handler=customers_export,
          permission=SELL, response=Media("text/csv")),
]
