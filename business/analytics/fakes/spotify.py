"""A fake Spotify: client-credentials tokens at ``/api/token`` and the modelled daily
timeline as a Web API paging object; errors as ``{"error": {"status", "message"}}``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, day_range, without
from business.analytics.fakes.playlists import Placements, playlist_truth

METRICS = ("streams", "listeners", "saves")
#: The artist's audience breakdowns (Spotify for Artists' audience tab), seeded like every
#: series: listeners a day per country, city, age band and gender.
AUDIENCE = (("country", ("US", "DE", "BR", "GB", "NG")),
            ("city", ("Berlin", "Lagos", "London", "São Paulo")),
            ("age", ("18-22", "23-27", "28-34", "35-44", "45+")),
            ("gender", ("female", "male", "non-binary")))


class FakeSpotify(FakeSource):
    source, auth, pagination, token_path = "spotify", "oauth_client_credentials", "offset", \
        "/api/token"
    rename, count_field = ("streams", "stream_count"), "streams"
    kinds = without("quota")
    artist_id = "1vCWHaC5f2uS3yhpwWbIA6"

    @property
    def placements(self) -> Placements:
        return Placements(self.seed, self.source, "37i9dQZF1DX")

    def track_ids(self) -> list[str]:
        return [self.track_id(t.index) for t in self.tracks]

    def truth(self, start, end):  # noqa: ANN001, ANN201 - as FakeSource.truth
        audience = {(kind, pid, metric, day, dims): self.value((kind, pid, metric, dims), day)
                    for kind, pid, metric, dims in self.audience_keys()
                    for day in self.days(start, end)}
        return {**super().truth(start, end), **audience,
                **playlist_truth(self.placements, self.track_ids(), self.days(start, end))}

    def track_id(self, index: int) -> str:
        return f"{self.seed:04d}Sp0tifyTrack{index:06d}"[:22]

    def keys(self) -> list[Key]:
        return [("track", self.track_id(t.index), m, ()) for t in self.tracks for m in METRICS]

    def audience_keys(self) -> list[Key]:
        return [("artist", self.artist_id, "audience_listeners", ((name, value),))
                for name, values in AUDIENCE for value in values]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/artists/{id}/stats/audience", self._audience)
        app.router.add_get("/v1/artists/{id}/stats/daily", self._daily)
        app.router.add_get("/v1/artists/{id}/stats/playlists", self._playlists)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, message = {"rate_limited": (429, "API rate limit exceeded"),
                           "unauthorized": (401, "The access token expired"),
                           "server": (503, "Service unavailable")}[kind]
        headers = {"Retry-After": str(int(retry_after))} if status == 429 else {}
        return web.json_response({"error": {"status": status, "message": message}},
                                 status=status, headers=headers)

    async def _daily(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != self.artist_id:
            return web.json_response({"error": {"status": 404, "message": "non existing id"}},
                                     status=404)
        start, end = day_range(request, "start_date", "end_date")
        rows: list[dict[str, Any]] = []
        for day in self.days(start, end):
            for t in self.tracks:
                tid = self.track_id(t.index)
                rows.append({"date": day.isoformat(), "track": {
                    "id": tid, "name": t.name, "duration_ms": t.duration_ms,
                    "external_ids": {"isrc": t.isrc}},
                    **{m: self.value(("track", tid, m, ()), day) for m in METRICS}})

        def render(page: Paging) -> dict[str, Any]:
            return {"href": str(request.url), "items": page.rows, "limit": page.limit,
                    "offset": page.offset, "total": page.total, "next": page.next_url}
        return self.respond(request, rows, render)

    async def _audience(self, request: web.Request) -> web.Response:
        """Per day, the artist's listeners by country, city, age band and gender."""
        if request.match_info["id"] != self.artist_id:
            return web.json_response({"error": {"status": 404, "message": "non existing id"}},
                                     status=404)
        start, end = day_range(request, "start_date", "end_date")
        rows = [{"date": day.isoformat(), "dimension": dims[0][0], "value": dims[0][1],
                 "listeners": self.value(key, day)}
                for day in self.days(start, end)
                for key in self.audience_keys() for dims in (key[3],)]

        def render(page: Paging) -> dict[str, Any]:
            return {"href": str(request.url), "items": page.rows, "limit": page.limit,
                    "offset": page.offset, "total": page.total, "next": page.next_url}
        return self.respond(request, rows, render)

    async def _playlists(self, request: web.Request) -> web.Response:
        """Per day, every playlist holding one of the artist's tracks (modelled on Spotify
        for Artists' playlist figures): Web API playlist objects, editorial ones owned by
        the ``spotify`` user as on the Web API."""
        if request.match_info["id"] != self.artist_id:
            return web.json_response({"error": {"status": 404, "message": "non existing id"}},
                                     status=404)
        start, end = day_range(request, "start_date", "end_date")
        rows = []
        for day in self.days(start, end):
            for playlist, track, position in self.placements.on(day, self.track_ids()):
                owner = {"id": "spotify", "display_name": "Spotify"} if playlist.editorial \
                    else {"id": f"user{playlist.id[-4:]}", "display_name": "A listener"}
                rows.append({"date": day.isoformat(), "position": position,
                             "track": {"id": track}, "playlist": {
                                 "id": playlist.id, "name": playlist.name, "owner": owner,
                                 "followers": {"total": self.placements.followers(
                                     playlist.id, day)}}})

        def render(page: Paging) -> dict[str, Any]:
            return {"href": str(request.url), "items": page.rows, "limit": page.limit,
                    "offset": page.offset, "total": page.total, "next": page.next_url}
        return self.respond(request, rows, render)
