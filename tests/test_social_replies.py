"""Answers from the inbox: public replies and direct messages on X and Bluesky spoken to
the fakes as the networks' APIs take them, incoming direct messages polled into the
inbox, and the ``social.reply`` job on SQLite and PostgreSQL sending each answer once
(a 429 waited out, a worker killed mid-call, the last attempt failing with the reason),
marking the item answered."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from social_fakes import CLIENT_ID, CLIENT_SECRET, dispatching, sign_in, social_network, until
from social_helpers import Recorder, social_app, who

from business.social.errors import ConflictError, NotAllowedError, NotFoundError, SocialError
from business.social.fakes import FAKES, FakeNetworks
from business.social.listening import Listening
from business.social.listening_streams import read_stream
from business.social.networks import connector_for
from business.social.replies import REPLY, Replies, check_text
from dawserver.plugin_api import Retry

pytestmark = pytest.mark.timeout(120)


def run(coro: Any, timeout: float = 100.0) -> Any:
    async def bounded() -> Any:
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(bounded())


def test_x_replies_messages_and_reads_direct_messages() -> None:
    async def go() -> None:
        async with social_network("x") as net:
            token = (await sign_in(net)).access_token
            fan = net.fake.say("@adabeats when is the tour?", author="fan1")
            done = await net.connector.reply(token, fan, "Next spring!", "rp_1")
            [mine] = [p for p in net.fake.posts if p["id"] == done.remote_id]
            assert mine["reply_to"] == fan and mine["text"] == "Next spring!"
            assert await net.connector.find_reply(token, "rp_1", fan, "Next spring!") == done
            assert await net.connector.find_reply(token, "rp_1", "999", "Next spring!") is None
            # direct messages: read newest first down to the cursor, ours left out
            first = await read_stream(net.connector, token, "dm", "", "")
            assert (first.items, first.cursor) == ([], "")
            net.fake.message("hi, can I use your beat?", author="fan2")
            net.fake.message("it is for a school project", author="fan2")
            page = await read_stream(net.connector, token, "dm", "", first.cursor)
            assert [f.text for f in page.items] == ["it is for a school project",
                                                    "hi, can I use your beat?"]
            assert {(f.author, f.author_id, f.thread) for f in page.items} == {
                ("fan2", "u-fan2", "u-fan2")}
            since = time.time() - 5
            sent = await net.connector.send_dm(token, "u-fan2", "Sure, credit me")
            assert sent.url.startswith("https://x.com/messages/")
            assert await net.connector.find_dm(token, "u-fan2", "Sure, credit me",
                                               since) == sent
            assert await net.connector.find_dm(token, "u-fan2", "Sure, credit me",
                                               time.time() + 60) is None
            # a message another answer's row already holds is not this answer's
            assert await net.connector.find_dm(token, "u-fan2", "Sure, credit me", since,
                                               skip={sent.remote_id}) is None
            later = await read_stream(net.connector, token, "dm", "", page.cursor)
            assert later.items == [] and int(later.cursor) > int(page.cursor)
    run(go())


def test_bluesky_replies_with_strong_refs_and_chats_through_the_proxy() -> None:
    async def go() -> None:
        async with social_network("bluesky") as net:
            token = (await sign_in(net)).access_token
            root = net.fake.say("new beat tape out", author="fan.bsky.social")
            done = await net.connector.reply(token, root, "thanks for listening", "rp_a")
            record = net.fake.posts[-1]["value"]
            chatter = {p["uri"]: p["cid"] for p in net.fake.chatter}
            assert record["reply"]["parent"] == {"uri": root, "cid": chatter[root]}
            assert record["reply"]["root"] == record["reply"]["parent"]
            # a reply to a reply keeps the thread's root
            await net.connector.reply(token, done.remote_id, "and again", "rp_b")
            second = net.fake.posts[-1]["value"]["reply"]
            assert second["root"]["uri"] == root and second["parent"]["uri"] == done.remote_id
            assert await net.connector.find_reply(token, "rp_a", root, "") == done
            # chat: incoming messages by the log cursor, ours sent through the proxy
            net.fake.message("hey, collab?", author="mc.bsky.social")
            page = await read_stream(net.connector, token, "dm", "", "")
            [found] = page.items
            did = net.fake.did_of("mc.bsky.social")
            assert (found.text, found.thread, found.author_id) == ("hey, collab?", did, did)
            since = time.time() - 5
            sent = await net.connector.send_dm(token, did, "yes! send stems")
            assert await net.connector.find_dm(token, did, "yes! send stems", since) == sent
            assert await net.connector.find_dm(token, did, "yes! send stems", since,
                                               skip={sent.remote_id}) is None
            after = await read_stream(net.connector, token, "dm", "", page.cursor)
            assert after.items == []  # our own message is not an inbox item
            # without the proxy header the PDS does not serve chat
            answer = await net.connector.call(
                "GET", "/xrpc/chat.bsky.convo.getLog", token=token, ok=(501,))
            assert answer.status == 501
    run(go())


def test_answer_text_is_checked_per_network_and_kind() -> None:
    assert check_text("x", "reply", "  hi  ") == "hi"
    with pytest.raises(SocialError, match="280 weighted characters"):
        check_text("x", "reply", "a" * 281)
    assert check_text("x", "dm", "a" * 5000)
    with pytest.raises(SocialError, match="300 characters"):
        check_text("bluesky", "reply", "é" * 301)
    with pytest.raises(SocialError, match="some text"):
        check_text("bluesky", "dm", "   ")


async def _inbox(d: Any, network: str, kind: str) -> tuple[Listening, str]:
    channel = await d.channel(network)
    listening = Listening(d.db, d.channels, d.queue, Recorder(), None)
    query = await listening.add_query("acc", channel, kind, "",
                                      min_count=1000)
    return listening, query["query_id"]


def test_answers_are_sent_once_through_the_job_and_answer_the_item(
        db_url: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with dispatching(db_url, ["x", "bluesky"], tmp_path) as d:
            from jobs import JobWorker

            x, sky = d.fake("x"), d.fake("bluesky")
            mentions, mention_q = await _inbox(d, "x", "mention")
            replies = Replies(d.db, d.channels, d.queue)
            x.say("@adabeats love the new single", author="fan1")
            await mentions.poll("acc", mention_q)
            [item] = await mentions.items("acc")
            assert item["author_id"] == "u-fan1" and item["first_response_at"] is None

            # through the queue's worker, as the server runs it
            async def handle(job: Any) -> Any:
                return await replies.handle(job.job.account_id, job.payload["reply_id"])
            async with JobWorker(d.queue, {REPLY: handle}, poll_s=0.02):
                queued = await replies.send("acc", item["item_id"], "p_ana", "reply",
                                            " Thank you! ")
                assert queued["state"] == "queued" and queued["job_id"]
                async def sent() -> bool:
                    return (await replies.reply("acc", queued["reply_id"]))["state"] == "sent"
                await until(sent)
            [post] = [p for p in x.posts if p["reply_to"] == item["remote_id"]]
            assert post["text"] == "Thank you!"
            answered = await mentions.item("acc", item["item_id"])
            assert answered["responder"] == "p_ana" and answered["response_s"] >= 0
            [thread] = await replies.replies("acc", item["item_id"])
            assert thread["url"].endswith(post["id"]) and thread["attempts"] == 1

            # a 429: the job waits as told; the retry asks X first and sends once
            dm = await replies.send("acc", item["item_id"], "p_bob", "dm", "DM me the link")
            x.fail(429, retry_after=3)
            with pytest.raises(Retry) as caught:
                await replies.handle("acc", dm["reply_id"])
            assert 2 <= caught.value.after <= 5
            assert "429" in (await replies.reply("acc", dm["reply_id"]))["error"]
            assert (await replies.handle("acc", dm["reply_id"]))["outcome"] == "sent"
            assert [e["text"] for e in x.dms] == ["DM me the link"]
            # the first answer kept the response time: a later one changes nothing
            assert (await mentions.item("acc", item["item_id"]))["responder"] == "p_ana"

            # a token that died before its time: refreshed once, the message sent once
            x.expire_tokens()
            fresh = await replies.send("acc", item["item_id"], "p_bob", "dm", "New token")
            assert (await replies.handle("acc", fresh["reply_id"]))["outcome"] == "sent"
            assert [e["text"] for e in x.dms].count("New token") == 1

            # a worker killed after X took the reply: the next attempt finds it
            killed = await replies.send("acc", item["item_id"], "p_ana", "reply", "PS: tour!")
            await d.db.execute("UPDATE social_inbox_replies SET state = 'sending', "
                               "attempts = 1 WHERE reply_id = ?", killed["reply_id"])
            token = await d.channels.access_token("acc", killed["channel_id"])
            await d.connectors["x"].reply(token, item["remote_id"], "PS: tour!", "k")
            done = await replies.handle("acc", killed["reply_id"])
            assert done["outcome"] == "sent"
            assert sum(p["text"] == "PS: tour!" for p in x.posts) == 1
            assert (await replies.handle("acc", killed["reply_id"]))["outcome"] == "sent"

            # the last attempt on a 5xx ends failed with the network's reason
            last = await replies.send("acc", item["item_id"], "p_ana", "reply", "one more")
            x.fail(503)
            failed = await replies.handle("acc", last["reply_id"], last_attempt=True)
            assert failed["outcome"] == "failed"
            row = await replies.reply("acc", last["reply_id"])
            assert row["state"] == "failed" and "503" in row["error"]

            # Bluesky chat: a direct message polled in, answered by direct message only
            chats, chat_q = await _inbox(d, "bluesky", "dm")
            sky.message("can we collab?", author="mc.bsky.social")
            await chats.poll("acc", chat_q)
            [chat] = [i for i in await chats.items("acc") if i["query_id"] == chat_q]
            with pytest.raises(SocialError, match="answered with a direct message"):
                await replies.send("acc", chat["item_id"], "p_ana", "reply", "sure")
            answer = await replies.send("acc", chat["item_id"], "p_ana", "dm", "sure, DM stems")
            assert (await replies.handle("acc", answer["reply_id"]))["outcome"] == "sent"
            [convo] = sky.convos.values()
            assert [m["text"] for m in convo["messages"]] == ["can we collab?",
                                                               "sure, DM stems"]
            assert (await chats.item("acc", chat["item_id"]))["first_response_at"]
            # deleting the stream deletes its items and their answers
            await chats.delete_query("acc", chat_q)
            assert await replies.replies("acc", chat["item_id"]) == []
            # another account's item is not found, and sends nothing
            with pytest.raises(NotFoundError):
                await replies.send("other", item["item_id"], "p_eve", "reply", "hi")
    run(go())


def test_retries_refresh_the_token_and_same_text_messages_are_each_sent(
        db_url: str, tmp_path: Path) -> None:
    """Review 13: a retry's look-up survives an expired token (the answer that went out is
    found, not failed); a second message with the same text is sent, not taken for the
    first; an ``Idempotency-Key`` stores and queues an answer once."""
    async def go() -> None:
        async with dispatching(db_url, ["x"], tmp_path) as d:
            x = d.fake("x")
            mentions, mention_q = await _inbox(d, "x", "mention")
            replies = Replies(d.db, d.channels, d.queue)
            x.say("@adabeats love the new single", author="fan1")
            await mentions.poll("acc", mention_q)
            [item] = await mentions.items("acc")

            # X took the reply, the answer was lost, then the token died: the retry
            # refreshes it, asks X again and finds the reply
            lost = await replies.send("acc", item["item_id"], "p_ana", "reply", "Soon!")
            await d.db.execute("UPDATE social_inbox_replies SET state = 'sending', "
                               "attempts = 1 WHERE reply_id = ?", lost["reply_id"])
            token = await d.channels.access_token("acc", lost["channel_id"])
            await d.connectors["x"].reply(token, item["remote_id"], "Soon!", "k")
            x.expire_tokens()
            assert (await replies.handle("acc", lost["reply_id"]))["outcome"] == "sent"
            assert sum(p["text"] == "Soon!" for p in x.posts) == 1

            # the same words twice: the second message's retry does not take the first
            # (already another answer's) for itself, and sends
            first = await replies.send("acc", item["item_id"], "p_ana", "dm", "Thanks!")
            assert (await replies.handle("acc", first["reply_id"]))["outcome"] == "sent"
            again = await replies.send("acc", item["item_id"], "p_bob", "dm", "Thanks!")
            await d.db.execute("UPDATE social_inbox_replies SET state = 'sending', "
                               "attempts = 1 WHERE reply_id = ?", again["reply_id"])
            assert (await replies.handle("acc", again["reply_id"]))["outcome"] == "sent"
            assert [e["text"] for e in x.dms] == ["Thanks!", "Thanks!"]
            ids = {r["remote_id"] for r in await replies.replies("acc", item["item_id"])
                   if r["kind"] == "dm"}
            assert len(ids) == 2

            # a client retrying its POST with the same Idempotency-Key: stored once
            keyed = await replies.send("acc", item["item_id"], "p_ana", "reply", "Yes!",
                                       key="k-1")
            retried = await replies.send("acc", item["item_id"], "p_ana", "reply", " Yes! ",
                                         key="k-1")
            assert retried == keyed
            thread = await replies.replies("acc", item["item_id"])
            assert [r["text"] for r in thread].count("Yes!") == 1
            jobs = await d.queue.find(account_id="acc", queue=REPLY)
            assert sum(j.payload["reply_id"] == keyed["reply_id"] for j in jobs) == 1
            with pytest.raises(ConflictError, match="another answer"):
                await replies.send("acc", item["item_id"], "p_ana", "reply", "No!", key="k-1")
            with pytest.raises(SocialError, match="Idempotency-Key must be"):
                await replies.send("acc", item["item_id"], "p_ana", "reply", "Yes!",
                                   key="bad key")
            # keys are per account: another account's key is its own (and its item missing)
            with pytest.raises(NotFoundError):
                await replies.send("other", item["item_id"], "p_eve", "reply", "Yes!",
                                   key="k-1")
    run(go())


def test_the_replies_route_takes_an_idempotency_key(tmp_path: Path) -> None:
    """A client retrying ``POST .../replies`` with its ``Idempotency-Key`` gets the first
    answer back (202) and X gets one reply; another answer under the key is 409."""
    async def go() -> None:
        fake = FAKES["x"](client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        async with FakeNetworks([fake]) as server, aiohttp.ClientSession() as session:
            connector = connector_for("x", server.base_url("x"), CLIENT_ID, CLIENT_SECRET,
                                      session)
            url = f"sqlite://{tmp_path / 'social.sqlite3'}"
            async with social_app(tmp_path, url, connector,
                                  settings={"listening": {"poll_s": 3600}}) as (client, _):
                ada = who("acc", "p_ada", "owner")
                start = await client.get("/api/social/channels/connect/x", headers=ada,
                                         allow_redirects=False)
                async with session.get(start.headers["Location"],
                                       allow_redirects=False) as page:
                    back = urlsplit(page.headers["Location"])
                done = await client.get(f"{back.path}?{back.query}", allow_redirects=False)
                channel = done.headers["Location"].split("social_channel=")[1]
                query = await (await client.post("/api/social/listening/queries",
                                                 headers=ada, json={"channel_id": channel,
                                                                    "kind": "mention"})).json()
                fake.say("@adabeats when is the tour?", author="fan1")
                polled = await client.post(
                    f"/api/social/listening/queries/{query['query_id']}/poll", headers=ada,
                    json={})
                assert polled.status == 200, await polled.text()
                [item] = await (await client.get("/api/social/inbox/items",
                                                 headers=ada)).json()
                path = f"/api/social/inbox/items/{item['item_id']}/replies"
                keyed = {**ada, "Idempotency-Key": "answer-1"}
                body = {"kind": "reply", "text": "Next spring!"}
                first = await client.post(path, headers=keyed, json=body)
                again = await client.post(path, headers=keyed, json=body)
                assert (first.status, again.status) == (202, 202), await again.text()
                assert (await first.json())["reply_id"] == (await again.json())["reply_id"]
                other = await client.post(path, headers=keyed,
                                          json={"kind": "reply", "text": "Never!"})
                assert other.status == 409 and "another answer" in (await other.json())["error"]
                bad = await client.post(path, headers={**ada, "Idempotency-Key": "a b"},
                                        json=body)
                assert bad.status == 400 and "Idempotency-Key" in (await bad.json())["error"]

                async def sent() -> bool:
                    thread = await (await client.get(path, headers=ada)).json()
                    return [r["state"] for r in thread] == ["sent"]
                await until(sent)
                assert [p["text"] for p in fake.posts if p["reply_to"]] == ["Next spring!"]
    run(go())


def test_answers_are_refused_to_people_the_channel_limits(db_url: str, tmp_path: Path
                                                          ) -> None:
    """Review 153: an answer goes out as the brand, so per-channel rights hold for it: a
    ``view`` person is refused (403), an ``approval`` person too (409: answers are not
    approved), and nothing is stored or queued; a person the channel names not answers."""
    async def go() -> None:
        async with dispatching(db_url, ["x"], tmp_path) as d:
            x = d.fake("x")
            mentions, mention_q = await _inbox(d, "x", "mention")
            replies = Replies(d.db, d.channels, d.queue)
            x.say("@adabeats love the new single", author="fan1")
            await mentions.poll("acc", mention_q)
            [item] = await mentions.items("acc")
            query = await d.db.fetchrow("SELECT channel_id FROM social_listen_queries "
                                        "WHERE query_id = ?", mention_q)
            await d.channels.store.set_rights("acc", query["channel_id"], [
                {"person": "p_vi", "access": "view"},
                {"person": "p_ap", "access": "approval"}], time.time())
            with pytest.raises(NotAllowedError, match="only view"):
                await replies.send("acc", item["item_id"], "p_vi", "reply", "as the brand")
            with pytest.raises(ConflictError, match="need approval"):
                await replies.send("acc", item["item_id"], "p_ap", "dm", "unapproved")
            assert await replies.replies("acc", item["item_id"]) == []
            sent = await replies.send("acc", item["item_id"], "p_ana", "reply", "Thanks!")
            assert sent["state"] == "queued"

            # Review 154: queued, then its person is downgraded: the job fails it
            await d.channels.store.set_rights("acc", query["channel_id"], [
                {"person": "p_ana", "access": "view"}], time.time())
            failed = await replies.handle("acc", sent["reply_id"])
            assert failed["outcome"] == "failed"
            row = await replies.reply("acc", sent["reply_id"])
            assert row["state"] == "failed"
            assert "p_ana may no longer answer" in row["error"]
            assert not [p for p in x.posts if p["text"] == "Thanks!"]
    run(go())
