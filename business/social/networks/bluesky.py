"""Bluesky over the AT Protocol (XRPC on the account's PDS), with an app password.

Bluesky sessions are not OAuth here: the user creates an app password
(https://bsky.app/settings/app-passwords) and gives it with their handle. The contract's
OAuth calls map onto sessions:

- :meth:`BlueskyConnector.authorize_url` is the app-password settings page (the studio
  shows a form for the handle and password instead of redirecting);
- :meth:`BlueskyConnector.exchange_code` takes ``code`` =
  :func:`credentials` ``(identifier, app_password)`` (the verifier and redirect are unused)
  and calls ``com.atproto.server.createSession``: ``accessJwt`` is the access token (about
  2 h, ``expires_at`` read from its ``exp``), ``refreshJwt`` the refresh token;
- :meth:`BlueskyConnector.refresh` is ``com.atproto.server.refreshSession`` with the
  refresh JWT as Bearer; it rotates the refresh JWT (None if an answer lacks one).
- :meth:`BlueskyConnector.revoke` is ``com.atproto.server.deleteSession`` with the
  refresh JWT as Bearer: the session ends, its access and refresh JWTs with it. A session
  the PDS no longer knows (``ExpiredToken``, ``InvalidToken``) counts as ended.

Post: images and videos go up with ``com.atproto.repo.uploadBlob``; the record
(``app.bsky.feed.post``: ``text``, ``createdAt``, link ``facets`` with UTF-8 byte ranges,
an ``embed``) is written with ``com.atproto.repo.createRecord``; a first comment is a reply
record. Errors: ``ExpiredToken`` (HTTP 400) and 401 -> TokenExpired; 429
``RateLimitExceeded`` with ``ratelimit-reset`` (epoch) -> RateLimited. Bluesky has no
duplicate-content error.

Dedupe: the record carries the dedupe key in its own field :data:`DEDUPE_FIELD` (records
are open JSON; apps ignore fields they do not know); :meth:`find_published` lists the
account's 100 most recent post records (``com.atproto.repo.listRecords``) and matches it.
Quota: the PDS reports its write limits in ``ratelimit-*`` headers; :meth:`quota` answers
the last ones seen.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Collection
from typing import Any

from business.social.errors import NetworkError, RateLimited, Rejected, TokenExpired
from business.social.networks.base import (
    OAuthTokens,
    Publication,
    Published,
    Quota,
    reported,
    total,
)
from business.social.networks.http import Answer, HttpConnector, epoch, retry_after_from

#: The record field that keeps our dedupe key.
DEDUPE_FIELD = "studio.maxbooster.dedupeKey"
POST = "app.bsky.feed.post"
#: The header that sends an XRPC call through the PDS to Bluesky's chat service.
CHAT_PROXY = {"atproto-proxy": "did:web:api.bsky.chat#bsky_chat"}


def credentials(identifier: str, app_password: str) -> str:
    """The ``code`` :meth:`BlueskyConnector.exchange_code` takes: handle (or DID) and app
    password."""
    return f"{identifier}\n{app_password}"


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without checking its signature (the PDS does)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def _xrpc(method: str) -> str:
    return f"/xrpc/{method}"


class BlueskyConnector(HttpConnector):
    """AT Protocol PDS (bsky.social by default)."""

    network = "bluesky"
    HOSTS = {"api": "https://bsky.social", "auth": "https://bsky.app"}

    def authorize_url(self, state: str, code_challenge: str, redirect_uri: str) -> str:
        return self.url("/settings/app-passwords", "auth")

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str
                            ) -> OAuthTokens:
        identifier, _, password = code.partition("\n")
        if not identifier or not password:
            raise Rejected("sign in to Bluesky with your handle and an app password",
                           network=self.network)
        answer = await self.call("POST", _xrpc("com.atproto.server.createSession"),
                                 json={"identifier": identifier, "password": password})
        return self._tokens(answer.body)

    async def refresh(self, refresh_token: str) -> OAuthTokens:
        answer = await self.call("POST", _xrpc("com.atproto.server.refreshSession"),
                                 token=refresh_token)
        return self._tokens(answer.body)

    @classmethod
    def revocable(cls) -> bool:
        return True

    async def revoke(self, access_token: str, refresh_token: str) -> None:
        """End the session (``com.atproto.server.deleteSession``, the refresh JWT as
        Bearer); one already ended or expired counts as ended. A 5xx, 429 or no answer
        raises a retryable :class:`NetworkError`, anything else :class:`Rejected`."""
        if not refresh_token:
            raise Rejected("a Bluesky session is ended with its refresh JWT, and this "
                           "channel holds none; remove the app password at "
                           "https://bsky.app/settings/app-passwords", network=self.network)
        answer = await self.call("POST", _xrpc("com.atproto.server.deleteSession"),
                                 token=refresh_token, ok=(400, 401))
        if answer.status < 300 or answer.body.get("error") in ("ExpiredToken",
                                                               "InvalidToken"):
            return
        raise Rejected(f"revocation: HTTP {answer.status}: {self.describe(answer)}",
                       network=self.network, status=answer.status)

    def _tokens(self, body: dict) -> OAuthTokens:
        access = str(body["accessJwt"])
        return OAuthTokens(access, str(body["refreshJwt"]) if body.get("refreshJwt") else None,
                           jwt_expiry(access), "atproto")

    async def profile(self, access_token: str) -> dict:
        answer = await self.call("GET", _xrpc("com.atproto.server.getSession"),
                                 token=access_token)
        body = answer.body
        return {"id": body["did"], "name": body.get("handle", ""),
                "handle": body.get("handle", "")}

    async def publish(self, access_token: str, publication: Publication) -> Published:
        me = await self.profile(access_token)
        text = publication.text
        record: dict[str, Any] = {"$type": POST, "text": text,
                                  "createdAt": _now(), DEDUPE_FIELD: publication.dedupe_key}
        if publication.link:
            if publication.link not in text:
                text = f"{text} {publication.link}".strip()
                record["text"] = text
            start = text.encode("utf-8").rindex(publication.link.encode("utf-8"))
            record["facets"] = [{
                "index": {"byteStart": start, "byteEnd": start + len(publication.link.encode())},
                "features": [{"$type": "app.bsky.richtext.facet#link",
                              "uri": publication.link}]}]
        if publication.media:
            record["embed"] = await self._embed(access_token, publication)
        created = await self._create(access_token, me["id"], record)
        if publication.first_comment:
            ref = {"uri": created["uri"], "cid": created["cid"]}
            await self._create(access_token, me["id"], {
                "$type": POST, "text": publication.first_comment, "createdAt": _now(),
                "reply": {"root": ref, "parent": ref}})
        return Published(created["uri"], self.web_url(me["handle"], created["uri"]))

    async def _embed(self, access_token: str, publication: Publication) -> dict:
        kinds = {m.kind for m in publication.media}
        if kinds == {"image"} and len(publication.media) <= 4:
            images = [{"alt": "", "image": await self._blob(access_token, m)}
                      for m in publication.media]
            return {"$type": "app.bsky.embed.images", "images": images}
        if kinds == {"video"} and len(publication.media) == 1:
            return {"$type": "app.bsky.embed.video",
                    "video": await self._blob(access_token, publication.media[0])}
        raise Rejected("Bluesky takes up to 4 images or one video per post",
                       network=self.network)

    async def _blob(self, access_token: str, item: Any) -> dict:
        answer = await self.call("POST", _xrpc("com.atproto.repo.uploadBlob"),
                                 token=access_token, data=await self.read_media(item),
                                 headers={"Content-Type": item.content_type})
        return answer.body["blob"]

    async def _create(self, access_token: str, did: str, record: dict) -> dict:
        answer = await self.call("POST", _xrpc("com.atproto.repo.createRecord"),
                                 token=access_token,
                                 json={"repo": did, "collection": POST, "record": record})
        return answer.body

    # -- inbox: replies and direct messages ------------------------------------------

    async def reply(self, access_token: str, parent_uri: str, text: str,
                    dedupe_key: str) -> Published:
        """A reply record to ``parent_uri``: ``reply.parent`` its strong ref (uri and cid,
        read with ``app.bsky.feed.getPosts``), ``reply.root`` the thread's root."""
        me = await self.profile(access_token)
        answer = await self.call("GET", self.with_query(_xrpc("app.bsky.feed.getPosts"), {
            "uris": parent_uri}), token=access_token)
        posts = answer.body.get("posts") or []
        if not posts:
            raise Rejected(f"the post {parent_uri} is gone: nothing to reply to",
                           network=self.network)
        parent = {"uri": posts[0]["uri"], "cid": posts[0]["cid"]}
        root = ((posts[0].get("record") or {}).get("reply") or {}).get("root") or parent
        created = await self._create(access_token, me["id"], {
            "$type": POST, "text": text, "createdAt": _now(),
            "reply": {"root": root, "parent": parent}, DEDUPE_FIELD: dedupe_key})
        return Published(created["uri"], self.web_url(me["handle"], created["uri"]))

    async def find_reply(self, access_token: str, dedupe_key: str, in_reply_to: str,
                         text: str) -> Published | None:
        """Our reply record carrying ``dedupe_key`` (asked before a retry)."""
        return await self.find_published(access_token, dedupe_key)

    async def _convo(self, access_token: str, member: str) -> str:
        answer = await self.call("GET", self.with_query(
            _xrpc("chat.bsky.convo.getConvoForMembers"), {"members": member}),
            token=access_token, headers=CHAT_PROXY)
        return str(answer.body["convo"]["id"])

    async def send_dm(self, access_token: str, member: str, text: str) -> Published:
        """A chat message to the account ``member`` (a DID), through the chat service
        (``getConvoForMembers`` then ``sendMessage``, with the ``atproto-proxy`` header)."""
        convo = await self._convo(access_token, member)
        answer = await self.call("POST", _xrpc("chat.bsky.convo.sendMessage"),
                                 token=access_token, headers=CHAT_PROXY,
                                 json={"convoId": convo, "message": {"text": text}})
        return Published(str(answer.body["id"]), f"https://bsky.app/messages/{convo}")

    async def find_dm(self, access_token: str, member: str, text: str,
                      since: float, *, skip: Collection[str] = ()) -> Published | None:
        """Our message ``text`` to ``member`` sent at ``since`` or later, not one
        of the ids in ``skip`` (messages other answers already are)."""
        me = await self.profile(access_token)
        convo = await self._convo(access_token, member)
        answer = await self.call("GET", self.with_query(
            _xrpc("chat.bsky.convo.getMessages"), {"convoId": convo, "limit": "100"}),
            token=access_token, headers=CHAT_PROXY)
        for message in answer.body.get("messages") or []:
            if ((message.get("sender") or {}).get("did") == me["id"]
                    and str(message.get("id")) not in skip and message.get("text") == text
                    and epoch(message.get("sentAt", "")) >= since):
                return Published(str(message["id"]), f"https://bsky.app/messages/{convo}")
        return None

    @staticmethod
    def web_url(handle: str, uri: str) -> str:
        return f"https://bsky.app/profile/{handle}/post/{uri.rsplit('/', 1)[-1]}"

    async def find_published(self, access_token: str, dedupe_key: str, *,
                             text: str | None = None, since: float | None = None
                             ) -> Published | None:
        """The recent post record whose :data:`DEDUPE_FIELD` is ``dedupe_key`` (the key is
        this target's alone, so ``since`` is not needed)."""
        me = await self.profile(access_token)
        answer = await self.call("GET", self.with_query(
            _xrpc("com.atproto.repo.listRecords"),
            {"repo": me["id"], "collection": POST, "limit": "100"}), token=access_token)
        for record in answer.body.get("records", []):
            if record.get("value", {}).get(DEDUPE_FIELD) == dedupe_key:
                return Published(record["uri"], self.web_url(me["handle"], record["uri"]))
        return None

    async def quota(self, access_token: str) -> Quota | None:
        return self.last_rate_limit

    async def metrics(self, access_token: str, remote_id: str) -> dict[str, int]:
        answer = await self.call("GET", self.with_query(_xrpc("app.bsky.feed.getPosts"), {
            "uris": remote_id}), token=access_token)
        posts = answer.body.get("posts") or [{}]
        post = posts[0]
        return reported(likes=post.get("likeCount"), comments=post.get("replyCount"),
                        shares=total(post.get("repostCount"), post.get("quoteCount")))

    def classify(self, answer: Answer) -> NetworkError | None:
        error = str(answer.body.get("error", ""))
        reason = f"HTTP {answer.status}: {error}: {answer.body.get('message', '')}"
        if error in ("ExpiredToken", "InvalidToken", "AuthenticationRequired") \
                or answer.status == 401:
            return TokenExpired(reason, network=self.network, status=answer.status)
        if error == "RateLimitExceeded" or answer.status == 429:
            return RateLimited(reason, network=self.network, status=answer.status,
                               retry_after=retry_after_from(answer.headers))
        return None


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
