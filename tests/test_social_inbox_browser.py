"""The inbox section of /social in real headless Debian Chromium, against ``dawserver serve``
and the fake X: a mention stream polled into the inbox shows each item's sentiment (English
scored, Italian "not scored"), its assignee by a round-robin rule and the spike alert;
marking an item answered stores its first response time and shows it; streams are added
from the page's form (a spike address outside the account refused) and stopped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from loopback import free_port
from pagebrowser import (
    BROWSER_TEST,
    EMAIL,
    plugin_site,
    screenshot,
    served_in_a_thread,
)
from social_browser import SocialPerson

from business.social.fakes import FAKES, FakeNetworks

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(240)]

CLIENT_ID, CLIENT_SECRET = "studio-client", "studio-secret"


@pytest.fixture
def site(tmp_path: Any) -> Iterator[tuple[Any, Any, Any]]:
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    fake = FAKES["x"](client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with served_in_a_thread(FakeNetworks([fake])) as networks, plugin_site(
            data, port, {"social": {
                "base_url": f"http://127.0.0.1:{port}",
                "networks": {"x": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                   "base_url": networks.base_url("x"), "timeout_s": 10.0}},
                "listening": {"poll_s": 3600}}}) as (server, browser):
        yield server, fake, browser


def test_the_inbox_shows_sentiment_assignees_alerts_and_response_times(
        site: tuple[Any, Any, Any]) -> None:
    server, fake, browser = site
    ada = SocialPerson(browser, server.url, viewport={"width": 1400, "height": 1000})
    try:
        ada.sign_in_by_api()
        channel = ada.connect("x")
        ada_id = ada.call("GET", "/me")["person"]["id"]
        # a team names the account's people (her own account: her alone)
        ada.call("POST", "/api/social/inbox/rules", {"kind": "round_robin", "team": [ada_id]})
        query = ada.call("POST", "/api/social/listening/queries",
                         {"channel_id": channel, "kind": "mention", "min_count": 3})
        fake.say("@adabeats this remix is wonderful, I love it", author="fan1")
        fake.say("@adabeats the download link is broken and terrible", author="fan2")
        fake.say("@adabeats adoro questa canzone, è incredibile", author="fan3", lang="it")
        polled = ada.call("POST", f"/api/social/listening/queries/{query['query_id']}/poll",
                          {})
        assert polled == {"new": 3, "pages": 1, "spike": True}

        page = ada.open()
        rows = page.locator("#inbox-table tbody tr")
        rows.first.wait_for()
        assert rows.count() == 3
        loved = page.locator("tr", has_text="wonderful")
        assert "positive" in loved.locator("td.sentiment").inner_text()
        assert "negative" in page.locator("tr", has_text="broken").locator(
            "td.sentiment").inner_text()
        assert "not scored (it)" in page.locator("tr", has_text="adoro").locator(
            "td.sentiment").inner_text()
        assignees = [rows.nth(i).locator("td.assignee").inner_text() for i in range(3)]
        assert assignees == [ada_id] * 3
        assert "3 posts in an hour" in page.locator("#listening-alerts").inner_text()
        assert "0 of 3 answered" in page.locator("#inbox-report").inner_text()

        loved.get_by_role("button", name="Mark answered").click()
        page.locator("#inbox-report", has_text="1 of 3 answered").wait_for()
        assert loved.locator("td.response").inner_text().endswith(" s")
        [item] = [i for i in ada.call("GET", "/api/social/inbox/items")
                  if "wonderful" in i["text"]]
        assert item["first_response_at"] is not None and item["response_s"] >= 0
        page.get_by_label("Only items without a response").check()
        page.locator("#inbox-table tbody tr", has_text="wonderful").wait_for(state="detached")
        assert page.locator("#inbox-table tbody tr").count() == 2
        screenshot(page, "social-inbox")
        assert ada.errors(refusals=0) == []
    finally:
        ada.close()


def test_an_item_is_answered_by_reply_and_a_direct_message_by_message(
        site: tuple[Any, Any, Any]) -> None:
    server, fake, browser = site
    ada = SocialPerson(browser, server.url, viewport={"width": 1400, "height": 1000})
    try:
        ada.sign_in_by_api()
        channel = ada.connect("x")
        mentions = ada.call("POST", "/api/social/listening/queries",
                            {"channel_id": channel, "kind": "mention"})
        messages = ada.call("POST", "/api/social/listening/queries",
                            {"channel_id": channel, "kind": "dm"})
        mention = fake.say("@adabeats when is the next live stream?", author="fan1")
        fake.message("could you send me the stems of track two?", author="fan2")
        for query in (mentions, messages):
            ada.call("POST", f"/api/social/listening/queries/{query['query_id']}/poll", {})

        page = ada.open()
        asked = page.locator("tr[data-item]", has_text="live stream")
        asked.wait_for()
        asked.get_by_role("button", name="Answer", exact=True).click()
        panel = page.locator("[data-answers]").first
        panel.get_by_label("Answer as", exact=True).select_option("reply")
        panel.get_by_label("Answer", exact=True).fill("Friday at 8, see you there!")
        panel.get_by_role("button", name="Send").click()
        panel.locator("li.answer.sent", has_text="Friday at 8").wait_for()
        [reply] = [p for p in fake.posts if p["reply_to"] == mention]
        assert reply["text"] == "Friday at 8, see you there!"
        page.locator("#inbox-report", has_text="1 of 2 answered").wait_for()

        dm = page.locator("tr[data-item]", has_text="stems of track two")
        dm.get_by_role("button", name="Answer", exact=True).click()
        chat = page.locator("[data-answers]", has_text="stems of track two")
        options = chat.get_by_label("Answer as", exact=True).locator("option").all_inner_texts()
        assert options == ["Direct message"]  # a message is answered privately
        chat.get_by_label("Answer", exact=True).fill("Sent them by mail")
        chat.get_by_role("button", name="Send").click()
        chat.locator("li.answer.sent", has_text="Sent them by mail").wait_for()
        assert [e["text"] for e in fake.dms if e["sender_id"] == fake.user.id] == [
            "Sent them by mail"]
        page.locator("#inbox-report", has_text="2 of 2 answered").wait_for()
        screenshot(page, "social-inbox-answers")
        assert ada.errors(refusals=0) == []
    finally:
        ada.close()


def test_streams_are_added_from_the_form_and_spike_mail_only_to_the_accounts_people(
        site: tuple[Any, Any, Any]) -> None:
    server, fake, browser = site
    ada = SocialPerson(browser, server.url, viewport={"width": 1400, "height": 1000})
    try:
        ada.sign_in_by_api()
        channel = ada.connect("x")
        page = ada.open()
        form = page.locator("#stream-form")
        form.get_by_label("Channel").locator(f"option[value='{channel}']").wait_for(
            state="attached")
        # the list is drawn from its own request: wait for it, as a loaded machine is slow
        page.locator("#listening-streams").get_by_text("No streams yet.").wait_for()
        form.get_by_label("Stream").select_option("hashtag")
        form.get_by_label("Term").fill("#newsingle")
        form.get_by_label("Spike at (posts an hour)").fill("5")
        # a stranger's address: the server refuses it (422) and the page says why
        form.get_by_label("Mail spikes to").fill("stranger@else.example")
        form.get_by_role("button", name="Add stream").click()
        page.get_by_role("alert").filter(
            has_text="not the address of one of this account's people").wait_for()
        assert ada.call("GET", "/api/social/listening/queries") == []
        form.get_by_label("Mail spikes to").fill(EMAIL)
        form.get_by_role("button", name="Add stream").click()
        streams = page.locator("#listening-streams li[data-query]")
        streams.filter(has_text="hashtag #newsingle on x").wait_for()
        assert f"spike at 5, mailed to {EMAIL}" in streams.first.inner_text()
        # mentions need no term: the field is hidden and not sent
        form.get_by_label("Stream").select_option("mention")
        assert not form.get_by_label("Term").is_visible()
        form.get_by_label("Mail spikes to").fill("")
        form.get_by_role("button", name="Add stream").click()
        streams.filter(has_text="mention on x").wait_for()
        found = ada.call("GET", "/api/social/listening/queries")
        assert sorted((q["kind"], q["term"], q["min_count"], q["notify_email"])
                      for q in found) == [("hashtag", "#newsingle", 5, EMAIL),
                                          ("mention", "", 5, "")]
        assert all(q["channel_id"] == channel for q in found)
        streams.filter(has_text="hashtag").get_by_role("button", name="Stop").click()
        streams.filter(has_text="hashtag").wait_for(state="detached")
        assert [q["kind"] for q in ada.call("GET", "/api/social/listening/queries")] == [
            "mention"]
        screenshot(page, "social-inbox-streams")
        assert ada.errors(refusals=1) == []
    finally:
        ada.close()
