"""HTTP routes of the social plug-in, declared through the plug-in API.

Each handler gets a :class:`dawserver.plugin_api.Request` and calls the services;
every query is scoped by ``request.account_id``, so another account's ids answer
404 like missing ones. Domain errors become answers: 404 (not found), 409 (state),
403 (approving one's own post), 422 with ``problems`` (per channel and field) for a
post its networks refuse, 422 for a notification address that is none of the account's
people, 400 for the rest. Who may do what: :mod:`.permissions`.
"""

from __future__ import annotations

from typing import Any

from business.social.errors import (
    ConflictError,
    InvalidPost,
    NetworkError,
    NotAllowedError,
    NotFoundError,
    NotPersonOfAccount,
    SocialError,
)
from business.social.models import NEEDS_RECONNECT, Channel, Post
from business.social.permissions import APPROVE, CHANNELS, COMPOSE, READ
from business.social.rights import caller_rights
from business.social.schemas import (
    AuditOut,
    CalendarEntry,
    CalendarQuery,
    Callback,
    ChannelOut,
    ChannelRights,
    ConnectQuery,
    Decision,
    NextSlot,
    NextSlotQuery,
    PostEdit,
    PostIn,
    PostOut,
    PostsQuery,
    Slots,
    Workflow,
)
from business.social.services import services
from business.social.times import iso, parse_time
from business.social.uploads import MediaUploads
from dawserver.plugin_api import (
    PUBLIC,
    BadRequest,
    Conflict,
    Empty,
    Forbidden,
    Media,
    NotFound,
    Reply,
    Request,
    Route,
    Unavailable,
    Unprocessable,
    allows,
    map_errors,
)

#: The domain's errors as HTTP errors (the first rule that matches decides).
_api = map_errors(
    (InvalidPost, lambda exc: Unprocessable(str(exc), problems=exc.problems)),
    (NotFoundError, NotFound),
    (NotPersonOfAccount, Unprocessable),
    (ConflictError, Conflict),
    (NotAllowedError, Forbidden),
    (SocialError, BadRequest),
    (NetworkError, lambda exc: Unavailable(f"the network did not answer as it should ({exc}); "
                                           "try again later")),
)


def _person(request: Request) -> str:
    """Who acts: the signed-in person (or the token's user), else the account."""
    return request.user or request.account_id


async def composed(request: Request) -> dict[str, Any]:
    """The body's fields as sent, its uploaded media described as they were read when
    uploaded (:meth:`~.uploads.MediaUploads.described`): a caller cannot pass off a
    large file as a small one."""
    fields = request.body.model_dump(exclude_unset=True)
    context = request.context
    return await MediaUploads(context.database(), context.data_dir).described(
        request.account_id, fields)


def channel_out(request: Request, channel: Channel) -> dict[str, Any]:
    """A channel as the API shows it (never its tokens), with the caller's rights on it."""
    reconnect = None
    if channel.state == NEEDS_RECONNECT:
        reconnect = services(request.context).channels.reconnect_url(request.account_id,
                                                                     channel)
    return {"channel_id": channel.channel_id, "network": channel.network,
            "remote_id": channel.remote_id, "name": channel.name, "handle": channel.handle,
            "state": channel.state, "expires_at": channel.expires_at, "scope": channel.scope,
            "last_error": channel.last_error, "connected_by": channel.connected_by,
            "reconnect_url": reconnect, "created_at": channel.created_at,
            "updated_at": channel.updated_at,
            "my_rights": caller_rights(
                channel, _person(request),
                composes=allows(request.context, request.principal, COMPOSE),
                manages=allows(request.context, request.principal, CHANNELS))}


def post_out(post: Post) -> dict[str, Any]:
    """A post as the API shows it (times in its zone)."""
    return {"post_id": post.post_id, "author_id": post.author_id, "text": post.text,
            "media": post.media, "link": post.link, "first_comment": post.first_comment,
            "campaign": post.campaign, "publish_at": iso(post.publish_at, post.time_zone),
            "time_zone": post.time_zone, "state": post.state, "version": post.version,
            "submitted_at": post.submitted_at, "created_at": post.created_at,
            "updated_at": post.updated_at,
            "targets": [{"channel_id": t.channel_id, "network": t.network, "text": t.text,
                         "media": t.media, "link": t.link, "first_comment": t.first_comment,
                         "state": t.state, "approval_tier": t.approval_tier,
                         "dedupe_key": t.dedupe_key, "remote_id": t.remote_id, "url": t.url,
                         "error": t.error, "attempts": t.attempts, "version": t.version,
                         "published_at": t.published_at}
                        for t in post.targets]}


# -- channels ------------------------------------------------------------------------------

@_api
async def list_channels(request: Request) -> Any:
    """The account's connected channels (never their tokens)."""
    found = await services(request.context).store.channels(request.account_id)
    return [channel_out(request, c) for c in found]


@_api
async def get_channel(request: Request) -> Any:
    """One channel, with a reconnect link when its grant died."""
    channel = await services(request.context).channels.get(request.account_id,
                                                           request.params["channel_id"])
    return channel_out(request, channel)


@_api
async def connect_channel(request: Request) -> Reply:
    """Send the browser to the network to connect a channel (OAuth 2.0, PKCE; 302)."""
    url = await services(request.context).channels.begin(
        request.account_id, _person(request), request.params["network"],
        request.query.channel_id)
    return Reply("", status=302, headers={"Location": url, "Cache-Control": "no-store"})


@_api
async def channel_callback(request: Request) -> Reply:
    """The network's redirect back: store the channel, then back to the page (302)."""
    query: Callback = request.query
    channel = await services(request.context).channels.finish(
        request.params["network"], query.state, query.code, query.error)
    return Reply("", status=302, headers={
        "Location": f"/#social_channel={channel.channel_id}", "Cache-Control": "no-store"})


@_api
async def refresh_channel(request: Request) -> Any:
    """Refresh the channel's tokens now."""
    channel = await services(request.context).channels.refresh(
        request.account_id, request.params["channel_id"], force=True)
    return channel_out(request, channel)


@_api
async def disconnect_channel(request: Request) -> Any:
    """Disconnect a channel: its tokens are forgotten."""
    channel = await services(request.context).channels.disconnect(
        request.account_id, request.params["channel_id"], _person(request))
    return channel_out(request, channel)


@_api
async def get_workflow(request: Request) -> Any:
    """The channel's approval tiers."""
    channel = await services(request.context).channels.get(request.account_id,
                                                           request.params["channel_id"])
    return {"tiers": [[a.to_dict() for a in tier] for tier in channel.tiers]}


@_api
async def set_workflow(request: Request) -> Any:
    """Replace the channel's approval tiers (at most 3; each names its approvers)."""
    module = services(request.context)
    channel_id = request.params["channel_id"]
    await module.channels.get(request.account_id, channel_id)
    tiers = []
    for number, tier in enumerate(request.body.tiers, 1):
        approvers = []
        for approver in tier:
            named = approver.model_dump(exclude_none=True)
            if len(named) != 1:
                raise BadRequest(f"tier {number}: each approver names exactly one of "
                                 "'person', 'team' or 'role'")
            approvers.append(named)
        if not approvers:
            raise BadRequest(f"tier {number} names no approver; remove it or add one")
        tiers.append(approvers)
    await _only_people_of(request, module,
                          [a["person"] for tier in tiers for a in tier if "person" in a],
                          "who could never reach a post to approve it")
    await module.approvals.set_workflow(request.account_id, channel_id, tiers,
                                        _person(request))
    return {"tiers": tiers}


@_api
async def get_rights(request: Request) -> Any:
    """The channel's per-person rights (publish, approval, view); one who may not manage
    the channel sees only their own."""
    channel = await services(request.context).channels.get(request.account_id,
                                                           request.params["channel_id"])
    shown = channel.rights
    if not allows(request.context, request.principal, CHANNELS):
        shown = tuple((p, a) for p, a in channel.rights if p == _person(request))
    return {"rights": [{"person": p, "access": a} for p, a in shown]}


async def _only_people_of(request: Request, module: Any, people: list[str], why: str
                          ) -> None:
    """:class:`NotPersonOfAccount` (422) naming those of ``people`` who are not the
    account itself or a member of its organisation or team (``why`` that matters); on a
    server without accounts (no memberships to read) anyone a token names may be."""
    if request.context.membership is None:
        return
    account_id = request.account_id
    strangers = [p for p in dict.fromkeys(people)
                 if await module.approvals.role_in(account_id, p) is None]
    if strangers:
        raise NotPersonOfAccount(f"{strangers} are not people of this account, {why}: name "
                                 "the account itself or members of this organisation or "
                                 "team")


@_api
async def set_rights(request: Request) -> Any:
    """Replace the channel's per-person rights; a person not named keeps their role's."""
    module = services(request.context)
    channel_id = request.params["channel_id"]
    await module.channels.get(request.account_id, channel_id)
    rights = [right.model_dump() for right in request.body.rights]
    people = [r["person"] for r in rights]
    twice = sorted({p for p in people if people.count(p) > 1})
    if twice:
        raise BadRequest(f"{twice} named more than once; give each person one access")
    await _only_people_of(request, module, people, "whom rights could not reach")
    await module.store.set_rights(request.account_id, channel_id, rights,
                                  module.channels.clock())
    await module.store.audit(None, request.account_id, f"channel:{channel_id}",
                             "rights.set", _person(request), {"rights": rights})
    return {"rights": rights}


@_api
async def get_slots(request: Request) -> Any:
    """The channel's weekly queue slots."""
    channel = await services(request.context).channels.get(request.account_id,
                                                           request.params["channel_id"])
    return {"time_zone": channel.time_zone, "slots": list(channel.slots)}


@_api
async def set_slots(request: Request) -> Any:
    """Replace the channel's weekly queue slots."""
    body: Slots = request.body
    slots = await services(request.context).calendar.set_slots(
        request.account_id, request.params["channel_id"],
        [s.model_dump() for s in body.slots], body.time_zone)
    return {"time_zone": body.time_zone, "slots": slots}


@_api
async def next_slot(request: Request) -> Any:
    """The channel's next queue slot that no post holds."""
    module = services(request.context)
    channel_id = request.params["channel_id"]
    after = parse_time(request.query.after)[0] if request.query.after else None
    when = await module.calendar.next_free(request.account_id, channel_id, after)
    channel = await module.channels.get(request.account_id, channel_id)
    return {"channel_id": channel_id, "at": iso(when, channel.time_zone), "at_epoch": when}


# -- posts ---------------------------------------------------------------------------------

@_api
async def list_posts(request: Request) -> Any:
    """The account's posts, by publish time (undated drafts last)."""
    query: PostsQuery = request.query
    found = await services(request.context).store.posts(
        request.account_id, state=query.state, campaign=query.campaign,
        channel_id=query.channel)
    return [post_out(p) for p in found]


@_api
async def create_post(request: Request) -> Any:
    """Compose a post (a draft): base fields, per-channel variants, a publish time."""
    post = await services(request.context).posts.create(
        request.account_id, _person(request), await composed(request))
    return post_out(post)


@_api
async def get_post(request: Request) -> Any:
    """One post with its channels' variants and states."""
    return post_out(await services(request.context).posts.get(request.account_id,
                                                             request.params["post_id"]))


@_api
async def edit_post(request: Request) -> Any:
    """Change a post; content changes send an approved post back to the first tier."""
    post = await services(request.context).posts.edit(
        request.account_id, request.params["post_id"], _person(request),
        await composed(request))
    return post_out(post)


@_api
async def delete_post(request: Request) -> Any:
    """Delete a post; a pending dispatch of it is cancelled."""
    post = await services(request.context).posts.delete(
        request.account_id, request.params["post_id"], _person(request))
    return post_out(post)


@_api
async def submit_post(request: Request) -> Any:
    """Submit a draft: to its approvers, or straight onto the schedule."""
    post = await services(request.context).posts.submit(
        request.account_id, request.params["post_id"], _person(request))
    return post_out(post)


@_api
async def retry_target(request: Request) -> Any:
    """Try a failed channel of a post again (after a reconnect, a fix at the network)."""
    post = await services(request.context).dispatcher.retry(
        request.account_id, request.params["post_id"], request.params["channel_id"],
        _person(request))
    return post_out(post)


@_api
async def approve_post(request: Request) -> Any:
    """Approve the current tier of the post's channels you may approve."""
    body: Decision = request.body
    post = await services(request.context).approvals.decide(
        request.account_id, request.params["post_id"], request.user, approve=True,
        note=body.note, channel_ids=body.channel_ids)
    return post_out(post)


@_api
async def reject_post(request: Request) -> Any:
    """Reject the post: it goes back to its author as a draft."""
    body: Decision = request.body
    post = await services(request.context).approvals.decide(
        request.account_id, request.params["post_id"], request.user, approve=False,
        note=body.note, channel_ids=body.channel_ids)
    return post_out(post)


@_api
async def post_audit(request: Request) -> Any:
    """Every step of the post: created, edited, submitted, approved, expired..."""
    module = services(request.context)
    post_id = request.params["post_id"]
    await module.posts.get(request.account_id, post_id)
    return await module.store.audit_of(request.account_id, f"post:{post_id}")


@_api
async def calendar(request: Request) -> Any:
    """Posts due between ``from`` and ``to`` (a week or month view), with filters."""
    query: CalendarQuery = request.query
    start, end = parse_time(query.start)[0], parse_time(query.end)[0]
    found = await services(request.context).calendar.window(
        request.account_id, start, end, channel_id=query.channel, campaign=query.campaign,
        state=query.state)
    return [{"post_id": p.post_id, "publish_at": iso(p.publish_at, p.time_zone),
             "publish_at_epoch": p.publish_at, "time_zone": p.time_zone, "state": p.state,
             "campaign": p.campaign, "text": p.text,
             "channels": [t.channel_id for t in p.targets],
             "networks": sorted({t.network for t in p.targets}), "version": p.version}
            for p in found]


BASE = "/api/social"
#: The most bytes of a post's JSON (a long text and a variant per channel).
MAX_POST_BYTES = 1024 * 1024
CHANNEL = f"{BASE}/channels/{{channel_id}}"
POST = f"{BASE}/posts/{{post_id}}"
REDIRECT = Media("text/html")

ROUTES = [
    Route(method="GET", path=f"{BASE}/channels", handler=list_channels, permission=READ,
          response=list[ChannelOut]),
    Route(method="GET", path=f"{BASE}/channels/connect/{{network}}", handler=connect_channel,
          permission=CHANNELS, query=ConnectQuery, response=REDIRECT, status=302),
    Route(method="GET", path=f"{BASE}/channels/callback/{{network}}",
          handler=channel_callback, permission=PUBLIC, query=Callback, response=REDIRECT,
          status=302),
    Route(method="GET", path=CHANNEL, handler=get_channel, permission=READ,
          response=ChannelOut),
    Route(method="DELETE", path=CHANNEL, handler=disconnect_channel, permission=CHANNELS,
          response=ChannelOut),
    Route(method="POST", path=f"{CHANNEL}/refresh", handler=refresh_channel,
          permission=CHANNELS, body=Empty, response=ChannelOut),
    Route(method="GET", path=f"{CHANNEL}/approvals", handler=get_workflow, permission=READ,
          response=Workflow),
    Route(method="PUT", path=f"{CHANNEL}/approvals", handler=set_workflow,
          permission=CHANNELS, body=Workflow, response=Workflow),
    Route(method="GET", path=f"{CHANNEL}/rights", handler=get_rights, permission=READ,
          response=ChannelRights),
    Route(method="PUT", path=f"{CHANNEL}/rights", handler=set_rights,
          permission=CHANNELS, body=ChannelRights, response=ChannelRights),
    Route(method="GET", path=f"{CHANNEL}/slots", handler=get_slots, permission=READ,
          response=Slots),
    Route(method="PUT", path=f"{CHANNEL}/slots", handler=set_slots, permission=CHANNELS,
          body=Slots, response=Slots),
    Route(method="GET", path=f"{CHANNEL}/next-slot", handler=next_slot, permission=READ,
          query=NextSlotQuery, response=NextSlot),
    Route(method="GET", path=f"{BASE}/posts", handler=list_posts, permission=READ,
          query=PostsQuery, response=list[PostOut]),
    Route(method="POST", path=f"{BASE}/posts", handler=create_post, permission=COMPOSE,
          body=PostIn, response=PostOut, status=201, max_body=MAX_POST_BYTES),
    Route(method="GET", path=POST, handler=get_post, permission=READ, response=PostOut),
    Route(method="PATCH", path=POST, handler=edit_post, permission=COMPOSE, body=PostEdit,
          response=PostOut, max_body=MAX_POST_BYTES),
    Route(method="DELETE", path=POST, handler=delete_post, permission=COMPOSE,
          response=PostOut),
    Route(method="POST", path=f"{POST}/submit", handler=submit_post, permission=COMPOSE,
          body=Empty, response=PostOut),
    Route(method="POST", path=f"{POST}/targets/{{channel_id}}/retry", handler=retry_target,
          permission=COMPOSE, body=Empty, response=PostOut),
    Route(method="POST", path=f"{POST}/approve", handler=approve_post, permission=APPROVE,
          body=Decision, response=PostOut),
    Route(method="POST", path=f"{POST}/reject", handler=reject_post, permission=APPROVE,
          body=Decision, response=PostOut),
    Route(method="GET", path=f"{POST}/audit", handler=post_audit, permission=READ,
          response=list[AuditOut]),
    Route(method="GET", path=f"{BASE}/calendar", handler=calendar, permission=READ,
          query=CalendarQuery, response=list[CalendarEntry]),
]
