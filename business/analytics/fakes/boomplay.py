"""A fake Boomplay for Artists report (modelled): daily streams and downloads per track
and country, paged by ``offset`` / ``limit`` with ``data.total``, the ``appid`` key in
the query, errors as HTTP 200 with a non-zero ``code``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, day_range, without

METRICS = ("streams", "downloads")
COUNTRIES = ("GH", "NG")
_CODES = {"rate_limited": (10004, "request too frequent"),
          "quota": (10005, "daily request limit reached"),
          "unauthorized": (10001, "invalid appid"),
          "server": (50001, "system busy")}


class FakeBoomplay(FakeSource):
    source, auth, pagination = "boomplay", "api_key", "offset"
    page_size = 100
    rename, count_field = ("downloads", "downloadCount"), "streams"
    kinds = without("expired")
    artist_id = "28471123"

    def track_id(self, index: int) -> str:
        return str(1_024_000_000 + self.seed * 100 + index)

    def keys(self) -> list[Key]:
        return [("track", self.track_id(t.index), m, (("country", c),))
                for t in self.tracks for m in METRICS for c in COUNTRIES]

    def credential(self, request: web.Request) -> str:
        return request.query.get("appid", "")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/open/v1/artist/track/daily", self._daily)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        code, message = _CODES[kind]
        return web.json_response({"code": code, "msg": message})

    async def _daily(self, request: web.Request) -> web.Response:
        if request.query.get("artistId") != self.artist_id:
            return web.json_response({"code": 20001, "msg": "artist not found"})
        start, end = day_range(request, "startDate", "endDate")
        rows = [{"date": day.isoformat(), "country": c, "trackId": self.track_id(t.index),
                 "trackName": t.name, "isrc": t.isrc,
                 **{m: self.value(("track", self.track_id(t.index), m, (("country", c),)),
                                  day) for m in METRICS}}
                for day in self.days(start, end) for t in self.tracks for c in COUNTRIES]

        def render(page: Paging) -> dict[str, Any]:
            return {"code": 0, "msg": "success", "data": {"list": page.rows,
                                                          "total": page.total}}
        return self.respond(request, rows, render)
