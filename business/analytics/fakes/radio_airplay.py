"""A fake airplay monitoring service (modelled): daily spins per recording and station,
paged by ``offset`` / ``limit`` with ``total``, an ``ApiKey`` header, 429 with
``Retry-After`` and a 403 ``quota_exceeded`` daily quota."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, day_range, without

STATIONS = (("st-101", "KXRP", "Los Angeles", "US"), ("st-202", "WNYB", "New York", "US"),
            ("st-303", "Radio Eins", "Berlin", "DE"))


class FakeRadioAirplay(FakeSource):
    source, auth, pagination = "radio_airplay", "api_key", "offset"
    page_size = 200
    rename, count_field = ("spins", "plays"), "spins"
    kinds = without("expired")
    artist_id = "ada-beats-0042"

    def value(self, key: Key, day: date) -> int:
        """The shared series scaled down: a station plays a track a few times a day,
        not thousands."""
        return super().value(key, day) // 500

    def keys(self) -> list[Key]:
        return [("track", t.isrc, "spins", (("station", s[1]),))
                for t in self.tracks for s in STATIONS]

    def credential(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        return header[7:] if header.startswith("ApiKey ") else ""

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/reports/spins-by-station", self._report)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, error = {"rate_limited": (429, "rate_limited"),
                         "quota": (403, "quota_exceeded"),
                         "unauthorized": (401, "invalid_api_key"),
                         "server": (503, "unavailable")}[kind]
        headers = {"Retry-After": str(int(retry_after))} if status == 429 else {}
        return web.json_response({"error": error, "message": error.replace("_", " ")},
                                 status=status, headers=headers)

    async def _report(self, request: web.Request) -> web.Response:
        if request.query.get("artist_id") != self.artist_id:
            return web.json_response({"error": "not_found", "message": "unknown artist"},
                                     status=404)
        start, end = day_range(request, "from", "to")
        rows = [{"date": day.isoformat(),
                 "station": {"id": sid, "call_sign": call, "market": market,
                             "country": country},
                 "recording": {"isrc": t.isrc, "title": t.name, "artist": "Ada Beats"},
                 "spins": self.value(("track", t.isrc, "spins", (("station", call),)), day)}
                for day in self.days(start, end) for t in self.tracks
                for sid, call, market, country in STATIONS]

        def render(page: Paging) -> dict[str, Any]:
            return {"rows": page.rows, "offset": page.offset, "limit": page.limit,
                    "total": page.total}
        return self.respond(request, rows, render)
