"""A fake Bandcamp Sales Report API: client-credentials tokens at ``/oauth_token`` (id and
secret in the form), ``POST /api/sales/4/sales_report`` answering one row per sale (two
sales per track and day, so the connector must sum them), errors as HTTP 200
``{"error": true, "error_message"}``."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, without

_MESSAGES = {"rate_limited": "too many requests, slow down",
             "unauthorized": "invalid or expired token",
             "server": "internal error, try again"}


class FakeBandcamp(FakeSource):
    source, auth, pagination = "bandcamp", "oauth_client_credentials", "none"
    token_path = "/oauth_token"
    rename, count_field = ("quantity", "units"), "quantity"
    kinds = without("quota")
    artist_id = "1234567890"

    def item_url(self, index: int) -> str:
        return f"https://adabeats.bandcamp.com/track/{self.seed}-{index}"

    def value(self, key: Key, day: date) -> int:
        """The shared series scaled down: a track sells tens of copies a day on
        Bandcamp, not thousands."""
        return super().value(key, day) // 200

    def keys(self) -> list[Key]:
        return [("track", self.item_url(t.index), "sales", ()) for t in self.tracks]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/sales/4/sales_report", self._report)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        if kind == "server":
            return web.json_response({"error": True, "error_message": _MESSAGES[kind]},
                                     status=500)
        return web.json_response({"error": True, "error_message": _MESSAGES[kind]})

    async def _report(self, request: web.Request) -> web.Response:
        body = await request.json()
        if str(body.get("band_id")) != self.artist_id:
            return web.json_response({"error": True, "error_message": "band not found"})
        start = date.fromisoformat(str(body["start_time"])[:10])
        end = date.fromisoformat(str(body["end_time"])[:10])
        rows: list[dict[str, Any]] = []
        for day in self.days(start, end):
            for t in self.tracks:
                units = self.value(("track", self.item_url(t.index), "sales", ()), day)
                for hour, quantity in ((9, units // 2), (21, units - units // 2)):
                    when = datetime.combine(day, time(hour, 15, 7))
                    rows.append({"date": f"{when:%d %b %Y %H:%M:%S} GMT", "paid_to": "paypal",
                                 "item_type": "track", "item_name": t.name,
                                 "item_url": self.item_url(t.index), "artist": "Ada Beats",
                                 "currency": "USD", "item_price": 1.0, "quantity": quantity,
                                 "isrc": t.isrc})

        def render(page: Paging) -> dict[str, Any]:
            return {"report": page.rows}
        return self.respond(request, rows, render)
