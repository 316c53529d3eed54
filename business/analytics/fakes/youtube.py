"""A fake YouTube Analytics API v2: Google OAuth refresh at ``/token``, ``reports.query``
result tables paged by ``startIndex`` / ``maxResults``, Google's error objects and a
daily unit quota (403 ``quotaExceeded``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, without

METRICS = ("views", "estimatedMinutesWatched", "likes", "subscribersGained")
_ERRORS = {
    "rate_limited": (429, "rateLimitExceeded", "RESOURCE_EXHAUSTED",
                     "The request cannot be completed because you have exceeded your rate "
                     "limit."),
    "quota": (403, "quotaExceeded", "PERMISSION_DENIED",
              "The request cannot be completed because you have exceeded your quota."),
    "unauthorized": (401, "authError", "UNAUTHENTICATED",
                     "Request had invalid authentication credentials."),
    "server": (503, "backendError", "UNAVAILABLE", "Backend Error"),
}


class FakeYouTube(FakeSource):
    source, auth, pagination = "youtube", "refresh_token", "offset"
    offset_param, limit_param, first_position, page_size = "startIndex", "maxResults", 1, 30
    rename, count_field = ("views", "viewCount"), "views"
    kinds = without()
    artist_id = "UCs4aHmggTfFrpkPcWSaBN9g"

    def keys(self) -> list[Key]:
        return [("artist", self.artist_id, m, ()) for m in METRICS]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v2/reports", self._reports)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, reason, state, message = _ERRORS[kind]
        headers = {"Retry-After": str(int(retry_after))} if status == 429 else {}
        return web.json_response({"error": {"code": status, "message": message, "errors": [
            {"message": message, "domain": "global", "reason": reason}], "status": state}},
            status=status, headers=headers)

    def renamed(self, body: Any) -> Any:
        old, new = self.rename
        for header in body["columnHeaders"]:
            if header["name"] == old:
                header["name"] = new
        return body

    def negate(self, body: Any) -> Any:
        if body.get("rows"):
            body["rows"][0][1] = -abs(body["rows"][0][1]) - 1
        return body

    async def _reports(self, request: web.Request) -> web.Response:
        from datetime import date

        query = request.query
        if query.get("ids") != f"channel=={self.artist_id}" or query.get("dimensions") != "day":
            return web.json_response({"error": {"code": 400, "message": "Invalid query."}},
                                     status=400)
        asked = query["metrics"].split(",")
        start, end = date.fromisoformat(query["startDate"]), date.fromisoformat(query["endDate"])
        rows = [[day.isoformat(), *(self.value(("artist", self.artist_id, m, ()), day)
                                    for m in asked)] for day in self.days(start, end)]

        def render(page: Paging) -> dict[str, Any]:
            headers = [{"name": "day", "columnType": "DIMENSION", "dataType": "STRING"}]
            headers += [{"name": m, "columnType": "METRIC", "dataType": "INTEGER"}
                        for m in asked]
            body: dict[str, Any] = {"kind": "youtubeAnalytics#resultTable",
                                    "columnHeaders": headers}
            if page.rows:
                body["rows"] = page.rows
            return body
        return self.respond(request, rows, render)
