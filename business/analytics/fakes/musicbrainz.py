"""A fake MusicBrainz web service: ``/ws/2/recording?artist=<mbid>`` browse requests
paged by ``offset`` / ``limit``, ISRCs and ratings; no sign-in, a ``User-Agent`` required
(403 without), and 503 when a client goes over the rate (no ``Retry-After``)."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, without

_RATE = ("Your requests are exceeding the allowable rate limit. Please see "
         "http://wiki.musicbrainz.org/XMLWebService for more information.")


class FakeMusicBrainz(FakeSource):
    source, auth, pagination, history = "musicbrainz", "none", "offset", False
    page_size = 100
    rename, count_field = ("title", "name"), "votes-count"
    kinds = without("quota", "revoked", "expired")
    artist_id = "f27ec8db-af05-4f36-916e-3d57f91ecf5e"

    def recording_id(self, index: int) -> str:
        return str(uuid.UUID(int=(self.seed << 96) + index + 7))

    def keys(self) -> list[Key]:
        return [("track", self.recording_id(t.index), "rating_votes", ()) for t in self.tracks]

    def authorized(self, request: web.Request) -> bool:
        return "/" in request.headers.get("User-Agent", "")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/ws/2/recording", self._browse)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        if kind == "unauthorized":
            return web.json_response({"error": "Please provide a meaningful User-Agent"},
                                     status=403)
        message = _RATE if kind == "rate_limited" else "Service temporarily unavailable"
        return web.json_response({"error": message}, status=503)

    async def _browse(self, request: web.Request) -> web.Response:
        if request.query.get("artist") != self.artist_id:
            return web.json_response({"error": "Not Found"}, status=404)
        rows = [{"id": self.recording_id(t.index), "title": t.name, "length": t.duration_ms,
                 "video": False, "disambiguation": "", "isrcs": [t.isrc],
                 "rating": {"value": 4.0, "votes-count": self.value(
                     ("track", self.recording_id(t.index), "rating_votes", ()), self.today)}}
                for t in self.tracks]

        def render(page: Paging) -> dict[str, Any]:
            return {"recording-count": page.total, "recording-offset": page.offset,
                    "recordings": page.rows}
        return self.respond(request, rows, render)
