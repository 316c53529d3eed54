"""A fake Genius API: ``/artists/{id}/songs`` paged by ``page`` / ``per_page`` with
``next_page`` (null on the last), songs with ``stats.pageviews``, a Bearer client access
token, errors as ``{"meta": {"status", "message"}}``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, without


class FakeGenius(FakeSource):
    source, auth, pagination, history = "genius", "api_key", "page", False
    limit_param, first_position, page_size = "per_page", 1, 50
    rename, count_field = ("stats", "statistics"), "pageviews"
    kinds = without("quota", "expired")
    artist_id = "1421"

    def song_id(self, index: int) -> str:
        return str(3_039_000 + self.seed * 100 + index)

    def keys(self) -> list[Key]:
        return [("track", self.song_id(t.index), "pageviews", ()) for t in self.tracks]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/artists/{id}/songs", self._songs)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, message = {"rate_limited": (429, "Too many requests"),
                           "unauthorized": (401, "This call requires an access_token. Please "
                                                 "see: https://genius.com/developers"),
                           "server": (503, "Service unavailable")}[kind]
        return web.json_response({"meta": {"status": status, "message": message}},
                                 status=status)

    async def _songs(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != self.artist_id:
            return web.json_response({"meta": {"status": 404, "message": "Not found"}},
                                     status=404)
        rows = [{"id": int(self.song_id(t.index)), "title": t.name,
                 "full_title": f"{t.name} by Ada Beats", "lyrics_state": "complete",
                 "primary_artist": {"id": int(self.artist_id), "name": "Ada Beats"},
                 "stats": {"unreviewed_annotations": 0, "hot": False, "pageviews":
                           self.value(("track", self.song_id(t.index), "pageviews", ()),
                                      self.today)}} for t in self.tracks]

        def render(page: Paging) -> dict[str, Any]:
            following = page.page + 1 if page.next_url else None
            return {"meta": {"status": 200}, "response": {"songs": page.rows,
                                                          "next_page": following}}
        return self.respond(request, rows, render)
