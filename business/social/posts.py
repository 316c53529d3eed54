"""The composer: create, edit, submit and delete posts, each checked against its
networks' rules.

A post has a base text and fields and one target per channel, whose variant fields
override the base ones. Every edit bumps ``version``; an edit or a delete of a
scheduled post cancels its pending dispatch (recorded as ``dispatch.cancelled`` with
the version it was for, and any dispatch carries its version and does nothing once it
changed). Editing the content of a post under approval, or approved, sends it back to
the first tier; moving its publish time alone does not.
A post with a channel attempted and waiting for its retry (the answer of its attempt may
have been lost: it may be out) is neither edited nor deleted until the retry ends it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from business.social import rights, validation
from business.social.approvals import arrange, hold_channels, ready_state
from business.social.errors import ConflictError, InvalidPost, NotFoundError, SocialError
from business.social.models import (
    APPROVED,
    DISCONNECTED,
    DRAFT,
    EDITABLE,
    EXPIRED,
    FAILED,
    PENDING,
    PUBLISHED,
    SCHEDULED,
    Channel,
    Post,
    PostTarget,
    awaiting_retry,
)
from business.social.networks.base import MediaItem
from business.social.store import SocialStore, new_id
from business.social.times import parse_time, zone

#: Fields whose change is an edit of the content (back to the first approval tier).
CONTENT = ("text", "media", "link", "first_comment", "targets")
VARIANT = ("text", "media", "link", "first_comment")
#: What a field sent as null becomes.
CLEARED: dict[str, Any] = {"text": "", "media": [], "link": None, "first_comment": None,
                           "campaign": ""}
#: ``await on_create(tx, post_id)``: more of a post's creation, in its transaction.
Made = Callable[[Any, str], Awaitable[None]]


def media_items(media: list[dict[str, Any]]) -> tuple[MediaItem, ...]:
    """Media references (platform asset ids and what they are) as the rules see them."""
    return tuple(MediaItem(kind=m["kind"], content_type=m["content_type"],
                           size_bytes=int(m["size_bytes"]), path=f"asset:{m['asset_id']}",
                           duration_s=m.get("duration_s"), width=m.get("width"),
                           height=m.get("height")) for m in media)


def variant(post: Post, target: PostTarget) -> dict[str, Any]:
    """The fields ``target`` publishes: its own where set, else the post's."""
    return {name: getattr(post, name) if getattr(target, name) is None
            else getattr(target, name) for name in VARIANT}


def problems_of(post: Post, channels: dict[str, Channel]) -> list[dict[str, Any]]:
    """Every blocking problem of every target, by channel and field."""
    found = []
    for target in post.targets:
        network = channels[target.channel_id].network
        fields = variant(post, target)
        for problem in validation.validate(network, fields["text"] or "",
                                           media_items(fields["media"] or []),
                                           fields["link"], fields["first_comment"]):
            if getattr(problem, "severity", "error") != "error":
                continue
            found.append({"channel_id": target.channel_id, "network": network,
                          "field": problem.field, "code": problem.code,
                          "message": problem.message})
    return found


class Arming(Protocol):
    """What the composer and approvals ask of dispatch (:class:`~.dispatch.Dispatcher`)."""

    async def arm(self, tx: Any, post: Post) -> list[str]: ...

    def wake(self) -> None: ...

    async def cancel_jobs(self, account_id: str, job_ids: list[str]) -> None: ...

    async def found_out(self, post: Post) -> list[str]: ...


def job_ids(post: Post) -> list[str]:
    """The publish jobs the post's targets name."""
    return [t.job_id for t in post.targets if t.job_id]


def in_flight(post: Post) -> list[str]:
    """The channels of ``post`` attempted and back to scheduled for a retry: each may be
    out on its network already, its answer lost (one attempted right now is
    ``publishing``, and so is its post)."""
    return [t.channel_id for t in post.targets if awaiting_retry(t.state, t.attempts)]


def refuse_in_flight(post: Post, what: str) -> None:
    """:class:`ConflictError` when a channel of ``post`` is being published (``what``:
    "edited", "deleted")."""
    channels = in_flight(post)
    if channels:
        raise ConflictError(
            f"post {post.post_id!r} is being published on {', '.join(channels)}: an attempt "
            "may have reached the network without its answer coming back, so it cannot be "
            f"{what} now; wait for its retry, which ends it published or failed (a failed "
            "channel is retried with POST .../targets/{channel_id}/retry)")


def keep_attempts(old: list[PostTarget], new: list[PostTarget]) -> None:
    """Carry each channel's publish history (attempts, first attempt, dedupe key) from
    ``old`` to ``new``: a channel attempted before asks its network before publishing."""
    tried = {t.channel_id: t for t in old if t.attempts > 0}
    for target in new:
        before = tried.get(target.channel_id)
        if before is not None:
            target.attempts, target.first_attempt_at = before.attempts, before.first_attempt_at
            target.dedupe_key = before.dedupe_key or target.dedupe_key


class Posts:
    """The account's posts: compose, edit, submit, delete."""

    def __init__(self, store: SocialStore, *, clock: Callable[[], float] = time.time,
                 dispatch: Arming | None = None) -> None:
        self.store = store
        self.clock = clock
        self.dispatch = dispatch

    async def get(self, account_id: str, post_id: str) -> Post:
        """The account's post; :class:`NotFoundError` for any other id."""
        post = await self.store.post(account_id, post_id)
        if post is None:
            raise NotFoundError(f"there is no post {post_id!r}")
        return post

    async def _channels(self, account_id: str, targets: list[PostTarget]
                        ) -> dict[str, Channel]:
        if not targets:
            raise SocialError("a post needs at least one channel in 'targets'")
        found: dict[str, Channel] = {}
        for target in targets:
            if target.channel_id in found:
                raise SocialError(f"channel {target.channel_id!r} is named twice; name each "
                                  "channel once and put its variant there")
            channel = await self.store.channel(account_id, target.channel_id)
            if channel is None or channel.state == DISCONNECTED:
                raise NotFoundError(f"there is no channel {target.channel_id!r}; connect it "
                                    "first (GET /api/social/channels lists them)")
            found[target.channel_id] = channel
        return found

    async def _known(self, account_id: str, targets: list[PostTarget]) -> list[Channel]:
        """The channels of ``targets`` that still exist (whatever their state)."""
        found = [await self.store.channel(account_id, t.channel_id) for t in targets]
        return [c for c in found if c is not None]

    def _schedule(self, post: Post, fields: dict[str, Any]) -> None:
        if "time_zone" in fields and fields["time_zone"]:
            zone(fields["time_zone"])
            post.time_zone = fields["time_zone"]
        if "publish_at" in fields:
            raw = fields["publish_at"]
            if raw is None:
                post.publish_at = None
            else:
                post.publish_at, post.time_zone = parse_time(
                    raw, fields.get("time_zone") or None, kept_zone=post.time_zone)

    def _check(self, post: Post, channels: dict[str, Channel]) -> None:
        problems = problems_of(post, channels)
        if problems:
            raise InvalidPost(f"the post breaks {len(problems)} rule(s) of its networks; "
                              "fix each field named", problems)

    def _future(self, post: Post) -> None:
        if post.publish_at is not None and post.publish_at <= self.clock():
            raise SocialError("the publish time is in the past; pick a later time")

    def _drafted(self, account_id: str, author_id: str, fields: dict[str, Any], now: float,
                 *, submitted_at: float | None) -> Post:
        """A new post of the composer's ``fields``, with its targets and publish time, not
        yet checked against its channels."""
        post = Post(account_id=account_id, post_id=new_id("post"), author_id=author_id,
                    text=fields.get("text") or "", media=fields.get("media") or [],
                    link=fields.get("link"), first_comment=fields.get("first_comment"),
                    campaign=fields.get("campaign") or "", publish_at=None,
                    time_zone="UTC", state=DRAFT, version=1, submitted_at=submitted_at,
                    created_at=now, updated_at=now)
        post.targets = self._targets(post, fields.get("targets") or [])
        self._schedule(post, fields)
        return post

    async def create(self, account_id: str, author_id: str, fields: dict[str, Any]) -> Post:
        """A new draft post from the composer's ``fields``."""
        now = self.clock()
        post = self._drafted(account_id, author_id, fields, now, submitted_at=None)
        channels = await self._channels(account_id, post.targets)
        rights.check_compose(channels.values(), author_id)
        self._check(post, channels)
        async with self.store.db.transaction() as tx:
            await self.store.insert_post(tx, post)
            await self.store.audit(tx, account_id, f"post:{post.post_id}", "post.created",
                                   author_id, {"version": 1}, now)
        return post

    async def schedule(self, account_id: str, author_id: str, fields: dict[str, Any], *,
                       on_create: Made | None = None) -> Post:
        """A new post from the composer's ``fields`` (``publish_at`` required), created
        and submitted in one transaction: to its channels' approvers, or onto the
        schedule, as :meth:`create` then :meth:`submit` would take it, so a refused one
        leaves no draft behind. ``await on_create(tx, post_id)`` runs in that
        transaction (a test-mode key's post is marked a sandbox one there)."""
        if fields.get("publish_at") is None:
            raise SocialError("a scheduled post needs 'publish_at'; send a time to publish")
        now = self.clock()
        post = self._drafted(account_id, author_id, fields, now, submitted_at=now)
        self._future(post)
        channels = await self._channels(account_id, post.targets)
        rights.check_compose(channels.values(), author_id)
        rights.check_schedule(channels.values(), author_id)
        self._check(post, channels)
        post.state = arrange(post, channels)
        subject = f"post:{post.post_id}"
        async with self.store.db.transaction() as tx:
            await hold_channels(self.store, tx, account_id, channels, "the post's channels")
            await self.store.insert_post(tx, post)
            if on_create is not None:
                await on_create(tx, post.post_id)
            await self.store.audit(tx, account_id, subject, "post.created", author_id,
                                   {"version": 1}, now)
            await self.store.audit(tx, account_id, subject, "post.submitted", author_id,
                                   {"version": 1, "state": post.state}, now)
            if self.dispatch is not None:
                await self.dispatch.arm(tx, post)
        await self._after(account_id, [])
        return post

    def _targets(self, post: Post, raw: list[dict[str, Any]]) -> list[PostTarget]:
        return [PostTarget(channel_id=t["channel_id"], text=t.get("text"),
                           media=t.get("media"), link=t.get("link"),
                           first_comment=t.get("first_comment"), state=DRAFT,
                           dedupe_key=f"{post.post_id}:{t['channel_id']}",
                           version=post.version) for t in raw]

    async def edit(self, account_id: str, post_id: str, actor: str,
                   fields: dict[str, Any]) -> Post:
        """Apply the composer's changed ``fields``; the post, one version on.

        A failed post whose channels were sent may be out on its network, its answer
        lost: the network is asked first, as for a delete (:meth:`delete`), and a channel
        found there is recorded published, so the edit never sends it a second time."""
        post = await self.get(account_id, post_id)
        refuse_in_flight(post, "edited")
        rights.check_compose(await self._known(account_id, post.targets), actor)
        if (post.state == FAILED and self.dispatch is not None
                and await self.dispatch.found_out(post)):
            post = await self.get(account_id, post_id)
        if post.state not in EDITABLE:
            raise ConflictError(f"post {post_id!r} is {post.state}; it can no longer be "
                                "edited")
        if post.state == FAILED and any(t.state == PUBLISHED for t in post.targets):
            raise ConflictError(f"post {post_id!r} is out on some channels already; retry the "
                                "failed ones (POST .../targets/{channel_id}/retry) or write "
                                "a new post")
        old_version, old_state, old_jobs = post.version, post.state, job_ids(post)
        content = any(name in fields for name in CONTENT)
        post.version += 1
        for name, cleared in CLEARED.items():
            if name in fields:
                setattr(post, name, cleared if fields[name] is None else fields[name])
        if "targets" in fields:
            kept, post.targets = post.targets, self._targets(post, fields["targets"] or [])
            keep_attempts(kept, post.targets)
        self._schedule(post, fields)
        channels = await self._channels(account_id, post.targets)
        rights.check_compose(channels.values(), actor)
        self._check(post, channels)
        for target in post.targets:
            target.version = post.version
        sent_back = resubmitted = False
        if post.state in (EXPIRED, FAILED):
            post.state = DRAFT
            for target in post.targets:
                target.state, target.approval_tier = DRAFT, 0
        elif post.state in (PENDING, APPROVED, SCHEDULED):
            self._future(post)
            if content:
                rights.check_schedule(channels.values(), actor)
                post.state = arrange(post, channels)
                sent_back, resubmitted = post.state == PENDING, True
            else:
                if post.state != PENDING:
                    post.state = ready_state(post)
                for target in post.targets:
                    if target.state in (APPROVED, SCHEDULED):
                        target.state = ready_state(post)
        post.updated_at = self.clock()
        if resubmitted:  # changed content is submitted anew: the 90 days count from now
            post.submitted_at = post.updated_at
        async with self.store.db.transaction() as tx:
            # where the post went (approvers or schedule) was read from its channels: a
            # workflow or rights change meanwhile refuses the edit, never strands it
            await hold_channels(self.store, tx, account_id, channels, f"post {post_id!r}")
            if not await self.store.update_post(tx, post, old_version):
                raise ConflictError(f"post {post_id!r} changed meanwhile; load it again")
            subject = f"post:{post_id}"
            await self.store.audit(tx, account_id, subject, "post.edited", actor,
                                   {"version": post.version, "content": content})
            if old_state == SCHEDULED:
                await self.store.audit(tx, account_id, subject, "dispatch.cancelled", actor,
                                       {"version": old_version, "why": "edited"})
            if sent_back:
                await self.store.audit(tx, account_id, subject, "approval.restarted", actor,
                                       {"version": post.version})
            if self.dispatch is not None:
                await self.dispatch.arm(tx, post)
        await self._after(account_id, old_jobs)
        return post

    async def schedule_rows(self, account_id: str, author_id: str,
                            read_rows: Callable[[Any], Awaitable[list[dict[str, Any]]]],
                            source: str) -> list[Post]:
        """Create and submit one post per row (``publish_at`` in epoch seconds,
        ``channel_id``, ``text``, ``link``, ``first_comment``, ``time_zone``, ``media``:
        media references as the composer sends them) in one
        transaction: each
        goes to its channel's approvers or onto the schedule, as :meth:`submit` sends
        it; the posts.

        ``await read_rows(tx)`` gives the rows, checked already (:mod:`.bulk`, before
        this transaction: no parse holds the writer), and is called in the transaction
        that stores them while it holds the account's bulk lock
        (:meth:`~.store.SocialStore.lock_bulk`), so a second upload of the same file (a
        client's retry) waits, then sees the first's posts as duplicates (a cheap
        compare of the checked rows with the posts read again). A rule that fails here
        refuses them all."""
        now = self.clock()
        posts = []
        async with self.store.db.transaction() as tx:
            await self.store.lock_bulk(tx, account_id)
            # read in the transaction, after any workflow change that held a channel
            channels = {c.channel_id: c for c in await self.store.channels(account_id,
                                                                            tx=tx)}
            for row in await read_rows(tx):
                post = Post(account_id=account_id, post_id=new_id("post"),
                            author_id=author_id, text=row["text"] or "",
                            media=list(row.get("media") or []),
                            link=row.get("link"), first_comment=row.get("first_comment"),
                            campaign="", publish_at=row["publish_at"],
                            time_zone=row.get("time_zone") or "UTC",
                            state=DRAFT, version=1, submitted_at=now, created_at=now,
                            updated_at=now)
                post.targets = self._targets(post, [{"channel_id": row["channel_id"]}])
                channel = channels.get(row["channel_id"])
                if channel is None or channel.state == DISCONNECTED:
                    raise NotFoundError(f"there is no channel {row['channel_id']!r}; "
                                        "connect it first (GET /api/social/channels lists "
                                        "them)")
                used = {channel.channel_id: channel}
                rights.check_schedule(used.values(), author_id)
                self._future(post)
                self._check(post, used)
                post.state = arrange(post, channels)
                posts.append(post)
            held = {p.targets[0].channel_id: channels[p.targets[0].channel_id] for p in posts}
            await hold_channels(self.store, tx, account_id, held, "the file's channels")
            for post in posts:
                await self.store.insert_post(tx, post)
                await self.store.audit(tx, account_id, f"post:{post.post_id}",
                                       "post.created", author_id,
                                       {"version": 1, "source": source}, now)
                await self.store.audit(tx, account_id, f"post:{post.post_id}",
                                       "post.submitted", author_id,
                                       {"version": 1, "state": post.state}, now)
                if self.dispatch is not None:
                    await self.dispatch.arm(tx, post)
        await self._after(account_id, [])
        return posts

    async def _after(self, account_id: str, cancelled: list[str]) -> None:
        """Once committed: cancel the jobs of the old version, wake the dispatcher."""
        if self.dispatch is not None:
            if cancelled:
                await self.dispatch.cancel_jobs(account_id, cancelled)
            self.dispatch.wake()

    async def submit(self, account_id: str, post_id: str, actor: str) -> Post:
        """Send a draft on: to its channels' approvers, or straight to the schedule."""
        post = await self.get(account_id, post_id)
        if post.state not in (DRAFT, EXPIRED):
            raise ConflictError(f"post {post_id!r} is {post.state}; only drafts are "
                                "submitted")
        self._future(post)
        channels = await self._channels(account_id, post.targets)
        rights.check_schedule(channels.values(), actor)
        self._check(post, channels)
        old_version = post.version
        post.version += 1
        for target in post.targets:
            target.version = post.version
        post.state = arrange(post, channels)
        post.submitted_at = post.updated_at = self.clock()
        async with self.store.db.transaction() as tx:
            await hold_channels(self.store, tx, account_id, channels, f"post {post_id!r}")
            if not await self.store.update_post(tx, post, old_version):
                raise ConflictError(f"post {post_id!r} changed meanwhile; load it again")
            await self.store.audit(tx, account_id, f"post:{post_id}", "post.submitted",
                                   actor, {"version": post.version, "state": post.state})
            if self.dispatch is not None:
                await self.dispatch.arm(tx, post)
        await self._after(account_id, [])
        return post

    async def delete(self, account_id: str, post_id: str, actor: str) -> Post:
        """Cancel and remove the post (a pending dispatch of it does nothing).

        A failed channel that was sent may be out on its network, its answer lost: the
        network is asked first (one found there is recorded published), and a post out
        on any network is not deleted, as that would leave it there with no record."""
        post = await self.get(account_id, post_id)
        refuse_in_flight(post, "deleted")
        if post.state not in EDITABLE:
            raise ConflictError(f"post {post_id!r} is {post.state}; it cannot be deleted "
                                "now")
        rights.check_compose(await self._known(account_id, post.targets), actor)
        if self.dispatch is not None and await self.dispatch.found_out(post):
            post = await self.get(account_id, post_id)
        out = [f"{t.network or 'its network'} (channel {t.channel_id})"
               for t in post.targets if t.state == PUBLISHED]
        if out:
            raise ConflictError(f"post {post_id!r} is out on {', '.join(out)}: deleting it "
                                "here would leave it there with no record of it; delete it "
                                "on the network")
        now = self.clock()
        async with self.store.db.transaction() as tx:
            if not await self.store.delete_post(tx, account_id, post_id, post.version, now):
                raise ConflictError(f"post {post_id!r} changed meanwhile; load it again")
            subject = f"post:{post_id}"
            await self.store.audit(tx, account_id, subject, "post.deleted", actor,
                                   {"version": post.version + 1}, now)
            if post.state == SCHEDULED:
                await self.store.audit(tx, account_id, subject, "dispatch.cancelled", actor,
                                       {"version": post.version, "why": "deleted"}, now)
        await self._after(account_id, job_ids(post))
        post.state, post.version = "cancelled", post.version + 1
        return post
