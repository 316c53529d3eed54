"""TikTok over the Content Posting API (direct post of a video from a file).

- Authorize at ``https://www.tiktok.com/v2/auth/authorize/`` with ``client_key`` and PKCE
  S256; tokens at ``POST /v2/oauth/token/`` (``client_key``, ``client_secret``). Access
  tokens last 24 h, refresh tokens a year; a refresh may or may not bring a new one.
- Post: ``POST /v2/post/publish/creator_info/query/`` (the privacy levels the creator
  allows), ``POST /v2/post/publish/video/init/`` with ``source_info.source=FILE_UPLOAD``
  -> ``publish_id`` and ``upload_url``; the video is ``PUT`` there in chunks
  (``Content-Range``); ``POST /v2/post/publish/status/fetch/`` is polled until
  ``PUBLISH_COMPLETE`` (``FAILED`` -> Rejected with TikTok's ``fail_reason``).
- Errors come as ``{"error": {"code", "message", "log_id"}}``: ``rate_limit_exceeded``
  (429) -> RateLimited; ``access_token_invalid`` (401) -> TokenExpired;
  ``spam_risk_too_many_posts`` -> QuotaExhausted (TikTok caps posts per creator per day
  and does not say when it frees). TikTok has no duplicate-content error.
- Revoke: ``POST /v2/oauth/revoke/`` (``client_key``, ``client_secret``, ``token``: the
  user access token) disconnects the app from the account.
- Dedupe: no field for our key; :meth:`find_published` matches ``text=`` against the title
  of the 20 most recent videos (``POST /v2/video/list/``).
"""

from __future__ import annotations

import asyncio
import time

from business.social.errors import NetworkError, QuotaExhausted, RateLimited, Rejected
from business.social.networks.base import OAuthTokens, Publication, Published, Quota, reported
from business.social.networks.http import (
    Answer,
    HttpConnector,
    remote_time,
    retry_after_from,
    same_text,
    sent_since,
)

#: TikTok's chunk rules: 5 MB to 64 MB per chunk, a file under 64 MB may go in one.
MAX_CHUNK = 64 * 2**20


class TikTokConnector(HttpConnector):
    """TikTok Content Posting API."""

    network = "tiktok"
    HOSTS = {"api": "https://open.tiktokapis.com", "auth": "https://www.tiktok.com",
             "token": "https://open.tiktokapis.com"}
    SCOPES = "user.info.basic,video.publish,video.upload,video.list"
    #: ``POST /v2/oauth/revoke/`` with the user access token: disconnects the app.
    REVOKE, revoke_by = ("token", "/v2/oauth/revoke/"), "access"
    #: Chunk size for files over :data:`MAX_CHUNK`.
    chunk_bytes = 10 * 2**20

    def authorize_url(self, state: str, code_challenge: str, redirect_uri: str) -> str:
        return self.with_query(self.url("/v2/auth/authorize/", "auth"), {
            "client_key": self.client_id, "redirect_uri": redirect_uri,
            "response_type": "code", "scope": self.SCOPES, "state": state,
            "code_challenge": code_challenge, "code_challenge_method": "S256"})

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str
                            ) -> OAuthTokens:
        return await self.token_request("/v2/oauth/token/", {
            "client_key": self.client_id, "client_secret": self.client_secret,
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier}, client_auth="form")

    async def refresh(self, refresh_token: str) -> OAuthTokens:
        return await self.token_request("/v2/oauth/token/", {
            "client_key": self.client_id, "client_secret": self.client_secret,
            "grant_type": "refresh_token", "refresh_token": refresh_token}, client_auth="form")

    def revoke_form(self, token: str) -> dict[str, str]:
        return {"client_key": self.client_id, "client_secret": self.client_secret,
                "token": token}

    async def profile(self, access_token: str) -> dict:
        answer = await self.call("GET", self.with_query("/v2/user/info/", {
            "fields": "open_id,display_name,username"}), token=access_token)
        user = answer.body["data"]["user"]
        return {"id": user["open_id"], "name": user.get("display_name", ""),
                "handle": user.get("username", "")}

    async def publish(self, access_token: str, publication: Publication) -> Published:
        videos = [m for m in publication.media if m.kind == "video"]
        if len(videos) != 1 or len(publication.media) != 1:
            raise Rejected("TikTok posts need exactly one video", network=self.network)
        item = videos[0]
        info = await self.call("POST", "/v2/post/publish/creator_info/query/",
                               token=access_token, json={})
        levels = info.body.get("data", {}).get("privacy_level_options") or ["SELF_ONLY"]
        privacy = "PUBLIC_TO_EVERYONE" if "PUBLIC_TO_EVERYONE" in levels else levels[0]
        data = await self.read_media(item)
        size = len(data)
        chunk = size if size <= MAX_CHUNK else self.chunk_bytes
        count = max(1, size // chunk)
        init = await self.call("POST", "/v2/post/publish/video/init/", token=access_token,
                               json={"post_info": {"title": publication.text_with_link(),
                                                   "privacy_level": privacy},
                                     "source_info": {"source": "FILE_UPLOAD",
                                                     "video_size": size, "chunk_size": chunk,
                                                     "total_chunk_count": count}})
        publish_id = init.body["data"]["publish_id"]
        upload_url = init.body["data"]["upload_url"]
        for index in range(count):
            start = index * chunk
            end = size if index == count - 1 else start + chunk
            await self.call("PUT", upload_url, data=data[start:end], headers={
                "Content-Type": item.content_type,
                "Content-Range": f"bytes {start}-{end - 1}/{size}"})
        post_id = await self._wait_published(access_token, publish_id)
        me = await self.profile(access_token)
        return Published(post_id, f"https://www.tiktok.com/@{me['handle']}/video/{post_id}")

    async def _wait_published(self, access_token: str, publish_id: str) -> str:
        deadline = time.monotonic() + self.poll_timeout_s
        while True:
            answer = await self.call("POST", "/v2/post/publish/status/fetch/",
                                     token=access_token, json={"publish_id": publish_id})
            data = answer.body.get("data", {})
            status = data.get("status")
            if status == "PUBLISH_COMPLETE":
                ids = data.get("publicaly_available_post_id") or [publish_id]
                return str(ids[0])
            if status == "FAILED":
                raise Rejected(f"TikTok could not publish: {data.get('fail_reason')}",
                               network=self.network)
            if time.monotonic() > deadline:
                raise NetworkError(f"publish {publish_id} still {status} after "
                                   f"{self.poll_timeout_s:.0f} s", network=self.network)
            await asyncio.sleep(self.poll_interval_s)

    async def find_published(self, access_token: str, dedupe_key: str, *,
                             text: str | None = None, since: float | None = None
                             ) -> Published | None:
        """The recent video whose title is ``text`` (TikTok keeps no field for our key),
        created since ``since`` (:func:`sent_since`; ``create_time``, epoch seconds)."""
        if not text:
            return None
        answer = await self.call("POST", self.with_query("/v2/video/list/", {
            "fields": "id,title,video_description,share_url,create_time"}),
            token=access_token,
            json={"max_count": 20})
        for video in answer.body.get("data", {}).get("videos", []):
            if same_text(video.get("title") or video.get("video_description", ""),
                         text) and sent_since(remote_time(video.get("create_time")), since):
                return Published(str(video["id"]), str(video.get("share_url", "")))
        return None

    async def quota(self, access_token: str) -> Quota | None:
        """None: TikTok caps posts per creator per day but does not report the count."""
        return None

    async def metrics(self, access_token: str, remote_id: str) -> dict[str, int]:
        answer = await self.call("POST", self.with_query("/v2/video/query/", {
            "fields": "id,like_count,comment_count,share_count,view_count"}),
            token=access_token, json={"filters": {"video_ids": [remote_id]}})
        videos = answer.body.get("data", {}).get("videos", [])
        if not videos:
            return {}
        video = videos[0]
        return reported(likes=video.get("like_count"), comments=video.get("comment_count"),
                        shares=video.get("share_count"), video_views=video.get("view_count"))

    def classify(self, answer: Answer) -> NetworkError | None:
        error = answer.body.get("error")
        if not isinstance(error, dict):
            return None
        code = error.get("code", "")
        reason = f"HTTP {answer.status}: {code}: {error.get('message', '')}"
        if code == "rate_limit_exceeded":
            return RateLimited(reason, network=self.network, status=answer.status,
                               retry_after=retry_after_from(answer.headers))
        if code.startswith("spam_risk_too_many"):
            return QuotaExhausted(reason, network=self.network, status=answer.status)
        return None

    def describe(self, answer: Answer) -> str:
        error = answer.body.get("error")
        if isinstance(error, dict):
            return f"{error.get('code')}: {error.get('message', '')}"
        return super().describe(answer)
