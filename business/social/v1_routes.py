"""Social's read routes in the public REST API, declared relative to ``/api/v1``.

Thin adapters over the module's store: the account's posts (scheduled, published or
not yet either), each with its targets, one per channel, and their publishing state.
The key scope is the module's ``social.read``. Another account's ids answer 404.
"""

from __future__ import annotations

from aiohttp import web

from business.social.models import Post, PostTarget
from business.social.permissions import READ
from business.social.services import services
from business.social.v1_resources import (
    SocialPost,
    SocialPostFilter,
    SocialPostPage,
    SocialPostTarget,
)
from dawserver.plugin_api import (
    NotFound,
    PublicOne,
    Request,
    Route,
    answer_one,
    answer_page,
    rfc3339,
)

#: The most posts one list reads before paging (the store's own order, then the cursor).
MOST_POSTS = 100_000


def _time(at: float | None) -> str | None:
    return None if at is None else rfc3339(at)


def _target(target: PostTarget) -> SocialPostTarget:
    return SocialPostTarget(channel_id=target.channel_id, network=target.network,
                            state=target.state, remote_id=target.remote_id, url=target.url,
                            error=target.error, attempts=target.attempts,
                            published_at=_time(target.published_at))


def _post(post: Post) -> SocialPost:
    return SocialPost(id=post.post_id, text=post.text, campaign=post.campaign,
                      state=post.state, publish_at=_time(post.publish_at),
                      time_zone=post.time_zone, created_at=rfc3339(post.created_at),
                      updated_at=rfc3339(post.updated_at),
                      targets=[_target(t) for t in post.targets])


async def list_posts(request: Request) -> web.Response:
    """The account's posts by publish time (unscheduled last); filter with `state`,
    `campaign` and `channel_id`."""
    query = request.query
    rows = await services(request.context).store.posts(
        request.account_id, state=query.state or "", campaign=query.campaign or "",
        channel_id=query.channel_id or "", limit=MOST_POSTS)
    order = {p.post_id: (p.publish_at is None, p.publish_at or 0.0, p.created_at)
             for p in rows}
    return answer_page(request, SocialPostPage, [_post(p) for p in rows],
                       lambda p: (*order[p.id], p.id))


async def get_post(request: Request) -> web.Response:
    """One post of the account and its targets."""
    post_id = request.params["post_id"]
    found = await services(request.context).store.post(request.account_id, post_id)
    if found is None:
        raise NotFound(f"no post {post_id!r} in this account")
    return answer_one(request, _post(found))


ROUTES = [
    Route(method="GET", path="/social-posts", handler=list_posts, permission=READ,
          response=SocialPostPage, query=SocialPostFilter),
    Route(method="GET", path="/social-posts/{post_id}", handler=get_post, permission=READ,
          response=SocialPost, query=PublicOne),
]
