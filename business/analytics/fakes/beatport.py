"""A fake Beatport (modelled sales in the documented v4 envelope): client-credentials
tokens at ``/v4/auth/o/token/``, DRF paging (``count``, ``next``, ``page`` as ``"n/m"``,
``per_page``, ``results``), DRF errors (``{"detail"}``, 429 with ``Retry-After``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, day_range, without


class FakeBeatport(FakeSource):
    source, auth, pagination = "beatport", "oauth_client_credentials", "page"
    token_path = "/v4/auth/o/token/"
    limit_param, first_position, page_size = "per_page", 1, 100
    rename, count_field = ("units", "quantity"), "units"
    kinds = without("quota")
    artist_id = "612344"

    def track_id(self, index: int) -> str:
        return str(17_000_000 + self.seed * 100 + index)

    def value(self, key: Key, day: date) -> int:
        """The shared series scaled down: a track sells tens of copies a day on
        Beatport, not thousands."""
        return super().value(key, day) // 200

    def keys(self) -> list[Key]:
        return [("track", self.track_id(t.index), "sales", ()) for t in self.tracks]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v4/my/sales/daily/", self._sales)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, detail = {"rate_limited": (429, "Request was throttled."),
                          "unauthorized": (401, "Authentication credentials were not "
                                                "provided or are invalid."),
                          "server": (503, "Service temporarily unavailable.")}[kind]
        headers = {"Retry-After": str(int(retry_after))} if status == 429 else {}
        return web.json_response({"detail": detail}, status=status, headers=headers)

    async def _sales(self, request: web.Request) -> web.Response:
        if request.query.get("artist_id") != self.artist_id:
            return web.json_response({"detail": "Not found."}, status=404)
        start, end = day_range(request, "date_from", "date_to")
        rows = [{"date": day.isoformat(), "track": {
            "id": int(self.track_id(t.index)), "name": t.name, "mix_name": "Original Mix",
            "isrc": t.isrc, "length_ms": t.duration_ms},
            "units": self.value(("track", self.track_id(t.index), "sales", ()), day)}
            for day in self.days(start, end) for t in self.tracks]

        def render(page: Paging) -> dict[str, Any]:
            return {"count": page.total, "next": page.next_url, "previous": None,
                    "page": f"{page.page}/{page.pages}", "per_page": page.limit,
                    "results": page.rows}
        return self.respond(request, rows, render)
