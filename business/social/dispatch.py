"""Dispatch: due post targets published through the platform's one job queue.

The database is the only authority on each target's state (``social_post_targets``):
``scheduled -> publishing -> published | failed``. A target is *armed* when its post is
scheduled (approved, or without a workflow; never while it waits for approval, even
for its targets without approvers): one ``social.publish`` job is queued in the
same transaction, to run at the publish time, under the idempotency key
``post_id:channel_id:version`` (``:arm`` for each later arming: a retry, a sweep), and
the target names that job (``job_id``). A job carries the version it was made for and
does nothing once the post changed, its target was armed again or it ended; every edit
or delete bumps the version and cancels the queued jobs.

One attempt (:meth:`Dispatcher.handle`):

1. the burst limits of the channel and its network, then the network's publishing quota
   (:mod:`.pacing`); when either is full the job waits (``Retry``) without an attempt;
2. the target becomes ``publishing`` (compare-and-set on version, job and state, and the
   post becomes ``publishing``: from then on it cannot be edited);
3. a target that was attempted before asks the network first whether the post is there
   (``find_published`` with the dedupe key, the variant's text and ``since``, when the
   target's first attempt began: an older remote post with the same text is not this
   one), so a lost answer, a worker killed mid-call or a retry never publishes twice;
   otherwise it publishes;
4. the answer: ``published`` (remote id, URL, ``social.post_published``); a retryable
   failure (5xx, 429, quota, connection) goes back to ``scheduled`` with the network's
   reason and the job retries after ``Retry-After`` or a backoff with jitter (the post
   stays ``publishing``, :func:`target_progress`: it may be out already, so it is not
   edited nor deleted until the retry ends it published or failed); an expired
   token is refreshed through :class:`~business.social.channels.Channels` and the call
   made again; a dead grant flags the channel and fails the target; anything else the
   network refuses, or the last attempt, ends ``failed`` with the network's reason
   (``social.post_failed`` with a ``retry_url``).

The sweeper (:mod:`.sweeper`) arms again what a dead worker or a lost job left behind.

A target of a sandbox post (made with a test-mode API key; ``sandboxed`` tells) is
simulated, checked at every attempt whoever armed it: once due it contacts no network
(no token refresh, no quota read, no publish), ends ``published`` with
``sandbox-<post id>`` as its remote id and no URL (:func:`simulated`), and
``social.post_published`` is announced as usual, so test-mode webhooks hear it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from business.social import metrics, rights
from business.social.channels import Channels
from business.social.errors import (
    ConflictError,
    Duplicate,
    NetworkError,
    NotFoundError,
    QuotaExhausted,
    SocialError,
    TokenExpired,
)
from business.social.models import (
    ACTIVE,
    DISCONNECTED,
    FAILED,
    PENDING,
    PUBLISHED,
    PUBLISHING,
    SCHEDULED,
    Channel,
    Post,
    PostTarget,
    awaiting_retry,
)
from business.social.networks.base import MediaItem, Publication, Published
from business.social.pacing import Pacer
from business.social.posts import media_items, variant
from business.social.store import SocialStore
from business.social.times import iso
from dawserver.plugin_api import (
    JobContext,
    JobQueue,
    QueueSettings,
    Retry,
    backoff_delay,
    group_commit,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: The job queue's queue that publishes targets (a declared ``Job`` of the plug-in).
PUBLISH = "social.publish"
#: The post states whose targets dispatch may arm, start or sweep (never a post still
#: waiting for approval: its ready targets wait for the last approval, which arms them).
DISPATCHING = (SCHEDULED, PUBLISHING)
PUBLISHED_EVENT, FAILED_EVENT = "social.post_published", "social.post_failed"
#: Job attempts of a publish job: pacing and quota waits are job retries too, so the
#: queue's limit is high and the dispatcher counts the target's own attempts.
QUEUE_ATTEMPTS = 1000
#: ``await sandboxed(account_id, post_id)``: whether a post is a sandbox one.
Sandboxed = Callable[[str, str], Awaitable[bool]]
#: ``await publish(tx, event, payload, account_id)``, the plug-in context's.
Publish = Callable[[Any, str, dict[str, Any], str], Awaitable[Any]]
#: ``media_file(account_id, asset_id)``: the local file of a post's media asset (None:
#: unknown; the connector then sees ``asset:<id>``, enough where a network fetches media
#: by URL through the connector's ``media_url``).
MediaFile = Callable[[str, str], Awaitable[str | None]]


@dataclass(frozen=True)
class DispatchSettings:
    """How dispatch runs (the plug-in's ``dispatch`` settings; docs/social.md)."""

    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_cap: float = 900.0
    #: The job queue's lease of a running publish job (renewed by heartbeats).
    lease_s: float = 30.0
    #: A target ``publishing`` this long, whose job is not alive, is swept.
    publish_lease_s: float = 120.0
    #: Publish jobs one process runs at once: publishing waits on the networks, and
    #: their state changes share commits (group commit), so many may be in flight.
    concurrency: int = 64
    channel_limit: str = "6/minute"
    network_limit: str = "50/second"
    network_limits: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    pacing_storage: str = "memory://"
    quota_check_s: float = 60.0
    sweep_s: float = 30.0

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> DispatchSettings:
        """Settings from the plug-in's ``dispatch`` mapping; unknown names are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SocialError(f"unknown dispatch settings {unknown}; use {sorted(known)}")
        return cls(**raw)

    def queue_settings(self) -> QueueSettings:
        """The ``social.publish`` queue's settings."""
        return QueueSettings(max_attempts=QUEUE_ATTEMPTS, backoff_base=self.backoff_base,
                             backoff_cap=self.backoff_cap, lease_s=self.lease_s,
                             concurrency=self.concurrency)

    def pacer(self) -> Pacer:
        """The pacer of these limits."""
        return Pacer(channel=self.channel_limit, network=self.network_limit,
                     per_network=self.network_limits, storage_url=self.pacing_storage,
                     quota_check_s=self.quota_check_s)


def job_key(post_id: str, channel_id: str, version: int, arm: int) -> str:
    """The idempotency key of one arming of one version of a target."""
    base = f"{post_id}:{channel_id}:{version}"
    return base if arm == 0 else f"{base}:{arm}"


def first_attempt(post: Post, target: PostTarget) -> float | None:
    """When the target's first publish attempt began: a remote post created before it (less
    the networks' clock skew) is not this target's. A target attempted before that time was
    recorded began no earlier than its post's publish time (a job waits for it)."""
    return target.first_attempt_at or post.publish_at


def simulated(post_id: str) -> Published:
    """What a sandbox post's simulated publishing records: an obviously fake remote id
    (``sandbox-<post id>``) and no URL, as no network holds it."""
    return Published(remote_id=f"sandbox-{post_id}", url="")


def target_progress(state: str, attempts: int | None) -> str:
    """A target's state as its post counts it: one attempted and back to ``scheduled``
    for its retry (a lost answer, a 5xx) is still ``publishing``, as it may be out
    already: its post is neither edited nor deleted until it ends."""
    return PUBLISHING if awaiting_retry(state, attempts) else state


def settled_state(states: Iterable[str], current: str) -> str:
    """A post's state from its targets' once dispatch started.

    A target still waiting for approval keeps the post ``pending_approval``: nothing of a
    post publishes before its last approval, whatever its other targets did.
    """
    states = list(states)
    if PENDING in states:
        return PENDING
    if PUBLISHING in states:
        return PUBLISHING
    if states and all(s == PUBLISHED for s in states):
        return PUBLISHED
    if SCHEDULED in states:
        return PUBLISHING if any(s in (PUBLISHED, FAILED) for s in states) else SCHEDULED
    if FAILED in states:
        return FAILED
    return current


async def _post_in(tx: Any, account_id: str, post_id: str, states: tuple[str, ...]) -> bool:
    """Whether the post exists, is not deleted and is in one of ``states``."""
    marks = ", ".join("?" * len(states))
    row = await tx.fetchrow(
        "SELECT 1 AS found FROM social_posts WHERE account_id = ? AND post_id = ? "
        f"AND deleted = 0 AND state IN ({marks})", account_id, post_id, *states)
    return row is not None


class _Superseded(Exception):  # noqa: N818 - control flow: the target changed meanwhile
    """The target was edited, deleted, armed again or ended since the job was made."""


class _ChannelDead(Exception):  # noqa: N818 - control flow: the grant is gone
    """The channel's grant died while dispatching; the channel is flagged."""


class Dispatcher:
    """Arms targets on the job queue, runs ``social.publish`` jobs, retries failed ones."""

    def __init__(self, store: SocialStore, channels: Channels, queue: JobQueue,
                 publish: Publish, *, settings: DispatchSettings | None = None,
                 pacer: Pacer | None = None, base_url: str = "",
                 media_file: MediaFile | None = None,
                 clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None,
                 sandboxed: Sandboxed | None = None) -> None:
        self.store = store
        self.sandboxed = sandboxed
        self.channels = channels
        self.queue = queue
        self.publish = publish
        self.settings = settings or DispatchSettings()
        self.pacer = pacer or self.settings.pacer()
        self.base_url = base_url.rstrip("/")
        self.media_file = media_file
        self.clock = clock
        self.rng = rng or random.Random()
        #: ``await shorten(post, target, channel, link)``: the link to publish instead
        #: (results' UTM short links, :mod:`.links`); None publishes links as written.
        self.shorten: Callable[[Post, PostTarget, Channel, str], Awaitable[str]] | None = None
        queue.configure(PUBLISH, self.settings.queue_settings())

    # -- arming --------------------------------------------------------------------------

    async def arm(self, tx: Any, post: Post) -> list[str]:
        """Queue one publish job per scheduled target of ``post`` inside ``tx``; job ids.

        Call :meth:`wake` once ``tx`` has committed. Nothing is armed unless the post is
        scheduled: a pending post's targets without approvers wait for the others.
        """
        if post.publish_at is None or post.state != SCHEDULED:
            return []
        delay = max(0.0, post.publish_at - self.clock())
        armed = []
        for target in post.targets:
            if target.state != SCHEDULED:
                continue
            job = await self.queue.enqueue(
                PUBLISH, {"post_id": post.post_id, "channel_id": target.channel_id,
                          "version": post.version}, account_id=post.account_id,
                idempotency_key=job_key(post.post_id, target.channel_id, post.version,
                                        target.arm), delay_s=delay, tx=tx)
            target.job_id = job.id
            await tx.execute(
                "UPDATE social_post_targets SET job_id = ? WHERE account_id = ? "
                "AND post_id = ? AND channel_id = ?", job.id, post.account_id, post.post_id,
                target.channel_id)
            armed.append(job.id)
        return armed

    def wake(self) -> None:
        """Tell this process's job worker that publish jobs may be due."""
        self.queue.wake(PUBLISH)

    async def cancel_jobs(self, account_id: str, job_ids: Iterable[str]) -> None:
        """Cancel queued jobs of an edited or deleted post (they would do nothing anyway)."""
        for job_id in job_ids:
            try:
                await self.queue.cancel(account_id, job_id)
            except Exception as exc:  # the version check makes a missed cancel harmless
                logger.warning("cancelling publish job %s/%s failed: %s", account_id, job_id,
                               exc)

    async def _rearm(self, tx: Any, account_id: str, post_id: str, channel_id: str,
                     seen_job: str, states: tuple[str, ...], *, reset: bool,
                     delay_s: float = 0.0,
                     post_states: tuple[str, ...] | None = None) -> str | None:
        """Arm a target again (a new job, a new key) if it still has ``seen_job`` (and,
        given ``post_states``, its post is in one of them)."""
        if post_states is not None and not await _post_in(tx, account_id, post_id,
                                                          post_states):
            return None
        marks = ", ".join("?" * len(states))
        row = await tx.fetchrow(
            "SELECT arm, version FROM social_post_targets WHERE account_id = ? "
            f"AND post_id = ? AND channel_id = ? AND job_id = ? AND state IN ({marks})",
            account_id, post_id, channel_id, seen_job, *states)
        if row is None:
            return None
        arm, version = int(row["arm"]) + 1, int(row["version"])
        job = await self.queue.enqueue(
            PUBLISH, {"post_id": post_id, "channel_id": channel_id, "version": version},
            account_id=account_id, idempotency_key=job_key(post_id, channel_id, version, arm),
            delay_s=delay_s, tx=tx)
        reset_sql = ", arm_attempts = 0, error = ''" if reset else ""
        await tx.execute(
            f"UPDATE social_post_targets SET state = 'scheduled', arm = ?, job_id = ?, "
            f"publishing_until = 0{reset_sql} WHERE account_id = ? AND post_id = ? "
            "AND channel_id = ? AND job_id = ?", arm, job.id, account_id, post_id, channel_id,
            seen_job)
        await self._settle(tx, account_id, post_id)
        return job.id

    async def requeue(self, account_id: str, post_id: str, channel_id: str, seen_job: str
                      ) -> str | None:
        """The sweeper's re-arming of a target whose job is gone or whose worker died; the
        new job's id (None: the target moved on meanwhile)."""
        async with self.store.db.transaction() as tx:
            job_id = await self._rearm(tx, account_id, post_id, channel_id, seen_job,
                                       (SCHEDULED, PUBLISHING), reset=False,
                                       post_states=DISPATCHING)
            if job_id is not None:
                await self.store.audit(tx, account_id, f"post:{post_id}", "dispatch.requeued",
                                       "", {"channel_id": channel_id, "job_id": job_id})
        if job_id is not None:
            metrics.REARMED.inc()
            if seen_job:
                await self.cancel_jobs(account_id, [seen_job])
            self.wake()
        return job_id

    async def retry(self, account_id: str, post_id: str, channel_id: str, actor: str) -> Post:
        """Try a failed target again (the retry button); the post."""
        post = await self.store.post(account_id, post_id)
        if post is None:
            raise NotFoundError(f"there is no post {post_id!r}")
        target = next((t for t in post.targets if t.channel_id == channel_id), None)
        if target is None:
            raise NotFoundError(f"post {post_id!r} does not go to channel {channel_id!r}")
        if target.state != FAILED:
            raise ConflictError(f"channel {channel_id!r} of post {post_id!r} is "
                                f"{target.state}; only a failed channel is retried")
        channel = await self.store.channel(account_id, channel_id)
        if channel is not None:
            rights.check_compose([channel], actor)
        if channel is None or channel.state != ACTIVE:
            raise ConflictError(f"channel {channel_id!r} must be connected again before the "
                                "post is retried (GET /api/social/channels/{channel_id} has "
                                "its reconnect_url)")
        delay = max(0.0, (post.publish_at or 0.0) - self.clock())
        async with self.store.db.transaction() as tx:
            job_id = await self._rearm(tx, account_id, post_id, channel_id, target.job_id,
                                       (FAILED,), reset=True, delay_s=delay)
            if job_id is None:
                raise ConflictError(f"post {post_id!r} changed meanwhile; look at it again")
            await self.store.audit(tx, account_id, f"post:{post_id}", "dispatch.retried",
                                   actor, {"channel_id": channel_id, "job_id": job_id})
        self.wake()
        found = await self.store.post(account_id, post_id)
        assert found is not None
        return found

    async def found_out(self, post: Post) -> list[str]:
        """Ask the networks of ``post``'s failed targets that were sent (the last
        attempt's answer may have been lost: the network got the post, the answer timed
        out) whether each is out after all, by its dedupe key as a retry does; each one
        found is recorded published, as its attempt would have been. The channels found
        out; :class:`ConflictError` when a network that may hold one cannot be asked."""
        found = []
        for target in post.targets:
            if target.state != FAILED or target.attempts <= 0:
                continue
            if self.sandboxed is not None and await self.sandboxed(post.account_id,
                                                                   post.post_id):
                return []  # simulated: no network ever got it
            channel = await self.store.channel(post.account_id, target.channel_id)
            out = await self._ask(post, target, channel)
            if out is not None and channel is not None:
                recorded = await self._published(post, target, channel, out, was=FAILED)
                if recorded["outcome"] != "published":
                    raise ConflictError(f"post {post.post_id!r} changed meanwhile; look at "
                                        "it again")
                found.append(target.channel_id)
        return found

    async def _ask(self, post: Post, target: PostTarget, channel: Channel | None
                   ) -> Published | None:
        """The post an earlier attempt of ``target`` sent, if its network holds it."""
        network = channel.network if channel is not None else target.network
        unasked = (f"could not ask {network} whether post {post.post_id!r} went out on "
                   f"channel {target.channel_id!r} (its last answer may have been lost)")
        if channel is None or channel.state == DISCONNECTED:
            return None  # its person let the channel go: nothing to ask, nothing kept from
        connector = self.channels.connectors.get(network)
        if channel.state != ACTIVE or connector is None:
            raise ConflictError(f"{unasked}: connect the channel again, then try again")
        try:
            token = await self.channels.access_token(post.account_id, target.channel_id)
            return await connector.find_published(
                token, target.dedupe_key, text=variant(post, target)["text"] or "",
                since=first_attempt(post, target))
        except (NetworkError, SocialError) as exc:
            raise ConflictError(f"{unasked}: {exc}; try again later") from None

    # -- running (the social.publish job) ------------------------------------------------

    async def handle(self, job: JobContext) -> dict[str, Any]:
        """One attempt at one target; the outcome (the job's result).

        Raises :class:`~jobs.Retry` to wait (burst limit, quota, a retryable failure).
        """
        account_id, payload = job.job.account_id, job.payload
        view = await self.store.dispatch_view(account_id, payload["post_id"],
                                              payload["channel_id"])
        if view is None:
            return {"outcome": "superseded"}
        post, channel, sealed = view
        [target] = post.targets
        if (post.version != payload["version"] or target.version != payload["version"]
                or target.job_id != job.job.id):
            return {"outcome": "superseded"}
        if target.state != SCHEDULED and target.state != PUBLISHING:
            return {"outcome": target.state, "url": target.url}
        if post.state not in DISPATCHING:  # waiting for approval: not even a failure
            return {"outcome": "superseded"}
        now = self.clock()
        if post.publish_at is not None and post.publish_at > now + 1.0:
            raise Retry("not due yet", after=post.publish_at - now)
        if channel is None or channel.state != ACTIVE:
            why = channel.last_error if channel is not None else "it was removed"
            return await self._fail(post, target, channel, "the channel must be connected "
                                    f"again before it can publish ({why})")
        if self.sandboxed is not None and await self.sandboxed(account_id, post.post_id):
            return await self._simulate(post, target, channel, job.job.id)
        connector = self.channels.connectors.get(channel.network)
        if connector is None:
            return await self._fail(post, target, channel, f"network {channel.network!r} is "
                                    "not configured on this server any more")
        pace_key = f"{account_id}/{channel.channel_id}"
        wait = await self.pacer.take(channel.network, pace_key)
        if wait > 0:
            metrics.DEFERRED.labels(channel.network, "paced").inc()
            raise Retry(f"paced: {channel.network} channel burst limit", after=self._jitter(wait))
        try:
            token, generation = await self.channels.held_token(channel, sealed)
        except ConflictError as exc:
            return await self._fail(post, target, channel, str(exc))
        except (NetworkError, SocialError) as exc:  # a refresh that may work later
            raise Retry(f"token refresh failed: {exc}",
                        after=self._backoff(target.arm_attempts + 1)) from None
        try:
            wait, quota = await self.pacer.quota_wait(channel.network, pace_key, connector,
                                                      token)
        except NetworkError as exc:  # the quota could not be read: the network will say
            logger.info("quota of %s channel %s unreadable: %s", channel.network,
                        channel.channel_id, exc)
            wait, quota = 0.0, None
        if wait > 0 and quota is not None:
            metrics.DEFERRED.labels(channel.network, "quota").inc()
            raise Retry(f"{channel.network} publishing quota spent ({quota.used}/"
                        f"{quota.limit}); waits until it frees", after=self._jitter(wait))
        try:
            started = await self._start(post, target, job.job.id)
        except _Superseded:
            self.pacer.give_back(channel.network, pace_key)
            return {"outcome": "superseded"}
        return await self._attempt(post, started, channel, connector, token, pace_key,
                                   generation)

    async def _simulate(self, post: Post, target: PostTarget, channel: Channel,
                        job_id: str) -> dict[str, Any]:
        """A sandbox post's target, published in simulation: no network is contacted."""
        try:
            started = await self._start(post, target, job_id)
        except _Superseded:
            return {"outcome": "superseded"}
        return await self._published(post, started, channel, simulated(post.post_id))

    async def _attempt(self, post: Post, target: PostTarget, channel: Channel, connector: Any,
                       token: str, pace_key: str, generation: int | None = None
                       ) -> dict[str, Any]:
        try:
            published = await self._send(post, target, channel, connector, token, generation)
        except Duplicate as exc:
            # the network's own pick (exc.existing) may be an older post with the same text
            # (last week's weekly post): only one created since this target's first attempt
            # is taken for it; none, and the target fails with the network's reason, for a
            # person to look at, rather than be recorded as a post it never sent
            existing = await self._find(post, target, channel, connector, token)
            if existing is not None:
                return await self._published(post, target, channel, existing)
            self.pacer.give_back(channel.network, pace_key)
            return await self._fail(post, target, channel, exc.reason)
        except _ChannelDead as exc:
            self.pacer.give_back(channel.network, pace_key)
            return await self._fail(post, target, channel, str(exc))
        except NetworkError as exc:
            self.pacer.give_back(channel.network, pace_key)
            if isinstance(exc, QuotaExhausted):
                self.pacer.spent(channel.network, pace_key, exc.retry_after)
            if not exc.retryable or target.arm_attempts >= self.settings.max_attempts:
                return await self._fail(post, target, channel, exc.reason)
            await self._later(post, target, channel, exc.reason, exc.retry_after)
        except Exception as exc:  # a connector bug: retried like a network error
            logger.exception("publishing %s/%s to %s failed unexpectedly", post.post_id,
                             target.channel_id, channel.network)
            self.pacer.give_back(channel.network, pace_key)
            reason = f"{type(exc).__name__}: {exc}"
            if target.arm_attempts >= self.settings.max_attempts:
                return await self._fail(post, target, channel, reason)
            await self._later(post, target, channel, reason, None)
        return await self._published(post, target, channel, published)

    async def _send(self, post: Post, target: PostTarget, channel: Channel, connector: Any,
                    token: str, generation: int | None = None) -> Published:
        """Publish, or find the post an earlier attempt sent; one token refresh on 401
        (none when the token of ``generation`` was replaced meanwhile)."""
        fields_ = variant(post, target)
        text, link = fields_["text"] or "", fields_["link"]
        if link and self.shorten is not None:
            short = await self.shorten(post, target, channel, link)
            text, link = text.replace(link, short), short
        publication = Publication(dedupe_key=target.dedupe_key, text=text,
                                  media=await self._media(post.account_id,
                                                         fields_["media"] or []),
                                  link=link, first_comment=fields_["first_comment"])
        for refreshed in (False, True):
            try:
                if target.attempts > 1:  # an earlier attempt may have reached the network
                    found = await connector.find_published(
                        token, target.dedupe_key, text=publication.text,
                        since=first_attempt(post, target))
                    if found is not None:
                        return found
                return await connector.publish(token, publication)
            except TokenExpired:
                if refreshed:
                    raise
                token = await self._fresh_token(channel, generation)
        raise AssertionError("unreachable")

    async def _media(self, account_id: str, refs: list[dict[str, Any]]
                     ) -> tuple[MediaItem, ...]:
        items = media_items(refs)
        if self.media_file is None:
            return items
        return tuple([replace(item, path=await self.media_file(account_id, ref["asset_id"])
                              or item.path)
                      for item, ref in zip(items, refs, strict=True)])

    async def _find(self, post: Post, target: PostTarget, channel: Channel, connector: Any,
                    token: str) -> Published | None:
        text = variant(post, target)["text"] or ""
        try:
            return await connector.find_published(token, target.dedupe_key, text=text,
                                                  since=first_attempt(post, target))
        except NetworkError:
            return None

    async def _fresh_token(self, channel: Channel, generation: int | None = None) -> str:
        """An access token newer than the refused one of ``generation`` (default: the
        channel's as read): refreshed, unless another job refreshed it meanwhile;
        :class:`_ChannelDead` when the grant is gone."""
        seen = channel.token_generation if generation is None else generation
        try:
            refreshed = await self.channels.refresh(channel.account_id, channel.channel_id,
                                                    force=True, seen_generation=seen)
        except ConflictError as exc:
            raise _ChannelDead(str(exc)) from None
        if refreshed.state != ACTIVE:
            raise _ChannelDead(f"the channel must be connected again: {refreshed.last_error}")
        return await self.channels.access_token(channel.account_id, channel.channel_id)

    # -- recording -----------------------------------------------------------------------

    async def _start(self, post: Post, target: PostTarget, job_id: str) -> PostTarget:
        """Mark the target publishing (and the post), or :class:`_Superseded`."""
        now = self.clock()

        async def start(tx: Any) -> None:
            changed = await tx.execute(
                "UPDATE social_post_targets SET state = 'publishing', attempts = attempts + 1, "
                "arm_attempts = arm_attempts + 1, publishing_until = ?, "
                "first_attempt_at = COALESCE(first_attempt_at, ?) WHERE account_id = ? "
                "AND post_id = ? AND channel_id = ? AND version = ? AND job_id = ? "
                "AND state IN ('scheduled', 'publishing')",
                now + self.settings.publish_lease_s, now, post.account_id, post.post_id,
                target.channel_id, target.version, job_id)
            if changed != 1:
                raise _Superseded
            moved = await tx.execute(
                "UPDATE social_posts SET state = 'publishing', updated_at = ? "
                "WHERE account_id = ? AND post_id = ? AND version = ? AND deleted = 0 "
                "AND state IN ('scheduled', 'publishing')", now, post.account_id,
                post.post_id, post.version)
            if moved != 1:
                raise _Superseded

        await self._write(start)
        return replace(target, state=PUBLISHING, attempts=target.attempts + 1,
                       arm_attempts=target.arm_attempts + 1,
                       first_attempt_at=target.first_attempt_at or now)

    async def _write(self, unit: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``unit(tx)`` as one state change; the changes of many publish attempts
        share one commit (:func:`database.group_commit`), each under its own savepoint,
        so what ``unit`` raises undoes only its own statements."""
        return await group_commit(self.store.db).run(unit)

    async def _settle(self, tx: Any, account_id: str, post_id: str) -> str:
        """Set the post's state from its targets'; the state."""
        rows = await tx.fetch(
            "SELECT p.state AS post_state, t.state, t.attempts FROM social_posts p "
            "LEFT JOIN social_post_targets t ON t.account_id = p.account_id "
            "AND t.post_id = p.post_id WHERE p.account_id = ? AND p.post_id = ?",
            account_id, post_id)
        current = rows[0]["post_state"] if rows else ""
        state = settled_state((target_progress(r["state"], r["attempts"]) for r in rows
                               if r["state"] is not None), current)
        await tx.execute("UPDATE social_posts SET state = ?, updated_at = ? WHERE "
                         "account_id = ? AND post_id = ? AND deleted = 0", state, self.clock(),
                         account_id, post_id)
        return state

    async def _published(self, post: Post, target: PostTarget, channel: Channel,
                         published: Published, *, was: str = PUBLISHING) -> dict[str, Any]:
        """Record ``target`` (in state ``was``) published as ``published``."""
        now = self.clock()

        async def record(tx: Any) -> int:
            changed = await tx.execute(
                "UPDATE social_post_targets SET state = 'published', remote_id = ?, url = ?, "
                "error = '', published_at = ?, publishing_until = 0 WHERE account_id = ? "
                "AND post_id = ? AND channel_id = ? AND job_id = ? AND state = ?",
                published.remote_id, published.url, now, post.account_id, post.post_id,
                target.channel_id, target.job_id, was)
            if changed == 1:
                await self._settle(tx, post.account_id, post.post_id)
                subject = f"post:{post.post_id}"
                await self.store.audit(tx, post.account_id, subject, "dispatch.published", "",
                                       {"channel_id": target.channel_id, "url": published.url,
                                        "remote_id": published.remote_id,
                                        "attempts": target.attempts}, now)
                await self.publish(tx, PUBLISHED_EVENT, {
                    "account_id": post.account_id, "post_id": post.post_id,
                    "channel_id": target.channel_id, "network": channel.network,
                    "author_id": post.author_id, "remote_id": published.remote_id,
                    "url": published.url, "publish_at": iso(post.publish_at),
                    "published_at": now}, post.account_id)
            return changed

        changed = await self._write(record)
        if changed != 1:
            return {"outcome": "superseded"}
        metrics.OUTCOMES.labels(channel.network, "published").inc()
        if post.publish_at is not None:
            metrics.LAG.labels(channel.network).observe(max(0.0, now - post.publish_at))
        return {"outcome": "published", "remote_id": published.remote_id,
                "url": published.url}

    def retry_url(self, post_id: str, channel_id: str) -> str:
        """Where the retry button posts to."""
        return f"{self.base_url}/api/social/posts/{post_id}/targets/{channel_id}/retry"

    async def _fail(self, post: Post, target: PostTarget, channel: Channel | None,
                    reason: str) -> dict[str, Any]:
        """End the target failed with ``reason`` (the network's words)."""
        now = self.clock()
        network = channel.network if channel is not None else target.network

        async def record(tx: Any) -> int:
            changed = await tx.execute(
                "UPDATE social_post_targets SET state = 'failed', error = ?, "
                "publishing_until = 0 WHERE account_id = ? AND post_id = ? AND channel_id = ? "
                "AND job_id = ? AND version = ? AND state IN ('scheduled', 'publishing')",
                reason[:2000], post.account_id, post.post_id, target.channel_id,
                target.job_id, target.version)
            if changed == 1:
                await self._settle(tx, post.account_id, post.post_id)
                await self.store.audit(tx, post.account_id, f"post:{post.post_id}",
                                       "dispatch.failed", "",
                                       {"channel_id": target.channel_id, "reason": reason,
                                        "attempts": target.attempts}, now)
                await self.publish(tx, FAILED_EVENT, {
                    "account_id": post.account_id, "post_id": post.post_id,
                    "channel_id": target.channel_id, "network": network,
                    "author_id": post.author_id, "reason": reason,
                    "attempts": target.attempts,
                    "retry_url": self.retry_url(post.post_id, target.channel_id)},
                    post.account_id)
            return changed

        changed = await self._write(record)
        if changed != 1:
            return {"outcome": "superseded"}
        metrics.OUTCOMES.labels(network, "failed").inc()
        logger.info("post %s/%s on %s failed: %s", post.account_id, post.post_id, network,
                    reason)
        return {"outcome": "failed", "reason": reason}

    async def _later(self, post: Post, target: PostTarget, channel: Channel, reason: str,
                     retry_after: float | None) -> None:
        """Back to scheduled with the network's reason; raises :class:`~jobs.Retry`."""
        async def record(tx: Any) -> None:
            changed = await tx.execute(
                "UPDATE social_post_targets SET state = 'scheduled', error = ?, "
                "publishing_until = 0 WHERE account_id = ? AND post_id = ? AND channel_id = ? "
                "AND job_id = ? AND state = 'publishing'", reason[:2000], post.account_id,
                post.post_id, target.channel_id, target.job_id)
            if changed == 1:
                await self._settle(tx, post.account_id, post.post_id)

        await self._write(record)
        metrics.DEFERRED.labels(channel.network, "retry").inc()
        after = (self._jitter(retry_after) if retry_after is not None
                 else self._backoff(target.arm_attempts))
        raise Retry(f"{channel.network}: {reason}", after=after)

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, self.settings.backoff_base, self.settings.backoff_cap,
                             self.rng)

    def _jitter(self, seconds: float) -> float:
        """``seconds`` and up to a tenth more, so waiters that share a moment spread out."""
        return seconds + self.rng.uniform(0, max(seconds, 0.05) / 10)
