"""A fake AT Protocol PDS: app-password sessions (createSession/refreshSession with JWTs),
blobs, ``app.bsky.feed.post`` records, the PDS's error shapes, and listening:
``app.bsky.feed.searchPosts`` (``q``, ``mentions``, ``sort=latest``, ``cursor``) over
:attr:`FakeBluesky.chatter` (other people's posts, added with :meth:`FakeBluesky.say`);
replies (``reply.root``/``reply.parent`` strong refs checked against the posts), and
chat through the ``atproto-proxy`` header: ``chat.bsky.convo.getConvoForMembers``,
``sendMessage``, ``getMessages`` and ``getLog`` over :attr:`FakeBluesky.convos`
(incoming messages added with :meth:`FakeBluesky.message`).

Sessions end with ``com.atproto.server.deleteSession`` (the refresh JWT as Bearer, no
body, an empty 200): every token of that session (its access JWTs and its refresh JWT,
across refreshes) then answers ``InvalidToken`` / ``ExpiredToken``; the account's other
sessions live on. A spent or unknown refresh JWT is a 400 ``ExpiredToken``, an access JWT
a 400 ``InvalidToken`` ("Invalid token type"), as the PDS answers. Counted in
``stats.revocations`` and failing on command like the other networks' revocations
(:meth:`~.base.FakeNetwork.fail_revoke`: a 500 here)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from aiohttp import web

from business.social.fakes.base import KINDS, FakeNetwork, FakeUser, _Token

_ERRORS = {
    "rate_limited": (429, "RateLimitExceeded", "Rate Limit Exceeded"),
    "expired": (400, "ExpiredToken", "Token has expired"),
    "invalid_token": (401, "InvalidToken", "Token could not be verified"),
    "server": (500, "InternalServerError", "Internal Server Error"),
    "rejected": (400, "InvalidRequest", "Input/record is invalid"),
}
_B32 = "234567abcdefghijklmnopqrstuvwxyz"
MAX_GRAPHEMES = 300
CHAT_SERVICE = "did:web:api.bsky.chat#bsky_chat"
#: ``getPosts`` counts of a post view (:meth:`FakeNetwork.counts`).
COUNT_WEIGHTS = {"likeCount": 21, "repostCount": 4, "replyCount": 2, "quoteCount": 2}


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _tid() -> str:
    """A record key in the TID format (microseconds since 1970, base32-sortable)."""
    value = (time.time_ns() // 1000) << 10 | secrets.randbelow(1024)
    return "".join(_B32[(value >> (5 * i)) & 31] for i in reversed(range(13)))


class FakeBluesky(FakeNetwork):
    """A PDS with one account (:attr:`user`, DID ``did:plc:...``) and its app password."""

    network = "bluesky"
    kinds = tuple(k for k in KINDS if k not in ("duplicate", "quota"))
    refresh_lifetime = 90 * 86400.0

    def __init__(self, *, app_password: str = "abcd-efgh-ijkl-mnop", **kwargs: Any) -> None:
        kwargs.setdefault("token_lifetime", 7200.0)
        kwargs.setdefault("user", FakeUser(id="did:plc:ewvi7nxzyoun6zhxrhs64oiz",
                                           name="Ada Beats", handle="adabeats.bsky.social"))
        super().__init__(**kwargs)
        self.app_password = app_password
        self.blobs: dict[str, bytes] = {}
        #: Other people's public posts, oldest first (``say``): what searchPosts reads.
        self.chatter: list[dict[str, Any]] = []
        #: Chat conversations by id: ``members`` (DIDs) and ``messages`` (oldest first).
        self.convos: dict[str, dict[str, Any]] = {}
        #: The chat log (every message, in rev order) that ``getLog`` pages through.
        self.chat_log: list[dict[str, Any]] = []
        #: Which session each access or refresh JWT belongs to (refreshes keep it).
        self._session_of: dict[str, str] = {}

    @staticmethod
    def did_of(handle: str) -> str:
        """The DID the fake gives another account's handle."""
        return "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]

    def _convo_with(self, did: str) -> dict[str, Any]:
        for convo in self.convos.values():
            if convo["members"] == sorted((did, self.user.id)):
                return convo
        convo = {"id": _tid(), "members": sorted((did, self.user.id)), "messages": []}
        self.convos[convo["id"]] = convo
        return convo

    def _post_message(self, convo: dict[str, Any], sender: str, text: str,
                      at: float) -> dict[str, Any]:
        rev = f"{len(self.chat_log) + 1:013d}"  # revs sort as they grow (TIDs do too)
        message = {"$type": "chat.bsky.convo.defs#messageView", "id": _tid(), "rev": rev,
                   "text": text, "sender": {"did": sender}, "sentAt": time.strftime(
                       "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(at))}
        convo["messages"].append(message)
        self.chat_log.append({"$type": "chat.bsky.convo.defs#logCreateMessage", "rev": rev,
                              "convoId": convo["id"], "message": message})
        return message

    def message(self, text: str, *, author: str = "fan.bsky.social",
                at: float | None = None) -> str:
        """Account ``author`` sends the account a chat message; its id."""
        convo = self._convo_with(self.did_of(author))
        return self._post_message(convo, self.did_of(author), text,
                                  self.clock() if at is None else at)["id"]

    def say(self, text: str, *, author: str = "fan.bsky.social", lang: str = "en",
            at: float | None = None, mentions: tuple[str, ...] = ()) -> str:
        """Someone else posts ``text``; ``mentions`` are DIDs it tags (facets); its URI."""
        did = self.did_of(author)
        uri = f"at://{did}/app.bsky.feed.post/{_tid()}"
        when = self.clock() if at is None else at
        self.chatter.append({"uri": uri, "cid": "bafyrei" + secrets.token_hex(26),
                             "author": {"did": did, "handle": author},
                             "record": {"$type": "app.bsky.feed.post", "text": text,
                                        "langs": [lang], "createdAt": time.strftime(
                                            "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(when))},
                             "mentions": list(mentions), "at": when})
        return uri
    def add_token_route(self, app: web.Application) -> None:
        app.router.add_post("/xrpc/com.atproto.server.createSession", self._create_session)
        app.router.add_post("/xrpc/com.atproto.server.refreshSession", self._refresh_session)
        app.router.add_post("/xrpc/com.atproto.server.deleteSession", self._delete_session)

    def public(self, path: str) -> bool:
        return path in ("/xrpc/com.atproto.server.createSession",
                        "/xrpc/com.atproto.server.refreshSession",
                        "/xrpc/com.atproto.server.deleteSession")

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/xrpc/com.atproto.server.getSession", self._get_session)
        app.router.add_post("/xrpc/com.atproto.repo.uploadBlob", self._upload_blob)
        app.router.add_post("/xrpc/com.atproto.repo.createRecord", self._create_record)
        app.router.add_get("/xrpc/com.atproto.repo.listRecords", self._list_records)
        app.router.add_get("/xrpc/app.bsky.feed.getPosts", self._get_posts)
        app.router.add_get("/xrpc/app.bsky.feed.searchPosts", self._search_posts)
        app.router.add_get("/xrpc/chat.bsky.convo.getConvoForMembers", self._convo_route)
        app.router.add_post("/xrpc/chat.bsky.convo.sendMessage", self._send_message)
        app.router.add_get("/xrpc/chat.bsky.convo.getMessages", self._get_messages)
        app.router.add_get("/xrpc/chat.bsky.convo.getLog", self._get_log)

    def error(self, kind: str, retry_after: float, request: web.Request) -> web.Response:
        status, error, message = _ERRORS[kind]
        headers = {}
        if kind == "rate_limited":
            headers = {"ratelimit-limit": "5000", "ratelimit-remaining": "0",
                       "ratelimit-reset": str(int(time.time() + retry_after + 0.999)),
                       "ratelimit-policy": "5000;w=3600"}
        return web.json_response({"error": error, "message": message}, status=status,
                                 headers=headers)

    def _jwt(self, scope: str, lifetime: float) -> str:
        now = int(time.time())
        header = _b64({"typ": "at+jwt" if scope != "refresh" else "refresh+jwt",
                       "alg": "ES256K"})
        claims = _b64({"scope": f"com.atproto.{scope}", "sub": self.user.id, "iat": now,
                       "exp": int(now + lifetime), "aud": "did:web:bsky.social",
                       "jti": secrets.token_hex(8)})
        return f"{header}.{claims}.{secrets.token_urlsafe(32)}"

    def _session(self, session: str = "") -> dict[str, Any]:
        """New JWTs of ``session`` (empty: a new session)."""
        session = session or secrets.token_hex(8)
        access = self._jwt("access", self.token_lifetime)
        self._tokens[access] = _Token(self.user, time.time() + self.token_lifetime, "atproto")
        answer = {"did": self.user.id, "handle": self.user.handle, "active": True,
                  "accessJwt": access}
        refresh = self._jwt("refresh", self.refresh_lifetime)
        self._refresh[refresh] = (self.user, "atproto")
        answer["refreshJwt"] = refresh
        self._session_of[access] = self._session_of[refresh] = session
        return answer

    def new_tokens(self, user: FakeUser, scope: str, *, refresh: bool = True
                   ) -> dict[str, Any]:
        """A new session's JWTs in the OAuth shape (what a test's channel holds)."""
        answer = self._session()
        return {"access_token": answer["accessJwt"], "refresh_token": answer["refreshJwt"],
                "token_type": "bearer", "expires_in": int(self.token_lifetime),
                "scope": "atproto"}

    async def _create_session(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.stats.token_requests.append({"identifier": str(body.get("identifier", ""))})
        if body.get("identifier") not in (self.user.handle, self.user.id) or \
                not hmac.compare_digest(str(body.get("password", "")), self.app_password):
            return web.json_response({"error": "AuthenticationRequired",
                                      "message": "Invalid identifier or password"},
                                     status=401)
        return web.json_response(self._session())

    async def _refresh_session(self, request: web.Request) -> web.Response:
        token = self.bearer(request)
        if token not in self._refresh:
            return web.json_response({"error": "ExpiredToken",
                                      "message": "Token has been revoked"}, status=400)
        answer = self._session(self._session_of.get(token, ""))
        if self.rng.random() < self.refresh_omit_rate:
            del self._refresh[answer.pop("refreshJwt")]
        else:
            del self._refresh[token]  # rotated
        return web.json_response(answer)

    async def _delete_session(self, request: web.Request) -> web.Response:
        """``com.atproto.server.deleteSession``: the refresh JWT ends its session."""
        if await self.revoke_failing():
            return self.error("server", 0, request)
        token = self.bearer(request)
        if token in self._tokens:
            return web.json_response({"error": "InvalidToken",
                                      "message": "Invalid token type"}, status=400)
        if token not in self._refresh:
            return web.json_response({"error": "ExpiredToken",
                                      "message": "Token has been revoked"}, status=400)
        session = self._session_of.get(token)
        ended = {t for t, s in self._session_of.items() if s == session} | {token}
        self._tokens = {t: v for t, v in self._tokens.items() if t not in ended}
        self._refresh = {t: v for t, v in self._refresh.items() if t not in ended}
        self.stats.revocations += 1
        return web.Response(status=200)

    async def _get_session(self, request: web.Request) -> web.Response:
        user = self.user_of(request)
        return web.json_response({"did": user.id, "handle": user.handle, "active": True})

    async def _upload_blob(self, request: web.Request) -> web.Response:
        data = await request.read()
        if not data:
            return self.error("rejected", 0, request)
        cid = "bafkrei" + hashlib.sha256(data).hexdigest()[:52]
        self.blobs[cid] = data
        return web.json_response({"blob": {"$type": "blob", "ref": {"$link": cid},
                                           "mimeType": request.content_type,
                                           "size": len(data)}})

    async def _create_record(self, request: web.Request) -> web.Response:
        body = await request.json()
        record = body.get("record", {})
        if body.get("repo") not in (self.user.id, self.user.handle) or \
                body.get("collection") != "app.bsky.feed.post":
            return web.json_response({"error": "InvalidRequest",
                                      "message": "repo must be the session's DID"}, status=400)
        text = record.get("text", "")
        if len(text) > MAX_GRAPHEMES or not record.get("createdAt"):
            return web.json_response({"error": "InvalidRequest", "message":
                                      f"Invalid app.bsky.feed.post record: Record/text must "
                                      f"not be longer than {MAX_GRAPHEMES} graphemes"},
                                     status=400)
        reply = record.get("reply")
        if reply is not None:
            known = {p["uri"]: p["cid"] for p in self.posts} | {
                p["uri"]: p["cid"] for p in self.chatter}
            for ref in (reply.get("root") or {}, reply.get("parent") or {}):
                if known.get(ref.get("uri")) != ref.get("cid") or not ref.get("cid"):
                    return web.json_response({"error": "InvalidRequest", "message":
                                              "Invalid app.bsky.feed.post record: reply "
                                              "must hold strong refs (uri and cid) to the "
                                              "root and the parent"}, status=400)
        for image in record.get("embed", {}).get("images", []):
            if image.get("image", {}).get("ref", {}).get("$link") not in self.blobs:
                return web.json_response({"error": "InvalidRequest",
                                          "message": "Could not find blob"}, status=400)
        uri = f"at://{self.user.id}/app.bsky.feed.post/{_tid()}"
        cid = "bafyrei" + hashlib.sha256(json.dumps(record).encode()).hexdigest()[:52]
        self.posts.append({"uri": uri, "cid": cid, "value": record, "created": time.time()})
        return web.json_response({"uri": uri, "cid": cid, "validationStatus": "valid",
                                  "commit": {"cid": cid, "rev": _tid()}})

    async def _list_records(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "50"))
        records = [{"uri": p["uri"], "cid": p["cid"], "value": p["value"]}
                   for p in reversed(self.posts)][:limit]
        return web.json_response({"records": records})

    async def _get_posts(self, request: web.Request) -> web.Response:
        uris = set(request.query.getall("uris", []))
        posts = [{"uri": p["uri"], "cid": p["cid"], "record": p["value"],
                  "author": {"did": self.user.id, "handle": self.user.handle},
                  **self.counts(p["uri"], p["created"], COUNT_WEIGHTS)}
                 for p in self.posts if p["uri"] in uris]
        posts += [{"uri": p["uri"], "cid": p["cid"], "record": p["record"],
                   "author": p["author"]} for p in self.chatter if p["uri"] in uris]
        return web.json_response({"posts": posts})

    async def _search_posts(self, request: web.Request) -> web.Response:
        """Posts holding every word of ``q`` (and tagging ``mentions``), newest first;
        ``cursor`` pages on (an opaque offset here)."""
        query = request.query.get("q", "").strip().lower()
        limit = int(request.query.get("limit", "25"))
        if not query or not 1 <= limit <= 100:
            return web.json_response({"error": "InvalidRequest", "message":
                                      "q is required and limit must be 1 to 100"}, status=400)
        mentions = request.query.get("mentions", "")
        words = [w for w in query.split() if w != "*"]
        found = [p for p in reversed(self.chatter)
                 if all(w in p["record"]["text"].lower() for w in words)
                 and (not mentions or mentions in p["mentions"])]
        start = int(request.query.get("cursor", "0") or 0)
        page = found[start:start + limit]
        body: dict[str, Any] = {"posts": [
            {"uri": p["uri"], "cid": p["cid"], "author": p["author"], "record": p["record"],
             "indexedAt": p["record"]["createdAt"]} for p in page], "hitsTotal": len(found)}
        if start + limit < len(found):
            body["cursor"] = str(start + limit)
        return web.json_response(body)

    # -- chat (through the PDS's proxy to the chat service) ---------------------------

    def _unproxied(self, request: web.Request) -> web.Response | None:
        if request.headers.get("atproto-proxy") == CHAT_SERVICE:
            return None
        return web.json_response({"error": "MethodNotImplemented", "message":
                                  "Method Not Implemented"}, status=501)

    def _convo_view(self, convo: dict[str, Any]) -> dict[str, Any]:
        return {"id": convo["id"], "rev": (convo["messages"] or [{"rev": "0"}])[-1]["rev"],
                "members": [{"did": d} for d in convo["members"]], "muted": False,
                "unreadCount": 0}

    async def _convo_route(self, request: web.Request) -> web.Response:
        if (refused := self._unproxied(request)) is not None:
            return refused
        others = [m for m in request.query.getall("members", []) if m != self.user.id]
        if len(others) != 1 or not others[0].startswith("did:"):
            return web.json_response({"error": "InvalidRequest", "message":
                                      "members must name one other account's DID"},
                                     status=400)
        return web.json_response({"convo": self._convo_view(self._convo_with(others[0]))})

    async def _send_message(self, request: web.Request) -> web.Response:
        if (refused := self._unproxied(request)) is not None:
            return refused
        body = await request.json()
        convo = self.convos.get(str(body.get("convoId", "")))
        text = str((body.get("message") or {}).get("text", ""))
        if convo is None or not text or len(text) > 10_000:
            return web.json_response({"error": "InvalidRequest", "message":
                                      "unknown convoId or empty message"}, status=400)
        return web.json_response(self._post_message(convo, self.user.id, text, self.clock()))

    async def _get_messages(self, request: web.Request) -> web.Response:
        if (refused := self._unproxied(request)) is not None:
            return refused
        convo = self.convos.get(request.query.get("convoId", ""))
        if convo is None:
            return web.json_response({"error": "InvalidRequest", "message":
                                      "Convo not found"}, status=400)
        limit = int(request.query.get("limit", "50"))
        return web.json_response({"messages": list(reversed(convo["messages"]))[:limit]})

    async def _get_log(self, request: web.Request) -> web.Response:
        """The chat log after ``cursor`` (a rev), oldest first, 100 at a time."""
        if (refused := self._unproxied(request)) is not None:
            return refused
        cursor = request.query.get("cursor", "")
        after = [e for e in self.chat_log if e["rev"] > cursor][:100]
        body: dict[str, Any] = {"logs": after}
        if after:
            body["cursor"] = after[-1]["rev"]
        return web.json_response(body)
