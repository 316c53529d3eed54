"""The composer and the results charts on /social in real headless Debian Chromium, against
``dawserver serve`` and the fake X and Instagram: live per-network checks as Ada types,
previews, a variant, media from her project, the next free slot, best times with their
reason, submitting for approval; and the results chart drawing what the results routes
say, per channel and per post."""

from __future__ import annotations

import datetime as dt
import io
import sqlite3
import subprocess
import wave
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from loopback import free_port
from pagebrowser import (
    BROWSER_TEST,
    ServerProcess,
    plugin_site,
    screenshot,
    served_in_a_thread,
    wait_for,
)
from social_browser import SocialPerson

from business.social.fakes import FAKES, FakeNetworks

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(240)]

CLIENT_ID, CLIENT_SECRET = "studio-client", "studio-secret"
ZONE = "Asia/Tokyo"


@dataclass
class Site:
    server: ServerProcess
    data: Path
    browser: Any
    fakes: dict[str, Any]

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server whose social plug-in talks to the fake X and Instagram, collecting results
    every half second; one headless Chromium."""
    data = tmp_path_factory.mktemp("social-composer") / "data"
    data.mkdir()
    port = free_port()
    fakes = [FAKES[n](client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
             for n in ("x", "instagram")]
    with served_in_a_thread(FakeNetworks(fakes)) as networks, plugin_site(
            data, port, {"social": {
                "base_url": f"http://127.0.0.1:{port}",
                "networks": {n: {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                 "base_url": networks.base_url(n), "timeout_s": 10.0}
                             for n in ("x", "instagram")},
                "dispatch": {"backoff_base": 0.2, "backoff_cap": 1.0, "sweep_s": 1.0},
                "results": {"check_s": 0.5, "channel_limit": "1000/second",
                            "network_limit": "1000/second"}}}
            ) as (server, browser):
        yield Site(server, data, browser, {f.network: f for f in fakes})


class Person(SocialPerson):
    """Ada in Tokyo: the page, and the API as her."""

    def __init__(self, site: Site) -> None:
        super().__init__(site.browser, site.url, viewport={"width": 1500, "height": 1100},
                         timezone_id=ZONE, locale="en-GB")
        self.site = site


@pytest.fixture
def ada(site: Site) -> Iterator[Person]:
    person = Person(site)
    person.sign_in_by_api()
    try:
        yield person
    finally:
        person.close()


def wav_bytes(seconds: float = 2.0, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(b"\x00\x01" * int(seconds * rate))
    return out.getvalue()


def a_bounce(ada: Person) -> dict[str, Any]:
    """A project of Ada's with one audio file in it; the asset."""
    me = ada.call("GET", "/auth/session")["me"]["person"]
    project = ada.call("POST", f"/accounts/{me['id']}/projects", {"name": "Night Drive"})
    answer = ada.context.request.post(
        f"{ada.site.url}/projects/{project['id']}/assets?name=night-drive-bounce.wav",
        data=wav_bytes(), headers={"Content-Type": "audio/wav", "X-CSRF-Token": ada.csrf})
    assert answer.status == 201, answer.text()
    return answer.json()


def test_a_post_is_composed_checked_per_network_and_submitted(ada: Person) -> None:
    x = ada.connect("x")
    insta = ada.connect("instagram")
    ada.call("PUT", f"/api/social/channels/{x}/approvals",
             {"tiers": [[{"role": "owner"}]]})
    ada.call("PUT", f"/api/social/channels/{x}/slots",
             {"time_zone": ZONE, "slots": [{"weekday": "tue", "time": "10:30"}]})
    slot = ada.call("GET", f"/api/social/channels/{x}/next-slot")
    asset = a_bounce(ada)

    page = ada.open()
    page.get_by_role("button", name="New post").click()
    dialog = page.locator("dialog.compose-dialog[open]")
    dialog.wait_for()

    def checks() -> int:
        return int(dialog.get_attribute("data-checks") or 0)

    def settled(before: int) -> None:
        wait_for(lambda: checks() > before)

    def preview(network: str) -> Any:
        return dialog.locator(f".preview[data-network={network}]")

    dialog.locator(f"input[type=checkbox][value='{x}']").check()
    dialog.locator(f"input[type=checkbox][value='{insta}']").check()
    # too long for X (280), within Instagram's 2,200; Instagram needs an image or video
    before = checks()
    dialog.get_by_label("Text", exact=True).fill("Night Drive is out Friday. " + "la " * 88)
    settled(before)
    preview("x").locator(".problem.error[data-code=text_too_long]").wait_for()
    assert preview("x").locator(".counter").text_content().startswith("291 / 280 characters")
    assert preview("x").get_attribute("data-ok") == "false"
    assert preview("instagram").locator(".problem.error").count() >= 1
    assert preview("instagram").locator(".counter").text_content().startswith("291 / 2200")

    # a link: on X it joins the text (23 characters); on Instagram it is a warning
    before = checks()
    dialog.get_by_label("Link").fill("https://example.org/night-drive")
    settled(before)
    preview("instagram").locator(".problem.warning[data-code=link_not_clickable]").wait_for()
    assert preview("x").locator(".counter").text_content().startswith("315 / 280")

    # X's variant fixes its length; its preview marks the mention, the tag and the link
    dialog.locator(f"details.variant[data-channel='{x}'] summary").click()
    before = checks()
    dialog.locator(f"#variant-text-{x}").fill(
        "Night Drive out Friday with @nightcrew #newmusic")
    settled(before)
    wait_for(lambda: preview("x").get_attribute("data-ok") == "true")
    assert preview("x").locator(".mention").text_content() == "@nightcrew"
    assert preview("x").locator(".tag").text_content() == "#newmusic"
    assert preview("x").locator(".link").text_content() == "https://example.org/night-drive"
    assert preview("x").locator(".ok").text_content() == "Ready for this network."

    # media from her project: an audio bounce, which neither network publishes
    picker = dialog.get_by_label("Project file")
    wait_for(lambda: picker.locator("option").count() == 2)
    label = picker.locator("option").nth(1).text_content()
    assert label == f"Night Drive — {asset['name']} (audio, 0:02)", label
    picker.select_option(label=label)
    before = checks()
    dialog.get_by_role("button", name="Attach").click()
    settled(before)
    preview("x").locator(".problem.error[data-field='media[0]']").wait_for()
    assert "audio" in preview("x").locator(".problem.error").first.text_content()
    before = checks()
    dialog.locator(f"#variant-nomedia-{x}").check()
    settled(before)
    wait_for(lambda: preview("x").get_attribute("data-ok") == "true")
    screenshot(page, "social-composer")
    # Instagram stays blocked (no image or video): leave it out
    before = checks()
    dialog.locator(f"input[type=checkbox][value='{insta}']").uncheck()
    settled(before)
    assert preview("instagram").count() == 0

    # best times: no history yet, so the network's defaults with the reason
    reason = dialog.locator(".best-reason")
    reason.wait_for()
    assert reason.get_attribute("data-source") == "defaults"
    assert "general starting points for x" in reason.text_content()
    assert dialog.locator("button.best-time").count() == 3
    # the next free slot fills the time
    dialog.get_by_role("button", name="Use next free slot").click()
    dialog.get_by_text("Next free slot of").wait_for()
    slot_local = dt.datetime.fromtimestamp(slot["at_epoch"], ZoneInfo(ZONE))
    assert dialog.get_by_label("Publish at").input_value() == slot_local.strftime(
        "%Y-%m-%dT%H:%M")

    dialog.get_by_role("button", name="Submit for approval").click()
    outcome = dialog.locator(".compose-outcome[data-post]")
    outcome.wait_for()
    assert outcome.text_content() == "Post sent for approval."
    post = ada.call("GET", f"/api/social/posts/{outcome.get_attribute('data-post')}")
    assert (post["state"], post["link"]) == ("pending_approval",
                                             "https://example.org/night-drive")
    assert [m["asset_id"] for m in post["media"]] == [asset["id"]]
    [target] = post["targets"]
    assert (target["channel_id"], target["text"], target["media"]) == (
        x, "Night Drive out Friday with @nightcrew #newmusic", [])
    assert dt.datetime.fromisoformat(post["publish_at"]).timestamp() == slot["at_epoch"]
    assert ada.errors(refusals=0) == []


def _engagement(metrics: dict[str, Any]) -> int | None:
    known = [metrics[m] for m in ("likes", "comments", "shares", "clicks")
             if metrics.get(m) is not None]
    return sum(known) if known else None


def test_the_results_chart_draws_what_the_results_routes_say(ada: Person) -> None:
    x = ada.connect("x")
    ada.call("PUT", f"/api/social/channels/{x}/approvals", {"tiers": []})
    soon = dt.datetime.now(ZoneInfo(ZONE)) + dt.timedelta(seconds=2)
    ids = []
    for text in ("Chart one", "Chart two"):
        made = ada.call("POST", "/api/social/posts", {
            "text": text, "publish_at": soon.isoformat(), "targets": [{"channel_id": x}]})
        ada.call("POST", f"/api/social/posts/{made['post_id']}/submit", {})
        ids.append(made["post_id"])
    wait_for(lambda: all(ada.call("GET", f"/api/social/posts/{p}/results") for p in ids),
             timeout=60)
    # a later reading of each (as the next hour's collection would store it)
    database = next(ada.site.data.rglob("*.sqlite3"))
    with sqlite3.connect(database, timeout=10) as db:
        for post_id in ids:
            db.execute(
                "INSERT INTO social_metric_snapshots (account_id, post_id, channel_id, "
                "taken_at, network, impressions, likes, comments, shares, clicks) SELECT "
                "account_id, post_id, channel_id, taken_at + 3600, network, impressions * 3, "
                "likes * 2 + 1, comments, shares, clicks FROM social_metric_snapshots "
                "WHERE post_id = ?", (post_id,))

    page = ada.open()
    panel = page.locator("section.results[data-shown]")
    panel.wait_for()
    wait_for(lambda: page.evaluate("window.socialChart ? window.socialChart.data.labels.length"
                                   " : 0") > 0)
    now = dt.datetime.now(dt.UTC)
    report = ada.call("GET", "/api/social/results?" + "&".join((
        f"from={(now - dt.timedelta(days=30, hours=-1)).isoformat()}".replace("+", "%2B"),
        f"to={(now + dt.timedelta(hours=1)).isoformat()}".replace("+", "%2B"))))
    sums: dict[tuple[str, str], dict[str, int | None]] = defaultdict(
        lambda: {"impressions": None, "engagement": None})
    for post in report["posts"]:
        for row in post["channels"]:
            day = dt.datetime.fromtimestamp(row["published_at"], ZoneInfo(ZONE)).date()
            cell = sums[(row["channel_id"], day.isoformat())]
            for metric, value in (("impressions", row["metrics"]["impressions"]),
                                  ("engagement", _engagement(row["metrics"]))):
                if value is not None:
                    cell[metric] = (cell[metric] or 0) + value
    chart = page.evaluate("({labels: window.socialChart.data.labels, datasets: "
                          "window.socialChart.data.datasets.map(d => ({channel: d.channel, "
                          "metric: d.metric, data: d.data}))})")
    assert chart["labels"] == sorted({day for _, day in sums})
    drawn = {(d["channel"], d["metric"]): d["data"] for d in chart["datasets"]}
    assert drawn == {(channel, metric): [sums[(channel, day)][metric]
                                         if (channel, day) in sums else None
                                         for day in chart["labels"]]
                     for channel, _ in sums for metric in ("impressions", "engagement")}
    assert drawn[(x, "impressions")][-1] > 0

    # one post: its readings over time, as the post's results route gives them
    draws = int(panel.get_attribute("data-draws"))
    page.locator("#results-post").select_option(ids[0])
    wait_for(lambda: int(panel.get_attribute("data-draws")) > draws)
    readings = ada.call("GET", f"/api/social/posts/{ids[0]}/results")
    assert len(readings) == 2
    chart = page.evaluate("window.socialChart.data.datasets.map(d => ({channel: d.channel, "
                          "metric: d.metric, data: d.data}))")
    assert chart == [
        {"channel": x, "metric": "impressions",
         "data": [r["metrics"]["impressions"] for r in readings]},
        {"channel": x, "metric": "engagement",
         "data": [_engagement(r["metrics"]) for r in readings]}]
    assert chart[1]["data"][1] > chart[1]["data"][0]
    assert page.locator("#results-table tbody tr").count() == 2
    screenshot(page, "social-results-chart")
    assert ada.errors(refusals=0) == []


def test_a_scheduled_post_is_edited_in_the_composer_and_the_edit_is_what_goes_out(
        ada: Person) -> None:
    x = ada.connect("x")
    # a whole minute, so the composer's minute field sends the same time back
    when = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=4)).replace(second=0,
                                                                        microsecond=0)
    post = ada.call("POST", "/api/social/posts", {
        "text": "Tour dates: TBA", "publish_at": when.isoformat(),
        "targets": [{"channel_id": x}]})
    post = ada.call("POST", f"/api/social/posts/{post['post_id']}/submit", {})
    assert post["state"] == "scheduled"
    fake = ada.site.fakes["x"]

    def stored() -> dict[str, Any]:
        return ada.call("GET", f"/api/social/posts/{post['post_id']}")

    page = ada.open(f"?view=month&date={when.date().isoformat()}")
    page.locator(f"[data-post-id='{post['post_id']}']").click()
    details = page.locator("dialog.post-dialog[open]")
    details.get_by_role("button", name="Edit", exact=True).click()
    dialog = page.locator("dialog.compose-dialog[open]")
    dialog.get_by_role("heading", name="Edit post").wait_for()
    text = dialog.get_by_label("Text", exact=True)
    assert text.input_value() == "Tour dates: TBA"
    assert dialog.locator(f"input[type=checkbox][value='{x}']").is_checked()
    assert dialog.get_by_role("button", name="Save draft").is_hidden()
    text.fill("Tour dates: Berlin 12 May, Tokyo 20 May")
    dialog.get_by_role("button", name="Save changes").click()
    dialog.locator(".compose-outcome", has_text="Changes saved: post scheduled.").wait_for()

    after = stored()
    assert after["text"] == "Tour dates: Berlin 12 May, Tokyo 20 May"
    assert after["version"] > post["version"] and after["state"] == "scheduled"
    assert after["publish_at"] == post["publish_at"]   # the time stayed
    # bring it forward: what goes out is the edit, once; the first version never does
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    ada.call("PATCH", f"/api/social/posts/{post['post_id']}",
             {"publish_at": soon.isoformat()})
    wait_for(lambda: stored()["state"] == "published", timeout=30)
    texts = [p["text"] for p in fake.posts]
    assert texts.count("Tour dates: Berlin 12 May, Tokyo 20 May") == 1
    assert "Tour dates: TBA" not in texts
    assert ada.errors(refusals=0) == []


def test_a_bounce_is_attached_as_a_waveform_video_x_accepts(ada: Person) -> None:
    x = ada.connect("x")
    asset = a_bounce(ada)
    page = ada.open()
    page.get_by_role("button", name="New post").click()
    dialog = page.locator("dialog.compose-dialog[open]")
    dialog.wait_for()
    dialog.locator(f"input[type=checkbox][value='{x}']").check()
    dialog.locator("#compose-text").fill("Night Drive, the waveform")
    picker = dialog.get_by_label("Project file")
    wait_for(lambda: picker.locator("option").count() >= 2)
    picker.select_option(label=f"Night Drive — {asset['name']} (audio, 0:02)")
    dialog.get_by_role("button", name="Make a waveform video").click()
    video = dialog.locator("li.waveform-video")
    video.wait_for(timeout=90_000)
    assert video.text_content().startswith(
        f"Waveform video of {asset['name']} (1080x1080, 0:02)")
    preview = dialog.locator(".preview[data-network='x']")
    wait_for(lambda: preview.get_attribute("data-ok") == "true")
    dialog.get_by_role("button", name="Save draft").click()
    outcome = dialog.locator(".compose-outcome[data-post]")
    outcome.wait_for()
    post = ada.call("GET", f"/api/social/posts/{outcome.get_attribute('data-post')}")
    [media] = post["media"]
    assert media["asset_id"].startswith("wf_") and media["kind"] == "video"
    assert (media["content_type"], media["width"], media["height"]) == (
        "video/mp4", 1080, 1080)
    assert abs(media["duration_s"] - 2.0) <= 0.1
    assert ada.errors(refusals=0) == []


def test_an_image_uploaded_in_the_composer_is_attached_and_checked_per_network(
        ada: Person, tmp_path: Path) -> None:
    """A PNG uploaded from the composer is read by the server (1200x800 PNG), attached,
    accepted by X and refused by Instagram (JPEG only); a text file named .png is refused
    with the server's reason and attaches nothing."""
    x = ada.connect("x")
    insta = ada.connect("instagram")
    cover = tmp_path / "cover.png"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=s=1200x800",
                    "-frames:v", "1", str(cover)], check=True, timeout=60)
    fake = tmp_path / "liner-notes.png"
    fake.write_text("Night Drive liner notes\n" * 10)
    page = ada.open()
    page.get_by_role("button", name="New post").click()
    dialog = page.locator("dialog.compose-dialog[open]")
    dialog.wait_for()
    dialog.locator(f"input[type=checkbox][value='{x}']").check()
    dialog.locator(f"input[type=checkbox][value='{insta}']").check()
    dialog.locator("#compose-text").fill("Night Drive, the cover")

    status = dialog.locator(".uploads [role=status]")
    dialog.locator("#compose-upload").set_input_files(str(fake))
    wait_for(lambda: "was not uploaded" in (status.text_content() or ""))
    assert "is no image or video" in status.text_content()
    assert dialog.locator("li.uploaded-media").count() == 0

    dialog.locator("#compose-upload").set_input_files(str(cover))
    item = dialog.locator("li.uploaded-media")
    item.wait_for()
    assert item.text_content().startswith("cover.png (image, image/png, 1200x800)")
    wait_for(lambda: dialog.locator(".preview[data-network='x']").get_attribute("data-ok")
             == "true")
    dialog.locator(".preview[data-network='instagram'] "
                   ".problem.error[data-code=media_type]").wait_for()
    dialog.locator(f"input[type=checkbox][value='{insta}']").uncheck()
    dialog.get_by_role("button", name="Save draft").click()
    outcome = dialog.locator(".compose-outcome[data-post]")
    outcome.wait_for()
    post = ada.call("GET", f"/api/social/posts/{outcome.get_attribute('data-post')}")
    [media] = post["media"]
    assert media["asset_id"].startswith("md_")
    assert (media["kind"], media["content_type"], media["width"], media["height"]) == (
        "image", "image/png", 1200, 800)
    library = ada.call("GET", "/api/social/media")
    assert [m["name"] for m in library] == ["cover.png"]
    assert ada.errors(refusals=1) == []
