"""A fake YouTube Data API v3 with Google OAuth: resumable uploads and the unit quota
(10,000 units a day, 1,600 per upload, reset at midnight Pacific time)."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from business.social.fakes.base import KINDS, FakeNetwork

#: ``videos?part=statistics`` counts (:meth:`FakeNetwork.counts`).
STATISTICS_WEIGHTS = {"viewCount": 1200, "likeCount": 80, "favoriteCount": 2,
                      "commentCount": 6}
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_ERRORS = {
    "rate_limited": (429, "youtube.api", "rateLimitExceeded", "RESOURCE_EXHAUSTED",
                     "The request cannot be completed because you have exceeded your rate "
                     "limit."),
    "expired": (401, "global", "authError", "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential."),
    "server": (503, "global", "backendError", "UNAVAILABLE", "Backend Error"),
    "quota": (403, "youtube.quota", "quotaExceeded", "PERMISSION_DENIED",
              "The request cannot be completed because you have exceeded your quota."),
    "rejected": (400, "youtube.video", "invalidTitle", "INVALID_ARGUMENT",
                 "The request metadata specifies an invalid or empty video title."),
}
_ERRORS["invalid_token"] = _ERRORS["expired"]
PACIFIC = ZoneInfo("America/Los_Angeles")


class FakeYouTube(FakeNetwork):
    """YouTube as its API answers; :attr:`units_used` is today's spent quota."""

    network = "youtube"
    authorize_path = "/o/oauth2/v2/auth"
    token_path = "/token"
    revoke_path, revoke_checks_client = "/revoke", False
    refresh_omit_rate = 1.0  # Google never sends a new refresh token on refresh
    kinds = tuple(k for k in KINDS if k != "duplicate")
    daily_units = 10_000
    costs = {"upload": 1_600, "list": 1, "comment": 50}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units_used = 0
        self._day = self._today()
        self.sessions: dict[str, dict[str, Any]] = {}
        self.comments: list[dict[str, str]] = []
        self.channel_id = "UC" + secrets.token_urlsafe(16)

    @staticmethod
    def _today() -> dt.date:
        return dt.datetime.now(PACIFIC).date()

    def charge(self, what: str, request: web.Request) -> web.Response | None:
        """Spend the units of ``what``; the quotaExceeded answer when they are not there."""
        if self._today() != self._day:
            self.units_used, self._day = 0, self._today()
        cost = self.costs[what]
        if self.units_used + cost > self.daily_units:
            return self.error("quota", 0, request)
        self.units_used += cost
        return None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/youtube/v3/channels", self._channels)
        app.router.add_post("/upload/youtube/v3/videos", self._start)
        app.router.add_put("/upload/youtube/v3/videos", self._put)
        app.router.add_get("/youtube/v3/playlistItems", self._playlist)
        app.router.add_get("/youtube/v3/videos", self._videos)
        app.router.add_post("/youtube/v3/commentThreads", self._comment)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, domain, reason, state, message = _ERRORS[kind]
        headers = {"Retry-After": str(int(retry_after))} if kind == "rate_limited" else {}
        return web.json_response({"error": {"code": status, "message": message, "errors": [
            {"message": message, "domain": domain, "reason": reason}], "status": state}},
            status=status, headers=headers)

    async def _channels(self, request: web.Request) -> web.Response:
        if (refused := self.charge("list", request)) is not None:
            return refused
        user = self.user_of(request)
        return web.json_response({"kind": "youtube#channelListResponse", "items": [{
            "kind": "youtube#channel", "id": self.channel_id,
            "snippet": {"title": user.name, "customUrl": f"@{user.handle}"},
            "contentDetails": {"relatedPlaylists": {"uploads": "UU" + self.channel_id[2:]}}}]})

    async def _start(self, request: web.Request) -> web.Response:
        if request.query.get("uploadType") != "resumable":
            return self.error("rejected", 0, request)
        metadata = await request.json()
        size = request.headers.get("X-Upload-Content-Length", "")
        if not metadata.get("snippet", {}).get("title") or not size.isdigit():
            return self.error("rejected", 0, request)
        if (refused := self.charge("upload", request)) is not None:
            return refused
        upload_id = secrets.token_urlsafe(16)
        self.sessions[upload_id] = {"metadata": metadata, "size": int(size), "data": b"",
                                    "owner": self.user_of(request).id}
        location = (f"{self.base_url}/upload/youtube/v3/videos?uploadType=resumable"
                    f"&upload_id={upload_id}")
        return web.Response(status=200, headers={"Location": location})

    async def _put(self, request: web.Request) -> web.Response:
        upload = self.sessions.get(request.query.get("upload_id", ""))
        found = _RANGE.fullmatch(request.headers.get("Content-Range", ""))
        data = await request.read()
        if upload is None or found is None:
            return web.json_response({"error": {"code": 404, "message": "upload not found"}},
                                     status=404)
        start, end, total = map(int, found.groups())
        if start != len(upload["data"]) or total != upload["size"] or \
                end - start + 1 != len(data):
            return web.Response(status=400, text="Content-Range does not match")
        upload["data"] += data
        if len(upload["data"]) < total:
            return web.Response(status=308, headers={
                "Range": f"bytes=0-{len(upload['data']) - 1}"})
        snippet = dict(upload["metadata"]["snippet"])
        video = {"kind": "youtube#video", "id": secrets.token_urlsafe(8)[:11],
                 "snippet": {**snippet, "channelId": self.channel_id},
                 "status": upload["metadata"].get("status", {})}
        self.posts.append({**video, "created": time.time()})
        del self.sessions[request.query["upload_id"]]
        return web.json_response(video)

    async def _playlist(self, request: web.Request) -> web.Response:
        if (refused := self.charge("list", request)) is not None:
            return refused
        limit = int(request.query.get("maxResults", "5"))
        items = [{"kind": "youtube#playlistItem", "contentDetails": {"videoId": v["id"]}}
                 for v in reversed(self.posts)][:limit]
        return web.json_response({"items": items, "pageInfo": {"totalResults": len(items)}})

    async def _videos(self, request: web.Request) -> web.Response:
        if (refused := self.charge("list", request)) is not None:
            return refused
        ids = set(request.query.get("id", "").split(","))
        parts = set(request.query.get("part", "").split(","))
        items = [{"kind": "youtube#video", "id": v["id"],
                  **{part: v[part] for part in parts if part in v},
                  **({"statistics": self._statistics(v)} if "statistics" in parts else {})}
                 for v in self.posts if v["id"] in ids]
        return web.json_response({"items": items})

    def _statistics(self, video: dict[str, Any]) -> dict[str, str]:
        """``statistics`` as the API gives them: counts as strings (no dislikes since
        2021)."""
        counts = self.counts(video["id"], video["created"], STATISTICS_WEIGHTS)
        return {name: str(value) for name, value in counts.items()}

    async def _comment(self, request: web.Request) -> web.Response:
        if (refused := self.charge("comment", request)) is not None:
            return refused
        body = await request.json()
        snippet = body.get("snippet", {})
        comment = {"id": secrets.token_urlsafe(12), "videoId": snippet.get("videoId", ""),
                   "text": snippet.get("topLevelComment", {}).get("snippet", {})
                   .get("textOriginal", "")}
        self.comments.append(comment)
        return web.json_response({"kind": "youtube#commentThread", "id": comment["id"],
                                  "snippet": snippet})
