"""YouTube over the YouTube Data API v3, with Google OAuth 2.0 and PKCE S256.

- Authorize at ``https://accounts.google.com/o/oauth2/v2/auth`` with
  ``access_type=offline`` and ``prompt=consent`` (for a refresh token); tokens at
  ``POST https://oauth2.googleapis.com/token``. Access tokens last an hour; Google's
  refresh answers carry no new refresh token (the connector returns None: keep the old).
- Revoke: ``POST https://oauth2.googleapis.com/revoke`` (``token=``, the refresh token)
  withdraws the whole grant.
- Post: a video, uploaded resumably: ``POST /upload/youtube/v3/videos?uploadType=resumable``
  with the metadata (title: the text's first line, cut to 100 characters; description:
  the text and link; category Music) -> the session URL in ``Location``; the bytes go
  there by ``PUT`` in chunks (multiples of 256 KiB) with ``Content-Range``; 308 means
  "go on from ``Range``", 200/201 brings the video resource. A first comment is
  ``commentThreads.insert``.
- Quota: 10,000 units a day per project, reset at midnight Pacific time; an upload costs
  1,600 units, a list call 1, a comment 50. Over it the API answers 403
  ``quotaExceeded`` -> QuotaExhausted with ``retry_after`` = until the next Pacific
  midnight. The API has no call that reports usage, so :meth:`quota` answers the units
  this connector object spent today against the daily budget.
- Dedupe: the video's tags carry a ``mbs-`` tag made from the dedupe key (a hash, not
  shown on the watch page); :meth:`find_published` reads the uploads playlist and the
  50 most recent videos' tags (3 units). YouTube has no duplicate-content error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from typing import Any
from zoneinfo import ZoneInfo

from business.social.errors import NetworkError, QuotaExhausted, RateLimited, Rejected
from business.social.networks.base import OAuthTokens, Publication, Published, Quota, reported
from business.social.networks.http import Answer, HttpConnector, retry_after_from

#: The project's daily budget and what the calls this connector makes cost.
DAILY_UNITS = 10_000
UNITS = {"upload": 1_600, "list": 1, "comment": 50}
PACIFIC = ZoneInfo("America/Los_Angeles")
#: Resumable uploads go in multiples of 256 KiB.
CHUNK_QUANTUM = 256 * 1024


def next_pacific_midnight(now: float | None = None) -> float:
    """When YouTube's daily quota resets next (midnight, America/Los_Angeles)."""
    here = dt.datetime.fromtimestamp(time.time() if now is None else now, PACIFIC)
    tomorrow = (here + dt.timedelta(days=1)).date()
    return dt.datetime.combine(tomorrow, dt.time(0), PACIFIC).timestamp()


def dedupe_tag(dedupe_key: str) -> str:
    """The tag that marks a video as the one published for ``dedupe_key``."""
    return "mbs-" + hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:20]


class YouTubeConnector(HttpConnector):
    """YouTube Data API v3."""

    network = "youtube"
    HOSTS = {"api": "https://www.googleapis.com", "auth": "https://accounts.google.com",
             "token": "https://oauth2.googleapis.com"}
    #: Google's ``POST https://oauth2.googleapis.com/revoke``: either token ends the grant.
    REVOKE = ("token", "/revoke")
    SCOPES = ("https://www.googleapis.com/auth/youtube.upload "
              "https://www.googleapis.com/auth/youtube.readonly "
              "https://www.googleapis.com/auth/youtube.force-ssl")
    #: Bytes per PUT of a resumable upload (a multiple of 256 KiB).
    chunk_bytes = 32 * CHUNK_QUANTUM

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.units_spent = 0
        self._units_day = next_pacific_midnight()

    def _spend(self, what: str) -> None:
        if time.time() >= self._units_day:
            self.units_spent, self._units_day = 0, next_pacific_midnight()
        self.units_spent += UNITS[what]

    def authorize_url(self, state: str, code_challenge: str, redirect_uri: str) -> str:
        return self.with_query(self.url("/o/oauth2/v2/auth", "auth"), {
            "client_id": self.client_id, "redirect_uri": redirect_uri,
            "response_type": "code", "scope": self.SCOPES, "state": state,
            "access_type": "offline", "prompt": "consent",
            "code_challenge": code_challenge, "code_challenge_method": "S256"})

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str
                            ) -> OAuthTokens:
        return await self.token_request("/token", {
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier})

    async def refresh(self, refresh_token: str) -> OAuthTokens:
        return await self.token_request("/token", {
            "grant_type": "refresh_token", "refresh_token": refresh_token})

    async def _channel(self, access_token: str, part: str) -> dict:
        self._spend("list")
        answer = await self.call("GET", self.with_query("/youtube/v3/channels", {
            "part": part, "mine": "true"}), token=access_token)
        items = answer.body.get("items") or []
        if not items:
            raise Rejected("this Google account has no YouTube channel: create one first",
                           network=self.network)
        return items[0]

    def revoke_form(self, token: str) -> dict[str, str]:
        return {"token": token}  # Google takes no client here

    async def profile(self, access_token: str) -> dict:
        channel = await self._channel(access_token, "snippet")
        snippet = channel.get("snippet", {})
        return {"id": channel["id"], "name": snippet.get("title", ""),
                "handle": snippet.get("customUrl", "")}

    async def publish(self, access_token: str, publication: Publication) -> Published:
        videos = [m for m in publication.media if m.kind == "video"]
        if len(videos) != 1:
            raise Rejected("a YouTube post is exactly one video", network=self.network)
        item = videos[0]
        lines = publication.text.strip().splitlines() or [""]
        title = lines[0][:100] or "Untitled"
        description = publication.text_with_link()
        metadata = {"snippet": {"title": title, "description": description[:5000],
                                "tags": [dedupe_tag(publication.dedupe_key)],
                                "categoryId": "10"},
                    "status": {"privacyStatus": "public", "selfDeclaredMadeForKids": False}}
        data = await self.read_media(item)
        self._spend("upload")
        start = await self.call("POST", self.with_query("/upload/youtube/v3/videos", {
            "uploadType": "resumable", "part": "snippet,status"}), token=access_token,
            json=metadata, headers={"X-Upload-Content-Length": str(len(data)),
                                    "X-Upload-Content-Type": item.content_type})
        session_url = start.headers.get("Location")
        if not session_url:
            raise NetworkError("resumable upload started without a Location",
                               network=self.network)
        video = await self._upload(access_token, session_url, data, item.content_type)
        video_id = str(video["id"])
        if publication.first_comment:
            self._spend("comment")
            await self.call("POST", self.with_query("/youtube/v3/commentThreads", {
                "part": "snippet"}), token=access_token, json={"snippet": {
                    "videoId": video_id, "topLevelComment": {"snippet": {
                        "textOriginal": publication.first_comment}}}})
        return Published(video_id, f"https://www.youtube.com/watch?v={video_id}")

    async def _upload(self, access_token: str, url: str, data: bytes,
                      content_type: str) -> dict:
        offset, size, stalls = 0, len(data), 0
        while True:
            end = min(size, offset + self.chunk_bytes)
            answer = await self.call("PUT", url, token=access_token, ok=(308,),
                                     data=data[offset:end], headers={
                                         "Content-Type": content_type,
                                         "Content-Range": f"bytes {offset}-{end - 1}/{size}"})
            if answer.status != 308:
                return answer.body
            got = answer.headers.get("Range", "")  # "bytes=0-524287": what the server holds
            held = int(got.rsplit("-", 1)[1]) + 1 if got else 0
            stalls = stalls + 1 if held <= offset else 0
            if stalls >= 3:
                raise NetworkError(f"resumable upload stuck at byte {held} of {size}",
                                   network=self.network)
            offset = held

    async def find_published(self, access_token: str, dedupe_key: str, *,
                             text: str | None = None, since: float | None = None
                             ) -> Published | None:
        """The recent upload tagged with :func:`dedupe_tag` of ``dedupe_key`` (the key is
        this target's alone, so ``since`` is not needed)."""
        channel = await self._channel(access_token, "contentDetails")
        uploads = channel["contentDetails"]["relatedPlaylists"]["uploads"]
        self._spend("list")
        items = await self.call("GET", self.with_query("/youtube/v3/playlistItems", {
            "part": "contentDetails", "playlistId": uploads, "maxResults": "50"}),
            token=access_token)
        ids = [i["contentDetails"]["videoId"] for i in items.body.get("items", [])]
        if not ids:
            return None
        self._spend("list")
        videos = await self.call("GET", self.with_query("/youtube/v3/videos", {
            "part": "snippet", "id": ",".join(ids)}), token=access_token)
        tag = dedupe_tag(dedupe_key)
        for video in videos.body.get("items", []):
            if tag in video.get("snippet", {}).get("tags", []):
                return Published(video["id"], f"https://www.youtube.com/watch?v={video['id']}")
        return None

    async def quota(self, access_token: str) -> Quota | None:
        """Units this connector spent today of :data:`DAILY_UNITS` (YouTube reports none)."""
        if time.time() >= self._units_day:
            self.units_spent, self._units_day = 0, next_pacific_midnight()
        return Quota(self.units_spent, DAILY_UNITS, self._units_day)

    async def metrics(self, access_token: str, remote_id: str) -> dict[str, int]:
        self._spend("list")
        answer = await self.call("GET", self.with_query("/youtube/v3/videos", {
            "part": "statistics", "id": remote_id}), token=access_token)
        items = answer.body.get("items") or [{}]
        stats = items[0].get("statistics", {})
        return reported(video_views=stats.get("viewCount"), likes=stats.get("likeCount"),
                        comments=stats.get("commentCount"))

    def classify(self, answer: Answer) -> NetworkError | None:
        error = answer.body.get("error")
        if not isinstance(error, dict):
            return None
        reasons = {e.get("reason") for e in error.get("errors", [])}
        reason = f"HTTP {answer.status}: {error.get('message', '')} ({', '.join(reasons)})"
        if reasons & {"quotaExceeded", "dailyLimitExceeded", "uploadLimitExceeded"}:
            return QuotaExhausted(reason, network=self.network, status=answer.status,
                                  retry_after=next_pacific_midnight() - time.time())
        if reasons & {"rateLimitExceeded", "userRateLimitExceeded"}:
            return RateLimited(reason, network=self.network, status=answer.status,
                               retry_after=retry_after_from(answer.headers))
        return None
