"""A fake Pandora AMP track performance report (modelled): JSON pages (``rows``,
``page``, ``totalPages``), a partner key in ``X-Api-Key``, ``{"errorCode", "message"}``
errors and 429 with ``Retry-After``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, day_range, without

METRICS = ("streams", "thumbs_up", "station_adds")


class FakePandora(FakeSource):
    source, auth, pagination = "pandora", "api_key", "page"
    page_param, limit_param, first_position, page_size = "page", "pageSize", 1, 200
    rename, count_field = ("thumbs_up", "thumbsUp"), "streams"
    kinds = without("quota", "expired")
    artist_id = "AR:2384723"

    def track_id(self, index: int) -> str:
        return f"TR:{48_000_000 + self.seed * 100 + index}"

    def keys(self) -> list[Key]:
        return [("track", self.track_id(t.index), m, ()) for t in self.tracks for m in METRICS]

    def credential(self, request: web.Request) -> str:
        return request.headers.get("X-Api-Key", "")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/artists/{id}/reports/track-performance", self._report)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, code, message = {"rate_limited": (429, 1039, "Too many requests"),
                                 "unauthorized": (401, 1001, "Invalid API key"),
                                 "server": (500, 2000, "Report service unavailable")}[kind]
        headers = {"Retry-After": str(int(retry_after))} if status == 429 else {}
        return web.json_response({"errorCode": code, "message": message}, status=status,
                                 headers=headers)

    async def _report(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != self.artist_id:
            return web.json_response({"errorCode": 1006, "message": "Unknown artist"},
                                     status=404)
        start, end = day_range(request, "from", "to")
        rows = [{"date": day.isoformat(), "track_id": self.track_id(t.index),
                 "track_title": t.name, "isrc": t.isrc,
                 **{m: self.value(("track", self.track_id(t.index), m, ()), day)
                    for m in METRICS}}
                for day in self.days(start, end) for t in self.tracks]

        def render(page: Paging) -> dict[str, Any]:
            return {"report": "track_performance", "rows": page.rows, "page": page.page,
                    "totalPages": page.pages}
        return self.respond(request, rows, render)
