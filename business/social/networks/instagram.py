"""Instagram (professional accounts) over the Instagram API with Instagram Login.

- Authorize at ``https://www.instagram.com/oauth/authorize`` (PKCE S256 sent); the code
  gives a short-lived token at ``POST https://api.instagram.com/oauth/access_token``,
  exchanged at once for a 60-day token (``GET /access_token?grant_type=ig_exchange_token``)
  and refreshed with ``GET /refresh_access_token?grant_type=ig_refresh_token``. There is
  no refresh token: the long-lived token is returned as both.
- Post in two steps: a container ``POST /{ig-user-id}/media`` (``image_url`` for an image,
  ``media_type=REELS`` with ``upload_type=resumable`` and the bytes sent to the container's
  upload ``uri`` for a video, ``CAROUSEL`` children for several items), polled on
  ``status_code`` until ``FINISHED``, then ``POST /{ig-user-id}/media_publish``. A first
  comment is ``POST /{media-id}/comments``. Images are fetched by Instagram from a public
  URL: build the connector with ``media_url=``.
- Limits: 100 published posts per rolling 24 h, read from
  ``GET /{ig-user-id}/content_publishing_limit``; over it, ``media_publish`` answers code 9
  / subcode 2207042 -> QuotaExhausted (``retry_after`` from the limit).
- Dedupe: Instagram has no duplicate-content error and no field for our key;
  :meth:`find_published` matches the caption (``text=``) among the 50 most recent media.
"""

from __future__ import annotations

from business.social.errors import Rejected
from business.social.networks.base import MediaItem, Publication
from business.social.networks.meta import ContainerConnector


class InstagramConnector(ContainerConnector):
    """Instagram API with Instagram Login (graph.instagram.com)."""

    network = "instagram"
    HOSTS = {"api": "https://graph.instagram.com", "auth": "https://www.instagram.com",
             "token": "https://api.instagram.com", "upload": "https://rupload.facebook.com"}
    SCOPES = "instagram_business_basic,instagram_business_content_publish," \
             "instagram_business_manage_comments"

    async def profile(self, access_token: str) -> dict:
        answer = await self.call("GET", self.with_query(self.v("/me"), {
            "fields": "user_id,username,name"}), token=access_token)
        body = answer.body
        return {"id": str(body.get("user_id") or body["id"]),
                "name": body.get("name") or body.get("username", ""),
                "handle": body.get("username", "")}

    async def create_container(self, access_token: str, user_id: str,
                               publication: Publication) -> str:
        if not publication.media:
            raise Rejected("Instagram posts need an image or a video", network=self.network)
        caption = publication.text_with_link()  # shown, not clickable: validation warns
        if len(publication.media) == 1:
            return await self._item(access_token, user_id, publication.media[0], caption)
        children = [await self._item(access_token, user_id, item, None)
                    for item in publication.media]
        for child in children:
            await self.wait_finished(access_token, child)
        answer = await self.call("POST", self.v(f"/{user_id}/media"), token=access_token,
                                 data={"media_type": "CAROUSEL", "caption": caption,
                                       "children": ",".join(children)})
        return str(answer.body["id"])

    async def _item(self, access_token: str, user_id: str, item: MediaItem,
                    caption: str | None) -> str:
        form: dict[str, str] = {}
        if caption is not None:
            form["caption"] = caption
        else:
            form["is_carousel_item"] = "true"
        if item.kind == "image":
            form["image_url"] = self.public_url(item)
        elif item.kind == "video":
            form.update(media_type="REELS" if caption is not None else "VIDEO",
                        upload_type="resumable")
        else:
            raise Rejected(f"Instagram takes images and videos, not {item.kind}",
                           network=self.network)
        answer = await self.call("POST", self.v(f"/{user_id}/media"), token=access_token,
                                 data=form)
        container = str(answer.body["id"])
        if item.kind == "video":
            data = await self.read_media(item)
            uri = answer.body.get("uri") or f"/ig-api-upload/{self.VERSION}/{container}"
            await self.call("POST", uri, host="upload", data=data, headers={
                "Authorization": f"OAuth {access_token}", "offset": "0",
                "file_size": str(len(data))})
        return container

    async def comment(self, access_token: str, user_id: str, media_id: str, text: str) -> None:
        await self.call("POST", self.v(f"/{media_id}/comments"), token=access_token,
                        data={"message": text})

    async def metrics(self, access_token: str, remote_id: str) -> dict[str, int]:
        # "views" replaced "impressions" on Instagram in 2025 (all media kinds)
        answer = await self.call("GET", self.with_query(self.v(f"/{remote_id}/insights"), {
            "metric": "reach,likes,comments,shares,views"}), token=access_token)
        names = {"reach": "reach", "likes": "likes", "comments": "comments",
                 "shares": "shares", "views": "impressions"}
        return insights(answer.body, names)


def insights(body: dict, names: dict[str, str]) -> dict[str, int]:
    """Graph insights (``data[{name, values[{value}]}]`` or ``total_value``) renamed."""
    out: dict[str, int] = {}
    for entry in body.get("data", []):
        ours = names.get(entry.get("name", ""))
        if ours is None:
            continue
        if "total_value" in entry:
            out[ours] = int(entry["total_value"].get("value", 0))
        elif entry.get("values"):
            out[ours] = int(entry["values"][-1].get("value", 0))
    return out
