"""A fake JioSaavn for Artists (modelled): daily streams per song and state behind an
opaque ``next_cursor``, a partner key in ``x-api-key``, ``{"status": "failure"}``
errors and 429 with ``Retry-After``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, day_range, without

STATES = ("DL", "MH")


class FakeJioSaavn(FakeSource):
    source, auth, pagination = "jiosaavn", "api_key", "cursor"
    cursor_param, limit_param, page_size = "cursor", "n", 100
    rename, count_field = ("song_id", "songId"), "streams"
    kinds = without("quota", "expired")
    artist_id = "459320"

    def song_id(self, index: int) -> str:
        return f"{self.seed:02d}aB{index:04d}xQ"

    def keys(self) -> list[Key]:
        return [("track", self.song_id(t.index), "streams", (("state", s),))
                for t in self.tracks for s in STATES]

    def credential(self, request: web.Request) -> str:
        return request.headers.get("x-api-key", "")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v2/artists/{id}/streams", self._streams)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, code, msg = {"rate_limited": (429, "RATE_LIMITED", "slow down"),
                             "unauthorized": (401, "INVALID_KEY", "invalid api key"),
                             "server": (503, "UNAVAILABLE", "try again")}[kind]
        headers = {"Retry-After": str(int(retry_after))} if status == 429 else {}
        return web.json_response({"status": "failure", "error": {"code": code, "msg": msg}},
                                 status=status, headers=headers)

    async def _streams(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != self.artist_id:
            return web.json_response({"status": "failure", "error": {
                "code": "NOT_FOUND", "msg": "no such artist"}}, status=404)
        start, end = day_range(request, "start", "end")
        rows = [{"date": day.isoformat(), "state": s, "song_id": self.song_id(t.index),
                 "song": t.name, "isrc": t.isrc,
                 "streams": self.value(("track", self.song_id(t.index), "streams",
                                        (("state", s),)), day)}
                for day in self.days(start, end) for t in self.tracks for s in STATES]

        def render(page: Paging) -> dict[str, Any]:
            return {"status": "success", "results": page.rows,
                    "next_cursor": page.next_cursor}
        return self.respond(request, rows, render)
