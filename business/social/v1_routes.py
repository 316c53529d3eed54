"""Social's routes in the public REST API, declared relative to ``/api/v1``.

Thin adapters over the module's store and composer: the account's posts (scheduled,
published or not yet either), each with its targets, one per channel, and their
publishing state; and one write, a new scheduled post, with ``Idempotency-Key``. Key
scopes are the module's permissions (``social.read``, ``social.compose``). Another
account's ids answer 404.

Test mode: a post made with a test-mode key is marked a sandbox object in the
transaction that creates it (:func:`~dawserver.plugin_api.mark_sandbox`), so only
test-mode keys reach it; its publishing is simulated by dispatch (no network is
contacted) and announced like any other, to test-mode webhooks.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from business.social.errors import (
    ConflictError,
    InvalidPost,
    NotAllowedError,
    NotFoundError,
    SocialError,
)
from business.social.models import Post, PostTarget
from business.social.permissions import COMPOSE, READ
from business.social.routes import MAX_POST_BYTES, composed
from business.social.services import PLUGIN_NAME, services
from business.social.v1_resources import (
    NewSocialPost,
    SocialPost,
    SocialPostFilter,
    SocialPostPage,
    SocialPostTarget,
)
from dawserver.plugin_api import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PublicOne,
    Request,
    Route,
    Unprocessable,
    answer_one,
    answer_page,
    map_errors,
    mark_sandbox,
    rfc3339,
)

#: The domain's errors as problem answers (as the module's own routes map them).
_api = map_errors(
    (InvalidPost, lambda exc: Unprocessable(str(exc), problems=exc.problems)),
    (NotFoundError, NotFound),
    (ConflictError, Conflict),
    (NotAllowedError, Forbidden),
    (SocialError, BadRequest),
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


@_api
async def create_post(request: Request) -> web.Response:
    """Schedule a post (the module's `POST /api/social/posts` then its submit, in one
    step; its id chosen by the server): it goes to its channels' approvers, or straight
    onto the schedule, and is published at `publish_at`.

    Send `Idempotency-Key` to make retries safe: the same key and body answer the first
    request's post again. A test-mode key makes a sandbox post, which only test-mode keys
    reach and whose publishing contacts no network (simulated: its targets end
    `published` with the remote id `sandbox-<post id>` and no URL).
    """
    account_id, context = request.account_id, request.context

    async def sandboxed(tx: Any, post_id: str) -> None:
        await mark_sandbox(context, PLUGIN_NAME, account_id, post_id, tx=tx)

    module = services(context)
    made = await module.posts.schedule(
        account_id, request.user or account_id, await composed(request),
        on_create=sandboxed if request.test_mode else None)
    found = await module.store.post(account_id, made.post_id)
    post = _post(found if found is not None else made)
    return answer_one(request, post, status=201,
                      headers={"Location": f"/api/v1/social-posts/{post.id}"})


ROUTES = [
    Route(method="GET", path="/social-posts", handler=list_posts, permission=READ,
          response=SocialPostPage, query=SocialPostFilter),
    Route(method="POST", path="/social-posts", handler=create_post, permission=COMPOSE,
          body=NewSocialPost, response=SocialPost, status=201, max_body=MAX_POST_BYTES,
          idempotent=True),
    Route(method="GET", path="/social-posts/{post_id}", handler=get_post, permission=READ,
          response=SocialPost, query=PublicOne),
]
