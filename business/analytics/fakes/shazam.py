"""A fake Shazam export (modelled): daily Shazams per track and country behind an opaque
cursor, Apple's error shapes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.analytics.fakes.apple_music import apple_error
from business.analytics.fakes.base import FakeSource, Key, Paging, day_range, without

COUNTRIES = ("BR", "DE", "US")


class FakeShazam(FakeSource):
    source, auth, pagination = "shazam", "api_key", "cursor"
    rename, count_field = ("count", "shazams"), "count"
    kinds = without("quota", "expired")
    page_size = 100
    artist_id = "1445786390"

    def track_id(self, index: int) -> str:
        return str(1_600_000_000 + self.seed * 100 + index)

    def keys(self) -> list[Key]:
        return [("track", self.track_id(t.index), "shazams", (("country", c),))
                for t in self.tracks for c in COUNTRIES]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/shazam/artists/{id}/daily", self._daily)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        return apple_error(kind, retry_after)

    async def _daily(self, request: web.Request) -> web.Response:
        start, end = day_range(request, "start", "end")
        rows = []
        for day in self.days(start, end):
            for t in self.tracks:
                tid = self.track_id(t.index)
                for country in COUNTRIES:
                    rows.append({"date": day.isoformat(), "country": country, "track": {
                        "id": tid, "title": t.name, "isrc": t.isrc},
                        "count": self.value(("track", tid, "shazams", (("country", country),)),
                                            day)})

        def render(page: Paging) -> dict[str, Any]:
            return {"results": page.rows, "cursor": page.next_cursor}
        return self.respond(request, rows, render)
