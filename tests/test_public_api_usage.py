"""API usage per key and day: the histogram, the meter's flushes, the report, the tiers.

The meter and its store run over SQLite and PostgreSQL; the report, the rate-limit
tiers (free 100 and paid 1,000 requests/s, per key) and the flush at shutdown run
through a real server with real keys.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from accounts_helpers import accounts_server
from public_api_helpers import person_with_key, signed_in
from smtp_server import SmtpServer

from database import open_database
from dawserver.keys import ACCOUNTS, PLUGIN_CONTEXT_KEY, RATE_LIMITER
from dawserver.public_api.idempotency import MIGRATIONS
from dawserver.public_api.state import api_state
from dawserver.public_api.usage.histogram import BOUNDS_MS, BUCKETS, bucket_of, quantile
from dawserver.public_api.usage.meter import UsageMeter
from dawserver.public_api.usage.store import UsageStore, day_of

pytestmark = pytest.mark.timeout(120)
V1 = "/api/v1"


# -- the histogram ---------------------------------------------------------------------


def test_quantiles_from_the_histogram_fall_within_one_bucket_of_the_truth() -> None:
    rng = random.Random(7)
    latencies = [rng.lognormvariate(3.0, 1.0) for _ in range(5000)]  # median ~20 ms
    counts = [0] * BUCKETS
    for value in latencies:
        counts[bucket_of(value)] += 1
    for q in (0.5, 0.99):
        truth = float(np.quantile(latencies, q))
        found = quantile(counts, q)
        assert found is not None
        index = bucket_of(truth)
        lower = 0.0 if index == 0 else BOUNDS_MS[index - 1]
        assert lower <= found <= BOUNDS_MS[index], (q, truth, found)


def test_an_empty_histogram_has_no_quantile_and_a_bad_q_is_refused() -> None:
    assert quantile([0] * BUCKETS, 0.5) is None
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        quantile([1] * BUCKETS, 0)


def test_latencies_past_the_last_bound_answer_its_value() -> None:
    counts = [0] * BUCKETS
    counts[bucket_of(60_000)] = 3
    assert bucket_of(60_000) == BUCKETS - 1
    assert quantile(counts, 0.99) == BOUNDS_MS[-1]


# -- the meter and its store -----------------------------------------------------------


def test_two_processes_meters_add_up_and_accounts_stay_apart(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await db.migrate(MIGRATIONS)
            store = UsageStore(db)
            one, two = UsageMeter(store), UsageMeter(store)
            now = time.time()
            for ms in (3, 4, 30):
                one.record("acct_a", "key_1", 200, ms, at=now)
            one.record("acct_a", "key_1", 404, 7, at=now)
            two.record("acct_a", "key_1", 429, 1, at=now)
            two.record("acct_b", "key_9", 200, 1, at=now)
            assert await one.flush() == 4 and await two.flush() == 2
            assert one.pending == 0 and await one.flush() == 0

            day = day_of(now)
            found = await store.days("acct_a", ["key_1", "key_9"], day)
            assert list(found) == [("key_1", day)]  # acct_b's key is not acct_a's
            tally = found[("key_1", day)]
            assert (tally.requests, tally.errors, tally.rejected) == (5, 2, 1)
            assert sum(tally.buckets) == 5 and tally.latency_ms_sum == pytest.approx(45)
            assert tally.buckets[bucket_of(30)] == 1
            assert 2.5 <= (tally.quantile(0.5) or 0) <= 5  # 3 of 5 answers took 1 to 4 ms

            await store.forget_account("acct_a")
            assert await store.days("acct_a", ["key_1"], day) == {}
            assert await store.days("acct_b", ["key_9"], day) != {}

    asyncio.run(go())


def test_a_failed_flush_keeps_its_counts_for_the_next(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'u.sqlite3'}") as db:
            meter = UsageMeter(UsageStore(db))
            meter.record("acct_a", "key_1", 200, 5)
            with pytest.raises(Exception, match="api_usage"):  # no table yet
                await meter.flush()
            meter.record("acct_a", "key_1", 500, 5)
            assert meter.pending == 2
            await db.migrate(MIGRATIONS)
            assert await meter.flush() == 2
            found = await meter.store.days("acct_a", ["key_1"], day_of(time.time()))
            assert [(t.requests, t.errors) for t in found.values()] == [(2, 1)]

    asyncio.run(go())


def test_a_report_asked_for_in_a_loop_flushes_once_a_second(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'u.sqlite3'}") as db:
            await db.migrate(MIGRATIONS)
            meter = UsageMeter(UsageStore(db))
            meter.record("acct_a", "key_1", 200, 5)
            assert await meter.flush(max_age_s=60) == 1
            meter.record("acct_a", "key_1", 200, 5)
            assert await meter.flush(max_age_s=60) == 0  # flushed a moment ago: skipped
            assert meter.pending == 1
            assert await meter.flush() == 1  # the periodic flush always writes

    asyncio.run(go())


def test_the_meter_flushes_once_more_when_cancelled(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'u.sqlite3'}") as db:
            await db.migrate(MIGRATIONS)
            meter = UsageMeter(UsageStore(db), flush_s=3600)
            task = asyncio.create_task(meter.run())
            meter.record("acct_a", "key_1", 200, 5)
            await asyncio.sleep(0.05)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert meter.pending == 0
            found = await meter.store.days("acct_a", ["key_1"], day_of(time.time()))
            assert sum(t.requests for t in found.values()) == 1

    asyncio.run(go())


# -- through the server ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_report_shows_each_key_s_requests_errors_and_latency(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with signed_in(tmp_path, smtp_server) as (
            _, (ada_person, ada), (bob_person, bob)):
        for _ in range(5):
            assert (await ada.call("GET", f"{V1}/projects"))[0] == 200
        assert (await ada.call("GET", f"{V1}/projects/nope-00000000"))[0] == 404
        assert (await bob.call("GET", f"{V1}/projects"))[0] == 200

        status, report, _ = await ada_person.call("GET", f"{V1}/usage?days=7")
        assert status == 200, report
        assert report["account_id"] == ada.person_id
        assert report["latency_buckets_ms"] == list(BOUNDS_MS)
        [key] = report["keys"]
        [today] = key["days"]
        assert today["day"] == day_of(time.time()) == report["until"]
        assert (today["requests"], today["errors"], today["rejected"]) == (6, 1, 0)
        assert 0 < today["p50_ms"] <= today["p99_ms"] and today["mean_ms"] > 0
        assert key["total"]["requests"] == 6 and key["prefix"].startswith("mbk_live_")

        # the key itself may read the report only with account.admin: 403 naming it
        status, problem, _ = await ada.call("GET", f"{V1}/usage")
        assert status == 403 and "account.admin" in problem["detail"]
        status, problem, _ = await ada_person.call("GET", f"{V1}/usage?days=0")
        assert status == 422
        # Bob's report holds Bob's key only; Ada's account answers 404 to him
        _, theirs, _ = await bob_person.call("GET", f"{V1}/usage")
        assert [k["id"] for k in theirs["keys"]] != [key["id"]]
        assert theirs["keys"][0]["total"]["requests"] == 1
        status, _, _ = await bob_person.call("GET", f"{V1}/usage?account={ada.person_id}")
        assert status == 404


async def _make_key(person: object, name: str, test: bool = False) -> str:
    status, made, _ = await person.call(  # type: ignore[attr-defined]
        "POST", f"/accounts/{person.id}/keys",  # type: ignore[attr-defined]
        {"name": name, "scopes": ["account.read"], "test": test})
    assert status == 201, made
    return made["id"]


@pytest.mark.asyncio
async def test_free_and_paid_keys_get_100_and_1000_per_second_each_and_refusals_count(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with signed_in(tmp_path, smtp_server, "ada@example.org") as (
            app, (person, caller)):
        limiter = app[RATE_LIMITER]
        [first] = await app[ACCOUNTS].store.keys_of(person.id)
        # the key's window already holds 100 requests of this second: the next is over
        for _ in range(100):
            await limiter.hit(first.key_id, "free")
        status, problem, headers = await caller.call("GET", f"{V1}/projects")
        assert status == 429 and int(headers["Retry-After"]) >= 1
        assert headers["RateLimit-Policy"] == '"free";q=100;w=1'
        assert "rate limit (free)" in problem["detail"]

        # a second key of the same account has a budget of its own
        status, made, _ = await person.call("POST", f"/accounts/{person.id}/keys",
                                            {"name": "two", "scopes": ["account.read"]})
        assert status == 201
        second = caller.__class__(caller.base_url, made["key"], person.id, caller.http)
        assert (await second.call("GET", f"{V1}/projects"))[0] == 200

        # on the paid plan the same key gets 1,000 a second
        await app[ACCOUNTS].store.update_account(person.id, plan="paid")
        for _ in range(999):
            await limiter.hit(made["id"], "paid")
        status, _, headers = await second.call("GET", f"{V1}/projects")
        assert status == 200 and headers["RateLimit-Policy"] == '"paid";q=1000;w=1'
        status, _, _ = await second.call("GET", f"{V1}/projects")
        assert status == 429

        _, report, _ = await person.call("GET", f"{V1}/usage")
        by_id = {k["id"]: k["total"] for k in report["keys"]}
        assert (by_id[first.key_id]["requests"], by_id[first.key_id]["rejected"]) == (1, 1)
        assert by_id[first.key_id]["errors"] == 1
        assert (by_id[made["id"]]["requests"], by_id[made["id"]]["rejected"]) == (3, 1)


@pytest.mark.asyncio
async def test_counts_not_yet_flushed_are_written_when_the_server_stops(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config), \
            aiohttp.ClientSession() as http:
        person, caller = await person_with_key(config.base_url, smtp_server,
                                               "ada@example.org", http)
        for _ in range(3):
            assert (await caller.call("GET", f"{V1}/projects"))[0] == 200
        assert api_state(app[PLUGIN_CONTEXT_KEY]).usage.pending == 3  # not flushed yet
        [key] = await app[ACCOUNTS].store.keys_of(person.id)
        await person.close()
    async with open_database(config.database_url, config.data_dir) as db:
        found = await UsageStore(db).days(person.id, [key.key_id], day_of(time.time()))
        assert sum(t.requests for t in found.values()) == 3


def test_requests_either_side_of_midnight_utc_count_on_their_own_days(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'u.sqlite3'}") as db:
            await db.migrate(MIGRATIONS)
            meter = UsageMeter(UsageStore(db))
            midnight = 1_790_000_000 - 1_790_000_000 % 86400
            for at in (midnight - 1, midnight, midnight + 1, midnight - 2):
                meter.record("acct_a", "key_1", 200, 5, at=at)
            await meter.flush()
            found = await meter.store.days("acct_a", ["key_1"], day_of(midnight - 1))
            assert {day: t.requests for (_, day), t in found.items()} == {
                day_of(midnight - 1): 2, day_of(midnight): 2}
            assert day_of(midnight - 1) != day_of(midnight)

    asyncio.run(go())
