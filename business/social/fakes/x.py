"""A fake X API v2: OAuth 2.0 + PKCE, ``/2/tweets``, chunked ``/2/media/upload``,
listening: ``/2/tweets/search/recent`` and ``/2/users/{id}/mentions`` over
:attr:`FakeX.chatter` (other people's posts, added with :meth:`FakeX.say`), and direct
messages: ``POST /2/dm_conversations/with/{participant_id}/messages``, ``GET
/2/dm_conversations/with/{participant_id}/dm_events`` and ``GET /2/dm_events`` over
:attr:`FakeX.dms` (incoming ones added with :meth:`FakeX.message`)."""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from business.social.fakes.base import DUPLICATE_WINDOW_S, FakeNetwork

#: ``public_metrics`` of a post (per-post factors and growth: :meth:`FakeNetwork.counts`).
PUBLIC_WEIGHTS = {"impression_count": 120, "like_count": 7, "reply_count": 2,
                  "retweet_count": 3, "quote_count": 2, "bookmark_count": 2}
#: ``non_public_metrics`` (the author's own posts of the last :data:`NON_PUBLIC_DAYS`).
PRIVATE_WEIGHTS = {"url_link_clicks": 6, "user_profile_clicks": 3}
NON_PUBLIC_DAYS = 30


class FakeX(FakeNetwork):
    """X as its API answers: problem+json errors, ``x-rate-limit-*`` headers, rotation of
    refresh tokens, 403 for a post whose text the account already posted."""

    network = "x"
    authorize_path = "/i/oauth2/authorize"
    token_path = "/2/oauth2/token"
    revoke_path = "/2/oauth2/revoke"
    revokes_whole_grant = False
    #: Seconds videos stay "in_progress" after FINALIZE (STATUS polls until then).
    processing_s = 0.2

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("token_lifetime", 7200.0)
        super().__init__(**kwargs)
        self.media: dict[str, dict[str, Any]] = {}
        #: The newest post per text per author of ``posts`` (duplicate checks stay cheap
        #: with many posts); rebuilt when ``posts`` was changed from outside (a test
        #: clearing it).
        self._texts: dict[str, dict[str, dict[str, Any]]] = {}
        self._indexed = 0
        #: Other people's public posts, oldest first (``say``): what search and mentions read.
        self.chatter: list[dict[str, Any]] = []
        #: Direct message events of the account's conversations, oldest first.
        self.dms: list[dict[str, Any]] = []

    def message(self, text: str, *, author: str = "fan", at: float | None = None) -> str:
        """User ``u-<author>`` sends the account a direct message; its event id."""
        sender = f"u-{author}"
        event = {"id": self.next_id(), "text": text, "sender_id": sender, "username": author,
                 "dm_conversation_id": "-".join(sorted((sender, self.user.id))),
                 "event_type": "MessageCreate",
                 "created_at": self.clock() if at is None else at}
        self.dms.append(event)
        return event["id"]

    def say(self, text: str, *, author: str = "fan", lang: str = "en",
            at: float | None = None) -> str:
        """Someone else posts ``text`` publicly; its id (ids grow with time, as X's do)."""
        post = {"id": self.next_id(), "text": text, "author_id": f"u-{author}",
                "username": author, "lang": lang,
                "created_at": self.clock() if at is None else at}
        self.chatter.append(post)
        return post["id"]

    def _authored(self, author: str) -> dict[str, dict[str, Any]]:
        if self._indexed != len(self.posts):
            self._texts = {}
            for post in self.posts:
                self._texts.setdefault(post["author"], {})[post["text"]] = post
            self._indexed = len(self.posts)
        return self._texts.setdefault(author, {})

    def _repeats(self, author: str, text: str) -> bool:
        """Whether ``text`` repeats one of the author's posts of the duplicate window."""
        earlier = self._authored(author).get(text)
        return earlier is not None and earlier["created_at"] > time.time() - DUPLICATE_WINDOW_S

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/2/users/me", self._me)
        app.router.add_post("/2/tweets", self._tweet)
        app.router.add_get("/2/tweets/{id}", self._get_tweet)
        app.router.add_get("/2/users/{id}/tweets", self._timeline)
        app.router.add_get("/2/tweets/search/recent", self._search)
        app.router.add_get("/2/users/{id}/mentions", self._mentions)
        app.router.add_post("/2/dm_conversations/with/{participant}/messages", self._send_dm)
        app.router.add_get("/2/dm_conversations/with/{participant}/dm_events",
                           self._conversation)
        app.router.add_get("/2/dm_events", self._dm_events)
        app.router.add_post("/2/media/upload", self._upload)
        app.router.add_get("/2/media/upload", self._status)

    def revoked_answer(self) -> web.Response:
        return web.json_response({"revoked": True})

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        reset = str(int(time.time() + retry_after + 0.999))
        shapes = {
            "rate_limited": (429, "Too Many Requests", "Too Many Requests"),
            "expired": (401, "Unauthorized", "Unauthorized"),
            "invalid_token": (401, "Unauthorized", "Unauthorized"),
            "server": (503, "Service Unavailable", "Service Unavailable"),
            "duplicate": (403, "Forbidden",
                          "You are not allowed to create a Tweet with duplicate content."),
            "quota": (429, "UsageCapExceeded", "Usage cap exceeded: Monthly product cap"),
            "rejected": (400, "Invalid Request", "One or more parameters are invalid."),
        }
        status, title, detail = shapes[kind]
        headers = {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
                   "x-rate-limit-reset": reset} if status == 429 else {}
        return web.json_response({"title": title, "detail": detail, "type": "about:blank",
                                  "status": status}, status=status, headers=headers,
                                 content_type="application/problem+json")

    async def _me(self, request: web.Request) -> web.Response:
        user = self.user_of(request)
        return web.json_response({"data": {"id": user.id, "name": user.name,
                                           "username": user.handle}})

    async def _tweet(self, request: web.Request) -> web.Response:
        body = await request.json()
        text = body.get("text", "")
        user = self.user_of(request)
        if not text and not body.get("media"):
            return self.error("rejected", 0, request)
        if self._repeats(user.id, text):
            return self.error("duplicate", 0, request)
        media_ids = body.get("media", {}).get("media_ids", [])
        for media_id in media_ids:
            media = self.media.get(media_id)
            if media is None or media["state"] != "succeeded":
                return web.json_response({"title": "Invalid Request", "status": 400,
                                          "detail": f"media {media_id} is not ready"},
                                         status=400)
        post = {"id": self.next_id(), "text": text, "author": user.id, "media": media_ids,
                "reply_to": body.get("reply", {}).get("in_reply_to_tweet_id"),
                "created_at": time.time()}
        self.posts.append(post)
        self._texts.setdefault(user.id, {})[text] = post
        self._indexed = len(self.posts)
        headers = {"x-rate-limit-limit": "100", "x-rate-limit-remaining": str(
            max(0, 100 - len(self.posts))), "x-rate-limit-reset": str(int(time.time()) + 900)}
        return web.json_response({"data": {"id": post["id"], "text": text}}, status=201,
                                 headers=headers)

    async def _get_tweet(self, request: web.Request) -> web.Response:
        post = next((p for p in self.posts if p["id"] == request.match_info["id"]), None)
        if post is None:
            return web.json_response({"errors": [{"title": "Not Found Error"}]}, status=404)
        fields = request.query.get("tweet.fields", "").split(",")
        data: dict[str, Any] = {"id": post["id"], "text": post["text"]}
        counts = self.counts(post["id"], post["created_at"], PUBLIC_WEIGHTS)
        if "public_metrics" in fields:
            data["public_metrics"] = counts
        answer: dict[str, Any] = {"data": data}
        if "non_public_metrics" in fields:
            # only the author's own posts of the last 30 days (X's rule)
            own = post["author"] == self.user_of(request).id
            if own and self.clock() - post["created_at"] <= NON_PUBLIC_DAYS * 86400:
                private = self.counts(post["id"], post["created_at"], PRIVATE_WEIGHTS)
                data["non_public_metrics"] = {
                    "impression_count": counts["impression_count"], **private}
            else:
                answer["errors"] = [{
                    "title": "Field Authorization Error", "resource_id": post["id"],
                    "field": "non_public_metrics", "type":
                    "https://api.twitter.com/2/problems/not-authorized-for-field",
                    "detail": "Sorry, you are not authorized to access 'non_public_metrics' "
                              f"on the Tweet with ids: [{post['id']}]."}]
        return web.json_response(answer)

    async def _timeline(self, request: web.Request) -> web.Response:
        mine = [p for p in self.posts if p["author"] == request.match_info["id"]]
        limit = int(request.query.get("max_results", "10"))
        fields = request.query.get("tweet.fields", "").split(",")
        data = [{"id": p["id"], "text": p["text"]} for p in reversed(mine)][:limit]
        if "created_at" in fields:
            for post, source in zip(data, reversed(mine), strict=False):
                post["created_at"] = _x_time(source["created_at"])
        if "referenced_tweets" in fields:
            parents = {p["id"]: p.get("reply_to") for p in mine}
            for post in data:
                if parents.get(post["id"]):
                    post["referenced_tweets"] = [{"type": "replied_to",
                                                  "id": parents[post["id"]]}]
        return web.json_response({"data": data, "meta": {"result_count": len(data)}})

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        command = form.get("command")
        if command == "INIT":
            media_id = self.next_id()
            self.media[media_id] = {"total": int(str(form["total_bytes"])), "chunks": {},
                                    "type": str(form["media_type"]), "state": "init",
                                    "category": str(form.get("media_category", ""))}
            return web.json_response({"data": {"id": media_id, "media_key": f"3_{media_id}",
                                               "expires_after_secs": 86400}}, status=202)
        media = self.media.get(str(form.get("media_id", "")))
        if media is None:
            return web.json_response({"title": "Invalid Request", "status": 400,
                                      "detail": "unknown media_id"}, status=400)
        if command == "APPEND":
            part = form["media"]
            media["chunks"][int(str(form["segment_index"]))] = part.file.read()
            return web.Response(status=204)
        if command == "FINALIZE":
            size = sum(len(c) for c in media["chunks"].values())
            if size != media["total"]:
                return web.json_response({"title": "Invalid Request", "status": 400,
                                          "detail": f"got {size} of {media['total']} bytes"},
                                         status=400)
            data: dict[str, Any] = {"id": form["media_id"]}
            if media["category"] == "tweet_video":
                media["state"] = "in_progress"
                media["ready_at"] = time.time() + self.processing_s
                data["processing_info"] = {"state": "pending", "check_after_secs": 1}
            else:
                media["state"] = "succeeded"
            return web.json_response({"data": data})
        return web.json_response({"title": "Invalid Request", "status": 400,
                                  "detail": f"unknown command {command!r}"}, status=400)

    async def _status(self, request: web.Request) -> web.Response:
        media_id = request.query.get("media_id", "")
        media = self.media.get(media_id)
        if media is None or request.query.get("command") != "STATUS":
            return web.json_response({"title": "Invalid Request", "status": 400}, status=400)
        if media["state"] == "in_progress" and time.time() >= media["ready_at"]:
            media["state"] = "succeeded"
        info = {"state": media["state"], "progress_percent":
                100 if media["state"] == "succeeded" else 50}
        if media["state"] == "in_progress":
            info["check_after_secs"] = 1
        return web.json_response({"data": {"id": media_id, "processing_info": info}})

    # -- listening ---------------------------------------------------------------------

    async def _search(self, request: web.Request) -> web.Response:
        """``GET /2/tweets/search/recent``: terms of ``query`` (words, ``#tags``,
        ``@names``, ``"phrases"``) all present, newest first, paged by ``next_token``."""
        query = request.query.get("query", "").strip()
        if not query or len(query) > 512:
            return web.json_response({"title": "Invalid Request", "status": 400, "detail":
                                      "query must be 1 to 512 characters"}, status=400)
        terms = [t.strip('"').lower() for t in re.findall(r'"[^"]+"|\S+', query)]
        found = [p for p in self.chatter if all(t in p["text"].lower() for t in terms)]
        return self._page(request, found, "next_token")

    async def _mentions(self, request: web.Request) -> web.Response:
        """``GET /2/users/{id}/mentions``: posts naming ``@handle``, paged by
        ``pagination_token``."""
        user = self.user_of(request)
        if request.match_info["id"] != user.id:
            return web.json_response({"title": "Forbidden", "status": 403,
                                      "detail": "not your mentions"}, status=403)
        name = f"@{user.handle}".lower()
        found = [p for p in self.chatter if name in p["text"].lower()]
        return self._page(request, found, "pagination_token")

    def _page(self, request: web.Request, found: list[dict[str, Any]],
              token_param: str) -> web.Response:
        since = int(request.query.get("since_id", "0") or 0)
        limit = int(request.query.get("max_results", "10"))
        if not 5 <= limit <= 100:
            return web.json_response({"title": "Invalid Request", "status": 400, "detail":
                                      "max_results must be between 5 and 100"}, status=400)
        newest = sorted((p for p in found if int(p["id"]) > since),
                        key=lambda p: int(p["id"]), reverse=True)
        start = int(request.query.get(token_param, "0") or 0)
        page = newest[start:start + limit]
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta["newest_id"], meta["oldest_id"] = page[0]["id"], page[-1]["id"]
        if start + limit < len(newest):
            meta["next_token"] = str(start + limit)
        data = [{"id": p["id"], "text": p["text"], "author_id": p["author_id"],
                 "lang": p["lang"], "created_at": time.strftime(
                     "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(p["created_at"]))} for p in page]
        users = {p["author_id"]: p["username"] for p in page}
        body: dict[str, Any] = {"meta": meta}
        if data:
            body["data"] = data
            body["includes"] = {"users": [{"id": k, "username": v} for k, v in users.items()]}
        return web.json_response(body)

    # -- direct messages ---------------------------------------------------------------

    def _event_out(self, event: dict[str, Any]) -> dict[str, Any]:
        return {"id": event["id"], "event_type": "MessageCreate", "text": event["text"],
                "sender_id": event["sender_id"],
                "dm_conversation_id": event["dm_conversation_id"],
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                            time.gmtime(event["created_at"]))}

    async def _send_dm(self, request: web.Request) -> web.Response:
        """``POST /2/dm_conversations/with/{participant_id}/messages`` ``{"text"}``."""
        user = self.user_of(request)
        participant = request.match_info["participant"]
        text = str((await request.json()).get("text", ""))
        if not text or len(text) > 10_000 or participant == user.id:
            return web.json_response({"title": "Invalid Request", "status": 400, "detail":
                                      "text must be 1 to 10000 characters, to someone "
                                      "else"}, status=400,
                                     content_type="application/problem+json")
        event = {"id": self.next_id(), "text": text, "sender_id": user.id,
                 "username": user.handle, "event_type": "MessageCreate",
                 "dm_conversation_id": "-".join(sorted((participant, user.id))),
                 "created_at": self.clock()}
        self.dms.append(event)
        return web.json_response({"data": {"dm_conversation_id": event["dm_conversation_id"],
                                           "dm_event_id": event["id"]}}, status=201)

    async def _conversation(self, request: web.Request) -> web.Response:
        """One conversation's events, newest first."""
        user = self.user_of(request)
        conversation = "-".join(sorted((request.match_info["participant"], user.id)))
        found = [e for e in reversed(self.dms) if e["dm_conversation_id"] == conversation]
        limit = int(request.query.get("max_results", "100"))
        data = [self._event_out(e) for e in found[:limit]]
        return web.json_response({"data": data, "meta": {"result_count": len(data)}}
                                 if data else {"meta": {"result_count": 0}})

    async def _dm_events(self, request: web.Request) -> web.Response:
        """Every conversation's events, newest first, paged by ``pagination_token``."""
        limit = int(request.query.get("max_results", "100"))
        if not 1 <= limit <= 100:
            return web.json_response({"title": "Invalid Request", "status": 400, "detail":
                                      "max_results must be between 1 and 100"}, status=400)
        found = list(reversed(self.dms))
        start = int(request.query.get("pagination_token", "0") or 0)
        page = found[start:start + limit]
        meta: dict[str, Any] = {"result_count": len(page)}
        if start + limit < len(found):
            meta["next_token"] = str(start + limit)
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = [self._event_out(e) for e in page]
            body["includes"] = {"users": [{"id": e["sender_id"], "username": e["username"]}
                                          for e in page]}
        return web.json_response(body)


def _x_time(epoch: float) -> str:
    """``epoch`` as X writes ``created_at`` (``2026-05-01T09:00:00.000Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))
