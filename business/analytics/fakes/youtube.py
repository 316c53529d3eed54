"""A fake YouTube Analytics API v2: Google OAuth refresh at ``/token`` and revocation at
``/revoke``, ``reports.query`` result tables paged by ``startIndex`` / ``maxResults``,
Google's error objects and a daily unit quota (403 ``quotaExceeded``). The audience
reports of one day: demographics (``ageGroup,gender`` with ``viewerPercentage``, seeded
shares summing to 100 in tenths) and geography (``country`` with ``views``);
``skewed_days`` answers percentages that sum to 90 (bad data from the source)."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, without

METRICS = ("views", "estimatedMinutesWatched", "likes", "subscribersGained")
AGE_GROUPS = {"age13-17": "13-17", "age18-24": "18-24", "age25-34": "25-34",
              "age35-44": "35-44", "age45-54": "45-54", "age55-64": "55-64",
              "age65-": "65+"}
GENDERS = ("female", "male", "user_specified")
COUNTRIES = ("US", "IN", "BR", "DE", "GB", "MX")
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
    revoke_path = "/revoke"  # oauth2.googleapis.com/revoke
    offset_param, limit_param, first_position, page_size = "startIndex", "maxResults", 1, 30
    rename, count_field = ("views", "viewCount"), "views"
    kinds = without()
    artist_id = "UCs4aHmggTfFrpkPcWSaBN9g"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        #: Days whose demographics answer percentages summing to 90.
        self.skewed_days: set[date] = set()

    def keys(self) -> list[Key]:
        return [("artist", self.artist_id, m, ()) for m in METRICS]

    def shares(self, day: date) -> list[tuple[str, str, float]]:
        """The day's ``viewerPercentage`` rows: seeded weights as tenths of a percent that
        sum to exactly 1,000 (largest remainder), as the API rounds them."""
        groups = [(age, gender) for gender in GENDERS for age in AGE_GROUPS]
        weights = [1 + self.series.value(self.source, self.artist_id, "viewer_share", day,
                                         (("age", age), ("gender", gender)))
                   for age, gender in groups]
        exact = [1000 * w / sum(weights) for w in weights]
        tenths = [int(x) for x in exact]
        for i in sorted(range(len(exact)), key=lambda i: tenths[i] - exact[i])[
                :1000 - sum(tenths)]:
            tenths[i] += 1
        scale = 0.9 if day in self.skewed_days else 1.0
        return [(age, gender, round(t * scale / 10, 1))
                for (age, gender), t in zip(groups, tenths, strict=True)]

    def truth(self, start, end):  # noqa: ANN001, ANN201 - as FakeSource.truth
        out = super().truth(start, end)
        for day in self.days(start, end):
            views = float(self.value(("artist", self.artist_id, "views", ()), day))
            for age, gender, share in self.shares(day):
                out[("artist", self.artist_id, "audience_demographic_views", day, (
                    ("age", AGE_GROUPS[age]), ("gender", gender)))] = views * share / 100
            for country in COUNTRIES:
                key = ("artist", self.artist_id, "audience_views", (("country", country),))
                out[(*key[:3], day, key[3])] = self.value(key, day)
        return out

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
        metrics = [i for i, h in enumerate(body["columnHeaders"]) if h["columnType"] == "METRIC"]
        if body.get("rows") and metrics:
            body["rows"][0][metrics[0]] = -abs(body["rows"][0][metrics[0]]) - 1
        return body

    async def _reports(self, request: web.Request) -> web.Response:
        query = request.query
        dimensions = query.get("dimensions")
        if query.get("ids") != f"channel=={self.artist_id}" or dimensions not in (
                "day", "ageGroup,gender", "country"):
            return web.json_response({"error": {"code": 400, "message": "Invalid query."}},
                                     status=400)
        asked = query["metrics"].split(",")
        start, end = date.fromisoformat(query["startDate"]), date.fromisoformat(query["endDate"])
        names = dimensions.split(",")
        if dimensions == "day":
            rows = [[day.isoformat(), *(self.value(("artist", self.artist_id, m, ()), day)
                                        for m in asked)] for day in self.days(start, end)]
        elif start != end or asked != (["viewerPercentage"] if names[0] == "ageGroup"
                                       else ["views"]):
            return web.json_response({"error": {"code": 400, "message": "Invalid query: "
                                                "ask one day of this audience report."}},
                                     status=400)
        elif start not in self.days(start, end):
            rows = []
        elif names[0] == "ageGroup":
            rows = [[age, gender, share] for age, gender, share in self.shares(start)]
        else:
            rows = sorted(([c, self.value(("artist", self.artist_id, "audience_views",
                                           (("country", c),)), start)] for c in COUNTRIES),
                          key=lambda row: -row[1])

        def render(page: Paging) -> dict[str, Any]:
            headers = [{"name": n, "columnType": "DIMENSION", "dataType": "STRING"}
                       for n in names]
            headers += [{"name": m, "columnType": "METRIC",
                         "dataType": "FLOAT" if m == "viewerPercentage" else "INTEGER"}
                        for m in asked]
            body: dict[str, Any] = {"kind": "youtubeAnalytics#resultTable",
                                    "columnHeaders": headers}
            if page.rows:
                body["rows"] = page.rows
            return body
        return self.respond(request, rows, render)
