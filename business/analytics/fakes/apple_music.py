"""A fake Apple Music for Artists (modelled): daily song plays in the Apple Music API's
JSON:API envelope, a relative ``next`` link, a developer token as Bearer."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, day_range, without

METRICS = ("plays", "listeners")


def apple_error(kind: str, retry_after: float) -> web.Response:
    """An Apple Music API error answer (``errors`` objects)."""
    status, title, code = {"rate_limited": (429, "Too Many Requests", "42900"),
                           "unauthorized": (401, "Unauthorized", "40100"),
                           "server": (500, "Internal Server Error", "50000")}[kind]
    headers = {"Retry-After": str(int(retry_after))} if status == 429 else {}
    return web.json_response({"errors": [{"id": "E1", "title": title, "status": str(status),
                                          "code": code}]}, status=status, headers=headers)


class FakeAppleMusic(FakeSource):
    source, auth, pagination = "apple_music", "api_key", "cursor"
    rename, count_field = ("plays", "playCount"), "plays"
    kinds = without("quota", "expired")
    artist_id = "1445786390"

    def song_id(self, index: int) -> str:
        return str(1_500_000_000 + self.seed * 100 + index)

    def keys(self) -> list[Key]:
        return [("track", self.song_id(t.index), m, ()) for t in self.tracks for m in METRICS]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/analytics/artists/{id}/songs/daily", self._daily)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        return apple_error(kind, retry_after)

    async def _daily(self, request: web.Request) -> web.Response:
        start, end = day_range(request, "start", "end")
        rows = []
        for day in self.days(start, end):
            for t in self.tracks:
                sid = self.song_id(t.index)
                rows.append({"id": f"{day}:{sid}", "type": "daily-song-plays", "attributes": {
                    "date": day.isoformat(),
                    **{m: self.value(("track", sid, m, ()), day) for m in METRICS},
                    "song": {"id": sid, "name": t.name, "isrc": t.isrc,
                             "durationInMillis": t.duration_ms, "artistName": "Ada Beats"}}})

        def render(page: Paging) -> dict[str, Any]:
            body: dict[str, Any] = {"data": page.rows}
            if page.next_url:
                body["next"] = page.next_url[len(self.base_url):]
            return body
        return self.respond(request, rows, render)
