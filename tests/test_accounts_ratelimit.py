"""accounts.ratelimit: plans counted in memory, on a real Redis and on a real Redis Cluster."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
import pytest_asyncio
from limits import parse

from accounts.ratelimit import PLANS, Decision, RateLimiter

STRATEGIES = ["moving-window", "sliding-window-counter"]
#: The plans' counts in a day's window, for tests that count exactly: on a loaded machine
#: 100 hits to a Redis Cluster can take longer than the free plan's second, and the
#: budget must not refill meanwhile.
DAY_PLANS = {"free": parse("100/day"), "paid": parse("1000/day")}


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def storage_url(request: pytest.FixtureRequest) -> str:
    """Each storage a limiter can count in."""
    if request.param == "memory":
        return "memory://"
    fixture = {"redis": "redis_url", "redis-cluster": "redis_cluster_url"}[request.param]
    return request.getfixturevalue(fixture)


@pytest_asyncio.fixture(params=STRATEGIES)
async def limiter(request: pytest.FixtureRequest, storage_url: str
                  ) -> AsyncIterator[RateLimiter]:
    async with RateLimiter.from_url(storage_url, strategy=request.param) as limiter:
        yield limiter


def fresh_key() -> str:
    """A key no other test (of this run, on the shared Redis) has counted."""
    return f"key-{uuid.uuid4().hex}"


async def burst(limiter: RateLimiter, key: str, hits: int = 200) -> list[Decision]:
    """``hits`` free-plan requests of ``key`` at once: more than its second allows, at
    any pace of the machine."""
    return list(await asyncio.gather(*(limiter.hit(key, "free") for _ in range(hits))))


@pytest.mark.asyncio
async def test_hits_beyond_the_pool_s_connections_wait_and_are_counted(
        storage_url: str) -> None:
    """redis-py's own pool failed the 101st hit in flight (``MaxConnectionsError``)."""
    async with RateLimiter.from_url(storage_url, plans=DAY_PLANS) as limiter:
        decisions = await burst(limiter, fresh_key(), 300)
    assert sum(d.allowed for d in decisions) == 100


@pytest.mark.asyncio
async def test_a_key_is_allowed_its_plan_then_refused_with_retry_after(
        limiter: RateLimiter) -> None:
    key = fresh_key()
    limiter.plans = DAY_PLANS
    decisions = [await limiter.hit(key, "free") for _ in range(100)]
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == list(range(99, -1, -1))
    assert {(d.limit, d.policy, d.retry_after) for d in decisions} == {(100, "free", None)}

    refused = await limiter.hit(key, "free")
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.retry_after is not None and 0 < refused.retry_after <= 86_400


@pytest.mark.asyncio
async def test_a_free_key_over_its_second_is_told_to_retry_within_it(
        limiter: RateLimiter) -> None:
    refused = [d for d in await burst(limiter, fresh_key()) if not d.allowed]
    assert refused
    for decision in refused:  # (how many remain is read after the hit: not checked here,
        # the sliding window counter's count can fall between the two at a boundary)
        assert decision.retry_after is not None and 0 <= decision.retry_after <= 1
        assert decision.headers()["Retry-After"] == "1"


@pytest.mark.asyncio
async def test_a_refused_key_is_allowed_again_after_retry_after(limiter: RateLimiter) -> None:
    key = fresh_key()
    refused = [d.retry_after for d in await burst(limiter, key) if not d.allowed]
    assert refused and None not in refused
    await asyncio.sleep(max(refused) + 0.02)  # type: ignore[type-var]
    assert (await limiter.hit(key, "free")).allowed


@pytest.mark.asyncio
async def test_a_hit_of_several_requests_counts_them_all_or_none(storage_url: str) -> None:
    key = fresh_key()
    async with RateLimiter.from_url(storage_url, plans=DAY_PLANS) as limiter:
        first = await limiter.hit(key, "free", cost=60)
        assert first.allowed and first.remaining == 40
        refused = await limiter.hit(key, "free", cost=41)
        assert not refused.allowed and refused.remaining == 40
        last = await limiter.hit(key, "free", cost=40)
        assert last.allowed and last.remaining == 0
        for never in (0, 101):  # nothing, or more than the plan could ever admit
            with pytest.raises(ValueError, match="from one request to the plan's 100"):
                await limiter.hit(key, "free", cost=never)


def moving_window_url(request: pytest.FixtureRequest, server: str) -> str:
    """The storage ``server`` names: in process, or a fixture's Redis."""
    return "memory://" if server == "memory" else request.getfixturevalue(server)


@pytest.mark.asyncio
@pytest.mark.parametrize("server", ["memory", "redis_url", "redis_cluster_url"])
async def test_a_refused_hit_of_several_requests_waits_until_they_all_fit(
        request: pytest.FixtureRequest, server: str) -> None:
    """``Retry-After`` of a refused cost-k hit is when k fit, not when the window frees
    one (a 3 s window: a stall of the test under load does not empty it)."""
    url, key = moving_window_url(request, server), fresh_key()
    async with RateLimiter.from_url(url) as limiter:
        limiter.plans = {"free": parse("10/3 seconds")}
        assert (await limiter.hit(key, "free", cost=6)).allowed
        await asyncio.sleep(1.0)
        assert (await limiter.hit(key, "free", cost=4)).allowed
        refused = await limiter.hit(key, "free", cost=7)  # the 4 newer must leave too
        assert not refused.allowed and refused.retry_after is not None
        await asyncio.sleep(refused.retry_after + 0.02)
        assert (await limiter.hit(key, "free", cost=7)).allowed


@pytest.mark.asyncio
@pytest.mark.parametrize("server", ["memory", "redis_url", "redis_cluster_url"])
async def test_a_refusal_waits_until_a_retry_fits_with_what_was_counted_before_it(
        request: pytest.FixtureRequest, server: str) -> None:
    """A GraphQL request is counted, then its further fields are refused: its retry
    needs room for both, so ``retry_cost`` sets the wait (and it is then admitted)."""
    url, key = moving_window_url(request, server), fresh_key()
    async with RateLimiter.from_url(url) as limiter:
        limiter.plans = {"free": parse("4/3 seconds")}
        assert (await limiter.hit(key, "free")).allowed  # an earlier request
        await asyncio.sleep(1.0)
        assert (await limiter.hit(key, "free")).allowed  # the request itself
        refused = await limiter.hit(key, "free", cost=3, retry_cost=4)  # its fields
        assert not refused.allowed and refused.retry_after is not None
        await asyncio.sleep(refused.retry_after + 0.02)
        assert (await limiter.hit(key, "free")).allowed  # the retry
        assert (await limiter.hit(key, "free", cost=3, retry_cost=4)).allowed


@pytest.mark.asyncio
async def test_keys_and_plans_have_budgets_of_their_own(limiter: RateLimiter) -> None:
    spent, other = fresh_key(), fresh_key()
    limiter.plans = DAY_PLANS
    for _ in range(100):
        await limiter.hit(spent, "free")
    assert not (await limiter.hit(spent, "free")).allowed
    assert (await limiter.hit(other, "free")).allowed
    paid = await limiter.hit(spent, "paid")
    assert paid.allowed and (paid.limit, paid.remaining, paid.policy) == (1000, 999, "paid")


@pytest.mark.asyncio
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("server", ["redis_url", "redis_cluster_url"])
async def test_two_limiters_on_one_redis_share_the_budget(
        request: pytest.FixtureRequest, server: str, strategy: str) -> None:
    """A day's window (the free plan's is a second): on a loaded machine 100 hits to a
    Redis Cluster can take longer than a second, and the budget must not refill meanwhile."""
    url, key = request.getfixturevalue(server), fresh_key()
    plans = {"daily": parse("100/day")}
    async with (RateLimiter.from_url(url, plans=plans, strategy=strategy) as one,
                RateLimiter.from_url(url, plans=plans, strategy=strategy) as two):
        decisions = [await (one if i % 2 else two).hit(key, "daily") for i in range(100)]
        assert all(d.allowed for d in decisions)
        assert decisions[-1].remaining == 0
        assert not (await one.hit(key, "daily")).allowed
        assert not (await two.hit(key, "daily")).allowed


@pytest.mark.asyncio
@pytest.mark.parametrize("server", ["redis_url", "redis_cluster_url"])
async def test_two_servers_share_the_budget_exactly_though_one_clock_is_minutes_behind(
        request: pytest.FixtureRequest, server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The moving window runs on Redis's clock, not on each server's (a one-minute window,
    so the run's own pace cannot matter)."""
    url, key, real = request.getfixturevalue(server), fresh_key(), time.time
    plans = {"minute": parse("100/minute")}
    async with (RateLimiter.from_url(url, plans=plans) as ours,
                RateLimiter.from_url(url, plans=plans) as behind):
        decisions = []
        for i in range(300):  # the late server's requests first, then both in turn
            late = i < 150 or i % 2
            skew = -300.0 if late else 0.0
            monkeypatch.setattr("accounts.ratelimit.time",
                                SimpleNamespace(time=lambda skew=skew: real() + skew))
            decisions.append(await (behind if late else ours).hit(key, "minute"))
    monkeypatch.undo()
    assert sum(d.allowed for d in decisions) == 100
    refused = [d.retry_after for d in decisions if not d.allowed]
    assert all(r is not None and 0 <= r <= 60 for r in refused), max(refused)


@pytest.mark.asyncio
@pytest.mark.parametrize("server", ["redis_url", "redis_cluster_url"])
async def test_the_one_trip_hit_keeps_the_window_limits_reads(
        request: pytest.FixtureRequest, server: str) -> None:
    """Our moving-window script and ``limits``' own moving window count one list alike."""
    url, key = request.getfixturevalue(server), fresh_key()
    async with RateLimiter.from_url(url, plans=DAY_PLANS) as limiter:
        item = limiter.plan("free")
        for _ in range(40):
            await limiter.hit(key, "free")
        for _ in range(20):  # limits' own acquire, on the same list
            assert await limiter._limiter.hit(item, key)
        stats = await limiter._limiter.get_window_stats(item, key)
        decision = await limiter.hit(key, "free")
        assert stats.remaining == 40
        assert decision.allowed and decision.remaining == 39
        assert 0 < decision.reset_after <= 86_400
        await limiter.clear(key, "free")
        assert (await limiter.hit(key, "free")).remaining == 99


@pytest.mark.asyncio
@pytest.mark.parametrize("server", ["redis_url", "redis_cluster_url"])
async def test_a_redis_that_lost_the_script_is_given_it_again(
        request: pytest.FixtureRequest, server: str) -> None:
    url, key = request.getfixturevalue(server), fresh_key()
    async with RateLimiter.from_url(url, plans=DAY_PLANS) as limiter:
        assert (await limiter.hit(key, "free")).remaining == 99
        await limiter.storage.bridge.get_connection().script_flush()  # as after a restart
        assert (await limiter.hit(key, "free")).remaining == 98


@pytest.mark.parametrize("plan", ["2000000/second", "1/year"])
def test_a_plan_too_large_for_the_one_trip_script_is_refused(redis_url: str, plan: str
                                                             ) -> None:
    with pytest.raises(ValueError, match="too large for Redis"):
        RateLimiter.from_url(redis_url, plans={"huge": parse(plan)})


@pytest.mark.asyncio
async def test_an_in_process_hit_leaves_no_task_on_the_event_loop() -> None:
    """``limits``' asynchronous memory storage started a sweep of every key, a thread hop
    each, after every request: a server's event loop ran it between all its requests."""
    async with RateLimiter.from_url(None) as limiter:
        before = asyncio.all_tasks()
        for n in range(20):
            await limiter.hit(f"{fresh_key()}-{n % 5}", "free")
            await asyncio.sleep(0)
            assert asyncio.all_tasks() == before


@pytest.mark.asyncio
async def test_memory_limiters_count_for_their_own_process_only() -> None:
    key = fresh_key()
    async with (RateLimiter.from_url(None, plans=DAY_PLANS) as one,
                RateLimiter.from_url("memory://", plans=DAY_PLANS) as two):
        for _ in range(100):
            await one.hit(key, "free")
        assert not (await one.hit(key, "free")).allowed
        assert (await two.hit(key, "free")).allowed


@pytest.mark.asyncio
async def test_clear_gives_a_key_its_budget_back(limiter: RateLimiter) -> None:
    key = fresh_key()
    for _ in range(100):
        await limiter.hit(key, "free")
    await limiter.clear(key, "free")
    assert (await limiter.hit(key, "free")).remaining == 99


def test_the_plans_are_free_100_and_paid_1000_per_second() -> None:
    assert {name: (item.amount, item.get_expiry()) for name, item in PLANS.items()} == {
        "free": (100, 1), "paid": (1000, 1)}


def test_headers_of_an_allowed_request_follow_the_structured_field_draft() -> None:
    decision = Decision(allowed=True, limit=100, remaining=42, reset_after=0.3,
                        retry_after=None, policy="free")
    assert decision.headers() == {"RateLimit-Policy": '"free";q=100;w=1',
                                  "RateLimit": '"free";r=42;t=1'}


@pytest.mark.parametrize(("retry_after", "reset", "retry"), [(0.0, 0, 1), (0.2, 1, 1),
                                                              (1.2, 2, 2)])
def test_a_refused_request_says_when_to_retry_in_whole_seconds_at_least_one(
        retry_after: float, reset: int, retry: int) -> None:
    decision = Decision(allowed=False, limit=1000, remaining=0, reset_after=retry_after,
                        retry_after=retry_after, policy="paid")
    assert decision.headers() == {"RateLimit-Policy": '"paid";q=1000;w=1',
                                  "RateLimit": f'"paid";r=0;t={reset}',
                                  "Retry-After": str(retry)}


@pytest.mark.asyncio
async def test_an_unknown_plan_is_refused_with_the_known_ones_named() -> None:
    async with RateLimiter.from_url(None) as limiter:
        with pytest.raises(ValueError, match=r"unknown rate-limit plan 'gold': use one of free, "
                                             r"paid"):
            await limiter.hit(fresh_key(), "gold")


@pytest.mark.parametrize("url", ["memcached://127.0.0.1:11211", "127.0.0.1:6379"])
def test_an_unknown_storage_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="unknown rate-limit storage URL"):
        RateLimiter.from_url(url)


def test_a_key_prefix_with_braces_is_refused() -> None:
    with pytest.raises(ValueError, match="braces"):
        RateLimiter.from_url("redis://127.0.0.1:6379/0", key_prefix="{ratelimit}")


def test_an_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown rate-limit strategy 'token-bucket'"):
        RateLimiter.from_url(None, strategy="token-bucket")  # type: ignore[arg-type]
