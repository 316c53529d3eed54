"""Dispatch against the fake networks: due posts published once, whatever fails.

Each test runs the social services over a real database (SQLite, and PostgreSQL where
concurrent writers matter) with the networks' fakes on loopback (``business/social/
fakes``) and the platform's job queue and worker; the fakes count what they published,
so "once" is checked at the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import prometheus_client
import pytest
from social_fakes import (
    CLIENT_ID,
    CLIENT_SECRET,
    Dispatching,
    dispatching,
    media_ref,
    until,
)
from social_helpers import social_app, who

from business.social import metrics
from business.social.approvals import Approvals
from business.social.dispatch import PUBLISH, Dispatcher
from business.social.errors import ConflictError
from business.social.fakes import FAKES, FakeNetworks
from business.social.networks import connector_for
from business.social.privacy import erase_account, export_account
from business.social.store import SocialStore
from database import open_database
from dawserver.plugin_api import Pseudonymiser
from jobs import JobContext, JobQueue, JobWorker

pytestmark = pytest.mark.timeout(60)
NETWORKS = sorted(FAKES)
# how long ago a "due" post's time came: far beyond any step of the wall clock under load,
# so its publishing lag is measured, never clamped to zero
LATE = 30.0


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'social.sqlite3'}"


async def targets(h: Dispatching, post_id: str, account: str = "acc") -> dict[str, Any]:
    """The post's targets by channel, as stored."""
    post = await h.store.post(account, post_id)
    assert post is not None
    return {t.channel_id: t for t in post.targets}


async def all_ended(h: Dispatching, post_ids: list[str], account: str = "acc") -> bool:
    for post_id in post_ids:
        for target in (await targets(h, post_id, account)).values():
            if target.state not in ("published", "failed"):
                return False
    return True


def published_texts(h: Dispatching, network: str) -> list[str]:
    """The texts the fake holds (in its own network's field)."""
    field = {"instagram": "caption", "threads": "text", "facebook": "message",
             "linkedin": "commentary", "tiktok": "title", "x": "text"}
    texts = []
    for post in h.fake(network).posts:
        if network == "bluesky":
            texts.append(post["value"]["text"])
        elif network == "youtube":
            texts.append(post["snippet"]["title"])
        else:
            texts.append(post[field[network]])
    return texts


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- published once ------------------------------------------------------------------------

def test_a_due_post_is_published_once_on_each_network(sqlite_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, NETWORKS, tmp_path) as h:
            image, video = media_ref(h.media["image"], "cover"), media_ref(h.media["video"],
                                                                           "clip")
            needs = {"instagram": [image], "tiktok": [video], "youtube": [video]}
            before = {n: metrics.LAG.labels(n)._sum.get() for n in NETWORKS}  # noqa: SLF001
            posts = {}
            for network in NETWORKS:
                channel = await h.channel(network)
                posts[network] = await h.due_post([channel], f"Night Drive out now on "
                                                  f"{network}", media=needs.get(network, []),
                                                  ago=LATE)
            async with h.worker():
                await until(lambda: all_ended(h, [p.post_id for p in posts.values()]))
            for network, post in posts.items():
                [target] = (await targets(h, post.post_id)).values()
                assert target.state == "published", (network, target.error)
                assert target.remote_id and target.url.startswith("http")
                assert target.attempts == 1 and target.published_at is not None
                stored = await h.store.post("acc", post.post_id)
                assert stored.state == "published"
                mine = [p for p in h.fake(network).posts if not p.get("reply_to")]
                assert len(mine) == 1, (network, mine)
                lag = metrics.LAG.labels(network)._sum.get() - before[network]  # noqa: SLF001
                assert lag >= LATE, (network, lag)
            names = [name for name, _ in h.events.events]
            assert names.count("social.post_published") == len(NETWORKS)

    run(go())


@pytest.mark.parametrize("network", ["x", "threads", "bluesky"])
def test_a_lost_answer_is_retried_and_not_published_twice(sqlite_url: str, tmp_path: Path,
                                                         network: str) -> None:
    publish_path = {"x": "/2/tweets", "threads": "threads_publish",
                    "bluesky": "createRecord"}[network]

    async def go() -> None:
        async with dispatching(sqlite_url, [network], tmp_path) as h:
            channel = await h.channel(network)
            h.fake(network).lose_answers(1, publish_path)
            post = await h.due_post([channel], "Lost in the mail, found on the feed")
            async with h.worker():
                await until(lambda: all_ended(h, [post.post_id]))
            [target] = (await targets(h, post.post_id)).values()
            assert target.state == "published", target.error
            assert h.fake(network).stats.lost_answers == 1
            assert target.attempts == 2          # the second asked before publishing
            assert len(h.fake(network).posts) == 1
            assert target.remote_id == h.fake(network).posts[0].get("id", target.remote_id) \
                or network == "bluesky"

    run(go())


WEEK = 7 * 86_400.0
#: The call that publishes on each network (its first one fails once below).
PUBLISH_PATHS = {"x": "/2/tweets", "facebook": "/feed", "linkedin": "/rest/posts",
                 "instagram": "media_publish", "threads": "threads_publish",
                 "tiktok": "video/init"}


def age_posts(h: Dispatching, network: str, seconds: float) -> None:
    """Make every post the fake holds ``seconds`` older (it was published back then)."""
    for post in h.fake(network).posts:
        for key in ("created", "created_at"):
            if key in post:
                post[key] -= seconds


@pytest.mark.parametrize("network", sorted(PUBLISH_PATHS))
def test_a_retried_weekly_post_is_sent_not_taken_for_last_weeks(sqlite_url: str,
                                                                tmp_path: Path,
                                                                network: str) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, [network], tmp_path) as h:
            needs = {"instagram": [media_ref(h.media["image"], "cover")],
                     "tiktok": [media_ref(h.media["video"], "clip")]}
            channel = await h.channel(network)
            text = "Live now on Twitch: come hang out"
            first = await h.due_post([channel], text, media=needs.get(network, []))
            async with h.worker():
                await until(lambda: all_ended(h, [first.post_id]))
            age_posts(h, network, WEEK)              # that was last week's
            h.fake(network).fail(503, times=1, path=PUBLISH_PATHS[network])
            second = await h.due_post([channel], text, media=needs.get(network, []))
            async with h.worker():
                await until(lambda: all_ended(h, [second.post_id]))
            [old] = (await targets(h, first.post_id)).values()
            [new] = (await targets(h, second.post_id)).values()
            assert (new.state, new.attempts) == ("published", 2), new.error
            assert new.remote_id != old.remote_id
            mine = [p for p in h.fake(network).posts if not p.get("reply_to")]
            assert len(mine) == 2
            assert new.first_attempt_at is not None

    run(go())


def test_429_with_retry_after_is_honoured(sqlite_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["linkedin"], tmp_path) as h:
            channel = await h.channel("linkedin")
            h.fake("linkedin").fail(429, times=1, retry_after=1)
            post = await h.due_post([channel], "Patience pays")
            started = time.time()
            async with h.worker():
                await until(lambda: all_ended(h, [post.post_id]))
            [target] = (await targets(h, post.post_id)).values()
            assert target.state == "published" and target.attempts == 2
            assert target.published_at - started >= 0.95   # waited the second it was told
            assert len(h.fake("linkedin").posts) == 1

    run(go())


def test_server_errors_are_retried_with_backoff_then_published(sqlite_url: str,
                                                               tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["facebook"], tmp_path) as h:
            channel = await h.channel("facebook")
            h.fake("facebook").fail(503, times=2)
            post = await h.due_post([channel], "Third time lucky")
            async with h.worker():
                await until(lambda: all_ended(h, [post.post_id]))
            [target] = (await targets(h, post.post_id)).values()
            assert target.state == "published" and target.attempts == 3
            assert len(h.fake("facebook").posts) == 1
            audit = [a["action"] for a in await h.store.audit_of("acc", f"post:{post.post_id}")]
            assert audit[-1] == "dispatch.published"

    run(go())


def test_a_token_expiring_mid_dispatch_is_refreshed_and_the_post_sent(
        sqlite_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["x"], tmp_path) as h:
            channel = await h.channel("x")
            before = await h.store.channel("acc", channel)
            h.fake("x").expire_tokens()          # the network ends it early
            post = await h.due_post([channel], "Fresh token, fresh track")
            async with h.worker():
                await until(lambda: all_ended(h, [post.post_id]))
            [target] = (await targets(h, post.post_id)).values()
            assert target.state == "published", target.error
            after = await h.store.channel("acc", channel)
            assert after.token_generation > before.token_generation
            assert len(h.fake("x").posts) == 1

    run(go())


def test_a_network_refusal_fails_with_its_reason_and_no_post_ends_silently(
        sqlite_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["x"], tmp_path) as h:
            channel = await h.channel("x")
            h.fake("x").fail(400, times=1)
            post = await h.due_post([channel], "Refused")
            async with h.worker():
                await until(lambda: all_ended(h, [post.post_id]))
            [target] = (await targets(h, post.post_id)).values()
            assert target.state == "failed"
            assert "One or more parameters are invalid" in target.error
            assert (await h.store.post("acc", post.post_id)).state == "failed"
            [(name, payload)] = [e for e in h.events.events if e[0] == "social.post_failed"]
            assert payload["reason"] == target.error
            assert payload["retry_url"].endswith(f"/posts/{post.post_id}/targets/{channel}/retry")
            retried = await h.dispatcher.retry("acc", post.post_id, channel, "p_ada")
            assert retried.targets[0].state == "scheduled"
            async with h.worker():
                await until(lambda: all_ended(h, [post.post_id]))
            [target] = (await targets(h, post.post_id)).values()
            assert target.state == "published" and len(h.fake("x").posts) == 1

    run(go())


# -- edits, deletes, concurrency -----------------------------------------------------------

class Gate:
    """A connector whose publish waits until the test opens the gate."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.open = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def publish(self, token: str, publication: Any) -> Any:
        self.entered.set()
        await self.open.wait()
        return await self.inner.publish(token, publication)


def test_an_edit_or_delete_before_or_while_sending_never_sends_the_old_version(
        db_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(db_url, ["threads"], tmp_path) as h:
            channel = await h.channel("threads")
            soon = time.time() + 1.5
            edited = await h.scheduled_post([channel], "first draft words", at=soon)
            deleted = await h.scheduled_post([channel], "never to be seen", at=soon)
            old_jobs = [t.job_id for p in (edited, deleted) for t in p.targets]
            await h.posts.edit("acc", edited.post_id, "p_ada", {"text": "final words"})
            await h.posts.delete("acc", deleted.post_id, "p_ada")
            for job_id in old_jobs:           # their queued jobs were cancelled
                assert (await h.queue.get("acc", job_id)).state == "cancelled"
            gate = Gate(h.connectors["threads"])
            h.channels.connectors["threads"] = gate
            sending = await h.due_post([channel], "already on its way")
            async with h.worker():
                await asyncio.wait_for(gate.entered.wait(), 10)
                with pytest.raises(Exception, match="can no longer be edited|changed"):
                    await h.posts.edit("acc", sending.post_id, "p_ada", {"text": "too late"})
                with pytest.raises(Exception, match="cannot be deleted|changed"):
                    await h.posts.delete("acc", sending.post_id, "p_ada")
                gate.open.set()
                await until(lambda: all_ended(h, [edited.post_id, sending.post_id]),
                            timeout=30)
            assert sorted(published_texts(h, "threads")) == ["already on its way",
                                                             "final words"]

    run(go())


def test_a_stale_job_of_an_earlier_version_does_nothing(sqlite_url: str,
                                                        tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["x"], tmp_path) as h:
            channel = await h.channel("x")
            post = await h.scheduled_post([channel], "v1 words", at=time.time() + 60)
            old = post.targets[0].job_id
            await h.posts.edit("acc", post.post_id, "p_ada", {"text": "v2 words"})
            # a job that escaped the cancel (another process claimed it a moment before)
            await h.db.execute("UPDATE jobs SET state = 'queued', run_at = 0 WHERE id = ?",
                               old)
            [job] = await h.queue.claim(PUBLISH, "stale", 1)
            assert job.id == old
            assert await h.dispatcher.handle(JobContext(job)) == {"outcome": "superseded"}
            assert h.fake("x").posts == []

    run(go())


def test_two_workers_on_one_database_publish_each_post_once(db_url: str,
                                                            tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(db_url, ["x", "bluesky"], tmp_path) as h, \
                open_database(db_url) as other_db:
            x, sky = await h.channel("x"), await h.channel("bluesky")
            posts = [await h.due_post([x, sky], f"drop number {n}") for n in range(12)]
            # a second arming of some targets (as a racing second process would add)
            for post in posts[:4]:
                await h.queue.enqueue(PUBLISH, {"post_id": post.post_id, "channel_id": x,
                                                "version": post.version}, account_id="acc",
                                      idempotency_key=f"dup-{post.post_id}")
            second = Dispatcher(SocialStore(other_db), h.channels, JobQueue(other_db),
                                h.events, settings=h.dispatcher.settings)
            # each worker's first job waits until the other worker holds one, so the
            # race is real on a loaded machine too (one claim holds at most 8 of 28 jobs)
            met = {"first": asyncio.Event(), "second": asyncio.Event()}

            def meeting(name: str, partner: str, handle: Any) -> Any:
                async def handle_after_meeting(ctx: JobContext) -> Any:
                    met[name].set()
                    await asyncio.wait_for(met[partner].wait(), timeout=30)
                    return await handle(ctx)
                return handle_after_meeting

            first = JobWorker(h.queue, {PUBLISH: meeting("first", "second",
                                                         h.dispatcher.handle)},
                              poll_s=0.02, worker_id="first")
            other = JobWorker(second.queue, {PUBLISH: meeting("second", "first",
                                                              second.handle)},
                              poll_s=0.02, worker_id="second")
            async with first, other:
                await until(lambda: all_ended(h, [p.post_id for p in posts]), timeout=40)
            for network in ("x", "bluesky"):
                texts = published_texts(h, network)
                assert len(texts) == 12 and len(set(texts)) == 12, texts
            workers = {j.worker for j in await h.queue.find(queue=PUBLISH, states=["done"])}
            assert {"first", "second"} <= workers   # both took part

    run(go())


# -- dying workers, the sweeper, outages, quotas --------------------------------------------

class Killed(BaseException):
    """The process died (kill -9): nothing after this point runs."""


class DiesAfterPublishing:
    """A connector whose process dies once the network accepted the post."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def publish(self, token: str, publication: Any) -> Any:
        await self.inner.publish(token, publication)
        raise Killed


def test_a_worker_killed_mid_batch_is_swept_and_each_post_published_once(
        sqlite_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["instagram"], tmp_path, lease_s=0.5,
                               publish_lease_s=0.3) as h:
            channel = await h.channel("instagram")
            image = media_ref(h.media["image"], "cover")
            posts = [await h.due_post([channel], f"cover story {n}", media=[image])
                     for n in range(4)]
            real = h.channels.connectors["instagram"]
            h.channels.connectors["instagram"] = DiesAfterPublishing(real)
            batch = await h.queue.claim(PUBLISH, "doomed", 3)   # the doomed worker's batch
            for job in batch:
                with pytest.raises(Killed):
                    await h.dispatcher.handle(JobContext(job))
            h.channels.connectors["instagram"] = real
            states = [t.state for p in posts for t in (await targets(h, p.post_id)).values()]
            assert sorted(states) == ["publishing"] * 3 + ["scheduled"]
            assert len(h.fake("instagram").posts) == 3
            await asyncio.sleep(0.6)             # the dead worker's leases run out
            due, oldest = await h.sweeper.liveness()
            assert due == 4 and oldest > 0.5
            sweep = await h.sweeper.sweep()
            assert sweep.requeued == 3           # the fourth's job is still queued
            async with h.worker():
                await until(lambda: all_ended(h, [p.post_id for p in posts]))
            assert len(h.fake("instagram").posts) == 4
            for post in posts:
                [target] = (await targets(h, post.post_id)).values()
                assert target.state == "published"
            assert await h.sweeper.liveness() == (0, 0.0)
            assert metrics.OLDEST_DUE._value.get() == 0.0  # noqa: SLF001

    run(go())


def test_the_sweeper_rearms_a_due_target_whose_job_was_lost(sqlite_url: str,
                                                            tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["bluesky"], tmp_path) as h:
            channel = await h.channel("bluesky")
            post = await h.due_post([channel], "where did my job go")
            await h.db.execute("DELETE FROM jobs")   # the queue lost it (restored backup)
            assert (await h.sweeper.sweep()).requeued == 1
            assert (await h.sweeper.sweep()).requeued == 0   # the new job is alive
            async with h.worker():
                await until(lambda: all_ended(h, [post.post_id]))
            assert len(h.fake("bluesky").posts) == 1

    run(go())


async def no_live_jobs(h: Dispatching) -> bool:
    """Whether no publish job is queued, waiting to retry or running."""
    return not await h.queue.find(queue=PUBLISH, states=("queued", "retrying", "running"))


async def run_jobs_and_sweep(h: Dispatching) -> None:
    """Run what the queue holds, sweep, and run what the sweep armed (bounded waits)."""
    async with h.worker():
        await until(lambda: no_live_jobs(h))
    await h.sweeper.sweep()
    async with h.worker():
        await until(lambda: no_live_jobs(h))


async def a_post_waiting_for_bo(h: Dispatching) -> tuple[Any, str, str]:
    """A due post to X (no workflow) and Bluesky (Bo approves it): the post, channels."""
    free, gated = await h.channel("x"), await h.channel("bluesky")
    await h.store.set_tiers("acc", gated, [[{"person": "p_bo"}]], time.time())
    post = await h.due_post([free, gated], "needs Bo's ok first")
    assert post.state == "pending_approval"
    return post, free, gated


def test_the_sweeper_never_takes_a_post_out_of_approval(sqlite_url: str,
                                                       tmp_path: Path) -> None:
    async def role_in(account: str, person: str) -> str | None:
        return None

    async def go() -> None:
        async with dispatching(sqlite_url, ["x", "bluesky"], tmp_path) as h:
            post, free, gated = await a_post_waiting_for_bo(h)
            await run_jobs_and_sweep(h)
            stored = await h.store.post("acc", post.post_id)
            assert stored.state == "pending_approval"
            assert {t.channel_id: t.state for t in stored.targets} == {
                free: "scheduled", gated: "pending_approval"}
            assert h.fake("x").posts == [] and h.fake("bluesky").posts == []
            assert (await h.sweeper.sweep()).due == 0     # waiting on a person, not late
            # approved only after its publish time: it expires, and nothing goes out late
            approvals = Approvals(h.store, h.events, role_in, dispatch=h.dispatcher)
            with pytest.raises(ConflictError, match="expired"):
                await approvals.decide("acc", post.post_id, "p_bo", approve=True)
            async with h.worker():
                await until(lambda: no_live_jobs(h))
            assert (await h.store.post("acc", post.post_id)).state == "expired"
            assert h.fake("x").posts == [] and h.fake("bluesky").posts == []

    run(go())


def test_a_pending_post_on_a_dead_channel_is_not_failed_before_approval(
        sqlite_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["x", "bluesky"], tmp_path) as h:
            post, free, gated = await a_post_waiting_for_bo(h)
            await h.db.execute("UPDATE social_channels SET state = 'needs_reconnect', "
                               "last_error = 'revoked' WHERE channel_id = ?", free)
            await run_jobs_and_sweep(h)
            stored = await h.store.post("acc", post.post_id)
            assert stored.state == "pending_approval"
            assert {t.channel_id: t.state for t in stored.targets} == {
                free: "scheduled", gated: "pending_approval"}
            assert "social.post_failed" not in [name for name, _ in h.events.events]

    run(go())


def test_a_backlog_after_an_outage_drains_within_the_burst_limit(sqlite_url: str,
                                                                 tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["x"], tmp_path, channel_limit="3/second",
                               max_attempts=200) as h:
            channel = await h.channel("x")
            fake = h.fake("x")
            fake.fail(503, times=10_000)          # the network is down
            posts = [await h.due_post([channel], f"backlog item {n}") for n in range(9)]
            async with h.worker():
                await asyncio.sleep(1.0)
                assert fake.posts == [] and fake.stats.injected > 0
                fake.injected.clear()             # and back
                await until(lambda: all_ended(h, [p.post_id for p in posts]), timeout=30)
            times = sorted(p["created_at"] for p in fake.posts)
            assert len(times) == 9
            for first, fourth in zip(times, times[3:], strict=False):
                assert fourth - first >= 0.9, times   # never 4 within a second

    run(go())


def test_instagrams_rolling_limit_is_read_and_respected(sqlite_url: str,
                                                       tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["instagram"], tmp_path) as h:
            channel = await h.channel("instagram")
            h.fake("instagram").publish_limit = 2
            image = media_ref(h.media["image"], "cover")
            posts = [await h.due_post([channel], f"post {n} of the day", media=[image])
                     for n in range(4)]

            async def two_out() -> bool:
                jobs = await h.queue.find(queue=PUBLISH, states=["retrying"])
                return len(h.fake("instagram").posts) == 2 and len(jobs) == 2

            async with h.worker():
                await until(two_out)
                await asyncio.sleep(0.2)
            assert len(h.fake("instagram").posts) == 2
            waiting = [t for p in posts for t in (await targets(h, p.post_id)).values()
                       if t.state != "published"]
            assert [t.state for t in waiting] == ["scheduled", "scheduled"]
            assert all(t.attempts == 0 for t in waiting)   # never sent into the limit
            for job in await h.queue.find(queue=PUBLISH, states=["retrying"]):
                assert job.run_at > time.time() + 80_000 and "quota" in job.last_error

    run(go())


# -- over HTTP: a dead grant, the retry route, the metrics -----------------------------------

async def _connect_fake(client: Any, session: Any, headers: dict[str, str],
                        **query: str) -> str:
    """Connect (or reconnect) an X channel through the routes and the fake's OAuth pages."""
    start = await client.get("/api/social/channels/connect/x", params=query,
                             headers=headers, allow_redirects=False)
    assert start.status == 302, await start.text()
    async with session.get(start.headers["Location"], allow_redirects=False) as page:
        assert page.status == 302
        back = urlsplit(page.headers["Location"])
    done = await client.get(f"{back.path}?{back.query}", allow_redirects=False)
    assert done.status == 302, await done.text()
    return done.headers["Location"].split("social_channel=")[1]


def test_a_dead_grant_fails_the_post_flags_the_channel_and_retry_works_after_reconnect(
        sqlite_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        fake = FAKES["x"](client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        async with FakeNetworks([fake]) as server, aiohttp.ClientSession() as session:
            connector = connector_for("x", server.base_url("x"), CLIENT_ID, CLIENT_SECRET,
                                      session)
            async with social_app(tmp_path, sqlite_url, connector) as (client, context):
                ada = who("acc", "p_ada", "owner")
                channel = await _connect_fake(client, session, ada)
                fake.expire_tokens()
                fake._refresh.clear()  # noqa: SLF001 - the user revoked the app at X
                soon = dt.datetime.fromtimestamp(time.time() + 1.2, dt.UTC).isoformat()
                created = await client.post("/api/social/posts", headers=ada, json={
                    "text": "Out at last", "publish_at": soon,
                    "targets": [{"channel_id": channel}]})
                post_id = (await created.json())["post_id"]
                submitted = await client.post(f"/api/social/posts/{post_id}/submit",
                                              headers=ada, json={})
                assert (await submitted.json())["state"] == "scheduled"

                async def state(wanted: str) -> bool:
                    answer = await client.get(f"/api/social/posts/{post_id}", headers=ada)
                    return (await answer.json())["state"] == wanted

                await until(lambda: state("failed"))
                post = await (await client.get(f"/api/social/posts/{post_id}",
                                               headers=ada)).json()
                [target] = post["targets"]
                assert "connected again" in target["error"]
                assert "refresh token is invalid" in target["error"]
                flagged = await (await client.get(f"/api/social/channels/{channel}",
                                                  headers=ada)).json()
                assert flagged["state"] == "needs_reconnect" and flagged["reconnect_url"]
                retry = f"/api/social/posts/{post_id}/targets/{channel}/retry"
                early = await client.post(retry, headers=ada, json={})
                assert early.status == 409 and "connected again" in (await early.json())[
                    "error"]
                other = await client.post(retry, headers=who("other", "p_eve"), json={})
                assert other.status == 404

                assert await _connect_fake(client, session, ada, channel_id=channel) == channel
                again = await client.post(retry, headers=ada, json={})
                assert again.status == 200, await again.text()
                await until(lambda: state("published"))
                assert [p["text"] for p in fake.posts] == ["Out at last"]
                audit = await (await client.get(f"/api/social/posts/{post_id}/audit",
                                                headers=ada)).json()
                actions = [a["action"] for a in audit]
                assert actions[-3:] == ["dispatch.failed", "dispatch.retried",
                                        "dispatch.published"]
                events = {r["name"] for r in await context.database().fetch(
                    "SELECT name FROM events_outbox")}
                assert {"social.post_failed", "social.post_published",
                        "social.channel_needs_reconnect"} <= events
                async def lag_observed() -> bool:  # observed just after the commit
                    return "social_dispatch_lag_seconds_bucket" in (
                        prometheus_client.generate_latest().decode())
                await until(lag_observed)
                exposition = prometheus_client.generate_latest().decode()
                assert "social_dispatch_oldest_due_seconds" in exposition

    run(go())


# -- privacy ---------------------------------------------------------------------------------

def test_a_persons_export_holds_no_token_and_erasure_forgets_them(sqlite_url: str,
                                                                  tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["x"], tmp_path) as h:
            own = await h.channel("x", account="p_ada")
            org = await h.channel("x", account="org")
            mine = await h.scheduled_post([own], "my own words", account="p_ada",
                                          at=time.time() + 3600)
            theirs = await h.scheduled_post([org], "for the label", account="org",
                                            at=time.time() + 3600)
            await h.store.set_rights("org", org, [{"person": "p_ada", "access": "view"}],
                                     time.time())
            await h.store.set_tiers("org", org, [[{"person": "p_ada"}, {"role": "admin"}]],
                                    time.time())
            sealed = await h.store.sealed_tokens("p_ada", own)
            exported = await export_account(h.db, "p_ada")
            text = json.dumps(exported)
            assert "access_token" not in text and "refresh_token" not in text
            assert sealed.access_token not in text
            assert h.channels.box.open(sealed.access_token) not in text
            assert [c["channel_id"] for c in exported["channels"]] == [own]
            assert [p["post_id"] for p in exported["posts"]] == [mine.post_id]
            assert [p["post_id"] for p in exported["elsewhere"]["posts_written"]] == [
                theirs.post_id]
            assert [c["channel_id"] for c in exported["elsewhere"]["channels_connected"]] == [
                org]
            assert exported["elsewhere"]["channels_connected"][0]["access_rights"] == [
                {"person": "p_ada", "access": "view"}]

            pz = Pseudonymiser("p_ada", ("Ada Beats",))
            await erase_account(h.db, h.queue, PUBLISH, pz)
            await erase_account(h.db, h.queue, PUBLISH, pz)   # idempotent
            for table in ("social_channels", "social_posts", "social_post_targets"):
                assert await h.db.fetchval(
                    f"SELECT COUNT(*) FROM {table} WHERE account_id = 'p_ada'") == 0
            job = await h.queue.get("p_ada", mine.targets[0].job_id)
            assert job.state == "cancelled"
            kept = await h.store.post("org", theirs.post_id)
            assert kept is not None and kept.author_id == pz.pseudonym
            kept_channel = await h.store.channel("org", org)
            assert kept_channel.connected_by == pz.pseudonym
            assert kept_channel.rights == ((pz.pseudonym, "view"),)
            assert [(a.kind, a.value) for a in kept_channel.tiers[0]] == [
                ("person", pz.pseudonym), ("role", "admin")]
            assert await h.db.fetchval("SELECT COUNT(*) FROM social_audit WHERE "
                                       "actor = 'p_ada' OR account_id = 'p_ada'") == 0
            assert await h.db.fetchval("SELECT COUNT(*) FROM social_audit WHERE "
                                       "account_id = ?", pz.pseudonym) > 0

    run(go())


@pytest.mark.parametrize("name", ["Admin", "Owner", "Member", "Approver", "Person",
                                  "View", "Approval", "Content"])
def test_erasure_renames_only_the_person_in_workflows_rights_and_audit(
        db_url: str, tmp_path: Path, name: str) -> None:
    """Review 153: a display name that is also a role, an access or a key ("Admin",
    "Person", "View", "Content") renames nothing in any account's workflows, rights or
    audit details but the erased person's own entries."""
    async def go() -> None:
        async with dispatching(db_url, ["x"], tmp_path) as h:
            org = await h.channel("x", account="org")
            other = await h.channel("x", account="other")
            tiers = [[{"person": "p_ada"}, {"role": "admin"}],
                     [{"role": "member"}, {"role": "owner"}, {"role": "approver"}]]
            for account, channel in (("org", org), ("other", other)):
                await h.store.set_tiers(account, channel, tiers, time.time())
                await h.store.set_rights(account, channel, [
                    {"person": "p_ada", "access": "approval"},
                    {"person": "p_bo", "access": "view"}], time.time())
                await h.store.audit(None, account, "post:p1", "post.edited", "p_bo",
                                    {"content": True, "by": "p_ada"})

            pz = Pseudonymiser("p_ada", (name,))
            await erase_account(h.db, h.queue, PUBLISH, pz)
            for account, channel in (("org", org), ("other", other)):
                kept = await h.store.channel(account, channel)
                assert [[(a.kind, a.value) for a in tier] for tier in kept.tiers] == [
                    [("person", pz.pseudonym), ("role", "admin")],
                    [("role", "member"), ("role", "owner"), ("role", "approver")]]
                assert kept.rights == ((pz.pseudonym, "approval"), ("p_bo", "view"))
                [edited] = await h.store.audit_of(account, "post:p1")
                assert edited["detail"] == {"content": True, "by": pz.pseudonym}

    run(go())


class _Recording:
    """A database whose transactions record the SQL they run, in order."""

    def __init__(self, db: Any) -> None:
        self.db, self.sql = db, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    @contextlib.asynccontextmanager
    async def transaction(self) -> Any:
        async with self.db.transaction() as tx:
            yield _RecordingTx(tx, self.sql)


class _RecordingTx:
    def __init__(self, tx: Any, sql: list[str]) -> None:
        self.tx, self.sql = tx, sql

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.tx, name)
        if name not in ("execute", "fetch", "fetchrow", "fetchval"):
            return found

        async def recorded(query: str, *args: Any) -> Any:
            self.sql.append(" ".join(query.split()))
            return await found(query, *args)
        return recorded


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite: one writer
def test_erasure_holds_the_channels_before_it_writes_a_post(db_url: str,
                                                            tmp_path: Path) -> None:
    """Review 154: on PostgreSQL a decision, submission or edit holds its channels
    (FOR UPDATE) and then writes the post; an erasure that wrote the person's posts
    before their channels deadlocked with it. It holds those channels first (SQLite
    writes one transaction at a time, so it cannot deadlock there)."""

    async def go() -> None:
        async with dispatching(db_url, ["x"], tmp_path) as h:
            org = await h.channel("x", account="org")
            await h.scheduled_post([org], "for the label", account="org",
                                   at=time.time() + 3600)
            await h.store.set_tiers("org", org, [[{"person": "p_ada"}]], time.time())
            recording = _Recording(h.db)
            await erase_account(recording, h.queue, PUBLISH,
                                Pseudonymiser("p_ada", ("Ada Beats",)))
            sql = recording.sql

            def first(*words: str) -> int:
                return next(i for i, q in enumerate(sql) if all(w in q for w in words))
            held = first("FROM social_channels", "FOR UPDATE")
            assert held < first("UPDATE social_posts")
            assert held < first("DELETE FROM social_posts")
            assert held < first("UPDATE social_channels")

    run(go())


def test_two_pacers_on_one_redis_share_a_channels_burst_limit(any_redis_url: str) -> None:
    """Server processes pacing through one Redis (or a Redis Cluster) never exceed a
    channel's limit together."""
    redis_url = any_redis_url
    from business.social.pacing import Pacer

    async def go() -> None:
        prefix = f"pace-test-{uuid.uuid4().hex}"
        one = Pacer(channel="3/minute", storage_url=redis_url, key_prefix=prefix)
        two = Pacer(channel="3/minute", storage_url=redis_url, key_prefix=prefix)
        waits = [await (one if i % 2 else two).take("x", "channel-1") for i in range(4)]
        assert waits[:3] == [0.0, 0.0, 0.0]
        assert 0 < waits[3] <= 60
        assert await one.take("x", "channel-2") == 0.0  # another channel's own budget
    asyncio.run(go())


# -- a post waiting for its retry, and refused tokens ---------------------------------------

@pytest.mark.parametrize("network", ["threads", "bluesky"])
def test_a_post_waiting_to_retry_a_lost_answer_is_neither_edited_nor_deleted(
        sqlite_url: str, tmp_path: Path, network: str) -> None:
    publish_path = {"threads": "threads_publish", "bluesky": "createRecord"}[network]

    async def go() -> None:
        async with dispatching(sqlite_url, [network], tmp_path, backoff_base=60.0,
                               backoff_cap=120.0) as h, asyncio.timeout(40):
            channel = await h.channel(network)
            h.fake(network).lose_answers(1, publish_path)
            post = await h.due_post([channel], "Night Drive out now")

            async def waiting() -> bool:
                [target] = (await targets(h, post.post_id)).values()
                return target.error != "" and target.state == "scheduled"

            async with h.worker():
                await until(waiting)
            assert len(h.fake(network).posts) == 1      # it is out, its answer was lost
            assert (await h.store.post("acc", post.post_id)).state == "publishing"
            later = dt.datetime.fromtimestamp(time.time() + 5, dt.UTC).isoformat()
            with pytest.raises(ConflictError, match="being published"):
                await h.posts.edit("acc", post.post_id, "p_ada", {
                    "text": "Night Drive out now", "targets": [{"channel_id": channel}],
                    "publish_at": later})
            with pytest.raises(ConflictError, match="being published"):
                await h.posts.delete("acc", post.post_id, "p_ada")
            stored = await h.store.post("acc", post.post_id)
            assert stored.state == "publishing" and stored.targets[0].attempts == 1
            assert len(h.fake(network).posts) == 1

    run(go())


def test_an_edit_of_a_failed_post_keeps_each_channels_publish_history(
        sqlite_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["x"], tmp_path) as h, asyncio.timeout(40):
            channel = await h.channel("x")
            h.fake("x").fail(400, times=1)
            post = await h.due_post([channel], "Refused")
            async with h.worker():
                await until(lambda: all_ended(h, [post.post_id]))
            [failed] = (await targets(h, post.post_id)).values()
            assert failed.state == "failed" and failed.attempts == 1
            edited = await h.posts.edit("acc", post.post_id, "p_ada", {
                "text": "Accepted", "targets": [{"channel_id": channel}]})
            [target] = edited.targets
            assert (target.attempts, target.first_attempt_at, target.dedupe_key) == (
                failed.attempts, failed.first_attempt_at, failed.dedupe_key)
            [stored] = (await targets(h, post.post_id)).values()
            assert (stored.attempts, stored.first_attempt_at) == (1, failed.first_attempt_at)

    run(go())


class CountsRefreshes:
    """A connector that counts its calls to the token endpoint."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.refreshes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def refresh(self, refresh_token: str) -> Any:
        self.refreshes += 1
        return await self.inner.refresh(refresh_token)


def test_ten_jobs_refused_the_same_token_refresh_it_once(sqlite_url: str,
                                                         tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["x"], tmp_path) as h, asyncio.timeout(40):
            channel_id = await h.channel("x")
            counting = CountsRefreshes(h.connectors["x"])
            h.channels.connectors["x"] = counting
            channel = await h.store.channel("acc", channel_id)
            tokens = await asyncio.gather(*(
                h.dispatcher._fresh_token(channel) for _ in range(10)))  # noqa: SLF001
            assert counting.refreshes == 1
            assert len(set(tokens)) == 1
            assert (await h.store.channel("acc", channel_id)).token_generation == 2

    run(go())
