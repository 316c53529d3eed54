"""A fake SoundCloud API: client-credentials tokens at ``/oauth/token``, ``OAuth <token>``
headers, ``/users/{id}/tracks`` with ``linked_partitioning`` (``collection`` and
``next_href``) and 429 answers carrying the ``rate_limit`` bucket and ``reset_time``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, without

METRICS = ("playback_count", "likes_count", "reposts_count", "comment_count")


class FakeSoundCloud(FakeSource):
    source, auth, pagination, history = "soundcloud", "oauth_client_credentials", "cursor", \
        False
    token_path = "/oauth/token"
    rename, count_field = ("playback_count", "plays"), "playback_count"
    kinds = without()
    artist_id = "123456789"

    def track_id(self, index: int) -> str:
        return str(987_000_000 + self.seed * 100 + index)

    def keys(self) -> list[Key]:
        return [("track", self.track_id(t.index), m, ()) for t in self.tracks for m in METRICS]

    def credential(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        return header[6:] if header.startswith("OAuth ") else ""

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/users/{id}/tracks", self._tracks)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        if kind in ("rate_limited", "quota"):
            window = "PT24H" if kind == "quota" else "PT1M"
            reset = datetime.now(UTC) + (timedelta(hours=20) if kind == "quota"
                                         else timedelta(seconds=retry_after))
            headers = {"Retry-After": str(int(retry_after))} if kind == "rate_limited" else {}
            return web.json_response({
                "errors": [{"error_message": "429 - Too Many Requests"}],
                "rate_limit": {"bucket": "by-client", "max_nr_of_requests": 15000,
                               "time_window": window, "name": "plays"},
                "remaining_requests": 0, "reset_time": f"{reset:%Y/%m/%d %H:%M:%S +0000}"},
                status=429, headers=headers)
        status = {"unauthorized": 401, "server": 503}[kind]
        return web.json_response({"code": status, "message": kind, "link": "", "status":
                                  f"{status} - {kind}", "errors": [], "error": None},
                                 status=status)

    async def _tracks(self, request: web.Request) -> web.Response:
        rows = [{"id": int(self.track_id(t.index)), "kind": "track", "title": t.name,
                 "duration": t.duration_ms,
                 **{m: self.value(("track", self.track_id(t.index), m, ()), self.today)
                    for m in METRICS},
                 "publisher_metadata": {"isrc": t.isrc, "upc_or_ean": None}}
                for t in self.tracks]

        def render(page: Paging) -> dict[str, Any]:
            return {"collection": page.rows, "next_href": page.next_url}
        return self.respond(request, rows, render)
