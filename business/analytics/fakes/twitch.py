"""A fake Twitch Helix API: app tokens at ``/oauth2/token``, ``/helix/videos`` paged by
the ``after`` cursor, ``/helix/channels/followers`` answering the ``total`` (empty
``data`` for an app token), a ``Client-Id`` check, Helix errors (``error``, ``status``,
``message``) and 429 with ``Ratelimit-Reset``."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, without


class FakeTwitch(FakeSource):
    source, auth, pagination, history = "twitch", "oauth_client_credentials", "cursor", False
    token_path = "/oauth2/token"
    cursor_param, limit_param, page_size = "after", "first", 100
    rename, count_field = ("view_count", "views"), "view_count"
    kinds = without("quota")
    artist_id = "141981764"

    def video_id(self, index: int) -> str:
        return str(2_100_000_000 + self.seed * 100 + index)

    def keys(self) -> list[Key]:
        return [("video", self.video_id(t.index), "view_count", ()) for t in self.tracks] + \
            [("artist", self.artist_id, "followers", ())]

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("Client-Id") == self.client_id and \
            super().authorized(request)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/helix/videos", self._videos)
        app.router.add_get("/helix/channels/followers", self._followers)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, error, message = {"rate_limited": (429, "Too Many Requests", "rate limited"),
                                  "unauthorized": (401, "Unauthorized", "Invalid OAuth token"),
                                  "server": (503, "Service Unavailable", "")}[kind]
        headers = {}
        if status == 429:
            headers = {"Ratelimit-Limit": "800", "Ratelimit-Remaining": "0",
                       "Ratelimit-Reset": str(round(time.time() + retry_after))}
        return web.json_response({"error": error, "status": status, "message": message},
                                 status=status, headers=headers)

    async def _videos(self, request: web.Request) -> web.Response:
        if request.query.get("user_id") != self.artist_id:
            return web.json_response({"data": [], "pagination": {}})
        rows = [{"id": self.video_id(t.index), "user_id": self.artist_id,
                 "user_login": "adabeats", "title": f"Making of {t.name}",
                 "created_at": f"{self.today}T18:00:00Z", "type": "archive",
                 "view_count": self.value(("video", self.video_id(t.index), "view_count", ()),
                                          self.today), "duration": "1h2m3s"}
                for t in self.tracks]

        def render(page: Paging) -> dict[str, Any]:
            return {"data": page.rows,
                    "pagination": {"cursor": page.next_cursor} if page.next_cursor else {}}
        return self.respond(request, rows, render)

    async def _followers(self, request: web.Request) -> web.Response:
        total = self.value(("artist", self.artist_id, "followers", ()), self.today)

        def render(page: Paging) -> dict[str, Any]:
            return {"total": total, "data": [], "pagination": {}}
        return self.respond(request, [], render)
