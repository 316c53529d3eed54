"""Facebook: a Page's daily reach, post engagements and follows.

Documented: the Graph API Page insights (``GET /{page-id}/insights?metric=...&period=day
&since&until``, Unix seconds), the same envelope as Instagram's account insights: ``data``
holds one object per metric with ``values`` of ``{"value", "end_time"}``, a day's value
stamped with the next morning's ``end_time`` (Pacific midnight), so ``at`` is the day
before it. The API takes up to 93 days a request; this connector asks 30 at a time, so a
failure mid back-fill costs at most a month. Sign-in: a long-lived Page access token
(``access_token`` query parameter), renewed with ``GET /oauth/access_token?grant_type=
fb_exchange_token`` (the app's id and secret, the long-lived token kept as the refresh
token). Errors are Graph API ``OAuthException`` objects: code 190 (token invalid or
revoked), 4 (the app's call budget: quota), 17 / 32 / 613 / 80001 (throttles; the
``X-Business-Use-Case-Usage`` header says when access returns).
"""

from __future__ import annotations

import json
from datetime import date, timedelta

from business.analytics.errors import TokenRevoked
from business.analytics.sources.base import Call, utc_day
from business.analytics.sources.instagram import InstagramConnector
from business.analytics.sources.records import Entity
from business.analytics.sources.spec import RateLimit, Schedule, SourceSpec

METRICS = ("page_impressions_unique", "page_post_engagements", "page_follows")


class FacebookConnector(InstagramConnector):
    spec = SourceSpec(
        name="facebook", title="Facebook Page insights", auth="refresh_token",
        pagination="none", rate_limit=RateLimit(200, 3600),
        api_host="https://graph.facebook.com",
        token_url="https://graph.facebook.com/v21.0/oauth/access_token",
        docs="https://developers.facebook.com/docs/graph-api/reference/insights/",
        metrics=METRICS, entity_kinds=("artist",), schedule=Schedule(window_days=30))
    demographics = False  # Page insights' audience metrics are not read here

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        since = utc_day(start) + timedelta(days=1)
        until = utc_day(end) + timedelta(days=2)
        return Call(f"/v21.0/{entity.id}/insights", {
            "metric": ",".join(METRICS), "period": "day",
            "since": str(int(since.timestamp())), "until": str(int(until.timestamp()))})

    async def renew(self) -> tuple[str, float]:
        creds = self.credentials
        params = {"grant_type": "fb_exchange_token", "client_id": creds.client_id,
                  "client_secret": creds.client_secret,
                  "fb_exchange_token": creds.refresh_token}
        async with self.session.get(self.token_url(), params=params,
                                    timeout=self.timeout) as response:
            status, raw, headers = response.status, await response.read(), response.headers
        if status != 200:
            error = self.error_for(status, raw, headers, "token exchange")
            if status in (400, 401, 403):
                raise TokenRevoked(f"the Page token cannot be renewed ({error.reason}); "
                                   "reconnect Facebook", source=self.name, status=status)
            raise error
        body = json.loads(raw)
        return str(body["access_token"]), float(body.get("expires_in") or 5_184_000)
