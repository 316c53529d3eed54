"""Bulk scheduling and channel rights on /social in real headless Debian Chromium, against
``dawserver serve`` and the fake X: a CSV file chosen in the page (with the type Windows
gives it) schedules its valid rows in the browser's time zone and lists the others' problems
by row and column; "all or none" schedules nothing from a file with a problem; a channel's
rights are set, shown again after a reload and cleared, for the person's own account and for
an organisation's channel among its members."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from loopback import free_port
from pagebrowser import BROWSER_TEST, plugin_site, screenshot, served_in_a_thread
from social_browser import SocialPerson

from business.social.fakes import FAKES, FakeNetworks

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(240)]

CLIENT_ID, CLIENT_SECRET = "studio-client", "studio-secret"
ZONE = "America/New_York"
NETWORKS = ("x", "instagram")


@pytest.fixture
def ada(tmp_path: Any) -> Iterator[SocialPerson]:
    """Ada signed in, in New York, on a server whose social plug-in talks to the fake X
    and Instagram."""
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    fakes = [FAKES[n](client_id=CLIENT_ID, client_secret=CLIENT_SECRET) for n in NETWORKS]
    with served_in_a_thread(FakeNetworks(fakes)) as networks, plugin_site(
            data, port, {"social": {
                "base_url": f"http://127.0.0.1:{port}",
                "networks": {n: {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                 "base_url": networks.base_url(n), "timeout_s": 10.0}
                             for n in NETWORKS}}}
            ) as (server, browser):
        person = SocialPerson(browser, server.url, viewport={"width": 1400, "height": 1000},
                              timezone_id=ZONE, locale="en-GB")
        try:
            person.sign_in_by_api()
            yield person
        finally:
            person.close()


def _local(days: int, hour: int) -> dt.datetime:
    day = dt.datetime.now(ZoneInfo(ZONE)).date() + dt.timedelta(days=days)
    return dt.datetime(day.year, day.month, day.day, hour, 15, tzinfo=ZoneInfo(ZONE))


def _choose(page: Any, csv: str, name: str = "posts.csv") -> None:
    page.get_by_label("CSV file").set_input_files(files=[{
        "name": name, "mimeType": "application/vnd.ms-excel", "buffer": csv.encode()}])


def test_a_csv_chosen_in_the_page_schedules_its_valid_rows_and_lists_problems(
        ada: SocialPerson) -> None:
    channel = ada.connect("x")
    handle = next(c["handle"] for c in ada.call("GET", "/api/social/channels"))
    morning, evening = _local(3, 9), _local(4, 19)
    csv = ("date,time,channel,text\r\n"
           f"{morning:%Y-%m-%d},{morning:%H:%M},{handle},Tour dates are out\r\n"
           f"{evening:%Y-%m-%d},{evening:%H:%M},{channel},New single on Friday\r\n"
           f"{evening:%Y-%m-%d},25:99,{channel},Not a time\r\n"
           f"{evening:%Y-%m-%d},{evening:%H:%M},nobody-here,Unknown channel\r\n")
    page = ada.open()
    _choose(page, csv)
    page.get_by_role("button", name="Upload and schedule").click()
    summary = page.locator("#bulk-summary")
    summary.wait_for()
    assert summary.inner_text() == "2 of 4 rows scheduled; 2 problem(s) kept rows out."
    problems = page.locator("#bulk-problems tbody tr.error")
    assert problems.count() == 2
    assert [problems.nth(i).locator("td.row").inner_text() for i in range(2)] == ["4", "5"]
    assert problems.nth(0).locator("td.code").inner_text() == "bad_time"
    assert problems.nth(1).locator("td.code").inner_text() == "unknown_channel"
    assert page.get_by_role("alert").inner_text().startswith("2 of 4 rows scheduled")

    # the rows' wall-clock times were read in the browser's zone, not UTC
    window = {"from": _local(0, 0).isoformat(), "to": _local(10, 0).isoformat()}
    posts = ada.context.request.get(f"{ada.url}/api/social/calendar", params=window).json()
    assert sorted((dt.datetime.fromisoformat(p["publish_at"]), p["text"]) for p in posts) == [
        (morning, "Tour dates are out"), (evening, "New single on Friday")]
    assert {p["time_zone"] for p in posts} == {ZONE}
    page.locator("section.bulk").scroll_into_view_if_needed()
    screenshot(page, "social-bulk")

    # all or none: one bad row keeps the good one out too
    _choose(page, "datetime,channel,text\r\n"
                  f"{_local(5, 8).isoformat()},{channel},Would be fine\r\n"
                  f"not a date,{channel},Broken\r\n", name="second.csv")
    page.get_by_label("Mode").select_option("all_or_nothing")
    page.get_by_role("button", name="Upload and schedule").click()
    page.locator("#bulk-summary", has_text="Nothing was scheduled").wait_for()
    assert page.locator("#bulk-problems td.code").all_inner_texts() == ["bad_datetime"]
    after = ada.context.request.get(f"{ada.url}/api/social/calendar", params=window).json()
    assert len(after) == 2
    assert ada.errors(refusals=0) == []


def test_a_file_the_server_cannot_read_is_refused_in_the_page(ada: SocialPerson) -> None:
    ada.connect("x")
    page = ada.open()
    _choose(page, "colour,shape\r\nred,round\r\n")
    page.get_by_role("button", name="Upload and schedule").click()
    refusal = page.get_by_role("alert")
    refusal.filter(has_text="The file was not scheduled").wait_for()
    assert "channel" in refusal.inner_text()  # the server names what the header lacks
    assert page.locator("#bulk-summary").count() == 0
    assert ada.errors(refusals=1) == []


def test_channel_rights_are_set_shown_and_cleared_in_the_page(ada: SocialPerson) -> None:
    me = ada.call("GET", "/me")["person"]
    channel = ada.connect("x")
    page = ada.open()
    access = page.get_by_label(f"Access of {me['name']}")
    access.wait_for()
    assert access.input_value() == ""  # her role's: the channel names nobody yet
    access.select_option("approval")
    page.get_by_role("button", name="Save rights").click()
    page.get_by_role("status").filter(has_text="Rights saved").wait_for()
    assert ada.call("GET", f"/api/social/channels/{channel}/rights") == {
        "rights": [{"person": me["id"], "access": "approval"}]}

    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    access = page.get_by_label(f"Access of {me['name']}")
    access.wait_for()
    assert access.input_value() == "approval"
    access.select_option("")
    page.get_by_role("button", name="Save rights").click()
    page.get_by_role("status").filter(has_text="Rights saved").wait_for()
    assert ada.call("GET", f"/api/social/channels/{channel}/rights") == {"rights": []}
    assert ada.errors(refusals=0) == []


def test_an_organisations_channel_lists_its_members_for_rights(ada: SocialPerson) -> None:
    me = ada.call("GET", "/me")["person"]
    org = ada.call("POST", "/accounts", {"name": "Night Owls"})["id"]
    ada.connect("x")
    org_channel = ada.connect("x", org)
    page = ada.open(f"?account={org}")
    row = page.locator(f"#rights-table tr[data-person='{me['id']}']")
    row.wait_for()
    assert me["email"] in row.locator("td.person").inner_text()
    row.get_by_role("combobox").select_option("view")
    page.get_by_role("button", name="Save rights").click()
    page.get_by_role("status").filter(has_text="Rights saved").wait_for()
    assert ada.call("GET", f"/api/social/channels/{org_channel}/rights?account={org}") == {
        "rights": [{"person": me["id"], "access": "view"}]}
    assert ada.errors(refusals=0) == []


def _rights_route(page: Any, channel: str, handle: Any) -> None:
    """Answer the page's GET of ``channel``'s rights with ``handle(route)``."""
    page.route(f"**/api/social/channels/{channel}/rights*",
               lambda route: handle(route) if route.request.method == "GET"
               else route.continue_())


def test_a_failed_or_outdated_rights_load_never_saves_over_the_rights(
        ada: SocialPerson) -> None:
    me = ada.call("GET", "/me")["person"]
    first, second = ada.connect("x"), ada.connect("instagram")
    ada.call("PUT", f"/api/social/channels/{first}/rights",
             {"rights": [{"person": me["id"], "access": "approval"}]})
    page = ada.page
    # the first channel's rights fail to load: the table stays empty and Save stays off,
    # so one click cannot replace its rights with an empty list
    _rights_route(page, first, lambda route: route.fulfill(
        status=503, content_type="application/json", body='{"error": "try later"}'))
    ada.open()
    page.locator("#rights-channel").select_option(first)
    page.get_by_role("alert").filter(has_text="The rights could not be loaded").wait_for()
    assert page.get_by_role("button", name="Save rights").is_disabled()
    assert ada.call("GET", f"/api/social/channels/{first}/rights")["rights"] == [
        {"person": me["id"], "access": "approval"}]

    # an answer for a channel no longer chosen is dropped: the second channel's table
    # is the second channel's, and saving it leaves the first channel alone
    page.unroute(f"**/api/social/channels/{first}/rights*")
    held: list[Any] = []
    _rights_route(page, first, held.append)
    page.locator("#rights-channel").select_option(second)
    page.locator("#rights-channel").select_option(first)
    page.locator("#rights-channel").select_option(second)
    page.get_by_label(f"Access of {me['name']}").wait_for()
    assert len(held) == 1
    with page.expect_response(lambda r: f"/channels/{first}/rights" in r.url):
        held[0].continue_()
    page.evaluate("() => new Promise((done) => setTimeout(done, 200))")  # the page has read it
    assert page.get_by_label(f"Access of {me['name']}").input_value() == ""
    page.get_by_label(f"Access of {me['name']}").select_option("view")
    page.get_by_role("button", name="Save rights").click()
    page.get_by_role("status").filter(has_text="Rights saved").wait_for()
    assert ada.call("GET", f"/api/social/channels/{second}/rights")["rights"] == [
        {"person": me["id"], "access": "view"}]
    assert ada.call("GET", f"/api/social/channels/{first}/rights")["rights"] == [
        {"person": me["id"], "access": "approval"}]
    assert ada.errors(refusals=0) == [
        "error: Failed to load resource: the server responded with a status of 503 "
        "(Service Unavailable)"]


def test_someone_who_left_is_listed_apart_and_not_saved_again(ada: SocialPerson) -> None:
    me = ada.call("GET", "/me")["person"]
    channel = ada.connect("x")
    page = ada.page

    def with_a_former_member(route: Any) -> None:
        answer = route.fetch()
        rights = answer.json()["rights"] + [{"person": "p_left_long_ago", "access": "view"}]
        route.fulfill(response=answer, json={"rights": rights})

    _rights_route(page, channel, with_a_former_member)
    ada.open()
    former = page.locator("#rights-table tr.former")
    former.wait_for()
    assert "p_left_long_ago" in former.inner_text()
    assert "no longer in the account" in former.inner_text()
    page.get_by_label(f"Access of {me['name']}").select_option("publish")
    with page.expect_request(lambda r: r.method == "PUT" and "/rights" in r.url) as sent:
        page.get_by_role("button", name="Save rights").click()
    assert sent.value.post_data_json == {"rights": [{"person": me["id"], "access": "publish"}]}
    page.get_by_role("status").filter(has_text="Rights saved").wait_for()
    page.unroute_all(behavior="wait")  # a running handler's fetch ends before teardown
    assert ada.errors(refusals=0) == []


def test_a_person_who_does_not_manage_the_channel_reads_only_their_access(
        ada: SocialPerson) -> None:
    ada.connect("x")
    page = ada.page

    def not_managed(route: Any) -> None:
        answer = route.fetch()
        channels = [{**c, "my_rights": {**c["my_rights"], "access": "view", "manage": False}}
                    for c in answer.json()]
        route.fulfill(response=answer, json=channels)

    page.route("**/api/social/channels?*", not_managed)
    page.route("**/api/social/channels", not_managed)
    ada.open()
    own = page.locator("#rights-own")
    own.filter(has_text="You may only view posts on this channel.").wait_for()
    assert "owners and admins" in own.inner_text()
    assert not page.locator("#rights-table").is_visible()
    assert not page.get_by_role("button", name="Save rights").is_visible()
    # the composer shows the channel but does not offer it
    page.get_by_role("button", name="New post").click()
    box = page.locator("dialog[open] input[type=checkbox]").first
    assert box.is_disabled()
    assert "(view only)" in page.locator("dialog[open] fieldset").first.inner_text()
    page.unroute_all(behavior="wait")  # a running handler's fetch ends before teardown
    assert ada.errors(refusals=0) == []


def test_an_upload_whose_answer_was_lost_is_answered_again_not_scheduled_twice(
        ada: SocialPerson) -> None:
    """The server schedules the file but its answer never reaches the page (the network
    dropped it): sending the same file again carries the same Idempotency-Key, so the
    page shows what the first upload scheduled, and nothing is scheduled twice."""
    channel = ada.connect("x")
    when = _local(3, 10)
    csv = (f"datetime,channel,text\r\n{when.isoformat()},{channel},Tour dates\r\n"
           f"{(when + dt.timedelta(hours=2)).isoformat()},{channel},Pre-save now\r\n")
    page = ada.open()
    keys: list[str | None] = []

    def answer_lost(route: Any) -> None:
        keys.append(route.request.headers.get("idempotency-key"))
        route.fetch()  # the server schedules the file ...
        route.abort("connectionreset")  # ... and the page never hears of it

    page.route("**/api/social/bulk*", answer_lost)
    _choose(page, csv)
    page.get_by_role("button", name="Upload and schedule").click()
    page.get_by_role("alert").filter(has_text="no answer came back").wait_for()
    page.unroute("**/api/social/bulk*")
    with page.expect_request("**/api/social/bulk*") as again:
        page.get_by_role("button", name="Upload and schedule").click()
    summary = page.locator("#bulk-summary")
    summary.wait_for()
    assert summary.inner_text() == "2 of 2 rows scheduled."
    assert keys[0] and again.value.headers["idempotency-key"] == keys[0]
    window = {"from": _local(0, 0).isoformat(), "to": _local(10, 0).isoformat()}
    posts = ada.context.request.get(f"{ada.url}/api/social/calendar", params=window).json()
    assert sorted(p["text"] for p in posts) == ["Pre-save now", "Tour dates"]

    # a new file is a new upload with a key of its own
    _choose(page, csv.replace("Tour dates", "Tour dates again"), name="second.csv")
    with page.expect_request("**/api/social/bulk*") as third:
        page.get_by_role("button", name="Upload and schedule").click()
    assert third.value.headers["idempotency-key"] not in (None, keys[0])
    page.locator("#bulk-summary").filter(has_text="1 of 2 rows scheduled").wait_for()
    assert ada.errors(refusals=0) == ["error: Failed to load resource: net::ERR_CONNECTION_RESET"]


def test_a_failed_save_never_turns_save_on_over_another_channels_failed_load(
        ada: SocialPerson) -> None:
    """Review R3 #5: Save is clicked on one channel, another is chosen while the PUT
    runs, the PUT fails and the other channel's rights fail to load: Save stays off, so
    no click can replace the other channel's rights with an empty list."""
    me = ada.call("GET", "/me")["person"]
    first, second = ada.connect("x"), ada.connect("instagram")
    ada.call("PUT", f"/api/social/channels/{second}/rights",
             {"rights": [{"person": me["id"], "access": "approval"}]})
    page = ada.open()
    page.locator("#rights-channel").select_option(first)
    page.get_by_label(f"Access of {me['name']}").select_option("view")
    puts: list[Any] = []
    page.route(f"**/api/social/channels/{first}/rights*",
               lambda route: puts.append(route) if route.request.method == "PUT"
               else route.continue_())
    _rights_route(page, second, lambda route: route.fulfill(
        status=503, content_type="application/json", body='{"error": "try later"}'))
    page.get_by_role("button", name="Save rights").click()
    for _ in range(300):  # 15 s for the page's PUT, then the assert below fails
        if puts:
            break
        page.wait_for_timeout(50)
    assert puts, "the page sent no PUT of the rights"
    page.locator("#rights-channel").select_option(second)
    page.get_by_role("alert").filter(has_text="The rights could not be loaded").wait_for()
    puts[0].fulfill(status=503, content_type="application/json", body='{"error": "busy"}')
    page.get_by_role("alert").filter(has_text="Rights not saved").wait_for()
    assert page.get_by_role("button", name="Save rights").is_disabled()
    page.unroute_all(behavior="wait")
    assert ada.call("GET", f"/api/social/channels/{second}/rights")["rights"] == [
        {"person": me["id"], "access": "approval"}]
