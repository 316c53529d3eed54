"""A fake Discogs API: ``Authorization: Discogs token=...``, ``/artists/{id}/releases``
paged by ``page`` / ``per_page`` with ``pagination.urls``, community counts per release,
``{"message"}`` errors and 429 over 60 requests a minute (no ``Retry-After``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, without

METRICS = ("in_collection", "in_wantlist")


class FakeDiscogs(FakeSource):
    source, auth, pagination, history = "discogs", "api_key", "page", False
    first_position, limit_param = 1, "per_page"
    rename, count_field = ("in_wantlist", "want"), "in_collection"
    kinds = without("quota", "expired")
    artist_id = "3840"

    def release_key(self, index: int) -> str:
        return f"release/{2_000_000 + self.seed * 100 + index}"

    def keys(self) -> list[Key]:
        return [("release", self.release_key(t.index), m, ()) for t in self.tracks
                for m in METRICS]

    def credential(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        return header[len("Discogs token="):] if header.startswith("Discogs token=") else ""

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/artists/{id}/releases", self._releases)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, message = {"rate_limited": (429, "You are making requests too quickly."),
                           "unauthorized": (401, "You must authenticate to access this "
                                                 "resource."),
                           "server": (502, "Bad gateway")}[kind]
        return web.json_response({"message": message}, status=status)

    async def _releases(self, request: web.Request) -> web.Response:
        rows = []
        for t in self.tracks:
            key = self.release_key(t.index)
            rows.append({"id": int(key.split("/")[1]), "type": "release", "title": t.name,
                         "artist": "Ada Beats", "role": "Main", "year": 2020 + t.index % 5,
                         "stats": {"community": {m: self.value(("release", key, m, ()),
                                                               self.today) for m in METRICS}}})

        def render(page: Paging) -> dict[str, Any]:
            urls = {"next": page.next_url} if page.next_url else {}
            return {"pagination": {"page": page.page, "pages": page.pages,
                                   "per_page": page.limit, "items": page.total, "urls": urls},
                    "releases": page.rows}
        return self.respond(request, rows, render)
