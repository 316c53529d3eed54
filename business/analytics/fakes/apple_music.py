"""A fake Apple Music for Artists (modelled): daily song plays in the Apple Music API's
JSON:API envelope, a relative ``next`` link, a developer token as Bearer."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, day_range, without
from business.analytics.fakes.playlists import Placements, playlist_truth

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

    @property
    def placements(self) -> Placements:
        return Placements(self.seed, self.source, "pl.")

    def track_ids(self) -> list[str]:
        return [self.song_id(t.index) for t in self.tracks]

    def truth(self, start, end):  # noqa: ANN001, ANN201 - as FakeSource.truth
        return {**super().truth(start, end),
                **playlist_truth(self.placements, self.track_ids(), self.days(start, end))}

    def song_id(self, index: int) -> str:
        return str(1_500_000_000 + self.seed * 100 + index)

    def keys(self) -> list[Key]:
        return [("track", self.song_id(t.index), m, ()) for t in self.tracks for m in METRICS]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/analytics/artists/{id}/songs/daily", self._daily)
        app.router.add_get("/v1/analytics/artists/{id}/playlists/daily", self._playlists)

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

    async def _playlists(self, request: web.Request) -> web.Response:
        """Per day, the artist's songs on playlists (modelled): ``playlist-placements``
        resources whose playlist is an Apple Music API playlist resource (``name``,
        ``curatorName``, ``playlistType``: ``editorial`` for Apple's editors)."""
        start, end = day_range(request, "start", "end")
        rows = []
        for day in self.days(start, end):
            for playlist, song, position in self.placements.on(day, self.track_ids()):
                rows.append({"id": f"{day}:{playlist.id}:{song}", "type": "playlist-placements",
                             "attributes": {"date": day.isoformat(), "position": position,
                                            "followers": self.placements.followers(
                                                playlist.id, day)},
                             "relationships": {
                                 "playlists": {"data": [{"id": playlist.id, "type": "playlists",
                                                         "attributes": {
                                                             "name": playlist.name,
                                                             "curatorName": "Apple Music"
                                                             if playlist.editorial
                                                             else "A listener",
                                                             "playlistType": "editorial"
                                                             if playlist.editorial
                                                             else "user-shared"}}]},
                                 "songs": {"data": [{"id": song, "type": "songs"}]}}})

        def render(page: Paging) -> dict[str, Any]:
            body: dict[str, Any] = {"data": page.rows}
            if page.next_url:
                body["next"] = page.next_url[len(self.base_url):]
            return body
        return self.respond(request, rows, render)
