"""Fake Meta Graph APIs: Instagram (Instagram Login), Threads and Facebook Pages.

They answer Graph errors (``{"error": {"message", "type", "code", "error_subcode",
"fbtrace_id"}}``), throttle with code 4 and ``X-Business-Use-Case-Usage``, issue no
refresh tokens (long-lived tokens are exchanged and refreshed instead), and keep the
container -> publish flow of Instagram and Threads with the rolling 24 h publishing limit.
"""

from __future__ import annotations

import hmac
import json
import math
import secrets
import time
from typing import Any

from aiohttp import web

from business.social.fakes.base import KINDS, FakeNetwork, FakeUser, graph_time, repeats_recent

LONG_LIVED_S = 60 * 86400
_ERRORS = {
    # kind: (status, code, subcode, message)
    "rate_limited": (400, 4, None, "(#4) Application request limit reached"),
    "expired": (400, 190, 463, "Error validating access token: Session has expired"),
    "invalid_token": (400, 190, None, "Invalid OAuth access token - Cannot parse access token"),
    "server": (500, 2, None, "An unexpected error has occurred. Please retry your request "
                             "later."),
    "duplicate": (400, 506, None, "(#506) Duplicate status message"),
    "quota": (400, 9, 2207042, "The maximum number of posts that can be published in a 24 "
                               "hour period has been reached"),
    "rejected": (400, 100, None, "(#100) Invalid parameter"),
}


class FakeGraph(FakeNetwork):
    """What the Meta fakes share: Graph errors and long-lived tokens."""

    version = "v21.0"
    issue_refresh = False

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("token_lifetime", 3600.0)
        super().__init__(**kwargs)

    #: Lifetime insights a post has: Graph metric name -> weight (:meth:`counts`).
    insight_weights: dict[str, float] = {}
    #: Metrics only a video has.
    video_metrics: frozenset[str] = frozenset()

    def v(self, path: str) -> str:
        return f"/{self.version}{path}"

    def insights(self, request: web.Request, post_id: str, created: float, *,
                 video: bool = False) -> web.Response:
        """``GET /{id}/insights?metric=a,b``: ``data[{name, period, values[{value}]}]``;
        an unknown metric is Graph's (#100) error, as the network answers it."""
        names = [n for n in request.query.get("metric", "").split(",") if n]
        unknown = [n for n in names if n not in self.insight_weights]
        if not names or unknown:
            return self.graph_error("rejected", "(#100) metric[0] must be one of the "
                                    f"following values: {', '.join(self.insight_weights)}")
        counts = self.counts(post_id, created, self.insight_weights)
        return web.json_response({"data": [
            {"name": n, "period": "lifetime", "values": [{"value": counts[n]}],
             "title": n.replace("_", " ").title(), "id": f"{post_id}/insights/{n}/lifetime"}
            for n in names if video or n not in self.video_metrics]})

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, code, subcode, message = _ERRORS[kind]
        error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                                 "fbtrace_id": secrets.token_hex(8)}
        if subcode:
            error["error_subcode"] = subcode
        if kind == "server":
            error["is_transient"] = True
        headers = {}
        if kind == "rate_limited":
            minutes = max(1, math.ceil(retry_after / 60))
            headers["X-Business-Use-Case-Usage"] = json.dumps({self.user.id: [{
                "type": self.network, "call_count": 100, "total_cputime": 12,
                "total_time": 15, "estimated_time_to_regain_access": minutes}]})
        return web.json_response({"error": error}, status=status, headers=headers)

    def graph_error(self, kind: str, message: str | None = None) -> web.Response:
        status, code, subcode, default = _ERRORS[kind]
        body: dict[str, Any] = {"message": message or default, "type": "OAuthException",
                                "code": code}
        if subcode:
            body["error_subcode"] = subcode
        return web.json_response({"error": body}, status=status)

    def oauth_error(self, status: int, error: str, description: str) -> web.Response:
        return web.json_response({"error": {"message": f"{error}: {description}",
                                             "type": "OAuthException", "code": 100}},
                                 status=400)

    def long_lived(self, request: web.Request, grant: str, *, with_secret: bool
                   ) -> web.Response:
        """``GET /access_token`` / ``/refresh_access_token``: a fresh 60-day token."""
        query = request.query
        if query.get("grant_type") != grant:
            return self.oauth_error(400, "invalid_request", f"grant_type must be {grant}")
        if with_secret and not hmac.compare_digest(query.get("client_secret", ""),
                                                   self.client_secret):
            return self.oauth_error(400, "invalid_client", "client_secret is wrong")
        held = self._tokens.get(query.get("access_token", ""))
        if held is None or held.expires_at < time.time():
            return self.graph_error("expired")
        token = self.issue_access_token(held.user, held.scope)
        self._tokens[token].expires_at = time.time() + LONG_LIVED_S
        return web.json_response({"access_token": token, "token_type": "bearer",
                                  "expires_in": LONG_LIVED_S})


class FakeContainers(FakeGraph):
    """Instagram and Threads: containers, publishing, the rolling 24 h limit."""

    media_edge = "/media"
    publish_edge = "/media_publish"
    limit_edge = "/content_publishing_limit"
    status_field = "status_code"
    text_field = "caption"
    publish_limit = 100
    exchange_grant = "ig_exchange_token"
    refresh_grant_name = "ig_refresh_token"
    permalink_base = "https://www.instagram.com/p/"
    #: Seconds a video container stays IN_PROGRESS once its bytes are there.
    processing_s = 0.2
    public_prefixes = ("/access_token", "/refresh_access_token", "/oauth/")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.containers: dict[str, dict[str, Any]] = {}
        self.comments: list[dict[str, str]] = []

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/access_token", self._exchange)
        app.router.add_get("/refresh_access_token", self._refresh_long_lived)
        app.router.add_get(self.v("/me"), self._me)
        app.router.add_post(self.v("/{uid}" + self.media_edge), self._create)
        app.router.add_get(self.v("/{uid}" + self.media_edge), self._list)
        app.router.add_post(self.v("/{uid}" + self.publish_edge), self._publish)
        app.router.add_get(self.v("/{uid}" + self.limit_edge), self._limit)
        app.router.add_post(self.v("/{mid}/comments"), self._comment)
        app.router.add_get(self.v("/{mid}/insights"), self._insights)
        app.router.add_get(self.v("/{oid}"), self._object)

    async def _exchange(self, request: web.Request) -> web.Response:
        return self.long_lived(request, self.exchange_grant, with_secret=True)

    async def _refresh_long_lived(self, request: web.Request) -> web.Response:
        return self.long_lived(request, self.refresh_grant_name, with_secret=False)

    async def _me(self, request: web.Request) -> web.Response:
        user = self.user_of(request)
        return web.json_response({"id": user.id, "user_id": user.id, "username": user.handle,
                                  "name": user.name})

    def _own(self, request: web.Request) -> web.Response | None:
        if request.match_info["uid"] != self.user_of(request).id:
            return self.graph_error("rejected", "(#10) Application does not have permission "
                                                "for this action")
        return None

    def _recent(self, user: FakeUser) -> list[dict[str, Any]]:
        since = time.time() - 86400
        return [p for p in self.posts if p["owner"] == user.id and p["created"] > since
                and not p.get("reply_to")]

    def container_state(self, container: dict[str, Any]) -> str:
        if container["state"] == "IN_PROGRESS" and container.get("ready_at", math.inf) \
                <= time.time():
            container["state"] = "FINISHED"
        return container["state"]

    async def _create(self, request: web.Request) -> web.Response:
        if (refused := self._own(request)) is not None:
            return refused
        form = {k: str(v) for k, v in (await request.post()).items()}
        container = self.new_container(form)
        if isinstance(container, web.Response):
            return container
        container.update(id=self.next_id(), owner=self.user_of(request).id)
        self.containers[container["id"]] = container
        answer = {"id": container["id"]}
        if form.get("upload_type") == "resumable":
            answer["uri"] = f"{self.base_url}/ig-api-upload/{self.version}/{container['id']}"
        return web.json_response(answer)

    def new_container(self, form: dict[str, str]) -> dict[str, Any] | web.Response:
        """A container from the creation form (state FINISHED or IN_PROGRESS)."""
        raise NotImplementedError

    async def _publish(self, request: web.Request) -> web.Response:
        if (refused := self._own(request)) is not None:
            return refused
        form = await request.post()
        container = self.containers.get(str(form.get("creation_id", "")))
        if container is None or container["owner"] != self.user_of(request).id:
            return self.graph_error("rejected", "(#100) creation_id is not a container")
        if self.container_state(container) != "FINISHED":
            return web.json_response({"error": {
                "message": "Media ID is not available", "type": "OAuthException",
                "code": 9007, "error_subcode": 2207027}}, status=400)
        if not container.get("reply_to") and len(self._recent(self.user_of(request))) \
                >= self.publish_limit:
            return self.graph_error("quota")
        post = {"id": self.next_id(), "owner": container["owner"], "created": time.time(),
                self.text_field: container.get("text", ""), "media": container.get("media"),
                "reply_to": container.get("reply_to")}
        post["permalink"] = f"{self.permalink_base}{post['id']}/"
        container["state"] = "PUBLISHED"
        self.posts.append(post)
        return web.json_response({"id": post["id"]})

    async def _list(self, request: web.Request) -> web.Response:
        if (refused := self._own(request)) is not None:
            return refused
        mine = [p for p in reversed(self.posts) if p["owner"] == request.match_info["uid"]]
        limit = int(request.query.get("limit", "25"))
        data = [{"id": p["id"], self.text_field: p[self.text_field],
                 "permalink": p["permalink"], "timestamp": graph_time(p["created"])}
                for p in mine][:limit]
        return web.json_response({"data": data})

    async def _limit(self, request: web.Request) -> web.Response:
        if (refused := self._own(request)) is not None:
            return refused
        return web.json_response({"data": [{
            "quota_usage": len(self._recent(self.user_of(request))),
            "config": {"quota_total": self.publish_limit, "quota_duration": 86400}}]})

    async def _comment(self, request: web.Request) -> web.Response:
        form = await request.post()
        comment = {"id": self.next_id(), "media": request.match_info["mid"],
                   "text": str(form.get("message", ""))}
        self.comments.append(comment)
        return web.json_response({"id": comment["id"]})

    async def _insights(self, request: web.Request) -> web.Response:
        post = next((p for p in self.posts if p["id"] == request.match_info["mid"]), None)
        if post is None:
            return self.graph_error("rejected", "(#100) unknown media")
        return self.insights(request, post["id"], post["created"])

    async def _object(self, request: web.Request) -> web.Response:
        oid = request.match_info["oid"]
        if oid in self.containers:
            container = self.containers[oid]
            state = self.container_state(container)
            return web.json_response({"id": oid, self.status_field: state, "status": state})
        post = next((p for p in self.posts if p["id"] == oid), None)
        if post is None:
            return self.graph_error("rejected", f"(#100) Object {oid} does not exist")
        return web.json_response({"id": oid, "permalink": post["permalink"],
                                  self.text_field: post[self.text_field]})


class FakeInstagram(FakeContainers):
    """Instagram API with Instagram Login: 100 posts per rolling 24 h, resumable video."""

    network = "instagram"
    # Instagram API media insights (``views`` replaced ``impressions`` in 2025)
    insight_weights = {"reach": 40, "likes": 5, "comments": 2, "shares": 2, "saved": 2,
                       "views": 90, "total_interactions": 11}
    kinds = tuple(k for k in KINDS if k != "duplicate")
    authorize_path = "/oauth/authorize"
    token_path = "/oauth/access_token"

    def add_routes(self, app: web.Application) -> None:
        super().add_routes(app)
        app.router.add_post(f"/ig-api-upload/{self.version}/{{cid}}", self._rupload)

    def new_container(self, form: dict[str, str]) -> dict[str, Any] | web.Response:
        kind = form.get("media_type", "IMAGE")
        container: dict[str, Any] = {"text": form.get("caption", ""), "media": kind}
        if kind == "CAROUSEL":
            children = form.get("children", "").split(",")
            if not 2 <= len(children) <= 10 or any(
                    self.containers.get(c, {}).get("state") not in ("FINISHED", "IN_PROGRESS")
                    for c in children):
                return self.graph_error("rejected", "(#100) children must be 2 to 10 "
                                                    "finished carousel items")
            container["state"] = "FINISHED"
        elif kind in ("REELS", "VIDEO"):
            if form.get("upload_type") != "resumable" and not form.get("video_url"):
                return self.graph_error("rejected", "(#100) video_url or upload_type="
                                                    "resumable is required")
            container["state"] = "IN_PROGRESS"
        elif form.get("image_url", "").startswith(("http://", "https://")):
            container["state"] = "FINISHED"
        else:
            return self.graph_error("rejected", "(#100) The parameter image_url is required")
        return container

    async def _rupload(self, request: web.Request) -> web.Response:
        container = self.containers.get(request.match_info["cid"])
        data = await request.read()
        if container is None:
            return web.json_response({"debug_info": {"message": "unknown container"}},
                                     status=400)
        if request.headers.get("file_size") != str(len(data)) or \
                request.headers.get("offset") != "0":
            return web.json_response({"debug_info": {"message": "file_size does not match "
                                                                "the bytes sent"}}, status=400)
        container["ready_at"] = time.time() + self.processing_s
        return web.json_response({"success": True, "message": "Upload successful."})


class FakeThreads(FakeContainers):
    """Threads API: TEXT/IMAGE/VIDEO containers, 250 posts per rolling 24 h."""

    network = "threads"
    insight_weights = {"views": 70, "likes": 5, "replies": 2, "reposts": 2, "quotes": 2,
                       "shares": 2}
    kinds = tuple(k for k in KINDS if k != "duplicate")
    version = "v1.0"
    pkce_required = False
    authorize_path = "/oauth/authorize"
    token_path = "/oauth/access_token"
    media_edge = "/threads"
    publish_edge = "/threads_publish"
    limit_edge = "/threads_publishing_limit"
    status_field = "status"
    text_field = "text"
    publish_limit = 250
    exchange_grant = "th_exchange_token"
    refresh_grant_name = "th_refresh_token"
    permalink_base = "https://www.threads.net/@adabeats/post/"

    def new_container(self, form: dict[str, str]) -> dict[str, Any] | web.Response:
        kind = form.get("media_type", "")
        container: dict[str, Any] = {"text": form.get("text", ""), "media": kind,
                                     "reply_to": form.get("reply_to_id")}
        image = kind == "IMAGE" and form.get("image_url", "").startswith("http")
        if image or (kind == "TEXT" and container["text"]):
            container["state"] = "FINISHED"
        elif kind == "VIDEO" and form.get("video_url", "").startswith("http"):
            container.update(state="IN_PROGRESS", ready_at=time.time() + self.processing_s)
        else:
            return self.graph_error("rejected", f"(#100) media_type {kind!r} needs text, "
                                                "image_url or video_url")
        return container


class FakeFacebook(FakeGraph):
    """Facebook Pages: user tokens exchanged for Page tokens, feed/photos/videos, 506 for
    a message the Page already posted."""

    network = "facebook"
    insight_weights = {"post_impressions": 300, "post_impressions_unique": 210,
                       "post_clicks": 17, "post_video_views": 150}
    video_metrics = frozenset({"post_video_views"})
    kinds = tuple(k for k in KINDS if k != "quota")
    authorize_path = "/v21.0/dialog/oauth"
    token_path = "/v21.0/oauth/access_token"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pages = [FakeUser(id="1029384756", name="Ada Beats Music", handle="adabeatsmusic")]
        self.comments: list[dict[str, str]] = []
        #: The Page tokens each user's grant issued (``/me/accounts``), by user id.
        self.page_tokens: dict[str, set[str]] = {}

    def add_token_route(self, app: web.Application) -> None:
        app.router.add_get(self.token_path, self._token)
        app.router.add_delete(self.v("/me/permissions"), self._deauthorize)

    async def _me(self, request: web.Request) -> web.Response:
        user = self.user_of(request)
        return web.json_response({"id": user.id, "name": user.name})

    async def _deauthorize(self, request: web.Request) -> web.Response:
        """``DELETE /me/permissions``: the user withdraws every permission of the app;
        their token and the Page tokens their grant issued die (another user's grant on
        the same Page, and its Page tokens, stay)."""
        self.stats.revoke_requests += 1
        user = self.user_of(request)
        self.withdraw(user)
        for token in self.page_tokens.pop(user.id, set()):
            self._tokens.pop(token, None)
        self.stats.revocations += 1
        return web.json_response({"success": True})

    async def _token(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        if query.get("client_id") != self.client_id or not hmac.compare_digest(
                query.get("client_secret", ""), self.client_secret):
            return self.oauth_error(400, "invalid_client", "client_id or client_secret")
        if query.get("grant_type") == "fb_exchange_token":
            held = self._tokens.get(query.get("fb_exchange_token", ""))
            if held is None or held.expires_at < time.time():
                return self.graph_error("expired")
            token = self.issue_access_token(held.user, held.scope)
            self._tokens[token].expires_at = time.time() + LONG_LIVED_S
            return web.json_response({"access_token": token, "token_type": "bearer",
                                      "expires_in": LONG_LIVED_S})
        self.stats.token_requests.append(query)
        answer = self.code_grant(query)
        if isinstance(answer, web.Response):
            return answer
        return web.json_response({"access_token": answer["access_token"],
                                  "token_type": "bearer", "expires_in": answer["expires_in"]})

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(self.v("/me"), self._me)
        app.router.add_get(self.v("/me/accounts"), self._accounts)
        app.router.add_post(self.v("/{page}/feed"), self._feed_post)
        app.router.add_get(self.v("/{page}/feed"), self._feed)
        app.router.add_post(self.v("/{page}/photos"), self._media_post)
        app.router.add_post(self.v("/{page}/videos"), self._media_post)
        app.router.add_post(self.v("/{post}/comments"), self._comment)
        app.router.add_get(self.v("/{post}/insights"), self._insights)

    async def _accounts(self, request: web.Request) -> web.Response:
        data = []
        user = self.user_of(request)
        for page in self.pages:
            token = self.issue_access_token(page, "pages_manage_posts")
            self._tokens[token].expires_at = math.inf  # Page tokens from long-lived users
            self.page_tokens.setdefault(user.id, set()).add(token)
            data.append({"id": page.id, "name": page.name, "username": page.handle,
                         "access_token": token, "tasks": ["CREATE_CONTENT", "MANAGE"]})
        return web.json_response({"data": data, "paging": {}})

    def _page(self, request: web.Request) -> FakeUser | web.Response:
        user = self.user_of(request)
        if request.match_info["page"] != user.id or user not in self.pages:
            return self.graph_error("rejected", "(#200) The user hasn't authorized the "
                                                "application to perform this action")
        return user

    def _store(self, page: FakeUser, message: str, kind: str) -> web.Response | dict:
        if message and repeats_recent(self.posts, lambda p: p["page"] == page.id
                                      and p["message"] == message):
            return self.graph_error("duplicate")
        post_id = f"{page.id}_{self.next_id()}"
        post = {"id": post_id, "page": page.id, "message": message, "kind": kind,
                "created": time.time(), "permalink_url": f"https://www.facebook.com/{post_id}"}
        self.posts.append(post)
        return post

    async def _feed_post(self, request: web.Request) -> web.Response:
        page = self._page(request)
        if isinstance(page, web.Response):
            return page
        form = await request.post()
        message = str(form.get("message", ""))
        if not message and not form.get("link"):
            return self.graph_error("rejected", "(#100) message or link is required")
        post = self._store(page, message, "status")
        return post if isinstance(post, web.Response) else web.json_response({"id": post["id"]})

    async def _media_post(self, request: web.Request) -> web.Response:
        page = self._page(request)
        if isinstance(page, web.Response):
            return page
        form = await request.post()
        source = form.get("source")
        if not hasattr(source, "file") or not source.file.read(1):
            return self.graph_error("rejected", "(#100) source (the file) is required")
        kind = "photo" if request.path.endswith("/photos") else "video"
        message = str(form.get("caption" if kind == "photo" else "description", ""))
        post = self._store(page, message, kind)
        if isinstance(post, web.Response):
            return post
        media_id = self.next_id()
        if kind == "photo":
            return web.json_response({"id": media_id, "post_id": post["id"]})
        return web.json_response({"id": post["id"]})

    async def _feed(self, request: web.Request) -> web.Response:
        page = self._page(request)
        if isinstance(page, web.Response):
            return page
        limit = int(request.query.get("limit", "25"))
        data = [{"id": p["id"], "message": p["message"], "permalink_url": p["permalink_url"],
                 "created_time": graph_time(p["created"])}
                for p in reversed(self.posts) if p["page"] == page.id][:limit]
        return web.json_response({"data": data})

    async def _comment(self, request: web.Request) -> web.Response:
        form = await request.post()
        comment = {"id": self.next_id(), "post": request.match_info["post"],
                   "text": str(form.get("message", ""))}
        self.comments.append(comment)
        return web.json_response({"id": comment["id"]})

    async def _insights(self, request: web.Request) -> web.Response:
        post = next((p for p in self.posts if p["id"] == request.match_info["post"]), None)
        if post is None:
            return self.graph_error("rejected", "(#100) unknown post")
        return self.insights(request, post["id"], post["created"],
                             video=post["kind"] == "video")
