"""Approvals: workflows of up to three tiers per channel, decisions, expiry.

A channel's workflow is a list of tiers; each tier lists approvers (a person, anyone
in a team, anyone holding an organisation role in the account) and any one of them
approves the tier. Each target of a post climbs its channel's tiers; the post is
approved when every target is. Nobody approves their own post, nor one whose content
they edited, nor two tiers of one channel's round (a new publish time alone does not
start a new round). A post still pending at its publish time, or 90 days after it was last
submitted (a content edit that sends it back submits it anew), expires and its author is
told (``social.post_expired``); an approval that comes later expires it at once rather
than schedule it. Every step is audited.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from business.social.channels import Publish
from business.social.errors import ConflictError, NotAllowedError, NotFoundError
from business.social.models import (
    APPROVED,
    DRAFT,
    EXPIRED,
    PENDING,
    PENDING_LIMIT_S,
    SCHEDULED,
    Approver,
    Channel,
    Post,
)
from business.social.rights import APPROVAL, access_of
from business.social.store import SocialStore
from business.social.times import iso

logger = logging.getLogger(__name__)

#: ``await role_in(group_id, person_id)``: the person's role in an organisation or team.
RoleIn = Callable[[str, str], Awaitable[str | None]]
APPROVED_EVENT, REJECTED_EVENT = "social.post_approved", "social.post_rejected"
EXPIRED_EVENT = "social.post_expired"
#: How often a workflow change reads a post again that changed under it.
MOVE_ON_TRIES = 5
#: Organisation roles in order; a tier naming one accepts the stronger ones too.
ORG_ROLES = ("viewer", "member", "admin", "owner")


#: Why a pending post expired (its audit entry's reason).
LATE, STALE = "not approved before its publish time", "waited for approval over 90 days"


def _expiry_reason(post: Post, now: float) -> str | None:
    """Why pending ``post`` has expired at ``now`` (:data:`LATE` or :data:`STALE`), or
    None while it may still be decided."""
    if post.publish_at is not None and post.publish_at <= now:
        return LATE
    if post.submitted_at is not None and post.submitted_at < now - PENDING_LIMIT_S:
        return STALE
    return None


def ready_state(post: Post) -> str:
    """Where an approved post goes: scheduled when it has a time, else approved."""
    return SCHEDULED if post.publish_at is not None else APPROVED


def arrange(post: Post, channels: Mapping[str, Channel]) -> str:
    """Start every target at its channel's first tier (approved without a workflow);
    the post's state."""
    for target in post.targets:
        tiers = channels[target.channel_id].tiers
        target.approval_tier = 1 if tiers else 0
        target.state = PENDING if tiers else ready_state(post)
    pending = any(t.state == PENDING for t in post.targets)
    return PENDING if pending else ready_state(post)


def _raise_version(post: Post) -> None:
    """One version on, for the post and its targets (every writer's compare-and-set)."""
    post.version += 1
    for target in post.targets:
        target.version = post.version


async def hold_channels(store: SocialStore, tx: Any, account_id: str,
                        channels: Mapping[str, Channel], what: str) -> None:
    """In ``tx``: hold the channels' rows (as a workflow change does) and refuse, with
    :class:`ConflictError`, when a workflow or rights changed since ``channels`` were
    read: what was decided from them no longer holds."""
    for channel_id in sorted(channels):
        await store.lock_channel(tx, account_id, channel_id)
    for channel_id in sorted(channels):
        read = channels[channel_id]
        fresh = await store.channel(account_id, channel_id, tx=tx)
        if fresh is None or (fresh.tiers, fresh.rights) != (read.tiers, read.rights):
            raise ConflictError(f"channel {channel_id!r}'s approval workflow or rights "
                                f"changed meanwhile; look at {what} again")


def round_approvers(steps: list[Mapping[str, Any]], channel_id: str, tier: int
                    ) -> set[str]:
    """Who approved the tiers below ``tier`` of this approval round of a channel.

    A round starts at tier 1 (a submission, or an edit of the content) and each approval
    moves it up one, so its approvals are the channel's last ``tier - 1`` steps, whatever
    versions a change of the publish time alone gave the post meanwhile.
    """
    done = tier - 1
    if done <= 0:
        return set()
    own = [s for s in steps if s["channel_id"] == channel_id]
    return {s["decided_by"] for s in own[-done:] if s["decision"] == "approved"}


class Approvals:
    """Approve, reject and expire posts of any account."""

    def __init__(self, store: SocialStore, publish: Publish, role_in: RoleIn, *,
                 clock: Callable[[], float] = time.time, dispatch: Any = None) -> None:
        self.store = store
        self.publish = publish
        self.role_in = role_in
        self.clock = clock
        #: Dispatch (:class:`~.posts.Arming`): arms a post the last approval schedules.
        self.dispatch = dispatch

    async def may_approve(self, account_id: str, person_id: str, approver: Approver) -> bool:
        """Whether ``person_id`` is ``approver`` (the person, in the team, holds the role)."""
        if not person_id:
            return False
        if approver.kind == "person":
            return approver.value == person_id
        if approver.kind == "team":
            return await self.role_in(approver.value, person_id) is not None
        held = await self.role_in(account_id, person_id)
        if held is None:
            return False
        if held in ORG_ROLES and approver.value in ORG_ROLES:
            return ORG_ROLES.index(held) >= ORG_ROLES.index(approver.value)
        return held == approver.value

    async def _load(self, account_id: str, post_id: str) -> tuple[Post, dict[str, Channel]]:
        post = await self.store.post(account_id, post_id)
        if post is None:
            raise NotFoundError(f"there is no post {post_id!r}")
        channels = {}
        for target in post.targets:
            channel = await self.store.channel(account_id, target.channel_id)
            if channel is not None:
                channels[channel.channel_id] = channel
        return post, channels

    async def decide(self, account_id: str, post_id: str, person_id: str, *, approve: bool,
                     note: str = "", channel_ids: list[str] | None = None) -> Post:
        """Approve (or reject) the current tier of the post's targets ``person_id`` may
        decide; rejecting sends the post back to draft."""
        post, channels = await self._load(account_id, post_id)
        if post.state != PENDING:
            raise ConflictError(f"post {post_id!r} is {post.state}, not waiting for approval")
        if person_id == post.author_id:
            raise NotAllowedError("you wrote this post: someone else must approve or reject "
                                  "it")
        if person_id in await self._content_editors(account_id, post_id):
            raise NotAllowedError("you edited this post's content: someone else must approve "
                                  "or reject it")
        steps = await self.store.steps(account_id, post_id)
        decided = []
        for target in post.targets:
            if target.state != PENDING or (channel_ids and target.channel_id not in
                                           channel_ids):
                continue
            channel = channels.get(target.channel_id)
            if (channel is None or target.approval_tier > len(channel.tiers)
                    or person_id in round_approvers(steps, target.channel_id,
                                                    target.approval_tier)):
                continue
            tier = channel.tiers[target.approval_tier - 1]
            if any([await self.may_approve(account_id, person_id, a) for a in tier]):
                decided.append(target)
        if not decided:
            raise NotAllowedError("you are not an approver of the current tier of this "
                                  "post's channels (or you decided an earlier tier already)")
        now = self.clock()
        if approve and (reason := _expiry_reason(post, now)) is not None:
            # too late to go out on time, or waited too long: expired now, as the sweep
            # would at its next turn (never sent)
            await self._expire(account_id, post_id, now)
            if reason == LATE:
                raise ConflictError(f"post {post_id!r} was not approved before its publish "
                                    f"time ({iso(post.publish_at)}), so it expired: its author "
                                    "can set a new time and submit it again")
            raise ConflictError(f"post {post_id!r} waited for approval over 90 days, so it "
                                "expired: its author can submit it again")
        async with self.store.db.transaction() as tx:
            # every writer of a pending post holds its channels and raises its version, so
            # a decision, another decision and a workflow change never write over each
            # other: the one that read a stale post or workflow is refused
            await hold_channels(self.store, tx, account_id, channels, f"post {post_id!r}")
            old_version = post.version
            recorded = [(t.channel_id, t.approval_tier) for t in decided]
            for target in decided:
                if approve:
                    target.approval_tier += 1
                    if target.approval_tier > len(channels[target.channel_id].tiers):
                        target.state = ready_state(post)
            if not approve:
                for target in post.targets:
                    target.state, target.approval_tier = DRAFT, 0
                post.state = DRAFT
            elif all(t.state != PENDING for t in post.targets):
                post.state = ready_state(post)
            post.updated_at = now
            _raise_version(post)
            if not await self.store.update_post(tx, post, old_version):
                raise ConflictError(f"post {post_id!r} changed meanwhile; look at it again")
            for channel_id, tier in recorded:
                await self.store.add_step(tx, account_id, post_id, channel_id, old_version,
                                          tier, "approved" if approve else "rejected",
                                          person_id, note, now)
                await self.store.audit(tx, account_id, f"post:{post_id}",
                                       "approval.approved" if approve else "approval.rejected",
                                       person_id, {"channel_id": channel_id, "tier": tier,
                                                   "version": old_version, "note": note},
                                       now)
            await self._announce(tx, post, person_id, approve, note)
            if self.dispatch is not None and post.state == SCHEDULED:
                await self.dispatch.arm(tx, post)
        if self.dispatch is not None:
            self.dispatch.wake()
        return post

    async def set_workflow(self, account_id: str, channel_id: str,
                           tiers: list[list[dict[str, str]]], actor: str) -> list[str]:
        """Replace the channel's workflow and, in the same transaction, move on its pending
        targets that the new workflow has no tier left for; the posts that became ready.

        Tiers a target passed stay passed. A target that would go out with no approval at
        all (the workflow was removed) while its post was written or edited by someone the
        channel lets publish only through approval goes back to draft, with its author
        told why (``social.post_rejected``): nothing they write reaches the schedule
        unapproved. A post whose publish time has passed stays pending, for the expiry
        sweep, rather than going out late.
        """
        now = self.clock()
        ready = []
        async with self.store.db.transaction() as tx:
            await self.store.lock_channel(tx, account_id, channel_id)
            await self.store.set_tiers(account_id, channel_id, tiers, now, tx=tx)
            await self.store.audit(tx, account_id, f"channel:{channel_id}", "workflow.set",
                                   actor, {"tiers": tiers}, now)
            channel = await self.store.channel(account_id, channel_id, tx=tx)
            if channel is None:
                raise NotFoundError(f"there is no channel {channel_id!r}")
            for post in await self.store.posts(account_id, state=PENDING,
                                               channel_id=channel_id, limit=100_000, tx=tx):
                moved = await self._move_on(tx, post, channel, actor, now)
                if moved:
                    ready.append(post.post_id)
        if ready and self.dispatch is not None:
            self.dispatch.wake()
        return ready

    async def _move_on(self, tx: Any, post: Post, channel: Channel, actor: str,
                       now: float) -> bool:
        """In ``tx``: move on the post's targets on ``channel`` past its last tier;
        whether the post became ready.

        ``post`` may be stale: a workflow change of another of its channels, holding
        only that channel, may have moved it on meanwhile. Then the post is read again
        in ``tx`` and moved on from there (a few times at most), so its target here is
        never left pending past the last tier; only a post that is no longer pending
        (publishing, decided, deleted) is left alone."""
        for _ in range(MOVE_ON_TRIES):
            moved = await self._move_on_once(tx, post, channel, actor, now)
            if moved is not None:
                return moved
            fresh = await self.store.post(post.account_id, post.post_id, tx=tx)
            if fresh is None or fresh.state != PENDING:
                return False  # publishing, decided or deleted already: nothing to move
            post = fresh
        raise ConflictError(f"post {post.post_id!r} kept changing while channel "
                            f"{channel.channel_id!r}'s workflow changed; try again")

    async def _move_on_once(self, tx: Any, post: Post, channel: Channel, actor: str,
                            now: float) -> bool | None:
        """:meth:`_move_on` from ``post`` as read; None when it changed meanwhile."""
        through = [t for t in post.targets if t.channel_id == channel.channel_id
                   and t.state == PENDING and t.approval_tier > len(channel.tiers)]
        if not through or (post.publish_at is not None and post.publish_at <= now):
            return False
        unapproved = [t for t in through if t.approval_tier <= 1]
        writers = {post.author_id} | await self._content_editors(post.account_id,
                                                                 post.post_id, tx=tx)
        limited = sorted(w for w in writers if access_of(channel, w) == APPROVAL)
        old_version = post.version
        if unapproved and limited:
            note = (f"channel {channel.channel_id!r} lost its approval workflow, and "
                    f"{', '.join(limited)} may post there only with approval: the post went "
                    "back to draft; submit it again once the channel has a workflow")
            for target in post.targets:
                target.state, target.approval_tier = DRAFT, 0
            post.state = DRAFT
        else:
            note = ""
            for target in through:
                target.state = ready_state(post)
            if all(t.state != PENDING for t in post.targets):
                post.state = ready_state(post)
        post.updated_at = now
        _raise_version(post)
        if not await self.store.update_post(tx, post, old_version):
            return None  # changed (or publishing) since read: the caller reads it again
        await self.store.audit(tx, post.account_id, f"post:{post.post_id}",
                               "approval.workflow_changed", actor,
                               {"channel_id": channel.channel_id, "state": post.state,
                                "note": note}, now)
        if post.state == DRAFT:
            await self._announce(tx, post, actor, False, note)
            return False
        if post.state == PENDING:
            return False
        await self._announce(tx, post, actor, True, "")
        if self.dispatch is not None and post.state == SCHEDULED:
            await self.dispatch.arm(tx, post)
        return True

    async def _content_editors(self, account_id: str, post_id: str, *, tx: Any = None
                               ) -> set[str]:
        """Everyone who changed the post's words, media, link or channels."""
        trail = await self.store.audit_of(account_id, f"post:{post_id}", tx=tx)
        return {row["actor"] for row in trail
                if row["action"] == "post.edited" and row["detail"].get("content")}

    async def _announce(self, tx: Any, post: Post, person_id: str, approve: bool,
                        note: str) -> None:
        base = {"account_id": post.account_id, "post_id": post.post_id,
                "author_id": post.author_id, "version": post.version}
        if not approve:
            await self.publish(tx, REJECTED_EVENT, {**base, "rejected_by": person_id,
                                                    "note": note}, post.account_id)
        elif post.state != PENDING:
            await self.store.audit(tx, post.account_id, f"post:{post.post_id}",
                                   "post.approved", person_id, {"state": post.state})
            await self.publish(tx, APPROVED_EVENT, {
                **base, "approved_by": person_id,
                "publish_at": iso(post.publish_at)}, post.account_id)

    async def expire_due(self) -> int:
        """Expire posts pending past their publish time or for over 90 days; how many."""
        now = self.clock()
        done = 0
        for account_id, post_id in await self.store.expiring(now, now - PENDING_LIMIT_S):
            try:
                done += await self._expire(account_id, post_id, now)
            except Exception:  # one post's failure must not stop the sweep
                logger.exception("expiring post %s/%s failed", account_id, post_id)
        return done

    async def _expire(self, account_id: str, post_id: str, now: float) -> int:
        post = await self.store.post(account_id, post_id)
        if post is None or post.state != PENDING:
            return 0
        # read again: a post submitted anew or moved since the sweep listed it is not due
        reason = _expiry_reason(post, now)
        if reason is None:
            return 0
        old_version = post.version
        post.state, post.version, post.updated_at = EXPIRED, post.version + 1, now
        for target in post.targets:
            target.state, target.version = EXPIRED, post.version
        async with self.store.db.transaction() as tx:
            if not await self.store.update_post(tx, post, old_version):
                return 0
            await self.store.audit(tx, account_id, f"post:{post_id}", "post.expired", "",
                                   {"reason": reason, "version": post.version}, now)
            await self.publish(tx, EXPIRED_EVENT, {
                "account_id": account_id, "post_id": post_id, "author_id": post.author_id,
                "reason": reason, "publish_at": iso(post.publish_at)}, account_id)
        return 1
