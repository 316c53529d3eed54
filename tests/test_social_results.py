"""Results: metrics collected from the fake networks on a schedule through the job queue,
kept 13 months; UTM short links and their clicks; pre-saves and sales attributed to
posts; the report route and its CSV.

The collection tests run over SQLite and a real PostgreSQL with the networks' fakes on
loopback (``business/social/fakes``) and the platform's job queue and worker.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import itertools
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from social_fakes import CLIENT_ID, CLIENT_SECRET, Dispatching, dispatching, until
from social_helpers import social_app, who

from business.social import links as links_module
from business.social.attribution import PRESAVE_EVENT, SALE_EVENT, Attribution
from business.social.errors import NotFoundError, SocialError
from business.social.fakes import FAKES, FakeNetworks
from business.social.links import Links, TooManyGuesses, check_url, is_bot, tagged_url
from business.social.networks import connector_for
from business.social.results import COLLECT, DAY_S, Collector, Reading, ResultsSettings
from business.social.results import store_readings as store
from business.social.results_services import shortener
from jobs import JobWorker, Retry

pytestmark = pytest.mark.timeout(60)
FAST = {"channel_limit": "1000/second", "network_limit": "1000/second"}
BROWSER = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
           "(KHTML, like Gecko) Version/17.5 Safari/605.1.15")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'social.sqlite3'}"


def run(coro: Any, timeout: float = 50.0) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(bounded())


async def published(h: Dispatching, network: str, count: int, *, account: str = "acc",
                    **fields: Any) -> tuple[str, list[str]]:
    """A channel of ``network`` and ``count`` posts published on it (through dispatch)."""
    channel = await h.channel(network, account)
    posts = [await h.due_post([channel], f"Post {i} on {network}", account=account,
                              **fields) for i in range(count)]
    ids = [p.post_id for p in posts]

    async def done() -> bool:
        found = [await h.store.post(account, i) for i in ids]
        return all(p is not None and p.state == "published" for p in found)

    async with h.worker():
        await until(done)
    return channel, ids


def collector(h: Dispatching, **settings: Any) -> Collector:
    return Collector(h.db, h.channels, h.queue, ResultsSettings(**{**FAST, **settings}))


async def snapshots(h: Dispatching, post_id: str | None = None) -> list[Any]:
    if post_id is None:
        return await h.db.fetch("SELECT * FROM social_metric_snapshots ORDER BY taken_at")
    return await h.db.fetch("SELECT * FROM social_metric_snapshots WHERE post_id = ? "
                            "ORDER BY taken_at", post_id)


# -- collection ----------------------------------------------------------------------------

def test_a_round_queues_a_job_per_channel_and_the_worker_stores_readings(
        db_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(db_url, ["x", "bluesky"], tmp_path) as h:
            x_channel, x_posts = await published(h, "x", 2)
            _, sky_posts = await published(h, "bluesky", 1)
            results = collector(h)
            first = await results.round()
            assert first.queued == 2
            assert (await results.round()).queued == 2  # same hour: the same jobs
            jobs = await h.queue.find(queue=COLLECT, limit=10)
            assert len(jobs) == 2
            worker = JobWorker(h.queue, {COLLECT: results.handle}, poll_s=0.02)
            async with worker:
                async def stored() -> bool:
                    return len(await snapshots(h)) == 3
                await until(stored)
            token = await h.channels.access_token("acc", x_channel)
            post = await h.store.post("acc", x_posts[0])
            live = await h.connectors["x"].metrics(token, post.targets[0].remote_id)
            [row] = await snapshots(h, x_posts[0])
            assert row["network"] == "x" and row["likes"] <= live["likes"]
            assert row["clicks"] is not None and row["reach"] is None  # X has no reach
            [sky] = await snapshots(h, sky_posts[0])
            assert sky["impressions"] is None and sky["likes"] > 0
            schedule = await h.db.fetch("SELECT * FROM social_metric_schedule")
            assert len(schedule) == 3
            assert all(abs(r["next_at"] - r["last_at"] - 3600) < 1 for r in schedule)
            assert (await results.round()).queued == 0  # nothing due for an hour

    run(go())


def test_old_posts_are_read_daily_and_none_past_13_months(sqlite_url: str,
                                                         tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["x"], tmp_path) as h:
            channel, posts = await published(h, "x", 3)
            now = time.time()
            for post_id, age_days in zip(posts, (1, 40, 400), strict=True):
                await h.db.execute("UPDATE social_post_targets SET published_at = ? "
                                   "WHERE post_id = ?", now - age_days * DAY_S, post_id)
            results = await collector(h).collect("acc", channel)
            assert results == {"outcome": "collected", "read": 2}
            rows = {r["post_id"]: r for r in await h.db.fetch(
                "SELECT * FROM social_metric_schedule")}
            assert set(rows) == {posts[0], posts[1]}
            assert abs(rows[posts[0]]["next_at"] - rows[posts[0]]["last_at"] - 3600) < 1
            assert abs(rows[posts[1]]["next_at"] - rows[posts[1]]["last_at"] - DAY_S) < 1

    run(go())


def test_a_network_failing_mid_collection_loses_nothing_and_is_retried(
        db_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(db_url, ["x"], tmp_path) as h:
            channel, posts = await published(h, "x", 3)
            order = await h.db.fetch(
                "SELECT post_id, remote_id FROM social_post_targets "
                "ORDER BY published_at DESC")
            # the second read answers 429 with Retry-After
            h.fake("x").fail(429, times=1, retry_after=9, path=f"/2/tweets/{order[1]['remote_id']}")
            results = collector(h)
            with pytest.raises(Retry) as caught:
                await results.collect("acc", channel)
            assert caught.value.after >= 1
            assert [r["post_id"] for r in await snapshots(h)] == [order[0]["post_id"]]
            assert await results.collect("acc", channel) == {"outcome": "collected",
                                                             "read": 2}
            assert sorted(r["post_id"] for r in await snapshots(h)) == sorted(posts)

    run(go())


def test_a_channel_whose_token_died_is_flagged_and_skipped(sqlite_url: str,
                                                          tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["x"], tmp_path) as h:
            channel, _ = await published(h, "x", 2)
            fake = h.fake("x")
            fake.expire_tokens()
            fake._refresh.clear()  # noqa: SLF001 - the user revoked the app at X
            before = fake.stats.requests
            results = collector(h)
            answer = await results.collect("acc", channel)
            assert answer["outcome"] == "needs_reconnect"
            assert fake.stats.requests - before <= 3  # one read, one refresh: no loop
            stored = await h.store.channel("acc", channel)
            assert stored.state == "needs_reconnect"
            assert "social.channel_needs_reconnect" in [n for n, _ in h.events.events]
            assert (await results.round()).queued == 0
            assert (await results.collect("acc", channel))["outcome"] == "skipped"
            assert await snapshots(h) == []

    run(go())


def test_rows_older_than_13_months_are_purged_by_the_round(db_url: str,
                                                          tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(db_url, ["x"], tmp_path) as h:
            now = time.time()
            rows = [Reading("acc", f"p{days}", "c1", "x", now - days * DAY_S,
                            {"likes": days}, now) for days in (1, 300, 395, 397, 500)]
            await store(h.db, rows)
            await h.db.execute(
                "INSERT INTO social_link_clicks (account_id, code, hour, visitor, post_id, "
                "channel_id, clicked_at) VALUES ('acc', 'c', 1, 'v', 'p', 'c1', ?)",
                now - 400 * DAY_S)
            assert (await collector(h).round()).purged == 2
            kept = sorted(r["post_id"] for r in await snapshots(h))
            assert kept == ["p1", "p300", "p395"]
            assert await h.db.fetchval("SELECT COUNT(*) FROM social_link_clicks") == 0

    run(go())


# -- short links ---------------------------------------------------------------------------

def test_utm_parameters_keep_the_query_and_never_overwrite_utm() -> None:
    url = "https://ada.example/release?ref=abc&utm_source=newsletter&x=%20y#tracks"
    tagged = tagged_url(url, network="x", campaign="night-drive")
    parts = urlsplit(tagged)
    assert parts.fragment == "tracks" and parts.path == "/release"
    assert parts.query.startswith("ref=abc&utm_source=newsletter&x=%20y&")
    query = parse_qs(parts.query)
    assert query["utm_source"] == ["newsletter"] and query["utm_medium"] == ["social"]
    assert query["utm_campaign"] == ["night-drive"] and query["ref"] == ["abc"]
    assert tagged_url("https://a.example", network="bluesky", campaign="p1") == (
        "https://a.example?utm_source=bluesky&utm_medium=social&utm_campaign=p1")


def test_bots_are_told_apart_by_user_agent() -> None:
    for bot in ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
                "Twitterbot/1.0", "curl/8.5.0", "", "Mozilla/5.0 (compatible; Googlebot/2.1; "
                "+http://www.google.com/bot.html)"):
        assert is_bot(bot), bot
    assert not is_bot(BROWSER)


def test_clicks_count_once_per_visitor_and_hour_and_never_store_the_address(
        db_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(db_url, ["x"], tmp_path) as h:
            clock = [1_800_000_000.0]
            links = Links(h.db, b"salt" * 8, "https://studio.example",
                          clock=lambda: clock[0])
            short = await links.shorten("acc", "p1", "c1", "x",
                                        "https://ada.example/a?b=1", "drive")
            again = await links.shorten("acc", "p1", "c1", "x", "https://ada.example/a?b=1")
            assert short == again and short.startswith("https://studio.example/s/")
            code = short.rsplit("/", 1)[1]
            assert len(code) == 10 and code.isalnum()
            other = await links.shorten("acc", "p1", "c2", "bluesky", "https://ada.example/a")
            assert other != short
            counted = [(await links.click(code, "203.0.113.9", agent))[1] for agent in (
                BROWSER, BROWSER, "Twitterbot/1.0", BROWSER + " Firefox")]
            assert counted == [True, False, False, True]
            clock[0] += 3600
            link, fresh = await links.click(code, "203.0.113.9", BROWSER)
            # the second shorten (no campaign) is the post's edit: the post id stands in
            assert fresh and link.target == ("https://ada.example/a?b=1&utm_source=x&"
                                             "utm_medium=social&utm_campaign=p1")
            rows = await h.db.fetch("SELECT * FROM social_link_clicks")
            assert len(rows) == 3
            assert all("203.0.113.9" not in str(dict(r)) for r in rows)

    run(go())


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "ftp://a.example/x",
    "//evil.example/x", "https://bank.example@evil.example/", "https://u:p@a.example/",
    "https://evil.example\\@bank.example/", "https://a.example/x\r\nSet-Cookie: a=b",
    "https://a.exa mple/", "https:///nohost", "https://a.example/\x00"])
def test_only_plain_http_destinations_make_short_links(url: str) -> None:
    with pytest.raises(SocialError):
        check_url(url)
    assert check_url(" https://ada.example/a?b=1#c ") == "https://ada.example/a?b=1#c"


def test_a_link_leads_only_where_its_owner_set_and_guesses_are_cut_off(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def go() -> None:
        async with dispatching(db_url, ["x"], tmp_path) as h:
            links = Links(h.db, b"salt" * 8, "https://studio.example", misses_per_minute=3)
            mine = (await links.shorten("ada", "p1", "c1", "x", "https://ada.example/a")
                    ).rsplit("/", 1)[1]
            # a fresh code held by another account is never reused: the next one is drawn
            drawn = itertools.chain([mine, "Zz9Zz9Zz9Z"], iter(links_module.new_code, None))
            monkeypatch.setattr(links_module, "new_code", lambda: next(drawn))
            theirs = (await links.shorten("eve", "p9", "c9", "x", "https://eve.example/")
                      ).rsplit("/", 1)[1]
            assert theirs == "Zz9Zz9Zz9Z"
            link, _ = await links.click(mine, "198.51.100.1", BROWSER)
            assert link.account_id == "ada"
            assert link.target.startswith("https://ada.example/a?utm_source=x")
            # a code two rows share (written around shorten) leads nowhere
            await h.db.execute(
                "INSERT INTO social_short_links (account_id, code, post_id, channel_id, "
                "network, url, campaign, created_at) VALUES ('eve', ?, 'p8', 'c8', 'x', "
                "'https://eve.example/phish', '', 0)", mine)
            with pytest.raises(NotFoundError):
                await links.click(mine, "198.51.100.1", BROWSER)
            # a stored destination that fails the check is never followed
            await h.db.execute("UPDATE social_short_links SET url = 'javascript:alert(1)' "
                               "WHERE code = ?", theirs)
            with pytest.raises(NotFoundError):
                await links.click(theirs, "198.51.100.1", BROWSER)
            # three misses from one address: then every code answers TooManyGuesses there
            fresh = (await links.shorten("ada", "p2", "c1", "x", "https://ada.example/b")
                     ).rsplit("/", 1)[1]
            with pytest.raises(NotFoundError):
                await links.click("AAAAAAAAAA", "198.51.100.1", BROWSER)
            with pytest.raises(TooManyGuesses) as refused:
                await links.click(fresh, "198.51.100.1", BROWSER)
            assert refused.value.retry_after >= 1
            with pytest.raises(TooManyGuesses):
                await links.click("not a code", "198.51.100.1", BROWSER)
            link, _ = await links.click(fresh, "203.0.113.7", BROWSER)
            assert link.url == "https://ada.example/b"
            # IPv6: one /64 is one guesser, however many addresses it rotates through
            for n in range(3):
                with pytest.raises(NotFoundError):
                    await links.click("AAAAAAAAAA", f"2001:db8:1:2::{n + 1}", BROWSER)
            with pytest.raises(TooManyGuesses):
                await links.click(fresh, "2001:db8:1:2:ffff::9", BROWSER)
            link, _ = await links.click(fresh, "2001:db8:1:3::1", BROWSER)  # another /64
            assert link.url == "https://ada.example/b"

    run(go())


def test_dispatch_publishes_the_short_link_in_place_of_the_link(sqlite_url: str,
                                                               tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["x"], tmp_path) as h:
            links = Links(h.db, b"k" * 32, "https://studio.example")
            h.dispatcher.shorten = shortener(links)
            _, [post_id] = await published(h, "x", 1, link="https://ada.example/drive?s=1",
                                           campaign="drive")
            [sent] = h.fake("x").posts
            assert "https://studio.example/s/" in sent["text"]
            assert "ada.example" not in sent["text"]
            code = sent["text"].rsplit("/s/", 1)[1].split()[0]
            link = await links.resolve(code)
            assert link.post_id == post_id and link.url == "https://ada.example/drive?s=1"
            assert link.target.endswith("s=1&utm_source=x&utm_medium=social&"
                                        "utm_campaign=drive")

    run(go())


# -- attribution ---------------------------------------------------------------------------

def test_presaves_and_sales_with_a_code_or_campaign_are_attributed_once(
        sqlite_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["x"], tmp_path) as h:
            channel, [post_id] = await published(h, "x", 1, campaign="drive")
            _, [elsewhere] = await published(h, "x", 1, account="other")
            links = Links(h.db, b"k" * 32)
            code = (await links.shorten("acc", post_id, channel, "x",
                                        "https://a.example")).rsplit("/", 1)[1]
            other_code = (await links.shorten("other", elsewhere, "c9", "x",
                                              "https://a.example")).rsplit("/", 1)[1]
            attribution = Attribution(h.db, links)
            presave = {"account_id": "acc", "event_id": "e1", "ref": code,
                       "campaign_id": "k", "slug": "s", "service": "spotify"}
            assert await attribution.observe(PRESAVE_EVENT, presave)
            assert await attribution.observe(PRESAVE_EVENT, presave)  # redelivered
            sale = {"account_id": "acc", "event_id": "e2", "utm_campaign": post_id,
                    "order_id": "o1", "amount_cents": 1299, "currency": "eur"}
            assert await attribution.observe(SALE_EVENT, sale)
            by_campaign = {"account_id": "acc", "event_id": "e3", "utm_campaign": "drive",
                           "utm_source": "x", "order_id": "o2", "amount_cents": 500,
                           "currency": "EUR"}
            assert await attribution.observe(SALE_EVENT, by_campaign)
            # another account's code or post id attributes nothing
            assert not await attribution.observe(PRESAVE_EVENT, {
                "account_id": "acc", "event_id": "e4", "ref": other_code})
            assert not await attribution.observe(SALE_EVENT, {
                "account_id": "acc", "event_id": "e5", "utm_campaign": elsewhere})
            assert not await attribution.observe("presave.release_day", {
                "account_id": "acc", "event_id": "e6", "ref": code})
            rows = await h.db.fetch("SELECT * FROM social_attributions ORDER BY event_id")
            assert [(r["event_id"], r["kind"], r["post_id"], r["amount_cents"],
                     r["currency"]) for r in rows] == [
                ("e1", "presave", post_id, 0, ""), ("e2", "sale", post_id, 1299, "EUR"),
                ("e3", "sale", post_id, 500, "EUR")]
            assert rows[0]["channel_id"] == channel and rows[0]["code"] == code

    run(go())


# -- the report over HTTP ------------------------------------------------------------------

async def _connect_x(client: Any, session: Any, headers: dict[str, str]) -> str:
    start = await client.get("/api/social/channels/connect/x", headers=headers,
                             allow_redirects=False)
    assert start.status == 302, await start.text()
    async with session.get(start.headers["Location"], allow_redirects=False) as page:
        back = urlsplit(page.headers["Location"])
    done = await client.get(f"{back.path}?{back.query}", allow_redirects=False)
    assert done.status == 302, await done.text()
    return done.headers["Location"].split("social_channel=")[1]


def test_the_report_route_csv_short_link_and_another_accounts_ids(
        sqlite_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        fake = FAKES["x"](client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        async with FakeNetworks([fake]) as server, aiohttp.ClientSession() as session:
            connector = connector_for("x", server.base_url("x"), CLIENT_ID, CLIENT_SECRET,
                                      session)
            settings = {"results": {"short_links": True, "link_misses_per_minute": 3, **FAST},
                        "dispatch": {"backoff_base": 0.05, "backoff_cap": 0.2}}
            async with social_app(tmp_path, sqlite_url, connector,
                                  settings=settings) as (client, context):
                ada = who("acc", "p_ada", "owner")
                channel = await _connect_x(client, session, ada)
                soon = dt.datetime.fromtimestamp(time.time() + 0.5, dt.UTC).isoformat()
                created = await client.post("/api/social/posts", headers=ada, json={
                    "text": "Night Drive", "publish_at": soon, "campaign": "=cmd|' /C calc'",
                    "link": "https://ada.example/drive?from=social",
                    "targets": [{"channel_id": channel}]})
                assert created.status == 201, await created.text()
                post_id = (await created.json())["post_id"]
                await client.post(f"/api/social/posts/{post_id}/submit", headers=ada,
                                  json={})

                async def is_published() -> bool:
                    answer = await client.get(f"/api/social/posts/{post_id}", headers=ada)
                    return (await answer.json())["state"] == "published"

                await until(is_published)
                [sent] = fake.posts
                path = "/s/" + sent["text"].rsplit("/s/", 1)[1].split()[0]
                follow = await client.get(path, allow_redirects=False,
                                          headers={"User-Agent": BROWSER})
                assert follow.status == 302
                assert follow.headers["Location"].startswith(
                    "https://ada.example/drive?from=social&utm_source=x&utm_medium=social")
                bot = await client.get(path, allow_redirects=False,
                                       headers={"User-Agent": "Twitterbot/1.0"})
                assert bot.status == 302
                missing = await client.get("/s/nosuchcode", allow_redirects=False)
                assert missing.status == 404
                # guessing codes is cut off (settings: 3 misses a minute), valid ones too
                for guess in ("AAAAAAAAAA", "BBBBBBBBBB"):
                    assert (await client.get(f"/s/{guess}", allow_redirects=False)
                            ).status == 404
                guessed = await client.get(path, allow_redirects=False)
                assert guessed.status == 429 and int(guessed.headers["Retry-After"]) >= 1

                from business.social.results_services import results
                module = results(context)
                assert (await module.collector.round()).queued == 1

                async def read() -> bool:
                    found = await client.get(f"/api/social/posts/{post_id}/results",
                                             headers=ada)
                    return found.status == 200 and len(await found.json()) == 1
                await until(read)
                await module.attribution.observe(SALE_EVENT, {
                    "account_id": "acc", "event_id": "s1", "ref": path[3:],
                    "order_id": "o1", "amount_cents": 990, "currency": "USD"})

                window = {"from": "2020-01-01T00:00:00+00:00",
                          "to": dt.datetime.now(dt.UTC).isoformat()[:19] + "+00:00"}
                window["to"] = dt.datetime.fromtimestamp(time.time() + 60,
                                                         dt.UTC).isoformat()
                window["from"] = dt.datetime.fromtimestamp(time.time() - 3600,
                                                           dt.UTC).isoformat()
                answer = await client.get("/api/social/results", params=window, headers=ada)
                assert answer.status == 200, await answer.text()
                report = await answer.json()
                [post] = report["posts"]
                assert post["post_id"] == post_id and post["link_clicks"] == 1
                assert post["sales"] == 1 and post["revenue_cents"] == {"USD": 990}
                assert post["metrics"]["likes"] > 0 and post["metrics"]["reach"] is None
                assert post["conversion_rate"] == 1.0
                assert report["totals"]["posts"] == 1
                assert report["totals"]["metrics"] == post["metrics"]
                for params, count in (({"channel": channel}, 1), ({"campaign": "other"}, 0),
                                      ({"campaign": "=cmd|' /C calc'"}, 1)):
                    filtered = await client.get("/api/social/results", headers=ada,
                                                params={**window, **params})
                    assert len((await filtered.json())["posts"]) == count, params

                csv_answer = await client.get("/api/social/results",
                                              params={**window, "format": "csv"},
                                              headers=ada)
                assert csv_answer.status == 200
                assert csv_answer.headers["Content-Type"].startswith("text/csv")
                rows = list(csv.reader(io.StringIO(await csv_answer.text())))
                assert rows[1][3] == "'=cmd|' /C calc'"  # formula-safe
                assert rows[1][0] == post_id and rows[-1][0] == "total"

                eve = who("other", "p_eve", "owner")
                assert (await client.get(f"/api/social/posts/{post_id}/results",
                                         headers=eve)).status == 404
                assert (await client.get("/api/social/results",
                                         params={**window, "channel": channel},
                                         headers=eve)).status == 404
                theirs = await client.get("/api/social/results", params=window, headers=eve)
                assert (await theirs.json())["posts"] == []
                anonymous = await client.get("/api/social/results", params=window)
                assert anonymous.status == 401
                backwards = await client.get("/api/social/results", headers=ada, params={
                    "from": window["to"], "to": window["from"]})
                assert backwards.status == 400

    run(go())


def test_a_presave_from_a_short_link_is_attributed_through_the_event_bus(
        sqlite_url: str, tmp_path: Path) -> None:
    """Distribution publishes ``presave.saved`` for a referred fan; social hears it."""
    async def go() -> None:
        from business.distribution.services import services as distribution

        async with social_app(tmp_path, sqlite_url) as (client, context):
            db = context.database()
            now = time.time()
            await db.execute(
                "INSERT INTO social_posts (account_id, post_id, author_id, text, campaign, "
                "state, created_at, updated_at) VALUES ('acc', 'p1', 'p_ada', 'Out', 'drive', "
                "'published', ?, ?)", now, now)
            presaves = distribution(context).presaves
            data = await presaves.create("acc", "rel-1", "Night Drive", "Ada", "2099-01-01")
            page = await client.get(f"/presave/{data['slug']}",
                                    params={"utm_campaign": "p1", "utm_source": "x"})
            assert "name='utm_campaign' value='p1'" in await page.text()
            saved = await client.post(f"/api/presave/{data['slug']}", data={
                "fan": "fan@example.com", "service": "spotify", "utm_campaign": "p1",
                "utm_source": "x"})
            assert saved.status == 200, await saved.text()
            await client.post(f"/api/presave/{data['slug']}", json={
                "fan": "plain@example.com", "service": "spotify"})  # no referral

            async def attributed() -> bool:
                return await db.fetchval("SELECT COUNT(*) FROM social_attributions") == 1
            await until(attributed)
            row = await db.fetchrow("SELECT * FROM social_attributions")
            assert (row["kind"], row["post_id"]) == ("presave", "p1")
            events = [r["name"] for r in await db.fetch("SELECT name FROM events_outbox")]
            assert events.count("presave.saved") == 1

    run(go())


def test_metric_reads_are_paced_per_channel(sqlite_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(sqlite_url, ["bluesky"], tmp_path) as h:
            channel, _ = await published(h, "bluesky", 3)
            slow = collector(h, channel_limit="2/minute")
            with pytest.raises(Retry) as caught:
                await slow.collect("acc", channel)
            assert caught.value.after > 5  # a minute's window: not slept through
            assert len(await snapshots(h)) == 2  # the two reads allowed were stored
            other, _ = await published(h, "bluesky", 3, account="other")
            quick = collector(h, channel_limit="1/second")
            started = time.monotonic()
            # short waits are slept through: all three read in one job, a second apart
            assert (await quick.collect("other", other))["read"] == 3
            assert time.monotonic() - started >= 1.5

    run(go())
