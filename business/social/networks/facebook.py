"""Facebook Pages over the Graph API.

- Authorize at ``https://www.facebook.com/{version}/dialog/oauth`` (PKCE S256, which
  Facebook Login checks when sent); the code gives a user token at
  ``GET /oauth/access_token`` (with ``code_verifier``), exchanged for a 60-day token
  (``grant_type=fb_exchange_token``), which is also how it is refreshed. No refresh token:
  the long-lived user token is returned as both.
- A channel is a Page: :meth:`FacebookConnector.pages` lists the user's Pages
  (``GET /me/accounts``, each with its Page token); the connector posts to ``page_id`` (or
  the first Page) with that Page's token: ``POST /{page-id}/feed`` (``message``, ``link``),
  ``/photos`` (multipart ``source``) or ``/videos`` (multipart ``source``,
  ``description``). A first comment is ``POST /{post-id}/comments``.
- Errors: Graph codes: 190 -> TokenExpired; 4/17/32/613 -> RateLimited (``retry_after``
  from ``X-Business-Use-Case-Usage``); 506 "Duplicate status message" -> Duplicate (with
  the earlier post, found in the Page's feed).
- Revoke: ``DELETE /me/permissions`` with the user token withdraws the app's grant.
- Dedupe: no field for our key; :meth:`find_published` matches ``text=`` against the
  ``message`` of the Page's 50 most recent posts.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from business.social.errors import Duplicate, NetworkError, Rejected, TokenExpired
from business.social.networks.base import OAuthTokens, Publication, Published, Quota
from business.social.networks.http import (
    _json,
    remote_time,
    retry_after_from,
    same_text,
    sent_since,
)
from business.social.networks.instagram import insights
from business.social.networks.meta import GraphConnector


class FacebookConnector(GraphConnector):
    """Facebook Pages (graph.facebook.com)."""

    network = "facebook"
    HOSTS = {"api": "https://graph.facebook.com", "auth": "https://www.facebook.com",
             "video": "https://graph-video.facebook.com"}
    SCOPES = "pages_show_list,pages_manage_posts,pages_read_engagement,read_insights"

    def __init__(self, *args: Any, page_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.page_id = page_id

    def authorize_url(self, state: str, code_challenge: str, redirect_uri: str) -> str:
        return self.with_query(self.url(self.v("/dialog/oauth"), "auth"), {
            "client_id": self.client_id, "redirect_uri": redirect_uri,
            "response_type": "code", "scope": self.SCOPES, "state": state,
            "code_challenge": code_challenge, "code_challenge_method": "S256"})

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str
                            ) -> OAuthTokens:
        answer = await self.call("GET", self.with_query(self.v("/oauth/access_token"), {
            "client_id": self.client_id, "client_secret": self.client_secret,
            "redirect_uri": redirect_uri, "code": code, "code_verifier": code_verifier}))
        return await self.refresh(str(answer.body["access_token"]))

    async def refresh(self, refresh_token: str) -> OAuthTokens:
        answer = await self.call("GET", self.with_query(self.v("/oauth/access_token"), {
            "grant_type": "fb_exchange_token", "client_id": self.client_id,
            "client_secret": self.client_secret, "fb_exchange_token": refresh_token}))
        token = str(answer.body["access_token"])
        expires_in = answer.body.get("expires_in")
        return OAuthTokens(token, token, time.time() + float(expires_in) if expires_in
                           else None)

    @classmethod
    def revocable(cls) -> bool:
        return True

    async def revoke(self, access_token: str, refresh_token: str) -> None:
        """``DELETE /me/permissions`` with the user's token: every permission the user
        gave the app is withdrawn (the Page tokens derived from it die too). A token
        Graph no longer accepts (code 190) counts as withdrawn."""
        try:
            answer = await self.session.delete(
                self.url(self.v("/me/permissions")), timeout=self.timeout,
                headers={"Authorization": f"Bearer {refresh_token or access_token}"})
            async with answer:
                status, body = answer.status, _json(await answer.read())
                headers = answer.headers
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise NetworkError(f"revocation failed: {type(exc).__name__}: {exc}",
                               network=self.network) from exc
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        if 200 <= status < 300 or error.get("code") == 190:
            return
        reason = f"revocation: HTTP {status}: {error.get('message') or body}"
        if status == 429 or status >= 500 or error.get("is_transient"):
            raise NetworkError(reason, network=self.network, status=status,
                               retry_after=retry_after_from(headers))
        raise Rejected(reason, network=self.network, status=status)

    async def pages(self, access_token: str) -> list[dict[str, str]]:
        """The Pages the user manages: ``{"id", "name", "access_token"}`` each."""
        answer = await self.call("GET", self.with_query(self.v("/me/accounts"), {
            "fields": "id,name,username,access_token"}), token=access_token)
        return [dict(page) for page in answer.body.get("data", [])]

    async def page(self, access_token: str) -> dict[str, str]:
        """The Page this connector posts to, with its Page token."""
        for page in await self.pages(access_token):
            if self.page_id is None or page["id"] == self.page_id:
                return page
        raise TokenExpired(f"the user no longer manages Page {self.page_id or '(any)'}: "
                           "reconnect the channel", network=self.network)

    async def profile(self, access_token: str) -> dict:
        """The Page, and (``user_id``) the user whose grant it rests on: revoking that
        grant (:meth:`revoke`) kills every Page of the user's."""
        page = await self.page(access_token)
        me = await self.call("GET", self.with_query(self.v("/me"), {"fields": "id"}),
                             token=access_token)
        return {"id": page["id"], "name": page.get("name", ""),
                "handle": page.get("username", ""), "user_id": str(me.body.get("id") or "")}

    async def publish(self, access_token: str, publication: Publication) -> Published:
        page = await self.page(access_token)
        token, page_id = page["access_token"], page["id"]
        if len(publication.media) > 1:
            raise Rejected("this connector posts one photo or video per Page post",
                           network=self.network)
        try:
            post_id = await self._post(token, page_id, publication)
        except Duplicate as exc:
            exc.existing = await self._find(token, page_id, publication.text)
            raise
        if publication.first_comment:
            await self.call("POST", self.v(f"/{post_id}/comments"), token=token,
                            data={"message": publication.first_comment})
        return Published(post_id, f"https://www.facebook.com/{post_id}")

    async def _post(self, token: str, page_id: str, publication: Publication) -> str:
        if not publication.media:
            form = {"message": publication.text}
            if publication.link:
                form["link"] = publication.link
            answer = await self.call("POST", self.v(f"/{page_id}/feed"), token=token,
                                     data=form)
            return str(answer.body["id"])
        item = publication.media[0]
        text = publication.text
        if publication.link and publication.link not in text:
            text = f"{text} {publication.link}".strip()
        form_data = aiohttp.FormData()
        if item.kind == "image":
            edge, host, field = "/photos", "api", "caption"
        elif item.kind == "video":
            edge, host, field = "/videos", "video", "description"
        else:
            raise Rejected(f"Facebook takes photos and videos, not {item.kind}",
                           network=self.network)
        form_data.add_field(field, text)
        form_data.add_field("source", await self.read_media(item),
                            content_type=item.content_type, filename=item.path.rsplit("/")[-1])
        answer = await self.call("POST", self.v(f"/{page_id}{edge}"), host=host, token=token,
                                 data=form_data)
        return str(answer.body.get("post_id") or answer.body["id"])

    async def find_published(self, access_token: str, dedupe_key: str, *,
                             text: str | None = None, since: float | None = None
                             ) -> Published | None:
        """The Page's recent post whose message is ``text`` (no field holds our key),
        created since ``since`` (:func:`sent_since`; the post's ``created_time``)."""
        if not text:
            return None
        page = await self.page(access_token)
        return await self._find(page["access_token"], page["id"], text, since)

    async def _find(self, token: str, page_id: str, text: str, since: float | None = None
                    ) -> Published | None:
        answer = await self.call("GET", self.with_query(self.v(f"/{page_id}/feed"), {
            "fields": "id,message,permalink_url,created_time", "limit": "50"}), token=token)
        for post in answer.body.get("data", []):
            if same_text(str(post.get("message", "")), text) and sent_since(
                    remote_time(post.get("created_time")), since):
                return Published(str(post["id"]), str(post.get("permalink_url") or
                                                      f"https://www.facebook.com/{post['id']}"))
        return None

    async def quota(self, access_token: str) -> Quota | None:
        """None: Pages have no publishing quota the API reports (throttling is per call)."""
        return None

    async def metrics(self, access_token: str, remote_id: str) -> dict[str, int]:
        page = await self.page(access_token)
        answer = await self.call("GET", self.with_query(self.v(f"/{remote_id}/insights"), {
            "metric": "post_impressions,post_impressions_unique,post_clicks,post_video_views"}),
            token=page["access_token"])
        return insights(answer.body, {"post_impressions": "impressions",
                                      "post_impressions_unique": "reach",
                                      "post_clicks": "clicks",
                                      "post_video_views": "video_views"})
