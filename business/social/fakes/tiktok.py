"""A fake TikTok Content Posting API: ``client_key`` OAuth with PKCE, FILE_UPLOAD video
posts (init, chunked PUT with Content-Range, status), the daily per-creator cap."""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from aiohttp import web

from business.social.fakes.base import KINDS, FakeNetwork

#: Engagement fields of ``/v2/video/query/`` and ``/v2/video/list/`` (:meth:`counts`).
VIDEO_WEIGHTS = {"like_count": 9, "comment_count": 3, "share_count": 4, "view_count": 800}
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_ERRORS = {
    "rate_limited": (429, "rate_limit_exceeded", "API rate limit was exceeded"),
    "expired": (401, "access_token_invalid", "The access token is invalid or not found in "
                                              "the request."),
    "invalid_token": (401, "access_token_invalid", "The access token is invalid."),
    "server": (500, "internal_error", "Something went wrong. Please try again later."),
    "duplicate": (400, "invalid_params", "TikTok has no duplicate-content error"),
    "quota": (403, "spam_risk_too_many_posts", "The daily post cap from the API is reached "
                                               "for the current user."),
    "rejected": (400, "invalid_params", "The request parameters are invalid."),
}


class FakeTikTok(FakeNetwork):
    """TikTok as its API answers: ``{"data", "error": {"code", "message", "log_id"}}``."""

    network = "tiktok"
    authorize_path = "/v2/auth/authorize/"
    token_path = "/v2/oauth/token/"
    revoke_path = "/v2/oauth/revoke/"
    revokes_whole_grant = False
    client_param = "client_key"
    kinds = tuple(k for k in KINDS if k != "duplicate")
    #: Direct posts a creator may make per day.
    daily_posts = 15
    #: Seconds a complete upload stays PROCESSING_UPLOAD.
    processing_s = 0.2

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("token_lifetime", 86400.0)
        super().__init__(**kwargs)
        self.publishes: dict[str, dict[str, Any]] = {}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v2/user/info/", self._info)
        app.router.add_post("/v2/post/publish/creator_info/query/", self._creator)
        app.router.add_post("/v2/post/publish/video/init/", self._init)
        app.router.add_put("/upload/{publish_id}", self._upload)
        app.router.add_post("/v2/post/publish/status/fetch/", self._status)
        app.router.add_post("/v2/video/list/", self._list)
        app.router.add_post("/v2/video/query/", self._query)

    def public(self, path: str) -> bool:
        return path.startswith("/upload/")

    def answer(self, data: dict[str, Any], status: int = 200, code: str = "ok",
               message: str = "") -> web.Response:
        return web.json_response({"data": data, "error": {
            "code": code, "message": message, "log_id": secrets.token_hex(10)}},
            status=status)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, code, message = _ERRORS[kind]
        response = self.answer({}, status, code, message)
        if kind == "rate_limited":
            response.headers["Retry-After"] = str(int(retry_after))
        return response

    async def _info(self, request: web.Request) -> web.Response:
        user = self.user_of(request)
        return self.answer({"user": {"open_id": user.id, "display_name": user.name,
                                     "username": user.handle}})

    async def _creator(self, request: web.Request) -> web.Response:
        user = self.user_of(request)
        return self.answer({"creator_username": user.handle, "creator_nickname": user.name,
                            "privacy_level_options": ["PUBLIC_TO_EVERYONE",
                                                      "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"],
                            "max_video_post_duration_sec": 600})

    async def _init(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self.user_of(request)
        today = [p for p in self.posts if p["owner"] == user.id
                 and p["created"] > time.time() - 86400]
        if len(today) >= self.daily_posts:
            return self.error("quota", 0, request)
        source = body.get("source_info", {})
        if source.get("source") != "FILE_UPLOAD" or not source.get("video_size"):
            return self.error("rejected", 0, request)
        publish_id = f"v_pub_file~v2-1.{self.next_id()}"
        self.publishes[publish_id] = {
            "owner": user.id, "title": body.get("post_info", {}).get("title", ""),
            "size": int(source["video_size"]), "chunks": int(source["total_chunk_count"]),
            "received": 0, "status": "PROCESSING_UPLOAD", "ready_at": None}
        upload = f"{self.base_url}/upload/{publish_id}?upload_token={secrets.token_hex(8)}"
        return self.answer({"publish_id": publish_id, "upload_url": upload})

    async def _upload(self, request: web.Request) -> web.Response:
        publish = self.publishes.get(request.match_info["publish_id"])
        found = _RANGE.fullmatch(request.headers.get("Content-Range", ""))
        data = await request.read()
        if publish is None or found is None:
            return web.Response(status=400, text="unknown upload or no Content-Range")
        start, end, total = map(int, found.groups())
        if total != publish["size"] or start != publish["received"] or \
                end - start + 1 != len(data):
            return web.Response(status=416, text="Content-Range does not match")
        publish["received"] = end + 1
        if publish["received"] < total:
            return web.Response(status=206)
        publish["ready_at"] = time.time() + self.processing_s
        return web.Response(status=201)

    async def _status(self, request: web.Request) -> web.Response:
        body = await request.json()
        publish = self.publishes.get(body.get("publish_id", ""))
        if publish is None or publish["owner"] != self.user_of(request).id:
            return self.answer({}, 400, "invalid_publish_id", "publish_id not found")
        if publish["status"] == "PROCESSING_UPLOAD" and publish["ready_at"] \
                and publish["ready_at"] <= time.time():
            post = {"id": self.next_id(), "owner": publish["owner"], "title": publish["title"],
                    "created": time.time()}
            self.posts.append(post)
            publish.update(status="PUBLISH_COMPLETE", post_id=post["id"])
        data: dict[str, Any] = {"status": publish["status"],
                                "uploaded_bytes": publish["received"]}
        if publish["status"] == "PUBLISH_COMPLETE":
            data["publicaly_available_post_id"] = [int(publish["post_id"])]
        return self.answer(data)

    def _video(self, post: dict[str, Any]) -> dict[str, Any]:
        return {"id": post["id"], "title": post["title"], "video_description": post["title"],
                "create_time": int(post["created"]),
                "share_url": f"https://www.tiktok.com/@adabeats/video/{post['id']}",
                **self.counts(post["id"], post["created"], VIDEO_WEIGHTS)}

    async def _list(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self.user_of(request)
        videos = [self._video(p) for p in reversed(self.posts) if p["owner"] == user.id]
        return self.answer({"videos": videos[:int(body.get("max_count", 10))],
                            "cursor": 0, "has_more": False})

    async def _query(self, request: web.Request) -> web.Response:
        body = await request.json()
        wanted = {str(v) for v in body.get("filters", {}).get("video_ids", [])}
        fields = set(request.query.get("fields", "id").split(",")) | {"id"}
        return self.answer({"videos": [
            {k: v for k, v in self._video(p).items() if k in fields}
            for p in self.posts if p["id"] in wanted]})
