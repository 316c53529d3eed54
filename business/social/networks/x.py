"""X (Twitter) over the X API v2, with OAuth 2.0 authorization code and PKCE S256.

- Authorize at ``https://x.com/i/oauth2/authorize``; tokens at ``POST /2/oauth2/token``
  (confidential client: HTTP Basic). Access tokens last 2 h; ``offline.access`` gives a
  refresh token, which X rotates on every refresh.
- Post: ``POST /2/tweets`` ``{"text", "media": {"media_ids": [...]}}``; a first comment is
  a reply (``"reply": {"in_reply_to_tweet_id"}``).
- Media: chunked upload on ``POST /2/media/upload``: ``command=INIT`` (total bytes, type,
  category), ``APPEND`` (multipart segments of :attr:`XConnector.chunk_bytes`),
  ``FINALIZE``, then ``STATUS`` polled while ``processing_info.state`` is pending or
  in progress (videos).
- Errors: 429 with ``x-rate-limit-reset`` (epoch) -> RateLimited; 401 -> TokenExpired;
  403 "duplicate content" -> Duplicate (with the earlier post, found in recent posts).
- Dedupe: X has no field for our key, so :meth:`XConnector.find_published` matches the
  post's text (given as ``text=``) against the account's 100 most recent posts
  (``GET /2/users/{id}/tweets``); links are ignored since X rewrites them to t.co. Without
  the text it cannot tell and answers None; X itself then refuses a second identical post.
- Revoke: ``POST /2/oauth2/revoke`` (RFC 7009, HTTP Basic) with the refresh token.
- Quota: X reports per-endpoint limits in ``x-rate-limit-*`` headers only; quota() answers
  the last ones seen (None before any call).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection

import aiohttp

from business.social.errors import Duplicate, NetworkError, QuotaExhausted, Rejected
from business.social.networks.base import (
    MediaItem,
    OAuthTokens,
    Publication,
    Published,
    Quota,
    reported,
    total,
)
from business.social.networks.http import (
    Answer,
    HttpConnector,
    epoch,
    remote_time,
    retry_after_from,
    same_text,
    sent_since,
)


class XConnector(HttpConnector):
    """X API v2."""

    network = "x"
    HOSTS = {"api": "https://api.x.com", "auth": "https://x.com", "token": "https://api.x.com"}
    SCOPES = "tweet.read tweet.write users.read media.write offline.access"
    #: ``POST /2/oauth2/revoke`` (confidential client: HTTP Basic).
    REVOKE = ("token", "/2/oauth2/revoke")
    revoke_basic = True
    #: APPEND segment size (X allows up to 5 MB per segment).
    chunk_bytes = 4 * 2**20

    def authorize_url(self, state: str, code_challenge: str, redirect_uri: str) -> str:
        return self.with_query(self.url("/i/oauth2/authorize", "auth"), {
            "response_type": "code", "client_id": self.client_id,
            "redirect_uri": redirect_uri, "scope": self.SCOPES, "state": state,
            "code_challenge": code_challenge, "code_challenge_method": "S256"})

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str
                            ) -> OAuthTokens:
        return await self.token_request("/2/oauth2/token", {
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier, "client_id": self.client_id}, client_auth="basic")

    async def refresh(self, refresh_token: str) -> OAuthTokens:
        return await self.token_request("/2/oauth2/token", {
            "grant_type": "refresh_token", "refresh_token": refresh_token,
            "client_id": self.client_id}, client_auth="basic")

    async def profile(self, access_token: str) -> dict:
        data = (await self.call("GET", "/2/users/me", token=access_token)).body["data"]
        return {"id": data["id"], "name": data["name"], "handle": data["username"]}

    async def publish(self, access_token: str, publication: Publication) -> Published:
        media_ids = [await self.upload(access_token, item) for item in publication.media]
        body: dict = {"text": publication.text_with_link()}
        if media_ids:
            body["media"] = {"media_ids": media_ids}
        try:
            answer = await self.call("POST", "/2/tweets", token=access_token, json=body)
        except Duplicate as exc:
            exc.existing = await self.find_published(access_token, publication.dedupe_key,
                                                     text=body["text"])
            raise
        post_id = answer.body["data"]["id"]
        if publication.first_comment:
            await self.call("POST", "/2/tweets", token=access_token, json={
                "text": publication.first_comment,
                "reply": {"in_reply_to_tweet_id": post_id}})
        return Published(post_id, f"https://x.com/i/web/status/{post_id}")

    # -- inbox: replies and direct messages ------------------------------------------

    async def reply(self, access_token: str, in_reply_to: str, text: str,
                    dedupe_key: str) -> Published:
        """Reply publicly to post ``in_reply_to`` (``reply.in_reply_to_tweet_id``)."""
        try:
            answer = await self.call("POST", "/2/tweets", token=access_token, json={
                "text": text, "reply": {"in_reply_to_tweet_id": in_reply_to}})
        except Duplicate as exc:
            exc.existing = await self.find_reply(access_token, dedupe_key, in_reply_to, text)
            raise
        post_id = answer.body["data"]["id"]
        return Published(post_id, f"https://x.com/i/web/status/{post_id}")

    async def find_reply(self, access_token: str, dedupe_key: str, in_reply_to: str,
                         text: str) -> Published | None:
        """Our recent post replying to ``in_reply_to`` with ``text`` (asked before a retry)."""
        me = await self.profile(access_token)
        answer = await self.call("GET", self.with_query(f"/2/users/{me['id']}/tweets", {
            "max_results": "100", "tweet.fields": "created_at,referenced_tweets"}),
            token=access_token)
        for post in answer.body.get("data", []):
            parents = {r.get("id") for r in post.get("referenced_tweets") or []
                       if r.get("type") == "replied_to"}
            if in_reply_to in parents and same_text(post.get("text", ""), text):
                return Published(post["id"], f"https://x.com/i/web/status/{post['id']}")
        return None

    async def send_dm(self, access_token: str, participant_id: str, text: str) -> Published:
        """A direct message to user ``participant_id`` (one-to-one conversation)."""
        answer = await self.call(
            "POST", f"/2/dm_conversations/with/{participant_id}/messages",
            token=access_token, json={"text": text})
        data = answer.body["data"]
        return Published(data["dm_event_id"],
                         f"https://x.com/messages/{data['dm_conversation_id']}")

    async def find_dm(self, access_token: str, participant_id: str, text: str,
                      since: float, *, skip: Collection[str] = ()) -> Published | None:
        """Our message ``text`` to ``participant_id`` sent at ``since`` or later, not one
        of the ids in ``skip`` (messages other answers already are)."""
        me = await self.profile(access_token)
        answer = await self.call("GET", self.with_query(
            f"/2/dm_conversations/with/{participant_id}/dm_events", {
                "dm_event.fields": "id,text,sender_id,created_at,dm_conversation_id",
                "event_types": "MessageCreate", "max_results": "100"}), token=access_token)
        for event in answer.body.get("data", []):
            if (event.get("sender_id") == me["id"] and event.get("id") not in skip
                    and same_text(event.get("text", ""), text)
                    and epoch(event.get("created_at", "")) >= since):
                return Published(event["id"],
                                 f"https://x.com/messages/{event['dm_conversation_id']}")
        return None

    async def upload(self, access_token: str, item: MediaItem) -> str:
        """Upload one file in chunks (INIT, APPEND..., FINALIZE, STATUS); its media id."""
        category = {"image": "tweet_image", "video": "tweet_video"}.get(item.kind)
        if category is None:
            raise Rejected(f"X takes images and videos, not {item.kind}", network=self.network)
        data = await self.read_media(item)
        init = await self.call("POST", "/2/media/upload", token=access_token, data={
            "command": "INIT", "total_bytes": str(len(data)), "media_type": item.content_type,
            "media_category": category})
        media_id = str(init.body["data"]["id"])
        for index, start in enumerate(range(0, len(data), self.chunk_bytes)):
            form = aiohttp.FormData()
            form.add_field("command", "APPEND")
            form.add_field("media_id", media_id)
            form.add_field("segment_index", str(index))
            form.add_field("media", data[start:start + self.chunk_bytes],
                           content_type="application/octet-stream", filename="blob")
            await self.call("POST", "/2/media/upload", token=access_token, data=form)
        answer = await self.call("POST", "/2/media/upload", token=access_token,
                                 data={"command": "FINALIZE", "media_id": media_id})
        await self._wait_processed(access_token, media_id, answer)
        return media_id

    async def _wait_processed(self, access_token: str, media_id: str, answer: Answer) -> None:
        deadline = time.monotonic() + self.poll_timeout_s
        info = answer.body.get("data", {}).get("processing_info")
        while info and info.get("state") in ("pending", "in_progress"):
            if time.monotonic() > deadline:
                raise NetworkError(f"media {media_id} still processing after "
                                   f"{self.poll_timeout_s:.0f} s", network=self.network)
            await asyncio.sleep(min(float(info.get("check_after_secs", 1)),
                                    self.poll_interval_s))
            status = await self.call("GET", self.with_query("/2/media/upload", {
                "command": "STATUS", "media_id": media_id}), token=access_token)
            info = status.body.get("data", {}).get("processing_info")
        if info and info.get("state") == "failed":
            error = info.get("error", {})
            raise Rejected(f"media {media_id} failed processing: {error.get('message', error)}",
                           network=self.network)

    async def find_published(self, access_token: str, dedupe_key: str, *,
                             text: str | None = None, since: float | None = None
                             ) -> Published | None:
        """The account's recent post with the same text (X keeps no field for our key),
        created since ``since`` (:func:`sent_since`; X's ``created_at``)."""
        if not text:
            return None
        me = await self.profile(access_token)
        answer = await self.call("GET", self.with_query(f"/2/users/{me['id']}/tweets", {
            "max_results": "100", "tweet.fields": "created_at"}), token=access_token)
        for post in answer.body.get("data", []):
            if same_text(post.get("text", ""), text) and sent_since(
                    remote_time(post.get("created_at")), since):
                return Published(post["id"], f"https://x.com/i/web/status/{post['id']}")
        return None

    async def quota(self, access_token: str) -> Quota | None:
        return self.last_rate_limit

    async def metrics(self, access_token: str, remote_id: str) -> dict[str, int]:
        # non_public_metrics (link clicks) exist only for the author's posts of the last
        # 30 days; past that X leaves them out with a field error, and they stay None
        answer = await self.call("GET", self.with_query(f"/2/tweets/{remote_id}", {
            "tweet.fields": "public_metrics,non_public_metrics"}), token=access_token)
        data = answer.body.get("data") or {}
        public = data.get("public_metrics") or {}
        private = data.get("non_public_metrics") or {}
        return reported(impressions=private.get("impression_count",
                                                public.get("impression_count")),
                        likes=public.get("like_count"), comments=public.get("reply_count"),
                        shares=total(public.get("retweet_count"), public.get("quote_count")),
                        clicks=private.get("url_link_clicks"))

    def classify(self, answer: Answer) -> NetworkError | None:
        detail = str(answer.body.get("detail", ""))
        if answer.status == 403 and "duplicate" in detail.lower():
            return Duplicate(detail, network=self.network, status=403)
        if answer.body.get("title") == "UsageCapExceeded":
            return QuotaExhausted(detail, network=self.network, status=answer.status,
                                  retry_after=retry_after_from(answer.headers))
        return None
