"""A fake Graph API for Page insights: Page tokens renewed by ``GET /v21.0/oauth/
access_token?grant_type=fb_exchange_token``, ``/v21.0/{page-id}/insights`` by ``since`` /
``until`` in Instagram's envelope, ``OAuthException`` errors (80001 for a Page throttled)
with the ``X-Business-Use-Case-Usage`` header."""

from __future__ import annotations

from aiohttp import web

from business.analytics.fakes.instagram import FakeInstagram


class FakeFacebook(FakeInstagram):
    source = "facebook"
    token_path = "/v21.0/oauth/access_token"
    metrics = ("page_impressions_unique", "page_post_engagements", "page_follows")
    rename, count_field = ("values", "data_points"), "value"
    artist_id = "104857600123456"
    throttle_code = 80001
    demographics = False

    async def _refresh(self, request: web.Request) -> web.Response:
        self.stats.token_requests += 1
        query = request.query
        if query.get("grant_type") != "fb_exchange_token" or self.revoked or \
                query.get("client_id") != self.client_id or \
                query.get("client_secret") != self.client_secret or \
                query.get("fb_exchange_token") != self.refresh_token:
            return self.error("unauthorized", 0, request)
        return web.json_response(self.issue(5_184_000))
