"""A fake LinkedIn REST API: OAuth, versioned ``/rest/posts``, image uploads, the 422
duplicate error that names the earlier post."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from business.social.fakes.base import KINDS, FakeNetwork, repeats_recent

_ERRORS = {
    "rate_limited": (429, None, "Resource level throttle limit for calls to this resource "
                                "is reached."),
    "expired": (401, "EXPIRED_ACCESS_TOKEN", "The token used in the request has expired"),
    "invalid_token": (401, "INVALID_ACCESS_TOKEN", "Invalid access token"),
    "server": (500, None, "Internal Server Error"),
    "rejected": (400, "UNPROCESSABLE_ENTITY", "Invalid request body"),
}


class FakeLinkedIn(FakeNetwork):
    """LinkedIn as its API answers (``{"status", "serviceErrorCode", "code", "message"}``)."""

    network = "linkedin"
    authorize_path = "/oauth/v2/authorization"
    token_path = "/oauth/v2/accessToken"
    pkce_required = False
    refresh_omit_rate = 0.5
    kinds = tuple(k for k in KINDS if k != "quota")

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("token_lifetime", 60 * 86400.0)
        super().__init__(**kwargs)
        self.images: dict[str, bytes | None] = {}
        self.comments: list[dict[str, Any]] = []

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v2/userinfo", self._userinfo)
        app.router.add_post("/rest/posts", self._post)
        app.router.add_get("/rest/posts", self._posts)
        app.router.add_post("/rest/images", self._images)
        app.router.add_put("/upload/image/{id}", self._upload)
        app.router.add_post("/rest/socialActions/{urn}/comments", self._comment)
        app.router.add_get("/rest/socialActions/{urn}", self._actions)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        if kind == "duplicate":
            return self.duplicate(self.posts[-1]["id"] if self.posts else "urn:li:share:1")
        status, code, message = _ERRORS[kind]
        body: dict[str, Any] = {"status": status, "message": message}
        if code:
            body.update(code=code, serviceErrorCode=65601 if status == 401 else 100)
        headers = {"Retry-After": str(int(retry_after))} if kind == "rate_limited" else {}
        return web.json_response(body, status=status, headers=headers)

    def duplicate(self, urn: str) -> web.Response:
        return web.json_response({"status": 422, "code": "DUPLICATE_POST",
                                  "message": f"Content is a duplicate of {urn}"}, status=422)

    def _versioned(self, request: web.Request) -> web.Response | None:
        if not request.headers.get("LinkedIn-Version"):
            return web.json_response({"status": 426, "code": "VERSION_MISSING",
                                      "message": "A version must be present. Please specify "
                                                 "a version by adding the LinkedIn-Version "
                                                 "header."}, status=426)
        return None

    def _urn(self, request: web.Request) -> str:
        return f"urn:li:person:{self.user_of(request).id}"

    async def _userinfo(self, request: web.Request) -> web.Response:
        user = self.user_of(request)
        return web.json_response({"sub": user.id, "name": user.name,
                                  "email": f"{user.handle}@example.com",
                                  "email_verified": True})

    async def _post(self, request: web.Request) -> web.Response:
        if (refused := self._versioned(request)) is not None:
            return refused
        body = await request.json()
        author = self._urn(request)
        if body.get("author") != author or body.get("lifecycleState") != "PUBLISHED":
            return self.error("rejected", 0, request)
        media = body.get("content", {}).get("media", {}).get("id")
        if media and self.images.get(media) is None:
            return web.json_response({"status": 400, "message": f"image {media} is not "
                                                                "uploaded"}, status=400)
        commentary = body.get("commentary", "")
        earlier = repeats_recent(self.posts, lambda p: p["author"] == author
                                 and p["commentary"] == commentary)
        if earlier is not None:
            return self.duplicate(earlier["id"])
        urn = f"urn:li:share:{self.next_id()}"
        self.posts.append({"id": urn, "author": author, "commentary": commentary,
                           "content": body.get("content"), "created": time.time()})
        return web.Response(status=201, headers={"x-restli-id": urn})

    async def _posts(self, request: web.Request) -> web.Response:
        if (refused := self._versioned(request)) is not None:
            return refused
        author = request.query.get("author", "")
        if request.query.get("q") != "author" or author != self._urn(request):
            return self.error("rejected", 0, request)
        count = int(request.query.get("count", "10"))
        elements = [{"id": p["id"], "author": p["author"], "commentary": p["commentary"],
                     "createdAt": int(p["created"] * 1000)}
                    for p in reversed(self.posts) if p["author"] == author][:count]
        return web.json_response({"elements": elements, "paging": {"count": count}})

    async def _images(self, request: web.Request) -> web.Response:
        if (refused := self._versioned(request)) is not None:
            return refused
        if request.query.get("action") != "initializeUpload":
            return self.error("rejected", 0, request)
        image_id = self.next_id()
        urn = f"urn:li:image:C4E{image_id}"
        self.images[urn] = None
        return web.json_response({"value": {
            "uploadUrlExpiresAt": int((time.time() + 3600) * 1000),
            "uploadUrl": f"{self.base_url}/upload/image/{image_id}", "image": urn}})

    async def _upload(self, request: web.Request) -> web.Response:
        urn = f"urn:li:image:C4E{request.match_info['id']}"
        if urn not in self.images:
            return web.Response(status=404)
        self.images[urn] = await request.read()
        return web.Response(status=201)

    async def _comment(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.comments.append({"object": request.match_info["urn"], **body})
        return web.json_response({"id": self.next_id()}, status=201)

    async def _actions(self, request: web.Request) -> web.Response:
        post = next((p for p in self.posts if p["id"] == request.match_info["urn"]), None)
        if post is None:
            return web.json_response({"status": 404, "message": "Not Found"}, status=404)
        counts = self.counts(post["id"], post["created"], {"likes": 12, "comments": 3})
        return web.json_response({
            "$URN": f"urn:li:socialActions:{post['id']}", "target": post["id"],
            "likesSummary": {"totalLikes": counts["likes"], "aggregatedTotalLikes":
                             counts["likes"], "likedByCurrentUser": False, "selectedLikes": []},
            "commentsSummary": {"totalFirstLevelComments": counts["comments"],
                                "aggregatedTotalComments": counts["comments"],
                                "selectedComments": []}})
