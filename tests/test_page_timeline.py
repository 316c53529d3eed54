"""The page's virtual lanes (web/src/timeline.js) in headless Chromium, on a 64-track project.

Only the rows in view (and a few around them) are in the DOM, and in them only the clips
near the view; scrolling mounts the rest from the document, and waveform peaks are
fetched for mounted clips only. Each track plays its own source file (stored as an asset of
the project, named by its id), so which peaks the page asked for says which lanes it drew.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

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
    wait_for,
)

from collab.store import open_store
from collab.tokens import Role, TokenSigner
from dawserver.asset_store import AssetStore
from dawserver.projects import import_session
from dsp_core.session import Clip, Session, Track

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(300)]

RATE = 48000
TRACKS = 64
ROW = 68  # px, web/src/timeline.js ROW_HEIGHT
PROJECT = "many"
FAR = 120 * RATE  # a clip on t00 two minutes in: far right of the first view


def track_id(i: int) -> str:
    return f"t{i:02d}"


@dataclass
class Lanes:
    server: ServerProcess
    browser: Any
    signer: TokenSigner

    def url(self, user: str, role: Role = Role.EDITOR) -> str:
        token = self.signer.issue(PROJECT, role, user)
        return f"{self.server.url}/?project={PROJECT}&token={token}"

    def document(self) -> dict[str, Any]:
        return self.server.document(PROJECT, self.signer.issue(PROJECT, Role.VIEWER, "checker"))


@pytest.fixture(scope="module")
def lanes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lanes]:
    """``dawserver serve`` with 64 tracks (two clips each, one source file per track)."""
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("lanes")
    tracks = []
    for i in range(TRACKS):
        source = root / f"tone{i:02d}.wav"
        t = np.arange(RATE // 2) / RATE
        sf.write(source, (0.3 * np.sin(2 * np.pi * (110 + 5 * i) * t)).astype(np.float32), RATE)
        clips = [Clip(str(source), 0, RATE // 2, id=f"c{i:02d}a"),
                 Clip(str(source), 2 * RATE, RATE // 2, id=f"c{i:02d}b")]
        if i == 0:
            far = root / "far.wav"
            sf.write(far, np.full(RATE // 2, 0.2, dtype=np.float32), RATE)
            clips.append(Clip(str(far), FAR, RATE // 2, id="far"))
        tracks.append(Track(track_id(i), f"Track {i}", clips=clips))
    data = root / "data"
    data.mkdir()

    async def create() -> None:
        # its audio as the project's assets, named by id (the server plays nothing else)
        async with open_store(None, data) as store:
            await import_session(store, Session(name="Many", tracks=tracks), project_id=PROJECT,
                                 assets=AssetStore(data / "assets"))

    asyncio.run(create())
    with ServerProcess(data, free_port()) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield Lanes(server, browser, TokenSigner.from_data_dir(data))
        finally:
            browser.close()


def mounted(page: Any) -> list[str]:
    """The track rows in the DOM, in DOM order."""
    return page.locator(".rows .row").evaluate_all("els => els.map(e => e.dataset.track)")


def scroll(page: Any, *, top: float | None = None, left: float | None = None) -> None:
    """Scroll the timeline (a real scroll: the page hears a scroll event)."""
    page.evaluate("""([top, left]) => { const t = document.querySelector('.timeline')
        if (top !== null) t.scrollTop = top
        if (left !== null) t.scrollLeft = left }""", [top, left])


def all_drawn(page: Any) -> None:
    """Wait until every mounted clip shows its waveform."""
    page.wait_for_function("[...document.querySelectorAll('.clip canvas')]"
                           ".every(c => c.dataset.peaks === 'drawn')")


def test_only_the_rows_in_view_are_in_the_page_and_scrolling_brings_the_rest(
        lanes: Lanes) -> None:
    page, log = open_page(lanes.browser, lanes.url("ana"))
    view = page.locator(".timeline").bounding_box()
    in_view = int(view["height"] // ROW) + 1
    # Rows and clips read at once: the overscan rows mount as soon as those in view are drawn.
    rows, clips = page.evaluate("""() => [
        [...document.querySelectorAll('.rows .row')].map(e => e.dataset.track),
        document.querySelectorAll('.clip').length]""")
    assert rows[0] == track_id(0) and in_view <= len(rows) <= in_view + 5  # and the overscan
    assert rows == sorted(rows)
    assert clips == 2 * len(rows)  # "far" is beyond the clip window
    scroll(page, top=10**6)  # to the last track
    page.wait_for_selector(f".row[data-track={track_id(TRACKS - 1)}]")
    rows = mounted(page)
    assert track_id(0) not in rows and len(rows) <= in_view + 5 and rows == sorted(rows)
    last = page.locator(f".track-header[data-track={track_id(TRACKS - 1)}]").bounding_box()
    assert last["y"] + last["height"] == pytest.approx(view["y"] + view["height"], abs=ROW)
    # Rows sit where their index puts them; the headers stay at the left edge.
    scroll(page, top=20 * ROW, left=300)
    page.wait_for_selector(f".row[data-track={track_id(20)}]")
    ruler = page.locator(".ruler-row").bounding_box()
    row = page.locator(f".track-header[data-track={track_id(20)}]").bounding_box()
    assert row["y"] == pytest.approx(ruler["y"] + ruler["height"], abs=1)
    assert row["x"] == pytest.approx(view["x"], abs=1)
    assert log.errors() == []
    page.context.close()


def test_an_edit_to_a_track_out_of_view_shows_when_it_is_scrolled_to(lanes: Lanes) -> None:
    ana, ana_log = open_page(lanes.browser, lanes.url("ana"))
    ben, ben_log = open_page(lanes.browser, lanes.url("ben"))
    far = track_id(50)
    scroll(ben, top=45 * ROW)
    ben.wait_for_selector(f".row[data-track={far}]")
    ben.fill(f".track-header[data-track={far}] .name", "Far away")
    ben.press(f".track-header[data-track={far}] .name", "Enter")
    ben.locator(f".track-header[data-track={far}] .fader").fill("-12")
    ben.evaluate("window.daw.project.moveClip('c50a', 96000)")
    ben.click(f".track-header[data-track={far}] .mute")

    wait_for(lambda: (t := lanes.document()["tracks"][far])["name"] == "Far away"
             and t["gain_db"] == -12 and t["mute"] is True)
    ana.wait_for_function(f"window.daw.project.roots.tracks.get('{far}').get('mute') === true")
    assert ana.locator(f".row[data-track={far}]").count() == 0  # nothing drawn out of view
    scroll(ana, top=45 * ROW)
    header = f".track-header[data-track={far}]"
    ana.wait_for_selector(header)
    assert ana.locator(f"{header} .name").input_value() == "Far away"
    assert ana.locator(f"{header} .fader").input_value() == "-12"
    assert ana.locator(f"{header} .mute").get_attribute("aria-pressed") == "true"
    assert ana.locator(".clip[data-clip=c50a]").get_attribute("data-position") == "96000"
    # And the other way round: Ana's edit in view reaches Ben's page once he scrolls back.
    ana.locator(f"{header} .fader").fill("3")
    wait_for(lambda: lanes.document()["tracks"][far]["gain_db"] == 3)
    scroll(ben, top=0)
    ben.wait_for_selector(f".row[data-track={track_id(0)}]")
    scroll(ben, top=45 * ROW)
    ben.wait_for_function(f"document.querySelector('{header} .fader').value === '3'")
    assert ana_log.errors() == [] and ben_log.errors() == []
    ana.context.close()
    ben.context.close()


def test_peaks_are_fetched_only_for_clips_in_view_and_kept(lanes: Lanes) -> None:
    context = lanes.browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    asked: list[str] = []
    # Clips name their audio by asset id: the track whose clips play each id.
    clips = lanes.document()["clips"]
    track_of = {clips[f"c{i:02d}a"]["source"]: track_id(i) for i in range(TRACKS)}
    assert len(track_of) == TRACKS  # one asset per track

    def note(request: Any) -> None:
        if "/peaks?" in request.url:
            source = parse_qs(urlparse(request.url).query)["source"][0]
            asked.append(track_of.get(source, source))  # any other source fails the test

    page.on("request", note)
    page.goto(lanes.url("ana"))
    page.wait_for_selector("body[data-ready=true]")
    all_drawn(page)
    # The rows around the view mount once those in it are drawn.
    page.wait_for_function("window.daw.timeline.overscan > 1")
    all_drawn(page)

    def tracks_of_mounted_rows() -> set[str]:
        return set(mounted(page))

    first = tracks_of_mounted_rows()
    assert set(asked) == first and len(asked) == len(first)  # once each, none out of view
    assert len(first) < TRACKS // 2
    scroll(page, top=10**6)
    page.wait_for_selector(f".row[data-track={track_id(TRACKS - 1)}]")
    all_drawn(page)
    assert set(asked) == first | tracks_of_mounted_rows()
    assert len(asked) == len(set(asked))
    before = len(asked)
    scroll(page, top=0)  # back: drawn at once from the cache, nothing asked again
    page.wait_for_selector(f".row[data-track={track_id(0)}] canvas[data-peaks=drawn]")
    assert page.evaluate("[...document.querySelectorAll('.clip canvas')]"
                         ".every(c => c.dataset.peaks === 'drawn')")
    assert len(asked) == before
    context.close()


def test_a_clip_far_to_the_right_mounts_when_scrolled_to(lanes: Lanes) -> None:
    page, log = open_page(lanes.browser, lanes.url("ana"))
    assert page.locator(".clip[data-clip=far]").count() == 0
    zoom = page.evaluate("window.daw.timeline.zoom")
    scroll(page, left=FAR / RATE * zoom - 200)
    page.wait_for_selector(".clip[data-clip=far] canvas[data-peaks=drawn]")
    assert page.locator(".clip[data-clip=c00a]").count() == 0  # the start is out of reach now
    scroll(page, left=0)
    page.wait_for_selector(".clip[data-clip=c00a]")
    page.wait_for_selector(".clip[data-clip=far]", state="detached")
    assert log.errors() == []
    page.context.close()


def test_selection_keys_focus_and_drags_work_across_mounting(lanes: Lanes) -> None:
    page, log = open_page(lanes.browser, lanes.url("ana"))
    page.locator(".clip[data-clip=c02b]").click()
    assert "selected" in page.locator(".clip[data-clip=c02b]").get_attribute("class")
    scroll(page, top=10**6)
    page.wait_for_selector(".clip[data-clip=c02b]", state="detached")
    page.keyboard.press("Delete")  # the selection outlives its element
    wait_for(lambda: "c02b" not in lanes.document()["clips"])
    page.keyboard.press("Control+z")
    wait_for(lambda: "c02b" in lanes.document()["clips"])
    scroll(page, top=0)
    page.wait_for_selector(".clip[data-clip=c02b].selected")
    # A row holding the focus stays while it is scrolled out of view (typing goes on there).
    name = f".track-header[data-track={track_id(3)}] .name"
    page.click(name)
    scroll(page, top=10**6)
    page.wait_for_selector(f".row[data-track={track_id(TRACKS - 1)}]")
    assert page.evaluate(f"document.activeElement === document.querySelector('{name}')")
    page.keyboard.type(" (lead)")
    page.keyboard.press("Enter")
    wait_for(lambda: lanes.document()["tracks"][track_id(3)]["name"] == "Track 3 (lead)")
    # A clip dragged down onto the next lane (and 2 s on, clear of its clips) lands there.
    scroll(page, top=0)
    page.evaluate("document.activeElement.blur()")
    zoom = page.evaluate("window.daw.timeline.zoom")
    clip = page.locator(".clip[data-clip=c05b]").bounding_box()
    x, y = clip["x"] + clip["width"] / 2, clip["y"] + clip["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + zoom, y + ROW / 2, steps=3)
    page.mouse.move(x + 2 * zoom, y + ROW, steps=3)
    page.mouse.up()
    wait_for(lambda: lanes.document()["clips"]["c05b"]["track"] == track_id(6))
    assert lanes.document()["clips"]["c05b"]["position"] == pytest.approx(4 * RATE, abs=RATE / 50)
    page.wait_for_selector(f".lane[data-track={track_id(6)}] .clip[data-clip=c05b]")
    assert log.errors() == []
    page.context.close()
