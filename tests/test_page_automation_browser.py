"""Automation in the page (web/src/automation.js) in headless Chromium: lanes drawn with the
mouse, and fader moves written during playback, are heard at the right sample in the
server's render (GET /projects/ID/render)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from loopback import free_port
from pagebrowser import (
    BROWSER_TEST,
    CHROMIUM,
    CHROMIUM_FLAGS,
    ServerProcess,
    open_page,
    ride,
    wait_for,
)

from collab.automation_write import lane_value
from collab.store import open_store
from collab.tokens import Role, TokenSigner
from dawserver.asset_store import AssetStore
from dawserver.projects import import_session
from dsp_core.session import AutomationPoint, Clip, Session, Track

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(180)]

RATE = 48000
SECONDS = 6


@dataclass
class Studio:
    server: ServerProcess
    browser: Any
    signer: TokenSigner
    project: str

    def url(self, user: str = "ana") -> str:
        token = self.signer.issue(self.project, Role.EDITOR, user)
        return f"{self.server.url}/?project={self.project}&token={token}"

    def token(self) -> str:
        return self.signer.issue(self.project, Role.VIEWER, "checker")

    def lane(self, param: str) -> list[AutomationPoint]:
        lane = self.server.document(self.project, self.token())["tracks"]["t1"]["automation"][param]
        points = [AutomationPoint(int(p["frame"]), float(p["value"]), p["curve"], id=k)
                  for k, p in lane["points"].items()]
        return sorted(points, key=lambda p: (p.frame, p.id))

    def render(self) -> np.ndarray:
        body = self.server.get(f"/projects/{self.project}/render?frames={SECONDS * RATE}",
                               self.token())
        return sf.read(io.BytesIO(body), dtype="float32")[0][:, 0]


@pytest.fixture
def studio(tmp_path) -> Iterator[Studio]:
    """``dawserver serve`` with one mono track of a constant 0.5 over six seconds."""
    from playwright.sync_api import sync_playwright

    source = tmp_path / "dc.wav"
    sf.write(source, np.full(SECONDS * RATE, 0.5, dtype=np.float32), RATE)
    track = Track("t1", "Voice", channels=1, clips=[Clip(str(source), 0, SECONDS * RATE)])
    data = tmp_path / "data"
    data.mkdir()

    async def create() -> None:
        # its audio as the project's assets, named by id (the server plays nothing else)
        async with open_store(None, data) as store:
            await import_session(store, Session(name="Auto", sample_rate=RATE, tracks=[track]),
                                 project_id="auto", assets=AssetStore(data / "assets"))

    asyncio.run(create())
    with ServerProcess(data, free_port()) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield Studio(server, browser, TokenSigner.from_data_dir(data), "auto")
        finally:
            browser.close()


def heard_gains(studio: Studio, dry: np.ndarray, points: list[AutomationPoint],
                frames: list[int]) -> None:
    """The render at ``frames`` is the dry signal times the lane's gain there."""
    wet = studio.render()
    for frame in frames:
        expected = dry[frame] * 10 ** (lane_value(points, frame, 0.0) / 20)
        assert wet[frame] == pytest.approx(expected, rel=2e-5, abs=1e-7), frame


def open_strip(page: Any) -> Any:
    page.click(".row[data-track=t1] .auto-toggle")
    page.wait_for_selector(".auto[data-track=t1] .auto-svg")
    return page.locator(".auto[data-track=t1] .auto-svg")


def test_lanes_are_hidden_until_shown_and_push_the_rows_below(studio: Studio) -> None:
    page, log = open_page(studio.browser, studio.url())
    assert page.locator(".auto").count() == 0
    open_strip(page)
    assert page.locator(".auto").count() == 1
    page.click(".row[data-track=t1] .auto-toggle")
    assert page.locator(".auto").count() == 0
    assert not log.errors()


def test_points_drawn_dragged_and_deleted_are_heard_at_their_sample(studio: Studio) -> None:
    dry = studio.render()
    page, log = open_page(studio.browser, studio.url())
    svg = open_strip(page)
    box = svg.bounding_box()
    zoom = page.evaluate("window.daw.timeline.zoom")  # px per second
    for seconds, height in [(1.0, 0.1), (2.0, 0.9), (3.0, 0.5)]:
        page.mouse.click(box["x"] + seconds * zoom, box["y"] + height * box["height"])
    points = wait_for(lambda: len(studio.lane("gain_db")) == 3 and studio.lane("gain_db"))
    assert [round(p.frame / RATE, 1) for p in points] == [1.0, 2.0, 3.0]
    assert points[0].value > 0 > points[1].value  # top of the strip is loud
    # drag the last point half a second later, then delete the middle one
    dot = page.locator(f".auto-point[data-point='{points[2].id}']").bounding_box()
    page.mouse.move(dot["x"] + 4, dot["y"] + 4)
    page.mouse.down()
    page.mouse.move(dot["x"] + 4 + zoom / 2, dot["y"] + 4, steps=5)
    page.mouse.up()
    page.dblclick(f".auto-point[data-point='{points[1].id}']")
    points = wait_for(lambda: (lane := studio.lane("gain_db")) and len(lane) == 2
                      and lane[1].frame > 3.3 * RATE and lane)
    f0, f1 = points[0].frame, points[1].frame
    heard_gains(studio, dry, points, [f0 - 1, f0, f0 + 1, (f0 + f1) // 2, f1, f1 + 100])
    # a mute point steps at exactly its frame (after an unmuted one: a lane holds its first
    # value before it)
    page.select_option(".auto[data-track=t1] .auto-param", "mute")
    page.mouse.click(box["x"] + 4.0 * zoom, box["y"] + 0.9 * box["height"])
    wait_for(lambda: studio.lane("mute"))
    page.mouse.click(box["x"] + 4.5 * zoom, box["y"] + 0.1 * box["height"])
    muted = wait_for(lambda: len(lane := studio.lane("mute")) == 2 and lane)
    assert [p.value for p in muted] == [0.0, 1.0]
    at = muted[1].frame
    wet = studio.render()
    assert wet[at - 1] != 0 and wet[at] == 0 and not wet[at:].any()
    assert not log.errors()


def test_a_fader_moved_in_touch_during_playback_writes_what_the_render_plays(
        studio: Studio) -> None:
    dry = studio.render()
    page, log = open_page(studio.browser, studio.url())
    open_strip(page)
    page.select_option(".auto[data-track=t1] .auto-mode", "touch")
    wait_for(lambda: studio.server.document(studio.project, studio.token())["tracks"]["t1"]
             ["automation"]["gain_db"]["mode"] == "touch")
    # down to the bottom of the fader over ~0.6 s
    ride(page, page.locator(".row[data-track=t1] .fader"), 0.8, -0.08, 12)
    points = wait_for(lambda: (lane := studio.lane("gain_db"))
                      and any(p.id.startswith("w") for p in lane) and lane)
    written = [p for p in points if p.id.startswith("w")]
    assert min(p.value for p in written) == -60.0          # the fader's floor was written
    assert len(written) < 15                                # thinned
    frames = sorted({p.frame for p in points} | {p.frame + 7 for p in points})
    heard_gains(studio, dry, points, [f for f in frames if f < SECONDS * RATE])
    anchor, back = written[0], written[-1]   # on release the lane glides back to what it was
    assert anchor.id.endswith(".a") and back.id.endswith(".c") and back.value == anchor.value
    assert back.frame - written[-2].frame == RATE // 4
    assert not log.errors()


def test_the_mute_button_unmutes_what_a_latch_pass_muted(studio: Studio) -> None:
    """In latch mode during playback the mute button writes the lane, not the track: it
    showed (and toggled from) the track's own mute, so a second press wrote mute again."""
    page, log = open_page(studio.browser, studio.url())
    open_strip(page)
    page.select_option(".auto[data-track=t1] .auto-param", "mute")
    page.select_option(".auto[data-track=t1] .auto-mode", "latch")
    wait_for(lambda: studio.server.document(studio.project, studio.token())["tracks"]["t1"]
             ["automation"].get("mute", {}).get("mode") == "latch")
    mute = page.locator(".row[data-track=t1] .toggle.mute")
    page.click(".transport .play")
    page.wait_for_timeout(300)
    mute.click()
    assert mute.get_attribute("aria-pressed") == "true"  # muted by the pass
    page.wait_for_timeout(400)
    mute.click()
    assert mute.get_attribute("aria-pressed") == "false"
    page.wait_for_timeout(300)
    page.click(".transport .play")  # pause: the pass ends
    page.evaluate("window.daw.writer.settled()")
    written = wait_for(lambda: [p.value for p in studio.lane("mute") if p.id.startswith("w")]
                       or None)
    assert 1.0 in written and written[-1] == 0.0, written
    track = studio.server.document(studio.project, studio.token())["tracks"]["t1"]
    assert not track["mute"]  # the lane took both presses: the track's own mute is unchanged
    assert mute.get_attribute("aria-pressed") == "false"
    assert not log.errors()


def test_a_lane_set_to_off_mid_ride_ends_the_pass_and_the_fader_moves_again(
        studio: Studio) -> None:
    """Set to off while a latch pass writes it, the lane takes no more points and the
    fader's later moves set its value again (the pass no longer takes them)."""
    page, log = open_page(studio.browser, studio.url())
    open_strip(page)
    page.select_option(".auto[data-track=t1] .auto-mode", "latch")
    wait_for(lambda: studio.server.document(studio.project, studio.token())["tracks"]["t1"]
             ["automation"]["gain_db"]["mode"] == "latch")
    ride(page, page.locator(".row[data-track=t1] .fader"), 0.8, -0.05, 12,
         midway=lambda: page.select_option(".auto[data-track=t1] .auto-mode", "off"))
    page.evaluate("window.daw.writer.settled()")
    track = wait_for(lambda: (t := studio.server.document(studio.project, studio.token())
                              ["tracks"]["t1"]) and t["gain_db"] < 0 and t)
    written = [p for p in studio.lane("gain_db") if p.id.startswith("w")]
    assert written and all(p.value > track["gain_db"] for p in written if p.id.endswith(".b"))
    assert not page.evaluate("window.daw.writer.passes.size")
    assert not log.errors()
