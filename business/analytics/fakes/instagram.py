"""A fake Instagram API: long-lived tokens refreshed by ``GET /refresh_access_token``,
account insights by ``since`` / ``until`` (at most 30 days), a day's value stamped with
the next morning's ``end_time`` (07:00 UTC), Graph API ``OAuthException`` errors and the
``X-Business-Use-Case-Usage`` header on throttles; ``follower_demographics`` with
``metric_type=total_value`` and one ``breakdown`` (age, gender, country, city): the
followers as they are today, seeded; ``bad_genders`` answers an unknown gender code."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from business.analytics.fakes.base import FakeSource, Key, Paging, without

METRICS = ("reach", "profile_views", "follower_count")
#: follower_demographics' breakdowns: the values answered and the (dimension, key) stored.
DEMOGRAPHICS = {
    "age": {a: a for a in ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")},
    "gender": {"F": "female", "M": "male", "U": "unknown"},
    "country": {c: c for c in ("US", "GB", "DE", "BR", "NG", "JP")},
    "city": {c: c for c in ("London, England", "Lagos, Lagos", "Berlin, Berlin",
                            "São Paulo, São Paulo")}}
_CODES = {"rate_limited": (80002, "There have been too many calls to this Instagram "
                                  "account. Wait a bit and try again."),
          "quota": (4, "Application request limit reached"),
          "unauthorized": (190, "Error validating access token: The user has not authorized "
                                "application."),
          "server": (2, "An unexpected error has occurred. Please retry your request later.")}


class FakeInstagram(FakeSource):
    source, auth, pagination = "instagram", "refresh_token", "none"
    token_path = "/refresh_access_token"
    rename, count_field = ("values", "points"), "value"
    kinds = without()
    artist_id = "17841405822304914"
    metrics: tuple[str, ...] = METRICS
    #: The code of a throttle answer (80002: Instagram's business use case).
    throttle_code = 80002

    #: Whether the account answers follower_demographics (Facebook's fake: no).
    demographics = True
    #: Answer the gender breakdown with a code the API does not document.
    bad_genders = False

    def keys(self) -> list[Key]:
        return [("artist", self.artist_id, m, ()) for m in self.metrics]

    def demographic_keys(self) -> list[Key]:
        return [("artist", self.artist_id, "audience_followers", ((name, key),))
                for name, values in DEMOGRAPHICS.items() for key in values.values()]

    def truth(self, start, end):  # noqa: ANN001, ANN201 - as FakeSource.truth
        out = super().truth(start, end)
        if self.demographics and end >= self.today - timedelta(days=1):
            for key in self.demographic_keys():
                out[(*key[:3], self.today, key[3])] = self.value(key, self.today)
        return out

    def credential(self, request: web.Request) -> str:
        return request.query.get("access_token", "")

    def add_token_route(self, app: web.Application) -> None:
        app.router.add_get(self.token_path, self._refresh)

    async def _refresh(self, request: web.Request) -> web.Response:
        self.stats.token_requests += 1
        if request.query.get("grant_type") != "ig_refresh_token" or self.revoked or \
                request.query.get("access_token") != self.refresh_token:
            return self.error("unauthorized", 0, request)
        return web.json_response(self.issue(5_184_000))

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        code, message = _CODES[kind]
        if kind == "rate_limited":
            code = self.throttle_code
        status = {"unauthorized": 400, "server": 500}.get(kind, 400)
        headers = {}
        if kind == "rate_limited":
            usage = {self.artist_id: [{"type": "instagram", "call_count": 100,
                                       "total_cputime": 40, "total_time": 60,
                                       "estimated_time_to_regain_access":
                                           math.ceil(retry_after / 60)}]}
            headers["X-Business-Use-Case-Usage"] = json.dumps(usage)
        return web.json_response({"error": {"message": message, "type": "OAuthException",
                                            "code": code, "fbtrace_id": "AbCdEf"}},
                                 status=status, headers=headers)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v21.0/{id}/insights", self._insights)

    async def _insights(self, request: web.Request) -> web.Response:
        if request.query.get("metric") == "follower_demographics" and self.demographics:
            return self._demographics(request)
        since = datetime.fromtimestamp(int(request.query["since"]), UTC)
        until = datetime.fromtimestamp(int(request.query["until"]), UTC)
        if until - since > timedelta(days=30) or request.match_info["id"] != self.artist_id:
            return web.json_response({"error": {
                "message": "(#100) The since and until range must be 30 days or less",
                "type": "OAuthException", "code": 100}}, status=400)
        first = (since - timedelta(days=1)).date()
        last = (until - timedelta(days=2)).date()
        days = self.days(first, last)

        def render(page: Paging) -> dict[str, Any]:
            data = []
            for metric in self.metrics:
                values = [{"value": self.value(("artist", self.artist_id, metric, ()), day),
                           "end_time": f"{day + timedelta(days=1)}T07:00:00+0000"}
                          for day in page.rows]
                data.append({"name": metric, "period": "day", "values": values,
                             "title": metric.replace("_", " ").title(), "description": "",
                             "id": f"{self.artist_id}/insights/{metric}/day"})
            return {"data": data, "paging": {"previous": "", "next": ""}}
        return self.respond(request, days, render)

    def _demographics(self, request: web.Request) -> web.Response:
        """The followers by one breakdown, today (``period=lifetime``)."""
        query = request.query
        breakdown = query.get("breakdown", "")
        if query.get("metric_type") != "total_value" or breakdown not in DEMOGRAPHICS or \
                query.get("period") != "lifetime" or request.match_info["id"] != self.artist_id:
            return web.json_response({"error": {
                "message": "(#100) follower_demographics needs metric_type=total_value, "
                           "period=lifetime and one breakdown of age, gender, country, city",
                "type": "OAuthException", "code": 100}}, status=400)
        values = DEMOGRAPHICS[breakdown]
        results = [{"dimension_values": ["X" if self.bad_genders and breakdown == "gender"
                                         else answered],
                    "value": self.value(("artist", self.artist_id, "audience_followers",
                                         ((breakdown, key),)), self.today)}
                   for answered, key in values.items()]

        def render(page: Paging) -> dict[str, Any]:
            return {"data": [{"name": "follower_demographics", "period": "lifetime",
                              "title": "Follower demographics", "description": "The "
                              "demographic characteristics of followers",
                              "total_value": {"breakdowns": [{"dimension_keys": [breakdown],
                                                              "results": page.rows}]},
                              "id": f"{self.artist_id}/insights/follower_demographics/"
                                    "lifetime"}]}
        return self.respond(request, results, render)
