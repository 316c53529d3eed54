"""A fake Anghami for Artists (modelled): client-credentials tokens at ``/oauth/token``,
daily plays and likes per song paged by ``page`` / ``per_page`` with ``meta.last_page``,
429 with ``Retry-After``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, day_range, without

METRICS = ("plays", "likes")


class FakeAnghami(FakeSource):
    source, auth, pagination = "anghami", "oauth_client_credentials", "page"
    token_path = "/oauth/token"
    limit_param, first_position, page_size = "per_page", 1, 100
    rename, count_field = ("plays", "play_count"), "likes"
    kinds = without("quota")
    artist_id = "1198231"

    def song_id(self, index: int) -> str:
        return str(96_000_000 + self.seed * 100 + index)

    def keys(self) -> list[Key]:
        return [("track", self.song_id(t.index), m, ()) for t in self.tracks for m in METRICS]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/artists/{id}/songs/daily", self._daily)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, message = {"rate_limited": (429, "Too Many Attempts."),
                           "unauthorized": (401, "Unauthenticated."),
                           "server": (502, "Bad Gateway")}[kind]
        headers = {"Retry-After": str(int(retry_after))} if status == 429 else {}
        return web.json_response({"message": message}, status=status, headers=headers)

    async def _daily(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != self.artist_id:
            return web.json_response({"message": "Not found."}, status=404)
        start, end = day_range(request, "from", "to")
        rows = [{"day": day.isoformat(), "song": {
            "id": self.song_id(t.index), "title": t.name, "isrc": t.isrc,
            "duration": t.duration_ms // 1000},
            **{m: self.value(("track", self.song_id(t.index), m, ()), day) for m in METRICS}}
            for day in self.days(start, end) for t in self.tracks]

        def render(page: Paging) -> dict[str, Any]:
            return {"data": page.rows, "meta": {"current_page": page.page,
                                                "last_page": page.pages,
                                                "per_page": page.limit, "total": page.total}}
        return self.respond(request, rows, render)
