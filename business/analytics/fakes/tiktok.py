"""A fake TikTok API for Business: the refresh-token call (tokens nested under ``data``),
``/business/get/`` with one metrics object per day (at most 30 days a request) and errors
as HTTP 200 with a non-zero ``code``."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, day_range, without

METRICS = ("video_views", "followers_count", "likes", "comments", "shares")
_CODES = {"rate_limited": (40100, "Too many requests. Please retry in some time."),
          "quota": (40133, "The daily request quota of the app is used up."),
          "unauthorized": (40105, "The access token is invalid or has been revoked."),
          "server": (50002, "Internal service error.")}


def envelope(code: int, message: str, data: Any = None) -> dict[str, Any]:
    body = {"code": code, "message": message, "request_id": secrets.token_hex(10)}
    return {**body, "data": data} if data is not None else body


class FakeTikTok(FakeSource):
    source, auth, pagination = "tiktok", "refresh_token", "none"
    token_path = "/open_api/v1.3/tt_user/oauth2/refresh_token/"
    rename, count_field = ("video_views", "views"), "video_views"
    kinds = without()
    artist_id = "7123456789012345678"

    def keys(self) -> list[Key]:
        return [("artist", self.artist_id, m, ()) for m in METRICS]

    def credential(self, request: web.Request) -> str:
        return request.headers.get("Access-Token", "")

    def token_answer(self, answer: dict[str, Any]) -> dict[str, Any]:
        return envelope(0, "OK", {**answer, "refresh_token": self.refresh_token})

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/open_api/v1.3/business/get/", self._business)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        code, message = _CODES[kind]
        return web.json_response(envelope(code, message))

    async def _business(self, request: web.Request) -> web.Response:
        start, end = day_range(request, "start_date", "end_date")
        if end - start > timedelta(days=29) or request.query.get("business_id") != \
                self.artist_id:
            return web.json_response(envelope(40002, "Invalid business_id or a date range "
                                              "over 30 days."))
        rows = [{"date": day.isoformat(),
                 **{m: self.value(("artist", self.artist_id, m, ()), day) for m in METRICS}}
                for day in self.days(start, end)]

        def render(page: Paging) -> dict[str, Any]:
            return envelope(0, "OK", {"metrics": page.rows})
        return self.respond(request, rows, render)
