"""A fake public Deezer API: ``/artist/{id}/top`` paged by ``index`` / ``limit`` with
``total`` and ``next``; no sign-in; errors as HTTP 200 ``{"error": {...}}`` (code 4 the
quota, 700 service busy, 800 no data)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, without
from business.analytics.fakes.playlists import Placements, playlist_truth

_CODES = {"rate_limited": (4, "Exception", "Quota limit exceeded"),
          "server": (700, "Exception", "Service busy")}


class FakeDeezer(FakeSource):
    source, auth, pagination, history = "deezer", "none", "offset", False
    offset_param, page_size = "index", 25
    rename, count_field = ("rank", "popularity"), "rank"
    kinds = without("quota", "revoked", "expired")
    artist_id = "27"

    @property
    def placements(self) -> Placements:
        return Placements(self.seed, self.source, "9")

    def track_ids(self) -> list[str]:
        return [self.track_id(t.index) for t in self.tracks]

    def truth(self, start=None, end=None):  # noqa: ANN001, ANN201 - as FakeSource.truth
        return {**super().truth(start, end),
                **playlist_truth(self.placements, self.track_ids(), [self.today])}

    def track_id(self, index: int) -> str:
        return str(3_135_556 + self.seed * 100 + index)

    def keys(self) -> list[Key]:
        return [("track", self.track_id(t.index), "rank", ()) for t in self.tracks]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/artist/{id}/top", self._top)
        app.router.add_get("/artist/{id}/playlists", self._playlists)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        code, kind_name, message = _CODES[kind]
        return web.json_response({"error": {"type": kind_name, "message": message,
                                            "code": code}})

    async def _top(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != self.artist_id:
            return web.json_response({"error": {"type": "DataException",
                                                "message": "no data", "code": 800}})
        rows = [{"id": int(self.track_id(t.index)), "title": t.name,
                 "duration": t.duration_ms // 1000, "readable": True,
                 "rank": self.value(("track", self.track_id(t.index), "rank", ()), self.today),
                 "artist": {"id": int(self.artist_id), "name": "Ada Beats"}, "type": "track"}
                for t in self.tracks]

        def render(page: Paging) -> dict[str, Any]:
            body: dict[str, Any] = {"data": page.rows, "total": page.total}
            if page.next_url:
                body["next"] = page.next_url
            return body
        return self.respond(request, rows, render)

    async def _playlists(self, request: web.Request) -> web.Response:
        """Today's playlists holding the artist's tracks: Deezer playlist objects (``id``,
        ``title``, ``fans``, ``creator``) with the artist's tracks and their positions
        (modelled: the public API lists a playlist's whole tracklist instead). Deezer's
        editors create editorial playlists under profiles named "... Editor"."""
        if request.match_info["id"] != self.artist_id:
            return web.json_response({"error": {"type": "DataException",
                                                "message": "no data", "code": 800}})
        by_playlist: dict[str, dict[str, Any]] = {}
        for playlist, track, position in self.placements.on(self.today, self.track_ids()):
            found = by_playlist.setdefault(playlist.id, {
                "id": int(playlist.id), "title": playlist.name, "type": "playlist",
                "fans": self.placements.followers(playlist.id, self.today),
                "creator": {"id": 1000 + int(playlist.id[-2:]), "name":
                            "Deezer Pop Editor" if playlist.editorial else "A listener"},
                "tracks": {"data": []}})
            found["tracks"]["data"].append({"id": int(track), "position": position})
        rows = list(by_playlist.values())

        def render(page: Paging) -> dict[str, Any]:
            body: dict[str, Any] = {"data": page.rows, "total": page.total}
            if page.next_url:
                body["next"] = page.next_url
            return body
        return self.respond(request, rows, render)
