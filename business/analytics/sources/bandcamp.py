"""Bandcamp: daily units sold per track or album of a band or label.

Documented: Bandcamp's Sales Report API for labels and artists (``POST /api/sales/4/
sales_report`` with a JSON body: ``band_id``, ``start_time``, ``end_time``), answering
``{"report": [...]}``, one row per item sold with ``date`` (``"17 Jan 2024 14:21:07
GMT"``), ``item_type``, ``item_name``, ``item_url``, ``artist``, ``quantity`` and, where
set, ``isrc`` / ``upc``. The rows are sales, not days: the connector sums ``quantity``
per item and day (a ``sales`` point per ``item_url``). One answer holds the whole asked
range (no pagination); the connector asks 30 days at a time so a failure costs at most a
month. Sign-in: OAuth 2 client credentials at ``/oauth_token`` (the client's id and secret
in the form, as Bandcamp documents). Errors come back as HTTP 200 with ``{"error": true,
"error_message"}``; which message means which failure is *modelled* (an expired or invalid
token, too many requests) and needs checking against live answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from pydantic import BaseModel, NonNegativeInt

from business.analytics.errors import RateLimited, SchemaChanged, SourceError, TokenRevoked
from business.analytics.sources.base import Call, Connector, point, utc_day
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, Schedule, SourceSpec

DATE_FORMAT = "%d %b %Y %H:%M:%S %Z"


class Sale(BaseModel):
    date: str
    item_type: str
    item_name: str
    item_url: str
    artist: str
    quantity: NonNegativeInt
    isrc: str | None = None
    upc: str | None = None


class Page(BaseModel):
    report: list[Sale] | None = None
    error: bool = False
    error_message: str | None = None


class BandcampConnector(Connector):
    spec = SourceSpec(
        name="bandcamp", title="Bandcamp sales", auth="oauth_client_credentials",
        pagination="none", rate_limit=RateLimit(10, 60), api_host="https://bandcamp.com",
        token_url="https://bandcamp.com/oauth_token",
        docs="https://bandcamp.com/developer/sales", metrics=("sales",),
        entity_kinds=("artist", "track", "release"), schedule=Schedule(window_days=30))
    Page = Page

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return Call("/api/sales/4/sales_report", method="POST", json={
            "band_id": int(entity.id), "start_time": f"{start.isoformat()} 00:00:00",
            "end_time": f"{end.isoformat()} 23:59:59"})

    async def renew(self) -> tuple[str, float]:
        creds = self.credentials
        body = await self.token_request({"grant_type": "client_credentials",
                                         "client_id": creds.client_id,
                                         "client_secret": creds.client_secret}, None)
        return str(body["access_token"]), float(body.get("expires_in") or 3600)

    def check(self, page: Page) -> None:
        if not page.error:
            if page.report is None:
                raise SchemaChanged("report", "the answer has neither report nor error",
                                    source=self.name)
            return
        message = page.error_message or "unknown error"
        lowered = message.lower()
        if "token" in lowered:
            raise TokenRevoked(message, source=self.name)
        if "too many" in lowered or "rate limit" in lowered:
            raise RateLimited(message, retry_after=None, source=self.name)
        raise SourceError(message, source=self.name)

    def rows(self, page: Page) -> Sequence[Sale]:
        return page.report or []

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        sold: dict[tuple[str, str, date], int] = {}
        for sale in page.report or []:
            when = datetime.strptime(sale.date, DATE_FORMAT).replace(tzinfo=UTC)
            kind = "track" if sale.item_type == "track" else "release"
            key = (kind, sale.item_url, when.date())
            sold[key] = sold.get(key, 0) + sale.quantity
            out.add_identity(Identity(self.name, kind, sale.item_url, sale.item_name,
                                      isrc=sale.isrc, upc=sale.upc, artist_name=sale.artist))
        for (kind, url, day), units in sold.items():
            out.points.append(point(self.spec, kind, url, "sales", utc_day(day), units))
