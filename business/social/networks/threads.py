"""Threads over the Threads API (graph.threads.net), a container -> publish flow.

- Authorize at ``https://threads.net/oauth/authorize`` (PKCE S256 sent; Threads documents
  none and ignores it); the code gives a short-lived token at ``POST /oauth/access_token``,
  exchanged for a 60-day token (``GET /access_token?grant_type=th_exchange_token``) and
  refreshed with ``GET /refresh_access_token?grant_type=th_refresh_token``; no refresh
  token: the long-lived token is returned as both.
- Post: ``POST /{user-id}/threads`` (``media_type`` TEXT, IMAGE with ``image_url``, VIDEO
  with ``video_url``; Threads fetches media from public URLs: ``media_url=``), poll the
  container's ``status`` until ``FINISHED``, then ``POST /{user-id}/threads_publish``. A
  first comment is a reply container (``reply_to_id``) published the same way.
- Limits: 250 posts per rolling 24 h, from ``GET /{user-id}/threads_publishing_limit``.
- Dedupe: Threads has no duplicate-content error nor a field for our key;
  :meth:`find_published` matches ``text=`` among the 50 most recent threads.
"""

from __future__ import annotations

from business.social.errors import Rejected
from business.social.networks.base import Publication, total
from business.social.networks.instagram import insights
from business.social.networks.meta import ContainerConnector


class ThreadsConnector(ContainerConnector):
    """Threads API."""

    network = "threads"
    HOSTS = {"api": "https://graph.threads.net", "auth": "https://threads.net",
             "token": "https://graph.threads.net"}
    SCOPES = "threads_basic,threads_content_publish,threads_manage_insights"
    VERSION = "v1.0"
    STATUS_FIELD = "status"
    MEDIA_EDGE = "/threads"
    PUBLISH_EDGE = "/threads_publish"
    TEXT_FIELD = "text"
    LIMIT_EDGE = "/threads_publishing_limit"
    EXCHANGE_GRANT = "th_exchange_token"
    REFRESH_GRANT = "th_refresh_token"

    async def profile(self, access_token: str) -> dict:
        answer = await self.call("GET", self.with_query(self.v("/me"), {
            "fields": "id,username,name"}), token=access_token)
        body = answer.body
        return {"id": str(body["id"]), "name": body.get("name") or body.get("username", ""),
                "handle": body.get("username", "")}

    async def create_container(self, access_token: str, user_id: str,
                               publication: Publication, reply_to: str | None = None) -> str:
        text = publication.text
        if publication.link and publication.link not in text:
            text = f"{text} {publication.link}".strip()
        form = {"media_type": "TEXT", "text": text}
        if reply_to:
            form["reply_to_id"] = reply_to
        if len(publication.media) > 1:
            raise Rejected("this connector posts one image or video per thread",
                           network=self.network)
        for item in publication.media:
            if item.kind == "image":
                form.update(media_type="IMAGE", image_url=self.public_url(item))
            elif item.kind == "video":
                form.update(media_type="VIDEO", video_url=self.public_url(item))
            else:
                raise Rejected(f"Threads takes images and videos, not {item.kind}",
                               network=self.network)
        answer = await self.call("POST", self.v(f"/{user_id}/threads"), token=access_token,
                                 data=form)
        return str(answer.body["id"])

    async def comment(self, access_token: str, user_id: str, media_id: str, text: str) -> None:
        reply = Publication(dedupe_key="", text=text)
        container = await self.create_container(access_token, user_id, reply, media_id)
        await self.wait_finished(access_token, container)
        await self.call("POST", self.v(f"/{user_id}/threads_publish"), token=access_token,
                        data={"creation_id": container})

    async def metrics(self, access_token: str, remote_id: str) -> dict[str, int]:
        answer = await self.call("GET", self.with_query(self.v(f"/{remote_id}/insights"), {
            "metric": "views,likes,replies,reposts,quotes"}), token=access_token)
        found = insights(answer.body, {"views": "impressions", "likes": "likes",
                                       "replies": "comments", "reposts": "reposts",
                                       "quotes": "quotes"})
        shares = total(found.pop("reposts", None), found.pop("quotes", None))
        return {**found, **({"shares": shares} if shares is not None else {})}
