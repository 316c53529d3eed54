"""LinkedIn (members' feeds) over the versioned REST API.

- Authorize at ``https://www.linkedin.com/oauth/v2/authorization`` (scopes ``openid
  profile w_member_social``; PKCE S256 is sent, which LinkedIn's standard flow does not
  check); tokens at ``POST /oauth/v2/accessToken``. Access tokens last 60 days; refresh
  tokens (for approved apps) a year, and a refresh may leave the refresh token out.
- Every REST call carries ``LinkedIn-Version`` (:attr:`LinkedInConnector.VERSION`) and
  ``X-Restli-Protocol-Version: 2.0.0``. Post: ``POST /rest/posts`` with ``author``,
  ``commentary``, ``visibility``, ``distribution``, ``lifecycleState``; the new post's URN
  comes in ``x-restli-id``. An image is uploaded first
  (``POST /rest/images?action=initializeUpload``, then ``PUT`` to its ``uploadUrl``);
  a link becomes an ``article``. A first comment is
  ``POST /rest/socialActions/{urn}/comments``.
- Errors: 401 -> TokenExpired; 429 -> RateLimited; 422 "Content is a duplicate of
  urn:li:share:..." -> Duplicate carrying that post.
- Dedupe: no field for our key; :meth:`find_published` matches ``text=`` against the
  ``commentary`` of the member's 50 most recent posts (``GET /rest/posts?q=author``).
"""

from __future__ import annotations

import re
from urllib.parse import quote

from business.social.errors import Duplicate, NetworkError, Rejected
from business.social.networks.base import (
    MediaItem,
    OAuthTokens,
    Publication,
    Published,
    Quota,
    reported,
)
from business.social.networks.http import (
    Answer,
    HttpConnector,
    remote_time,
    same_text,
    sent_since,
)

_URN = re.compile(r"urn:li:(?:share|ugcPost|activity):\d+")


def post_url(urn: str) -> str:
    return f"https://www.linkedin.com/feed/update/{urn}/"


class LinkedInConnector(HttpConnector):
    """LinkedIn REST API (Posts, Images, Social Actions)."""

    network = "linkedin"
    HOSTS = {"api": "https://api.linkedin.com", "auth": "https://www.linkedin.com",
             "token": "https://www.linkedin.com"}
    SCOPES = "openid profile w_member_social"
    VERSION = "202505"

    @property
    def rest_headers(self) -> dict[str, str]:
        return {"LinkedIn-Version": self.VERSION, "X-Restli-Protocol-Version": "2.0.0"}

    def authorize_url(self, state: str, code_challenge: str, redirect_uri: str) -> str:
        return self.with_query(self.url("/oauth/v2/authorization", "auth"), {
            "response_type": "code", "client_id": self.client_id,
            "redirect_uri": redirect_uri, "scope": self.SCOPES, "state": state,
            "code_challenge": code_challenge, "code_challenge_method": "S256"})

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str
                            ) -> OAuthTokens:
        return await self.token_request("/oauth/v2/accessToken", {
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier})

    async def refresh(self, refresh_token: str) -> OAuthTokens:
        return await self.token_request("/oauth/v2/accessToken", {
            "grant_type": "refresh_token", "refresh_token": refresh_token})

    async def profile(self, access_token: str) -> dict:
        body = (await self.call("GET", "/v2/userinfo", token=access_token)).body
        return {"id": body["sub"], "name": body.get("name", ""),
                "handle": body.get("email", "")}

    async def _author(self, access_token: str) -> str:
        return f"urn:li:person:{(await self.profile(access_token))['id']}"

    async def publish(self, access_token: str, publication: Publication) -> Published:
        author = await self._author(access_token)
        body: dict = {"author": author, "commentary": publication.text,
                      "visibility": "PUBLIC",
                      "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [],
                                       "thirdPartyDistributionChannels": []},
                      "lifecycleState": "PUBLISHED", "isReshareDisabledByAuthor": False}
        if len(publication.media) > 1:
            raise Rejected("this connector posts one image per LinkedIn post",
                           network=self.network)
        if publication.media:
            image = await self._upload_image(access_token, author, publication.media[0])
            body["content"] = {"media": {"id": image}}
        elif publication.link:
            body["content"] = {"article": {"source": publication.link,
                                           "title": publication.link}}
        answer = await self.call("POST", "/rest/posts", token=access_token, json=body,
                                 headers=self.rest_headers)
        urn = answer.headers.get("x-restli-id") or str(answer.body.get("id", ""))
        if publication.first_comment:
            await self.call("POST", f"/rest/socialActions/{quote(urn, safe='')}/comments",
                            token=access_token, headers=self.rest_headers, json={
                                "actor": author, "object": urn,
                                "message": {"text": publication.first_comment}})
        return Published(urn, post_url(urn))

    async def _upload_image(self, access_token: str, author: str, item: MediaItem) -> str:
        if item.kind != "image":
            raise Rejected(f"this connector posts images to LinkedIn, not {item.kind}",
                           network=self.network)
        init = await self.call("POST", "/rest/images?action=initializeUpload",
                               token=access_token, headers=self.rest_headers,
                               json={"initializeUploadRequest": {"owner": author}})
        value = init.body["value"]
        await self.call("PUT", value["uploadUrl"], token=access_token,
                        data=await self.read_media(item),
                        headers={"Content-Type": item.content_type})
        return str(value["image"])

    async def find_published(self, access_token: str, dedupe_key: str, *,
                             text: str | None = None, since: float | None = None
                             ) -> Published | None:
        """The member's recent post whose commentary is ``text``, created since ``since``
        (:func:`sent_since`; ``createdAt``, or the older ``created.time``, in ms)."""
        if not text:
            return None
        author = await self._author(access_token)
        answer = await self.call(
            "GET", f"/rest/posts?author={quote(author, safe='')}&q=author&count=50",
            token=access_token, headers=self.rest_headers)
        for post in answer.body.get("elements", []):
            if same_text(str(post.get("commentary", "")), text) and sent_since(
                    created_ms(post), since):
                return Published(str(post["id"]), post_url(str(post["id"])))
        return None

    async def quota(self, access_token: str) -> Quota | None:
        """None: LinkedIn's daily limits are not reported by the API."""
        return None

    async def metrics(self, access_token: str, remote_id: str) -> dict[str, int]:
        answer = await self.call("GET", f"/rest/socialActions/{quote(remote_id, safe='')}",
                                 token=access_token, headers=self.rest_headers)
        body = answer.body
        return reported(likes=(body.get("likesSummary") or {}).get("totalLikes"),
                        comments=(body.get("commentsSummary") or {})
                        .get("aggregatedTotalComments"))

    def classify(self, answer: Answer) -> NetworkError | None:
        message = str(answer.body.get("message", ""))
        if answer.status == 422 and "duplicate" in message.lower():
            found = _URN.search(message)
            existing = Published(found.group(0), post_url(found.group(0))) if found else None
            return Duplicate(message, existing=existing, network=self.network, status=422)
        return None


def created_ms(post: dict) -> float | None:
    """A post's creation time in epoch seconds (``createdAt``, or ``created.time``, in ms)."""
    created = post.get("createdAt")
    if created is None:
        created = (post.get("created") or {}).get("time")
    return remote_time(created, millis=True)
