"""A fake Last.fm API: ``/2.0/?method=artist.gettoptracks`` with an ``api_key`` query
parameter, counts as strings, ``@attr`` paging and ``{"error": code, "message"}`` errors."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, without

METRICS = ("playcount", "listeners")
_ERRORS = {"rate_limited": (429, 29, "Rate Limit Exceeded - Your IP has made too many "
                                     "requests in a short period"),
           "unauthorized": (403, 10, "Invalid API key - You must be granted a valid key by "
                                     "last.fm"),
           "server": (503, 16, "There was a temporary error processing your request. "
                               "Please try again")}


class FakeLastFm(FakeSource):
    source, auth, pagination, history = "lastfm", "api_key", "page", False
    first_position = 1
    rename, count_field = ("playcount", "play_count"), "playcount"
    kinds = without("quota", "expired")
    artist_id = "0383dadf-2a4e-4d10-a46a-e9e041da8eb3"

    def mbid(self, index: int) -> str:
        return str(uuid.UUID(int=(self.seed << 64) + index + 1))

    def keys(self) -> list[Key]:
        return [("track", self.mbid(t.index), m, ()) for t in self.tracks for m in METRICS]

    def credential(self, request: web.Request) -> str:
        return request.query.get("api_key", "")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/2.0/", self._call)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, code, message = _ERRORS[kind]
        if kind == "unauthorized" and self.revoked:
            code, message = 26, "Suspended API key - Access for your account has been suspended"
        return web.json_response({"error": code, "message": message}, status=status)

    async def _call(self, request: web.Request) -> web.Response:
        if request.query.get("method") != "artist.gettoptracks" or \
                request.query.get("format") != "json":
            return web.json_response({"error": 3, "message": "Invalid Method"}, status=400)
        rows = [{"name": t.name, "mbid": self.mbid(t.index), "url": "",
                 **{m: str(self.value(("track", self.mbid(t.index), m, ()), self.today))
                    for m in METRICS},
                 "artist": {"name": "Ada Beats", "mbid": self.artist_id, "url": ""},
                 "@attr": {"rank": str(t.index + 1)}} for t in self.tracks]

        def render(page: Paging) -> dict[str, Any]:
            return {"toptracks": {"track": page.rows, "@attr": {
                "artist": "Ada Beats", "page": str(page.page), "perPage": str(page.limit),
                "totalPages": str(page.pages), "total": str(page.total)}}}
        return self.respond(request, rows, render)
