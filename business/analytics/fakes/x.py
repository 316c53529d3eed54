"""A fake X API v2: app-only tokens at ``/oauth2/token`` (client credentials, Basic),
``/2/users/{id}/tweets`` with ``public_metrics`` paged by ``pagination_token``, problem
answers (``title``, ``detail``, ``type``), 429 with ``x-rate-limit-reset`` and the
monthly ``UsageCapExceeded`` cap."""

from __future__ import annotations

import time
from datetime import datetime
from datetime import time as day_time
from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, without

METRICS = ("impression_count", "like_count", "retweet_count", "reply_count", "quote_count")


class FakeX(FakeSource):
    source, auth, pagination, history = "x", "oauth_client_credentials", "cursor", False
    token_path = "/oauth2/token"
    cursor_param, limit_param, page_size = "pagination_token", "max_results", 100
    rename, count_field = ("public_metrics", "metrics"), "like_count"
    kinds = without()
    artist_id = "1337000000000000001"

    def post_id(self, index: int) -> str:
        return str(1_790_000_000_000_000_000 + self.seed * 1000 + index)

    def keys(self) -> list[Key]:
        return [("artist", self.artist_id, m, (("post", self.post_id(t.index)),))
                for t in self.tracks for m in METRICS]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/2/users/{id}/tweets", self._tweets)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        if kind == "quota":
            return web.json_response({
                "title": "UsageCapExceeded", "detail": "Usage cap exceeded: Monthly product cap",
                "type": "https://api.twitter.com/2/problems/usage-capped", "period": "Monthly",
                "scope": "Product"}, status=429)
        status, title = {"rate_limited": (429, "Too Many Requests"),
                         "unauthorized": (401, "Unauthorized"),
                         "server": (503, "Service Unavailable")}[kind]
        headers = {}
        if status == 429:
            headers = {"x-rate-limit-limit": "1500", "x-rate-limit-remaining": "0",
                       "x-rate-limit-reset": str(round(time.time() + retry_after))}
        return web.json_response({"title": title, "detail": title, "type": "about:blank",
                                  "status": status}, status=status, headers=headers)

    async def _tweets(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != self.artist_id:
            return web.json_response({"errors": [{"title": "Not Found Error",
                                                  "detail": "Could not find user"}]})
        posted = datetime.combine(self.today, day_time(9)).isoformat() + ".000Z"
        rows = [{"id": self.post_id(t.index), "text": f"New single: {t.name}",
                 "created_at": posted, "edit_history_tweet_ids": [self.post_id(t.index)],
                 "public_metrics": {
                     **{m: self.value(("artist", self.artist_id, m,
                                       (("post", self.post_id(t.index)),)), self.today)
                        for m in METRICS}, "bookmark_count": 0}} for t in self.tracks]

        def render(page: Paging) -> dict[str, Any]:
            meta: dict[str, Any] = {"result_count": len(page.rows)}
            if page.rows:
                meta.update(newest_id=page.rows[0]["id"], oldest_id=page.rows[-1]["id"])
            if page.next_cursor:
                meta["next_token"] = page.next_cursor
            body: dict[str, Any] = {"meta": meta}
            if page.rows:
                body["data"] = page.rows
            return body
        return self.respond(request, rows, render)
