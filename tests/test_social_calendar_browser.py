"""The social calendar page (/social) in real headless Debian Chromium, against ``dawserver
serve`` and the fake X network: sign in, posts on their days in the browser's time zone,
drag to reschedule (and a refused move snapping back), month and week views, filters, a
post's outcome with its URL or the network's reason and a retry, and the next free slot."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from loopback import free_port
from pagebrowser import (
    BROWSER_TEST,
    EMAIL,
    PASSWORD,
    ServerProcess,
    plugin_site,
    screenshot,
    served_in_a_thread,
    wait_for,
)
from social_browser import SocialPerson

from business.social.fakes import FAKES, FakeNetwork, FakeNetworks

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(240)]

CLIENT_ID, CLIENT_SECRET = "studio-client", "studio-secret"
#: The browser's zone: nine hours ahead of UTC, so a morning post is the day before in UTC.
ZONE = "Asia/Tokyo"
#: What a browser logs for every 4xx answer; each test says how many it provokes.


@dataclass
class Site:
    """The server, the fake X it publishes to, and one Chromium."""

    server: ServerProcess
    fake: FakeNetwork
    browser: Any

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server whose social plug-in talks to the fake X, a person, one headless Chromium."""
    data = tmp_path_factory.mktemp("social-calendar") / "data"
    data.mkdir()
    port = free_port()
    fake = FAKES["x"](client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with served_in_a_thread(FakeNetworks([fake])) as networks, plugin_site(
            data, port, {"social": {
                "base_url": f"http://127.0.0.1:{port}",
                "networks": {"x": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                   "base_url": networks.base_url("x"), "timeout_s": 10.0}},
                "dispatch": {"backoff_base": 0.2, "backoff_cap": 1.0, "sweep_s": 1.0}}}
            ) as (server, browser):
        yield Site(server, fake, browser)


class Person(SocialPerson):
    """Ada in a browser context of her own (in Tokyo): the page, and the API as her."""

    def __init__(self, site: Site) -> None:
        super().__init__(site.browser, site.url, viewport={"width": 1400, "height": 1000},
                         timezone_id=ZONE, locale="en-GB")
        self.site = site

    def post(self, channel: str, text: str, at: dt.datetime, *, submit: bool = True,
             campaign: str = "", account: str = "") -> str:
        """A post of ``text`` on ``channel`` for ``at`` (submitted unless a draft) in Ada's
        account or her organisation ``account``; its id."""
        named = f"?account={account}" if account else ""
        made = self.call("POST", f"/api/social/posts{named}", {
            "text": text, "publish_at": at.isoformat(), "campaign": campaign,
            "targets": [{"channel_id": channel}]})
        if submit:
            assert self.call("POST", f"/api/social/posts/{made['post_id']}/submit{named}",
                             {})["state"] == "scheduled"
        return made["post_id"]

    def stored(self, post_id: str) -> dict[str, Any]:
        return self.call("GET", f"/api/social/posts/{post_id}")

    def reloaded(self, before: int) -> None:
        """Wait until the calendar has loaded its posts again after ``before`` loads."""
        wait_for(lambda: int(self.page.evaluate("document.body.dataset.loads || 0")) > before)


@pytest.fixture
def ada(site: Site) -> Iterator[Person]:
    person = Person(site)
    try:
        yield person
    finally:
        person.close()


def next_monday(weeks_ahead: int) -> dt.date:
    today = dt.datetime.now(ZoneInfo(ZONE)).date()
    return today + dt.timedelta(days=7 - today.weekday() + 7 * weeks_ahead)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=ZoneInfo(ZONE))


def drag(page: Any, source: Any, target: Any) -> None:
    """Drag ``source`` onto ``target`` with the mouse, in small steps as a hand does."""
    start, end = source.bounding_box(), target.bounding_box()
    x0, y0 = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    x1, y1 = end["x"] + end["width"] / 2, end["y"] + end["height"] / 2
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 8, y0 + 8, steps=4)
    page.mouse.move(x1, y1, steps=12)
    page.mouse.up()


def test_a_signed_out_visitor_signs_in_and_lands_on_the_calendar(ada: Person) -> None:
    page = ada.page
    page.goto(f"{ada.site.url}/social?view=week")
    page.wait_for_url(f"{ada.site.url}/account/sign-in?next=/social%3Fview%3Dweek")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: url.startswith(f"{ada.site.url}/social?view=week"))
    page.wait_for_selector("body[data-ready=true]", timeout=15000)
    assert page.locator(".fc-timeGridWeek-view").count() == 1
    assert page.get_by_text(f"Times in {ZONE}").count() == 1
    assert page.title() == "Social calendar · Max Booster Studio"
    assert ada.errors(refusals=0) == []


def test_posts_sit_on_their_days_move_by_drag_and_filter(ada: Person) -> None:
    ada.sign_in_by_api()
    channel = ada.connect("x")
    monday = next_monday(2)
    day = [monday + dt.timedelta(days=n) for n in range(7)]
    early = ada.post(channel, "Single out Monday morning", at(day[0], 8, 30),
                     campaign="launch")   # Sunday 23:30 in UTC: Monday in Tokyo
    tour = ada.post(channel, "Tour dates announced", at(day[2], 15, 30), campaign="tour")
    draft = ada.post(channel, "Draft about the van", at(day[3], 12), submit=False,
                     campaign="tour")
    gone = ada.post(channel, "Soon deleted", at(day[4], 18))

    page = ada.open(f"?view=month&date={monday.isoformat()}")

    def cell(date: dt.date) -> Any:
        return page.locator(f"td.fc-daygrid-day[data-date='{date.isoformat()}']")

    for post_id, date in ((early, day[0]), (tour, day[2]), (draft, day[3]), (gone, day[4])):
        cell(date).locator(f"[data-post-id='{post_id}']").wait_for()
    assert "Draft" in page.locator(f"[data-post-id='{draft}']").get_attribute("aria-label")

    # drag Monday's post onto Tuesday: the server stores the same time a day later
    before = ada.stored(early)["publish_at"]
    drag(page, page.locator(f"[data-post-id='{early}']"), cell(day[1]))
    page.get_by_role("status").filter(has_text="Moved to").wait_for()
    moved = dt.datetime.fromisoformat(ada.stored(early)["publish_at"])
    assert moved == dt.datetime.fromisoformat(before) + dt.timedelta(days=1)
    cell(day[1]).locator(f"[data-post-id='{early}']").wait_for()
    screenshot(page, "social-calendar-month")

    # a move the server refuses (the post was deleted meanwhile) snaps back with its words
    ada.call("DELETE", f"/api/social/posts/{gone}")
    drag(page, page.locator(f"[data-post-id='{gone}']"), cell(day[5]))
    alert = page.get_by_role("alert").filter(has_text="Not moved")
    alert.wait_for()
    assert f"there is no post '{gone}'" in alert.text_content()
    cell(day[4]).locator(f"[data-post-id='{gone}']").wait_for()
    assert cell(day[5]).locator(f"[data-post-id='{gone}']").count() == 0

    # the week view: each post in its day's column; the URL keeps the view
    page.get_by_role("button", name="Week", exact=True).click()
    assert "view=week" in page.url
    page.locator(f"td.fc-timegrid-col[data-date='{day[1].isoformat()}'] "
                 f"[data-post-id='{early}']").wait_for()
    page.locator(f"td.fc-timegrid-col[data-date='{day[2].isoformat()}'] "
                 f"[data-post-id='{tour}']").wait_for()
    screenshot(page, "social-calendar-week")

    # filters: by approval state, then by campaign
    loads = ada.loads()
    page.get_by_label("State").select_option("draft")
    ada.reloaded(loads)
    wait_for(lambda: page.locator(".fc-event[data-post-id]").count() == 1)
    assert page.locator(f"[data-post-id='{draft}']").count() == 1
    assert "state=draft" in page.url
    loads = ada.loads()
    page.get_by_label("State").select_option("")
    page.get_by_label("Campaign").fill("tour")
    page.get_by_label("Campaign").press("Enter")
    wait_for(lambda: ada.loads() > loads and page.locator(
        ".fc-event[data-post-id]").count() == 2)
    assert {page.locator(".fc-event[data-post-id]").nth(n).get_attribute("data-post-id")
            for n in range(2)} == {tour, draft}

    # back to the month view keeps the filter; a click opens a post, Escape closes it
    page.get_by_role("button", name="Month", exact=True).click()
    page.locator(f"[data-post-id='{tour}']").click()
    dialog = page.locator("dialog.post-dialog[open]")
    dialog.get_by_text("Tour dates announced").wait_for()
    assert dialog.locator(".post-state").text_content() == "Scheduled"
    # shown in the browser's zone, with it named (the post itself was given in UTC)
    assert "15:30 GMT+9 (the post's zone: UTC)" in dialog.locator(".post-when").text_content()
    # moving it into the past from the dialog is refused with the server's words
    dialog.get_by_label("Move to").fill("2020-01-06T10:00")
    dialog.get_by_role("button", name="Move").click()
    page.get_by_role("alert").filter(has_text="publish time is in the past").wait_for()
    page.keyboard.press("Escape")
    assert page.locator("dialog.post-dialog[open]").count() == 0
    assert ada.errors(refusals=2) == []


def test_a_post_shows_its_url_or_the_networks_reason_and_retries(ada: Person) -> None:
    ada.sign_in_by_api()
    channel = ada.connect("x")
    soon = dt.datetime.now(ZoneInfo(ZONE)) + dt.timedelta(seconds=2)
    out = ada.post(channel, "Out now everywhere", soon)
    wait_for(lambda: ada.stored(out)["state"] == "published", timeout=30)
    ada.site.fake.fail(400, path="tweets")
    refused = ada.post(channel, "Refused by the network",
                       dt.datetime.now(ZoneInfo(ZONE)) + dt.timedelta(seconds=2))
    wait_for(lambda: ada.stored(refused)["state"] == "failed", timeout=30)
    reason = ada.stored(refused)["targets"][0]["error"]
    assert reason

    page = ada.open("?view=month")
    page.locator(f"[data-post-id='{out}']").focus()   # by keyboard: focus, then Enter
    page.keyboard.press("Enter")
    dialog = page.locator("dialog.post-dialog[open]")
    link = dialog.locator("a.published-url")
    link.wait_for()
    assert link.get_attribute("href") == ada.stored(out)["targets"][0]["url"]
    assert dialog.locator(".post-state").text_content() == "Published"
    assert dialog.get_by_label("Move to").count() == 0   # a published post stays
    dialog.get_by_role("button", name="Close").click()

    page.locator(f"[data-post-id='{refused}']").click()
    dialog.get_by_text(f"The network said: {reason}").wait_for()
    dialog.get_by_role("button", name="Retry on").click()
    page.get_by_role("status").filter(has_text="Retry queued").wait_for()
    wait_for(lambda: ada.stored(refused)["state"] == "published", timeout=30)
    assert ada.errors(refusals=0) == []


def test_next_free_slot_is_the_servers_answer_in_the_browsers_zone(ada: Person) -> None:
    ada.sign_in_by_api()
    channel = ada.connect("x")
    ada.call("PUT", f"/api/social/channels/{channel}/slots", {
        "time_zone": "Europe/Berlin", "slots": [{"weekday": "wed", "time": "09:30"}]})
    expected = ada.call("GET", f"/api/social/channels/{channel}/next-slot")["at_epoch"]
    page = ada.open("?view=month")
    page.get_by_role("button", name="Next free slot").click()
    answer = page.locator(".slot-answer[data-at]")
    answer.wait_for()
    assert float(answer.get_attribute("data-at")) == expected
    local = dt.datetime.fromtimestamp(expected, ZoneInfo(ZONE))
    assert f"{local:%H:%M}" in answer.text_content()   # 09:30 Berlin, shown in Tokyo time
    answer.get_by_role("button", name="Show it").click()
    wait_for(lambda: f"date={local:%Y-%m}" in page.url)
    assert ada.errors(refusals=0) == []



def test_an_organisations_calendar_is_chosen_in_the_page(ada: Person) -> None:
    ada.sign_in_by_api()
    org = ada.call("POST", "/accounts", {"name": "Night Owls"})["id"]
    own_channel, org_channel = ada.connect("x"), ada.connect("x", org)
    monday = next_monday(5)
    own = ada.post(own_channel, "Ada's own news", at(monday, 10))
    label = ada.post(org_channel, "Night Owls label news", at(monday, 11), account=org)

    page = ada.open(f"?view=week&date={monday.isoformat()}")
    page.locator(f"[data-post-id='{own}']").wait_for()
    assert page.locator(f"[data-post-id='{label}']").count() == 0
    page.get_by_label("Calendar of").select_option(label="Night Owls")
    page.locator(f"[data-post-id='{label}']").wait_for()
    wait_for(lambda: page.locator(f"[data-post-id='{own}']").count() == 0)
    assert f"account={org}" in page.url
    # the organisation's post opens and moves within the organisation
    page.locator(f"[data-post-id='{label}']").click()
    dialog = page.locator("dialog.post-dialog[open]")
    dialog.get_by_text("Night Owls label news").wait_for()
    dialog.get_by_label("Move to").fill(f"{monday + dt.timedelta(days=1)}T09:15")
    dialog.get_by_role("button", name="Move").click()
    page.get_by_role("status").filter(has_text="Moved to").wait_for()
    stored = ada.call("GET", f"/api/social/posts/{label}?account={org}")
    assert dt.datetime.fromisoformat(stored["publish_at"]) == at(
        monday + dt.timedelta(days=1), 9, 15)
    page.keyboard.press("Escape")
    page.locator(f"td.fc-timegrid-col[data-date='{monday + dt.timedelta(days=1)}'] "
                 f"[data-post-id='{label}']").wait_for()
    assert ada.errors(refusals=0) == []
