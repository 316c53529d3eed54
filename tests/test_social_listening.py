"""Listening and the inbox: streams read from the fakes (paging, cursors, 429), sentiment
honest about its languages, assignment rules, spikes with cooldown, response times, and
the routes (another account's ids 404, a bad regex refused)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from social_fakes import CLIENT_ID, CLIENT_SECRET, sign_in, social_network, until
from social_helpers import Recorder, migrated, social_app, who

from business.social.errors import NotPersonOfAccount, RateLimited, SocialError
from business.social.fakes import FAKES, FakeNetworks
from business.social.inbox import Rule, check_rule, choose
from business.social.listening import SPIKE_EVENT, Listening, is_spike
from business.social.listening_streams import check_stream, read_stream
from business.social.networks import connector_for
from business.social.sentiment import analyse, detect_language
from dawserver.plugin_api import Retry

pytestmark = pytest.mark.timeout(60)


def run(coro: Any, timeout: float = 50.0) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(bounded())


# -- sentiment and language ----------------------------------------------------------------

def test_english_and_four_more_languages_are_scored_the_rest_unknown() -> None:
    good = analyse("I love this track, the drop is amazing and the mix sounds great!")
    bad = analyse("This release is terrible, the vocals are awful and I hate the mix.")
    flat = analyse("The single comes out on Friday at midnight in every store.")
    assert (good.language, good.label) == ("en", "positive") and good.score > 0.5
    assert (bad.language, bad.label) == ("en", "negative") and bad.score < -0.5
    assert flat.label == "neutral"
    scored = {
        ("es", "positive"): "Me encanta esta canción, la producción es increíble de verdad",
        ("es", "negative"): "Este disco es horrible, odio la mezcla y el sonido es terrible",
        ("es", "neutral"): "El single sale el viernes a medianoche en todas las tiendas",
        ("pt", "positive"): "Adorei essa música, a produção está maravilhosa",
        ("pt", "negative"): "Que música horrível, detestei, som péssimo",
        ("pt", "neutral"): "O novo single sai na sexta-feira à meia-noite",
        ("fr", "positive"): "J'adore ce morceau, la production est magnifique",
        ("fr", "negative"): "Cet album est nul, le son est affreux et triste",
        ("fr", "neutral"): "Le single sort vendredi à minuit",
        ("de", "positive"): "Ich liebe diesen Song, wunderschön und großartig",
        ("de", "negative"): "Der Download-Link ist kaputt, furchtbar",
        ("de", "neutral"): "Der Song erscheint am Freitag um Mitternacht",
    }
    for (language, label), text in scored.items():
        got = analyse(text, language)
        assert (got.language, got.label) == (language, label), text
        assert -1.0 <= got.score <= 1.0
    # the language is detected when the network gives none
    assert analyse(scored[("es", "positive")]).language == "es"
    # a word list knows no word it lacks: German "schlechteste" is not rated (documented)
    assert analyse("Das ist das schlechteste Album, das ich je gehört habe",
                   "de").label == "neutral"
    italian = analyse("Adoro questa canzone, la produzione è davvero incredibile", "it")
    assert (italian.language, italian.label, italian.score) == ("it", "unknown", None)
    assert detect_language("@ada #wow https://x.co/a") == "und"
    assert analyse("ok").label == "unknown"
    # a network's language tag is used as given
    assert analyse("love it so much", "en-GB").label == "positive"


# -- rules --------------------------------------------------------------------------------

def test_a_rule_that_cannot_work_is_refused_with_what_to_change() -> None:
    with pytest.raises(SocialError, match="not a valid regular expression"):
        check_rule("keyword", "refund (please", "", ["ana"])
    with pytest.raises(SocialError, match="team"):
        check_rule("round_robin", "", "", [])
    with pytest.raises(SocialError, match="ISO 639-1"):
        check_rule("language", "", "Spanish", ["ana"])
    with pytest.raises(SocialError, match="kind"):
        check_rule("random", "", "", ["ana"])
    check_rule("keyword", r"refund|broken\s+link", "", ["ana"])


def test_first_matching_rule_assigns_round_robin_within_its_team() -> None:
    rules = [Rule("r3", 3, "round_robin", "", "", ("cat", "dan")),
             Rule("r1", 1, "keyword", r"refund|broken\s+link", "", ("ana",)),
             Rule("r2", 2, "language", "", "es", ("bea",), next_index=0)]
    assert choose(rules, "My download link is BROKEN   link", "en") == (rules[1], "ana")
    assert choose(rules, "hola", "es") == (rules[2], "bea")
    assert choose(rules, "nice track", "en") == (rules[0], "cat")
    turned = [Rule("r3", 3, "round_robin", "", "", ("cat", "dan"), next_index=1)]
    assert choose(turned, "nice", "en")[1] == "dan"
    assert choose([], "nice", "en") is None
    # a catastrophic pattern runs out of time instead of stalling the poller
    slow = Rule("s", 0, "keyword", r"(a+)+$", "", ("x",))
    assert choose([slow], "a" * 40 + "!", "en") is None


def test_spike_needs_the_minimum_and_sensitivity_times_the_baseline() -> None:
    assert is_spike(10, 0, 3.0, 10) == (True, 0.0)
    assert not is_spike(9, 0, 3.0, 10)[0]                 # under the minimum
    assert not is_spike(20, 120, 3.0, 10)[0]              # 10 an hour: 20 is only 2x
    assert is_spike(30, 120, 3.0, 10) == (True, 10.0)


# -- streams from the networks ---------------------------------------------------------------

def test_x_search_pages_from_the_cursor_and_mentions_and_429() -> None:
    async def go() -> None:
        async with social_network("x") as net:
            token = (await sign_in(net)).access_token
            for n in range(150):
                net.fake.say(f"night drive remix {n} #NightDrive")
            net.fake.say("unrelated post")
            first = await read_stream(net.connector, token, "keyword", "night drive", "")
            assert len(first.items) == 100 and first.pages == 1   # first poll: newest page
            assert first.items[0].text.startswith("night drive remix 149")
            for n in range(250):
                net.fake.say(f"Night Drive again {n}")
            later = await read_stream(net.connector, token, "keyword", "night drive",
                                      first.cursor)
            assert len(later.items) == 250 and later.pages == 3
            assert {i.remote_id for i in later.items}.isdisjoint(
                {i.remote_id for i in first.items})
            none = await read_stream(net.connector, token, "keyword", "night drive",
                                     later.cursor)
            assert none.items == [] and none.cursor == later.cursor
            tags = await read_stream(net.connector, token, "hashtag", "#nightdrive", "")
            assert tags.items and all("#NightDrive" in i.text for i in tags.items)
            net.fake.say("@adabeats your set was great", author="fan1")
            mentions = await read_stream(net.connector, token, "mention", "", "")
            [mention] = mentions.items
            assert mention.author == "fan1" and mention.url.endswith(mention.remote_id)
            net.fake.fail(429, retry_after=3)
            with pytest.raises(RateLimited) as caught:
                await read_stream(net.connector, token, "keyword", "night", later.cursor)
            assert 2 <= caught.value.retry_after <= 5
    run(go())


def test_bluesky_search_reads_until_the_last_uri_seen_and_mentions() -> None:
    async def go() -> None:
        async with social_network("bluesky") as net:
            token = (await sign_in(net)).access_token
            for n in range(30):
                net.fake.say(f"studio session {n}", lang="en")
            first = await read_stream(net.connector, token, "keyword", "studio", "")
            assert len(first.items) == 30 and first.items[0].text == "studio session 29"
            for n in range(120):
                net.fake.say(f"studio live {n}")
            later = await read_stream(net.connector, token, "keyword", "studio", first.cursor)
            assert len(later.items) == 120 and later.pages == 2
            assert later.items[0].url.startswith("https://bsky.app/profile/fan.bsky.social/")
            net.fake.say("hey @adabeats.bsky.social", mentions=(net.fake.user.id,))
            mentions = await read_stream(net.connector, token, "mention", "", "")
            assert [m.text for m in mentions.items] == ["hey @adabeats.bsky.social"]
    run(go())


def test_streams_are_refused_where_a_network_has_no_search() -> None:
    with pytest.raises(SocialError, match="no search API"):
        check_stream("instagram", "hashtag", "music")
    with pytest.raises(SocialError, match="hashtag"):
        check_stream("x", "hashtag", "#two words")
    assert check_stream("x", "hashtag", "NightDrive") == "#NightDrive"


# -- polling into the inbox, spikes and cooldown --------------------------------------------

class Mail:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    async def __call__(self, to: str, subject: str, paragraphs: list[str], *, mail_id: str,
                       tx: Any = None) -> None:
        self.sent.append((to, subject, mail_id))


class OneChannel:
    """The part of :class:`~business.social.channels.Channels` a poll uses."""

    def __init__(self, connector: Any, token: str, network: str) -> None:
        self.connectors = {network: connector}
        self.token = token
        self.network = network

    async def get(self, account_id: str, channel_id: str) -> Any:
        if (account_id, channel_id) != ("acc", "ch1"):
            from business.social.errors import NotFoundError
            raise NotFoundError(f"there is no channel {channel_id!r}")
        return type("C", (), {"network": self.network})()

    async def access_token(self, account_id: str, channel_id: str) -> str:
        return self.token


def test_poll_stores_once_assigns_alerts_with_cooldown_and_retries_429(db_url: str) -> None:
    async def go() -> None:
        from database import open_database
        async with open_database(db_url) as db:
            await migrated(db)
            async with social_network("x") as net:
                token = (await sign_in(net)).access_token
                clock = [time.time()]
                publish, mail = Recorder(), Mail()
                people = {"acc": ["A@B.example", "cat@b.example"], "other": ["eve@x.example"]}

                async def people_of(account_id: str) -> list[str]:
                    return people.get(account_id, [])
                listening = Listening(db, OneChannel(net.connector, token, "x"), None,
                                      publish, mail, people=people_of, clock=lambda: clock[0])
                # spike mail goes to the account's people only: any other address refused
                for stranger in ("eve@x.example", "a@b.example.evil", "nobody@b.example"):
                    with pytest.raises(NotPersonOfAccount, match="not the address of one"):
                        await listening.add_query("acc", "ch1", "keyword", "drop",
                                                  notify_email=stranger)
                assert await listening.queries("acc") == []
                query = await listening.add_query("acc", "ch1", "keyword", "drop",
                                                  min_count=5, sensitivity=3.0,
                                                  cooldown_s=3600, notify_email="a@b.example")
                with pytest.raises(SocialError, match="at least 3600"):  # no mail storms
                    await listening.add_query("acc", "ch1", "keyword", "drop", cooldown_s=0,
                                              notify_email="a@b.example")
                await listening.add_rule("acc", "keyword", ["ana"], pattern=r"refund")
                await listening.add_rule("acc", "round_robin", ["cat", "dan"], ordinal=5)
                # a quiet baseline: 12 posts spread over the 12 hours before
                for h in range(12):
                    net.fake.say(f"the drop {h} is fine", at=clock[0] - (h + 1.5) * 3600)
                done = await listening.poll("acc", query["query_id"])
                assert (done.new, done.spike) == (12, False)
                for n in range(6):
                    net.fake.say(f"this drop {n} is amazing, love it", at=clock[0] - 60)
                net.fake.say("the drop link is broken, I want a refund", at=clock[0] - 30)
                done = await listening.poll("acc", query["query_id"])
                assert (done.new, done.spike) == (7, True)
                again = await listening.poll("acc", query["query_id"])
                assert (again.new, again.spike) == (0, False)   # stored once
                items = await listening.items("acc")
                assert len(items) == 19
                refund = next(i for i in items if "refund" in i["text"])
                assert refund["assignee"] == "ana" and refund["sentiment"] == "negative"
                loved = [i for i in items if "amazing" in i["text"]]
                assert all(i["sentiment"] == "positive" and i["language"] == "en"
                           for i in loved)
                # round-robin in turn over every item the keyword rule did not take
                others = sorted((i for i in items if i["rule_id"] and i["assignee"] != "ana"),
                                key=lambda i: int(i["remote_id"]))
                assert [i["assignee"] for i in others] == ["cat", "dan"] * 9
                [(name, payload)] = publish.events
                assert name == SPIKE_EVENT and payload["last_hour"] == 7
                assert mail.sent and mail.sent[0][0] == "a@b.example"
                # cooldown: more posts within the hour alert nothing; after it, again
                for n in range(10):
                    net.fake.say(f"drop wave {n}", at=clock[0])
                assert not (await listening.poll("acc", query["query_id"])).spike
                clock[0] += 3601
                for n in range(40):
                    net.fake.say(f"drop wave two {n}", at=clock[0] - 10)
                assert (await listening.poll("acc", query["query_id"])).spike
                assert len(await listening.alerts("acc")) == 2 and len(mail.sent) == 2
                # two polls racing past an ended cooldown (a manual one and the scheduled
                # one) send one alert, not two
                await db.execute("UPDATE social_listen_queries SET last_alert_at = NULL")
                raced = await asyncio.gather(*(listening.check_spike("acc", query["query_id"])
                                               for _ in range(2)))
                assert sorted(raced) == [False, True]
                assert len(await listening.alerts("acc")) == 3 and len(mail.sent) == 3
                # once the person left the account, alerts are kept but mailed no more
                people["acc"] = ["cat@b.example"]
                await db.execute("UPDATE social_listen_queries SET last_alert_at = NULL")
                assert await listening.check_spike("acc", query["query_id"])
                assert len(await listening.alerts("acc")) == 4 and len(mail.sent) == 3
                assert [to for to, _, _ in mail.sent] == ["a@b.example"] * 3
                # response time: the first answer counts, a second changes nothing
                clock[0] += 90
                answered = await listening.respond("acc", refund["item_id"], "ana")
                assert answered["response_s"] == pytest.approx(
                    answered["first_response_at"] - refund["received_at"])
                clock[0] += 500
                second = await listening.respond("acc", refund["item_id"], "dan")
                assert second["responder"] == "ana"
                assert second["first_response_at"] == answered["first_response_at"]
                report = await listening.response_report("acc")
                assert report["answered"] == 1 and report["items"] == len(items) + 50
                ana = next(a for a in report["by_assignee"] if a["assignee"] == "ana")
                assert ana["median_first_response_s"] == answered["response_s"]
                # a 429 ends the job with Retry after the network's wait, cursor kept
                before = await listening.query("acc", query["query_id"])
                net.fake.fail(429, retry_after=7)
                with pytest.raises(Retry) as caught:
                    await listening.poll("acc", query["query_id"])
                assert 6 <= caught.value.after <= 9
                after = await listening.query("acc", query["query_id"])
                assert after["since"] == before["since"] and "429" in after["last_error"]
    run(go())


# -- over HTTP -------------------------------------------------------------------------------

async def _connect_x(client: Any, session: Any, headers: dict[str, str]) -> str:
    start = await client.get("/api/social/channels/connect/x", headers=headers,
                             allow_redirects=False)
    assert start.status == 302, await start.text()
    async with session.get(start.headers["Location"], allow_redirects=False) as page:
        back = urlsplit(page.headers["Location"])
    done = await client.get(f"{back.path}?{back.query}", allow_redirects=False)
    assert done.status == 302, await done.text()
    return done.headers["Location"].split("social_channel=")[1]


def test_routes_inbox_rules_spike_event_and_another_accounts_ids(tmp_path: Path) -> None:
    async def go() -> None:
        fake = FAKES["x"](client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        async with FakeNetworks([fake]) as server, aiohttp.ClientSession() as session:
            connector = connector_for("x", server.base_url("x"), CLIENT_ID, CLIENT_SECRET,
                                      session)
            url = f"sqlite://{tmp_path / 'social.sqlite3'}"
            people = {"acc": ["ada@studio.example"], "other": ["eve@else.example"]}
            async with social_app(tmp_path, url, connector, people=people,
                                  memberships={("acc", "p_ada"): "owner",
                                               ("acc", "p_bob"): "member"},
                                  settings={"listening": {"poll_s": 3600}}) as (client, context):
                ada, eve = who("acc", "p_ada", "owner"), who("other", "p_eve", "owner")
                channel = await _connect_x(client, session, ada)
                # spike mail to another account's person (or anyone else): 422, clearly
                refused = await client.post("/api/social/listening/queries", headers=ada,
                                            json={"channel_id": channel, "kind": "mention",
                                                  "notify_email": "eve@else.example"})
                assert refused.status == 422, await refused.text()
                assert "not the address of one of this account's people" in (
                    await refused.json())["error"]
                bad = await client.post("/api/social/inbox/rules", headers=ada, json={
                    "kind": "keyword", "pattern": "refund (please", "team": ["p_ada"]})
                assert bad.status == 400
                assert "not a valid regular expression" in (await bad.json())["error"]
                # a team names the account's people only: never another account's
                stranger = await client.post("/api/social/inbox/rules", headers=ada, json={
                    "kind": "round_robin", "team": ["p_ada", "p_eve"]})
                assert stranger.status == 422
                assert "'p_eve' is not one of this account's people" in (
                    await stranger.json())["error"]
                rule = await client.post("/api/social/inbox/rules", headers=ada, json={
                    "kind": "round_robin", "team": ["p_ada", "p_bob"]})
                assert rule.status == 201, await rule.text()
                rule_id = (await rule.json())["rule_id"]
                created = await client.post("/api/social/listening/queries", headers=ada,
                                            json={"channel_id": channel, "kind": "mention",
                                                  "min_count": 3,
                                                  "notify_email": "ada@studio.example"})
                assert created.status == 201, await created.text()
                query_id = (await created.json())["query_id"]
                stolen = await client.post("/api/social/listening/queries", headers=eve,
                                           json={"channel_id": channel, "kind": "mention"})
                assert stolen.status == 404
                for n in range(3):
                    fake.say(f"@adabeats track {n} is wonderful", author=f"fan{n}")
                # the scheduler's round queues a social.listen job; the server's worker polls
                from business.social.listening_services import listening
                assert await listening(context).round() == 1

                async def inboxed_and_alerted() -> bool:  # the alert commits after
                    found = await client.get("/api/social/inbox/items", headers=ada)
                    alerted = await client.get("/api/social/listening/alerts", headers=ada)
                    return len(await found.json()) == 3 and len(await alerted.json()) == 1
                await until(inboxed_and_alerted)
                fake.say("@adabeats track 3 is wonderful", author="fan3")
                polled = await client.post(f"/api/social/listening/queries/{query_id}/poll",
                                           headers=ada, json={})
                assert polled.status == 200, await polled.text()
                # the job's poll alerted (3 >= min_count); the cooldown holds this one back
                assert await polled.json() == {"new": 1, "pages": 1, "spike": False}
                items = await (await client.get("/api/social/inbox/items",
                                                headers=ada)).json()
                assert sorted(i["assignee"] for i in items) == ["p_ada", "p_ada",
                                                                "p_bob", "p_bob"]
                item_id = items[0]["item_id"]
                handed = await client.post(f"/api/social/inbox/items/{item_id}/assign",
                                           headers=ada, json={"assignee": "p_eve"})
                assert handed.status == 422  # nor an item to a stranger
                alerts = await (await client.get("/api/social/listening/alerts",
                                                 headers=ada)).json()
                assert len(alerts) == 1 and alerts[0]["last_hour"] == 3
                from dawserver.account_mail import MAIL_ACCOUNT
                from dawserver.account_mail import QUEUE as MAIL_QUEUE
                mails = await context.background.queue.find(account_id=MAIL_ACCOUNT,
                                                            queue=MAIL_QUEUE)
                [mail] = [m for m in mails if "ada@studio.example" in str(m.payload)]
                assert "Spike on x: mentions" in str(mail.payload)
                answered = await client.post(f"/api/social/inbox/items/{item_id}/respond",
                                             headers=ada, json={})
                assert (await answered.json())["responder"] == "p_ada"
                mine = await client.get("/api/social/inbox/items",
                                        params={"open": "true"}, headers=ada)
                assert len(await mine.json()) == 3
                report = await (await client.get("/api/social/inbox/report",
                                                 headers=ada)).json()
                assert report["items"] == 4 and report["answered"] == 1
                # an answer on X: 202, sent by the server's social.reply worker
                sent = await client.post(f"/api/social/inbox/items/{item_id}/replies",
                                         headers=ada, json={"kind": "reply",
                                                            "text": "thanks!"})
                assert sent.status == 202, await sent.text()

                async def replied() -> bool:
                    thread = await (await client.get(
                        f"/api/social/inbox/items/{item_id}/replies", headers=ada)).json()
                    return [r["state"] for r in thread] == ["sent"]
                await until(replied)
                assert [p["text"] for p in fake.posts if p["reply_to"]] == ["thanks!"]
                for body, status in (({"kind": "email", "text": "hi"}, 422),
                                     ({"kind": "reply", "text": "x" * 281}, 400)):
                    refused = await client.post(f"/api/social/inbox/items/{item_id}/replies",
                                                headers=ada, json=body)
                    assert refused.status == status, await refused.text()
                # another account's ids answer 404, like missing ones
                for method, path, body in (
                        ("post", f"/api/social/inbox/items/{item_id}/replies",
                         {"kind": "reply", "text": "hi"}),
                        ("get", f"/api/social/inbox/items/{item_id}/replies", None),
                        ("post", f"/api/social/inbox/items/{item_id}/respond", {}),
                        ("post", f"/api/social/inbox/items/{item_id}/assign",
                         {"assignee": "p_eve"}),
                        ("post", f"/api/social/listening/queries/{query_id}/poll", {}),
                        ("delete", f"/api/social/listening/queries/{query_id}", None),
                        ("delete", f"/api/social/inbox/rules/{rule_id}", None)):
                    answer = await getattr(client, method)(path, headers=eve, json=body)
                    assert answer.status == 404, (path, await answer.text())
                assert await (await client.get("/api/social/inbox/items",
                                               headers=eve)).json() == []
                fake.fail(429, retry_after=4)
                limited = await client.post(f"/api/social/listening/queries/{query_id}/poll",
                                            headers=ada, json={})
                assert limited.status == 429 and int(limited.headers["Retry-After"]) >= 3
                gone = await client.delete(f"/api/social/listening/queries/{query_id}",
                                           headers=ada)
                assert gone.status == 200
                assert await (await client.get("/api/social/inbox/items",
                                               headers=ada)).json() == []
    run(go())


class NoJobs:
    async def find(self, **_: Any) -> list[Any]:
        return []


def test_erasure_forgets_the_persons_listening_and_their_name_in_other_inboxes(
        tmp_path: Path) -> None:
    async def go() -> None:
        from business.social.dispatch import PUBLISH
        from business.social.privacy import erase_account
        from database import open_database
        from dawserver.plugin_api import Pseudonymiser
        async with open_database(f"sqlite://{tmp_path / 's.sqlite3'}") as db:
            await migrated(db)
            listening = Listening(db, None, None, Recorder(), Mail())
            await listening.add_rule("p_ada", "round_robin", ["p_ada"])
            await listening.add_rule("org", "round_robin", ["p_ada", "bob"])
            await db.execute(
                "INSERT INTO social_inbox_items (account_id, item_id, query_id, network, "
                "remote_id, text, author, url, posted_at, received_at, language, sentiment, "
                "assignee, responder) VALUES ('org', 'it1', 'q', 'x', '1', 't', 'a', 'u', 1, "
                "1, 'en', 'neutral', 'p_ada', 'p_ada')")
            pz = Pseudonymiser("p_ada", ("Ada Beats",))
            await erase_account(db, NoJobs(), PUBLISH, pz)
            assert await listening.rules("p_ada") == []
            [rule] = await listening.rules("org")
            assert rule["team"] == [pz.pseudonym, "bob"]
            item = await listening.item("org", "it1")
            assert (item["assignee"], item["responder"]) == (pz.pseudonym, pz.pseudonym)
    run(go())


def test_export_holds_the_persons_listening_and_what_they_handled_elsewhere(
        tmp_path: Path) -> None:
    """A person's export carries their own listening and results, and the inbox items
    and replies of other accounts that name them; nothing of anyone else."""
    async def go() -> None:
        from business.social.privacy import export_account
        from database import open_database
        async with open_database(f"sqlite://{tmp_path / 's.sqlite3'}") as db:
            await migrated(db)
            listening = Listening(db, None, None, Recorder(), Mail())
            await listening.add_rule("p_ada", "keyword", ["p_ada"], pattern="beat")
            await listening.add_rule("org", "round_robin", ["p_ada", "bob"])
            items = ("INSERT INTO social_inbox_items (account_id, item_id, query_id, network, "
                     "remote_id, text, author, url, posted_at, received_at, language, "
                     "sentiment, assignee, responder) VALUES (?, ?, 'q', 'x', ?, ?, 'a', 'u', "
                     "1, 1, 'en', 'neutral', ?, ?)")
            await db.execute(items, "p_ada", "own", "1", "my mention", "", "")
            await db.execute(items, "org", "hers", "2", "for ada", "p_ada", "")
            await db.execute(items, "org", "bobs", "3", "for bob", "bob", "bob")
            await db.execute(
                "INSERT INTO social_short_links (account_id, code, post_id, channel_id, "
                "network, url, created_at) VALUES ('p_ada', 'c1', 'po', 'ch', 'x', 'u', 1)")
            for hour, visitor in ((1, "v1"), (1, "v2"), (2, "v1")):
                await db.execute(
                    "INSERT INTO social_link_clicks (account_id, code, hour, visitor, post_id, "
                    "channel_id, clicked_at) VALUES ('p_ada', 'c1', ?, ?, 'po', 'ch', 1)",
                    hour, visitor)

            exported = await export_account(db, "p_ada")
            own = exported["listening"]
            assert [i["item_id"] for i in own["inbox_items"]] == ["own"]
            assert [(r["kind"], r["team"]) for r in own["inbox_rules"]] == [
                ("keyword", ["p_ada"])]
            [link] = exported["results"]["short_links"]
            assert (link["code"], link["clicks"]) == ("c1", 3)
            assert "v1" not in str(exported["results"])  # visitors are counted, not listed
            handled = exported["elsewhere"]["inbox_items_handled"]
            assert [(i["account_id"], i["item_id"]) for i in handled] == [("org", "hers")]
            assert "for bob" not in str(exported)
    run(go())
