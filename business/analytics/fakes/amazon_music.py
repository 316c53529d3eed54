"""A fake Amazon Music for Artists (modelled): Login with Amazon refresh tokens at
``/auth/o2/token``, daily plays and listeners per track ASIN behind ``nextToken``, API
Gateway's bare 429."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, day_range, without

METRICS = ("plays", "listeners")


class FakeAmazonMusic(FakeSource):
    source, auth, pagination = "amazon_music", "refresh_token", "cursor"
    token_path = "/auth/o2/token"
    cursor_param, limit_param, page_size = "nextToken", "maxResults", 100
    rename, count_field = ("plays", "streams"), "plays"
    kinds = without("quota")
    artist_id = "B07XJ8C8F5"

    def asin(self, index: int) -> str:
        return f"B0{self.seed % 100:02d}TRK{index:04d}"

    def keys(self) -> list[Key]:
        return [("track", self.asin(t.index), m, ()) for t in self.tracks for m in METRICS]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/artists/{id}/insights/tracks/daily", self._daily)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, message = {"rate_limited": (429, "Too Many Requests"),
                           "unauthorized": (401, "Unauthorized"),
                           "server": (503, "Service Unavailable")}[kind]
        return web.json_response({"message": message}, status=status)

    async def _daily(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != self.artist_id:
            return web.json_response({"message": "Artist not found"}, status=404)
        start, end = day_range(request, "startDate", "endDate")
        rows = [{"date": day.isoformat(), "asin": self.asin(t.index), "title": t.name,
                 "isrc": t.isrc, "durationSeconds": t.duration_ms // 1000,
                 **{m: self.value(("track", self.asin(t.index), m, ()), day)
                    for m in METRICS}}
                for day in self.days(start, end) for t in self.tracks]

        def render(page: Paging) -> dict[str, Any]:
            body: dict[str, Any] = {"items": page.rows}
            if page.next_cursor:
                body["nextToken"] = page.next_cursor
            return body
        return self.respond(request, rows, render)
