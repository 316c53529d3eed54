"""A fake TIDAL (modelled): client-credentials tokens at ``/v1/oauth2/token``, daily
``trackStreams`` resources in a JSON:API envelope with the tracks ``included`` and a
relative ``links.next`` carrying ``page[cursor]``; JSON:API ``errors``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, day_range, without


class FakeTidal(FakeSource):
    source, auth, pagination = "tidal", "oauth_client_credentials", "cursor"
    token_path = "/v1/oauth2/token"
    cursor_param, limit_param = "page[cursor]", "page[size]"
    rename, count_field = ("streams", "streamCount"), "streams"
    kinds = without("quota")
    artist_id = "3634161"

    def track_id(self, index: int) -> str:
        return str(251_380_000 + self.seed * 100 + index)

    def keys(self) -> list[Key]:
        return [("track", self.track_id(t.index), "streams", ()) for t in self.tracks]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v2/artists/{id}/relationships/trackStreams", self._streams)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, code, detail = {"rate_limited": (429, "TOO_MANY_REQUESTS", "Rate limited"),
                                "unauthorized": (401, "UNAUTHORIZED", "Token expired"),
                                "server": (503, "UNAVAILABLE", "Try again later")}[kind]
        headers = {"Retry-After": str(int(retry_after))} if status == 429 else {}
        return web.json_response({"errors": [{"id": "e-1", "status": str(status),
                                              "code": code, "detail": detail}]},
                                 status=status, headers=headers,
                                 content_type="application/vnd.api+json")

    async def _streams(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != self.artist_id:
            return self.error("server", 0, request)
        start, end = day_range(request, "filter[from]", "filter[to]")
        rows = [{"id": f"{day}:{self.track_id(t.index)}", "type": "trackStreams",
                 "attributes": {"date": day.isoformat(), "streams": self.value(
                     ("track", self.track_id(t.index), "streams", ()), day)},
                 "relationships": {"track": {"data": {"id": self.track_id(t.index),
                                                      "type": "tracks"}}}}
                for day in self.days(start, end) for t in self.tracks]
        by_id = {self.track_id(t.index): t for t in self.tracks}

        def render(page: Paging) -> dict[str, Any]:
            ids = sorted({row["relationships"]["track"]["data"]["id"] for row in page.rows})
            included = [{"id": i, "type": "tracks", "attributes": {
                "title": by_id[i].name, "isrc": by_id[i].isrc,
                "duration": f"PT{by_id[i].duration_ms // 60000}M"
                            f"{by_id[i].duration_ms % 60000 / 1000:g}S"}} for i in ids]
            links = {"self": str(request.rel_url)}
            if page.next_url:
                links["next"] = page.next_url[len(self.base_url):]
            return {"data": page.rows, "included": included, "links": links}
        return self.respond(request, rows, render)
