"""A fake Audiomack API (modelled): ``/v1/artist/{slug}/uploads`` paged by ``page`` /
``limit`` with ``paging.total_pages``, the consumer key as ``oauth_consumer_key``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, without

METRICS = ("plays", "favorites", "reposts")


class FakeAudiomack(FakeSource):
    source, auth, pagination, history = "audiomack", "api_key", "page", False
    first_position, page_size = 1, 20
    rename, count_field = ("plays", "play_count"), "plays"
    kinds = without("quota", "expired")
    artist_id = "ada-beats"

    def upload_id(self, index: int) -> str:
        return str(11_000_000 + self.seed * 100 + index)

    def keys(self) -> list[Key]:
        return [("track", self.upload_id(t.index), m, ()) for t in self.tracks for m in METRICS]

    def credential(self, request: web.Request) -> str:
        return request.query.get("oauth_consumer_key", "")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/artist/{slug}/uploads", self._uploads)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, message = {"rate_limited": (429, "Rate limit exceeded"),
                           "unauthorized": (401, "Invalid consumer key"),
                           "server": (500, "Internal error")}[kind]
        headers = {"Retry-After": str(int(retry_after))} if status == 429 else {}
        return web.json_response({"errorcode": status, "message": message}, status=status,
                                 headers=headers)

    async def _uploads(self, request: web.Request) -> web.Response:
        rows = [{"id": int(self.upload_id(t.index)), "title": t.name, "type": "song",
                 "isrc": t.isrc, "duration": t.duration_ms // 1000,
                 "stats": {m: self.value(("track", self.upload_id(t.index), m, ()), self.today)
                           for m in METRICS}} for t in self.tracks]

        def render(page: Paging) -> dict[str, Any]:
            return {"results": page.rows, "paging": {"page": page.page,
                                                     "total_pages": page.pages}}
        return self.respond(request, rows, render)
