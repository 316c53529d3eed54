"""Tempo and meter changes edited on the page's ruler (web/src/time_changes.js), written to
the document's ``tempos`` and ``meters`` roots, and a clip's warp markers added, dragged,
nudged and removed (web/src/warp_markers.js, web/src/clip_time.js), in headless Chromium."""

from __future__ import annotations

import asyncio
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
    wait_for,
)

from collab.store import open_store
from collab.tokens import Role, TokenSigner
from dawserver.asset_store import AssetStore
from dawserver.projects import import_session
from dsp_core.session import Clip, Session, Track

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(180)]
RATE = 48000


@dataclass
class Studio:
    server: ServerProcess
    browser: Any
    signer: TokenSigner

    def url(self, who: str = "ana") -> str:
        return f"{self.server.url}/?project=tm&token={self.signer.issue('tm', Role.EDITOR, who)}"

    def document(self) -> dict[str, Any]:
        return self.server.document("tm", self.signer.issue("tm", Role.VIEWER, "checker"))


@pytest.fixture
def studio(tmp_path) -> Iterator[Studio]:
    from playwright.sync_api import sync_playwright

    data = tmp_path / "data"
    data.mkdir()

    async def create() -> None:
        async with open_store(None, data) as store:
            await import_session(store, Session(name="Tempo", sample_rate=RATE,
                                                tracks=[Track("t1", "One")]), project_id="tm")

    asyncio.run(create())
    with ServerProcess(data, free_port()) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield Studio(server, browser, TokenSigner.from_data_dir(data))
        finally:
            browser.close()


def _ruler_x(page: Any, seconds: float) -> tuple[float, float]:
    box = page.locator(".ruler").bounding_box()
    zoom = page.evaluate("window.daw.timeline.zoom")
    return box["x"] + seconds * zoom, box["y"] + 5


def test_tempo_and_meter_changes_are_added_moved_and_removed_on_the_ruler(
        studio: Studio) -> None:
    page, log = open_page(studio.browser, studio.url())
    page.locator(".ruler").wait_for()
    page.evaluate("window.daw.timeline.setZoom(100)")  # 100 px a second
    # Double-click near beat 4 (2 s at the transport's 120 bpm): a tempo change there.
    page.once("dialog", lambda dialog: dialog.accept("60"))
    page.mouse.dblclick(*_ruler_x(page, 2.1))
    tempos = wait_for(lambda: studio.document().get("tempos") or None)
    # the first change after the start also writes down the tempo that held before it
    assert sorted((c["beat"], c["bpm"]) for c in tempos.values()) == [(0.0, 120.0), (4.0, 60.0)]
    tempo_id = next(key for key, c in tempos.items() if c["beat"] == 4.0)
    flag = page.locator(f".time-change.tempo[data-change='{tempo_id}']")
    assert flag.inner_text() == "♩=60↗"  # its label and its ramp switch
    # The grid follows: bar 3 (beat 8) now lies 2 s + 4 beats at 60 bpm = 6 s in.
    page.wait_for_function("window.daw.project.tempoMap().beatToSeconds(8) === 6")

    # Drag it one second later: at 120 bpm before it, that is beat 6.
    box = flag.bounding_box()
    x, y = box["x"] + 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 100, y, steps=5)
    page.mouse.up()
    wait_for(lambda: studio.document()["tempos"][tempo_id]["beat"] == 6.0)
    assert studio.document()["tempos"][tempo_id]["bpm"] == 60.0

    # Double-click the flag: a new tempo.
    page.once("dialog", lambda dialog: dialog.accept("90"))
    page.locator(f".time-change.tempo[data-change='{tempo_id}']").dblclick(
        position={"x": 4, "y": 5})  # on its label, not its ramp switch
    wait_for(lambda: studio.document()["tempos"][tempo_id]["bpm"] == 90.0)

    # The ramp switch on the start's flag: 120 BPM glides to 90 over the 6 beats.
    start_id = next(key for key, c in studio.document()["tempos"].items() if c["beat"] == 0)
    page.locator(f".time-change.tempo[data-change='{start_id}'] .ramp-toggle").click()
    wait_for(lambda: studio.document()["tempos"][start_id].get("ramp") is True)
    page.wait_for_function("window.daw.project.tempoMap().bpmAt(3) === 105")
    page.locator(f".time-change.tempo.ramp[data-change='{start_id}'] .ramp-toggle.on").wait_for()
    # switching it off: the tempo holds again
    page.locator(f".time-change.tempo[data-change='{start_id}'] .ramp-toggle").click()
    wait_for(lambda: "ramp" not in studio.document()["tempos"][start_id])
    page.wait_for_function("window.daw.project.tempoMap().bpmAt(3) === 120")

    # Alt + double-click near bar 2 (beat 4, 2 s): a meter change of 3/4 from bar index 1.
    page.once("dialog", lambda dialog: dialog.accept("3/4"))
    page.keyboard.down("Alt")
    page.mouse.dblclick(*_ruler_x(page, 1.9))
    page.keyboard.up("Alt")
    meters = wait_for(lambda: studio.document().get("meters") or None)
    assert sorted((m["bar"], m["numerator"], m["denominator"]) for m in meters.values()) == [
        (0, 4, 4), (1, 3, 4)]
    meter_id = next(key for key, m in meters.items() if m["bar"] == 1)
    assert page.locator(f".time-change.meter[data-change='{meter_id}']").inner_text() == "3/4"

    # A meter that is no meter is refused with a message; the document keeps the old one.
    page.once("dialog", lambda dialog: dialog.accept("3/5"))
    page.locator(f".time-change.meter[data-change='{meter_id}']").dblclick()
    page.wait_for_selector(".toast.error.show")
    assert "meter" in page.locator(".toast").inner_text()
    assert studio.document()["meters"][meter_id]["denominator"] == 4

    # Right-click removes each.
    page.locator(f".time-change.tempo[data-change='{tempo_id}']").click(button="right")
    page.locator(f".time-change.meter[data-change='{meter_id}']").click(button="right")
    wait_for(lambda: tempo_id not in studio.document()["tempos"]
             and meter_id not in studio.document()["meters"])
    document = studio.document()
    assert [c["beat"] for c in document["tempos"].values()] == [0.0]
    assert [m["bar"] for m in document["meters"].values()] == [0]
    assert page.locator(".time-change").count() == 2  # the two at the start
    assert log.errors() == []


def test_a_flag_dragged_while_a_collaborator_edits_it_stays_under_the_pointer(
        studio: Studio) -> None:
    page, log = open_page(studio.browser, studio.url())
    ben, _ = open_page(studio.browser, studio.url("ben"))
    page.locator(".ruler").wait_for()
    page.evaluate("window.daw.timeline.setZoom(100)")  # 100 px a second
    page.evaluate("window.daw.project.setTempoChange(null, 0, 120);"
                  "window.daw.project.setTempoChange(null, 4, 60)")
    tempos = wait_for(lambda: len(studio.document().get("tempos") or {}) == 2
                      and studio.document()["tempos"])
    tempo_id = next(key for key, c in tempos.items() if c["beat"] == 4.0)
    flag = f".time-change.tempo[data-change='{tempo_id}']"
    box = page.locator(flag).bounding_box()
    x, y = box["x"] + 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 50, y, steps=3)  # halfway

    # Ben sets the flag's tempo: Ana's ruler is redrawn, every flag replaced.
    ben.wait_for_function("window.daw.project.tempoMap().tempos.length === 2")
    ben.evaluate(f"window.daw.project.setTempoChange({tempo_id!r}, 4, 75, false)")
    page.wait_for_function(f"document.querySelector(\"{flag}\").textContent"
                           ".startsWith('♩=75')")
    # the new flag is the one under the pointer, where the drag has it
    assert page.locator(f"{flag}.dragging").count() == 1
    assert page.locator(flag).evaluate("el => parseFloat(el.style.left)") == 250

    page.mouse.move(x + 100, y, steps=3)
    page.mouse.up()
    wait_for(lambda: studio.document()["tempos"][tempo_id]["beat"] == 6.0)
    # the move keeps Ben's tempo: the drag wrote the place, not the value it began with
    assert studio.document()["tempos"][tempo_id]["bpm"] == 75.0
    assert page.locator(f"{flag}.dragging").count() == 0
    assert log.errors() == []


@pytest.fixture
def warped(tmp_path) -> Iterator[Studio]:
    """One 2 s clip of a 2 s tone with warp markers at 0 s and 1 s (playing as recorded)."""
    from playwright.sync_api import sync_playwright

    source = tmp_path / "tone.wav"
    t = np.arange(2 * RATE) / RATE
    sf.write(source, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), RATE)
    data = tmp_path / "data"
    data.mkdir()
    clip = Clip(str(source), 0, 2 * RATE, id="w1", warp=((0, 0), (RATE, RATE)))

    async def create() -> None:
        async with open_store(None, data) as store:
            await import_session(store, Session(name="Warp", sample_rate=RATE, tracks=[
                Track("t1", "One", clips=[clip])]), project_id="tm",
                assets=AssetStore(data / "assets"))

    asyncio.run(create())
    with ServerProcess(data, free_port()) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield Studio(server, browser, TokenSigner.from_data_dir(data))
        finally:
            browser.close()


def _drag_marker(page: Any, index: int, dx: float, hold: str = "") -> None:
    """Drag marker ``index`` of clip w1 ``dx`` pixels, holding the key ``hold`` if given."""
    handle = page.locator(f".clip[data-clip=w1] .warp-marker[data-index='{index}']")
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    if hold:
        page.keyboard.down(hold)
    page.mouse.down()
    page.mouse.move(x + dx, y, steps=5)
    page.mouse.up()
    if hold:
        page.keyboard.up(hold)


def test_warp_markers_are_dragged_on_a_clip(warped: Studio) -> None:
    page, log = open_page(warped.browser, warped.url())
    page.evaluate("window.daw.timeline.setZoom(100)")  # 100 px a second: 480 frames a px
    handles = page.locator(".clip[data-clip=w1] .warp-marker")
    handles.nth(1).wait_for()
    assert handles.count() == 2
    # A marker stops where its segment would stretch past the engine's 0.25 ... 4: dragged
    # far towards its neighbour, the source's first second plays in a quarter second.
    _drag_marker(page, 1, -300)
    assert wait_for(lambda: (w := warped.document()["clips"]["w1"]["warp"])[1][1] < RATE
                    and w) == [[0, 0], [RATE, RATE // 4]]
    # Dragged on to about 1.5 s: it snaps to that beat (120 BPM), source 1 s plays there,
    # the first second slows down.
    _drag_marker(page, 1, 125)
    warp = wait_for(lambda: (w := warped.document()["clips"]["w1"]["warp"])[1][1] > RATE and w)
    assert warp == [[0, 0], [RATE, 3 * RATE // 2]]
    assert warped.document()["clips"]["w1"]["position"] == 0  # the clip itself stays
    page.wait_for_selector(".clip[data-clip=w1].stretched")
    # The grid is the tempo map's: at 90 BPM from beat 2 (1 s), beat 3 is at 5/3 s, and
    # a marker dragged 4 px short of it lands on it; with Ctrl held it lands where dropped.
    page.evaluate("window.daw.project.setTempoChange('start', 0, 120); "
                  "window.daw.project.setTempoChange('slower', 2, 90)")
    _drag_marker(page, 1, 13)
    assert wait_for(lambda: (w := _warp(warped))[1][1] != 3 * RATE // 2 and w)[1] == [
        RATE, 5 * RATE // 3]
    _drag_marker(page, 1, 3, hold="Control")
    free = wait_for(lambda: (w := _warp(warped))[1][1] != 5 * RATE // 3 and w)[1]
    assert free[1] == pytest.approx(5 * RATE // 3 + 3 * 480, abs=480)
    assert log.errors() == []


def test_a_warp_marker_dragged_while_a_collaborator_adds_one_keeps_theirs(
        warped: Studio) -> None:
    page, log = open_page(warped.browser, warped.url())
    ben, _ = open_page(warped.browser, warped.url("ben"))
    page.evaluate("window.daw.timeline.setZoom(100)")  # 100 px a second: 480 frames a px
    handles = page.locator(".clip[data-clip=w1] .warp-marker")
    handles.nth(1).wait_for()
    box = handles.nth(1).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 25, y, steps=3)  # halfway to 1.5 s

    # Ben pins the source's half second: Ana's marker is now the third, its handle redrawn.
    ben.locator(".clip[data-clip=w1] .warp-marker").nth(1).wait_for()
    ben.evaluate(f"window.daw.project.setWarp('w1', [[0, 0], [{RATE // 2}, {RATE // 2}], "
                 f"[{RATE}, {RATE}]])")
    handles.nth(2).wait_for()
    dragging = page.locator(".clip[data-clip=w1] .warp-marker.dragging")
    assert dragging.count() == 1 and dragging.get_attribute("data-index") == "2"

    page.mouse.move(x + 50, y, steps=3)  # on to 1.5 s, a beat at 120 BPM
    page.mouse.up()
    warp = wait_for(lambda: (w := _warp(warped))[-1][1] != RATE and w)
    assert warp == [[0, 0], [RATE // 2, RATE // 2], [RATE, 3 * RATE // 2]]
    assert dragging.count() == 0
    assert log.errors() == []


def _warp(studio: Studio) -> list[list[int]] | None:
    return studio.document()["clips"]["w1"].get("warp")


def _strip_point(page: Any, seconds: float) -> tuple[float, float]:
    """A point on clip w1's warp strip (its top band) at ``seconds`` on the timeline."""
    box = page.locator(".clip[data-clip=w1]").bounding_box()
    return box["x"] + seconds * page.evaluate("window.daw.timeline.zoom"), box["y"] + 6


def test_warp_markers_are_added_and_removed_and_a_peer_sees_them(warped: Studio) -> None:
    page, log = open_page(warped.browser, warped.url())
    other, other_log = open_page(warped.browser, warped.url())
    page.evaluate("window.daw.timeline.setZoom(100)")  # 100 px a second: 480 frames a px
    handles = page.locator(".clip[data-clip=w1] .warp-marker")
    seen = other.locator(".clip[data-clip=w1] .warp-marker")
    handles.nth(1).wait_for()

    # A double-click on the warp strip near a beat adds a marker on it (0.5 s at 120 BPM)
    # pinning the source frame that plays there now: source and timeline frame equal (the
    # clip plays as recorded), so nothing moves; the other page shows it.
    page.mouse.dblclick(*_strip_point(page, 0.47))
    warp = wait_for(lambda: len(w := _warp(warped)) == 3 and w)
    assert warp == [[0, 0], [RATE // 2, RATE // 2], [RATE, RATE]]
    seen.nth(2).wait_for()

    # Keyboard: the new marker focused, ← nudges it 10 ms earlier, Delete removes it
    # (not the clip, and the playhead stays).
    assert handles.nth(1).get_attribute("aria-label") == "Warp marker 2"
    handles.nth(1).focus()
    page.keyboard.press("ArrowLeft")
    wait_for(lambda: _warp(warped)[1][1] == warp[1][1] - 480)
    assert _warp(warped)[1][0] == warp[1][0]
    page.keyboard.press("Delete")
    wait_for(lambda: len(_warp(warped)) == 2)
    assert _warp(warped) == [[0, 0], [RATE, RATE]]
    assert "w1" in warped.document()["clips"]
    wait_for(lambda: seen.count() == 2)

    # Right-click removes one, Alt-click the last: the clip's `warp` key goes.
    handles.nth(1).click(button="right")
    wait_for(lambda: _warp(warped) == [[0, 0]])
    handles.nth(0).click(modifiers=["Alt"])
    wait_for(lambda: _warp(warped) is None)
    wait_for(lambda: seen.count() == 0)

    # The Stretch & pitch panel adds one at the playhead, and clears them.
    page.mouse.click(*_strip_point(page, 0.2))  # select the clip
    page.locator(".clip-warp-add").wait_for()
    page.evaluate(f"window.daw.transport.seek({5 * RATE // 4})")
    page.click(".clip-warp-add")
    assert wait_for(lambda: _warp(warped)) == [[5 * RATE // 4, 5 * RATE // 4]]
    seen.nth(0).wait_for()
    # Again at the same place: refused with a message, the document keeps the one.
    page.click(".clip-warp-add")
    page.wait_for_selector(".toast.error.show")
    assert "already there" in page.locator(".toast").inner_text()
    assert len(_warp(warped)) == 1

    # A clip plays warp markers or follows the tempo, not both: each switch waits for the
    # other to be off (the engine refuses a clip with both).
    page.evaluate("window.daw.project.setClipTime('w1', { source_bpm: 120 })")
    page.wait_for_selector(".clip-follow:disabled")
    page.click(".clip-warp-clear")
    wait_for(lambda: _warp(warped) is None)
    page.locator(".clip-follow:enabled").check()
    wait_for(lambda: warped.document()["clips"]["w1"].get("follow_tempo") is True)
    page.wait_for_selector(".clip-warp-add:disabled")
    page.mouse.dblclick(*_strip_point(page, 0.5))
    page.wait_for_function(
        "document.querySelector('.toast').textContent.includes('follows the tempo')")
    assert _warp(warped) is None
    assert log.errors() == [] and other_log.errors() == []
