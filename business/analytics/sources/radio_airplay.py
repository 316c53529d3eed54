"""Radio airplay: daily spins per track and station, from an airplay monitoring service.

Airplay reaches labels from monitoring services (fingerprinting stations' broadcasts),
each with its own subscriber report; none is a public standard. The shape here is
*modelled* on their common "spins by station" report, one row per day, station and
recording (``station``: id, call sign, market, country; ``recording``: ISRC, title,
artist; ``spins``), as JSON pages (``rows``, ``offset``, ``total``) with a subscriber key
in an ``Authorization: ApiKey ...`` header, 429 with ``Retry-After`` when throttled and
a daily report quota (403 ``quota_exceeded``). Recordings are keyed by ISRC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, NonNegativeInt

from business.analytics.errors import QuotaExhausted, SourceError
from business.analytics.sources.base import Call, Connector, parse_day, point
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import RateLimit, SourceSpec


class Station(BaseModel):
    id: str
    call_sign: str
    market: str
    country: str


class Recording(BaseModel):
    isrc: str
    title: str
    artist: str


class Row(BaseModel):
    date: str
    station: Station
    recording: Recording
    spins: NonNegativeInt


class Page(BaseModel):
    rows: list[Row]
    offset: NonNegativeInt
    total: NonNegativeInt


class RadioAirplayConnector(Connector):
    spec = SourceSpec(
        name="radio_airplay", title="Radio airplay (monitoring service)", auth="api_key",
        pagination="offset", rate_limit=RateLimit(5, 1, units=1_000), shape="modelled",
        api_host="https://api.airplay-monitor.example",
        docs="docs/analytics.md#sources (modelled monitoring report)", metrics=("spins",),
        entity_kinds=("artist", "track"))
    Page = Page
    api_key_in = ("header", "Authorization", "ApiKey {key}")
    page_size = 200

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged("/v1/reports/spins-by-station",
                          {"artist_id": entity.id, "from": start.isoformat(),
                           "to": end.isoformat(), "grain": "day"})

    def rows(self, page: Page) -> Sequence[Row]:
        return page.rows

    def total(self, page: Page) -> int:
        return page.total

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        for row in page.rows:
            recording, station = row.recording, row.station
            out.points.append(point(self.spec, "track", recording.isrc, "spins",
                                    parse_day(row.date), row.spins,
                                    (("station", station.call_sign),)))
            out.add_identity(Identity(self.name, "track", recording.isrc, recording.title,
                                      isrc=recording.isrc, artist_name=recording.artist))

    def classify(self, status: int, body: Any, headers: Mapping[str, str]
                 ) -> SourceError | None:
        if status == 403 and isinstance(body, dict) and body.get("error") == "quota_exceeded":
            return QuotaExhausted(str(body.get("message", "the daily report quota is spent")),
                                  resets_at=self.pacer.resets_at(self.clock()),
                                  source=self.name, status=status)
        return None
