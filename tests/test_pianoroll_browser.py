"""The piano roll (web/src/pianoroll.js) in headless Chromium: notes drawn, moved,
resized, re-velocitied and deleted with the mouse reach the server's document and its
render; the quantise/transpose buttons use the server's note edits; Web MIDI input
(a MIDIAccess stand-in injected by this test only: Chromium has no virtual MIDI port
here) records notes at the page's playhead; *Follow tempo* makes a clip's notes keep their
beats through the tempo map, in the document and the server's render."""

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
    wait_for,
)

from collab.store import open_store
from collab.tokens import Role, TokenSigner
from dawserver.projects import import_session
from dsp_core.midi import Instrument, MidiClip
from dsp_core.session import Session, Track

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(180)]

RATE = 48000
STEP = RATE * 60 // 120 // 4  # a 1/16 note at 120 BPM: 6000 frames
CLIP = 2 * RATE  # the clip's length: 720 px wide, 45 px per 1/16
ROW = 8
HIGHEST = 84  # the grid's top row while no note is above 80

#: A MIDIAccess with one input whose messages the test sends (window.__midi.send).
FAKE_MIDI = """
(() => {
  const input = { id: 'k', name: 'Test keyboard', onmidimessage: null }
  window.__midi = { send: (data) => input.onmidimessage &&
    input.onmidimessage({ data: new Uint8Array(data) }) }
  navigator.requestMIDIAccess = async () => ({ inputs: new Map([['k', input]]),
    outputs: new Map() })
})()
"""


@dataclass
class Studio:
    server: ServerProcess
    browser: Any
    signer: TokenSigner

    def url(self) -> str:
        token = self.signer.issue("roll", Role.EDITOR, "ana")
        return f"{self.server.url}/?project=roll&token={token}"

    def token(self) -> str:
        return self.signer.issue("roll", Role.VIEWER, "checker")

    def notes(self) -> list[tuple[int, int, int, int]]:
        clips = self.server.document("roll", self.token())["midi_clips"]
        return sorted((n["pitch"], n["velocity"], clip["position"] + n["start"], n["length"])
                      for clip in clips.values() for n in clip["notes"].values())

    def render(self) -> np.ndarray:
        body = self.server.get(f"/projects/roll/render?frames={CLIP}", self.token())
        return sf.read(io.BytesIO(body), dtype="float32")[0][:, 0]


@pytest.fixture
def studio(tmp_path) -> Iterator[Studio]:
    from playwright.sync_api import sync_playwright

    track = Track("keys", "Keys", instrument=Instrument("synth", {"attack_ms": 0.0,
                                                                  "release_ms": 1.0}),
                  midi_clips=[MidiClip(0, CLIP, [], id="m1")])
    data = tmp_path / "data"
    data.mkdir()

    async def create() -> None:
        async with open_store(None, data) as store:
            await import_session(store, Session(name="Roll", sample_rate=RATE, tracks=[track]),
                                 project_id="roll")

    asyncio.run(create())
    with ServerProcess(data, free_port()) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield Studio(server, browser, TokenSigner.from_data_dir(data))
        finally:
            browser.close()


def open_roll(studio: Studio, init_script: str | None = None) -> tuple[Any, Any, dict]:
    page, log = open_page(studio.browser, studio.url(), viewport=(1500, 1500))
    if init_script:
        page.add_init_script(init_script)
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
    page.click(".track-header[data-track=keys]")
    page.wait_for_selector(".pr-grid[data-clip=m1]")
    page.locator(".pr-grid").scroll_into_view_if_needed()
    return page, log, page.locator(".pr-grid").bounding_box()


def at(box: dict, frame: float, pitch: int) -> tuple[float, float]:
    return (box["x"] + frame * 720 / CLIP + 1, box["y"] + (HIGHEST - pitch) * ROW + ROW / 2)


def test_a_note_drawn_edited_and_deleted_by_mouse_is_heard(studio: Studio) -> None:
    assert not studio.render().any()
    page, log, box = open_roll(studio)
    page.mouse.click(*at(box, 2 * STEP, 60))
    assert wait_for(lambda: studio.notes()) == [(60, 100, 2 * STEP, 4 * STEP)]
    heard = studio.render()
    assert not heard[: 2 * STEP].any()
    assert np.abs(heard[2 * STEP + 10: 6 * STEP]).max() > 0.01
    assert np.abs(heard[6 * STEP + 200:]).max() < 1e-3  # released at its end
    # move it one 1/16 later and two semitones up
    page.mouse.move(*at(box, 3 * STEP, 60))
    page.mouse.down()
    page.mouse.move(*at(box, 4 * STEP, 62), steps=4)
    page.mouse.up()
    assert wait_for(lambda: (n := studio.notes()) and n[0][0] == 62 and n[0][2] == 3 * STEP
                    and n) == [(62, 100, 3 * STEP, 4 * STEP)]
    # its right edge one 1/16 further: longer
    right = box["x"] + 7 * STEP * 720 / CLIP - 2
    y = at(box, 0, 62)[1]
    page.mouse.move(right, y)
    page.mouse.down()
    page.mouse.move(right + 45, y, steps=4)
    page.mouse.up()
    wait_for(lambda: studio.notes()[0][3] == 5 * STEP)
    # the wheel over it: louder
    page.mouse.move(*at(box, 4 * STEP, 62))
    page.mouse.wheel(0, -100)
    wait_for(lambda: studio.notes()[0][1] == 108)
    heard = studio.render()
    assert not heard[: 3 * STEP].any() and np.abs(heard[3 * STEP + 10: 8 * STEP]).max() > 0.01
    # the server's edits: transpose up a semitone
    page.click(".pr-edit[data-edit='+1']")
    wait_for(lambda: studio.notes()[0][0] == 63)
    page.dblclick(".pr-note")
    wait_for(lambda: studio.notes() == [])
    assert not studio.render().any()
    assert not log.errors(), log.messages


def test_a_note_dragged_above_the_grid_top_lands_where_it_is_dropped(studio: Studio) -> None:
    """The grid grows a row when a note rises above 80; while a note is being dragged
    the rows stay put, so the pointer's row keeps its pitch (each echo of the drag used
    to read the same spot a semitone higher, and the note ran away upward)."""
    page, log, box = open_roll(studio)
    page.mouse.click(*at(box, 2 * STEP, 78))
    assert wait_for(lambda: studio.notes()) == [(78, 100, 2 * STEP, 4 * STEP)]
    page.mouse.move(*at(box, 3 * STEP, 78))
    page.mouse.down()
    for pitch in range(79, 84):  # a semitone at a time, each move's echo back first
        page.mouse.move(*at(box, 3 * STEP, pitch))
        wait_for(lambda pitch=pitch: studio.notes()[0][0] >= pitch)
        page.wait_for_timeout(100)
    page.mouse.up()
    page.wait_for_timeout(300)
    assert studio.notes() == [(83, 100, 2 * STEP, 4 * STEP)]
    # released, the grid fits the note again: its top row is four above it
    page.wait_for_function("document.querySelector('.pr-note').style.top === '32px'")
    assert not log.errors(), log.messages


def test_a_peers_note_shows_up_live(studio: Studio) -> None:
    page, log, box = open_roll(studio)
    other, _, other_box = open_roll(studio)
    page.mouse.click(*at(box, 4 * STEP, 67))
    other.wait_for_selector(".pr-note[data-pitch='67']", timeout=10000)
    page.close()
    other.close()
    assert not log.errors()


def test_web_midi_notes_land_at_the_playhead(studio: Studio) -> None:
    page, log, _ = open_roll(studio, FAKE_MIDI)
    page.click(".pr-midi")
    page.wait_for_selector(".pr-midi.on")
    page.click(".transport .play")
    page.wait_for_function("window.daw.transport.playhead() > 2400")
    times = page.evaluate("""async () => {
      const wait = (ms) => new Promise((r) => setTimeout(r, ms))
      const out = []
      for (const key of [60, 64]) {
        out.push(window.daw.transport.playhead())
        window.__midi.send([0x90, key, 90])
        await wait(250)
        window.__midi.send([0x80, key, 0])
        out.push(window.daw.transport.playhead())
        await wait(100)
      }
      return out
    }""")
    notes = wait_for(lambda: len(n := studio.notes()) == 2 and n)
    tolerance = 0.02 * RATE  # the playhead read around each message
    for (pitch, velocity, start, length), on, off, key in zip(
            notes, times[::2], times[1::2], (60, 64), strict=True):
        assert (pitch, velocity) == (key, 90)
        assert abs(start - on) <= tolerance and abs(start + length - off) <= tolerance
    assert not log.errors(), log.messages


def onset(audio: np.ndarray) -> int:
    """The first frame that sounds."""
    return int(np.flatnonzero(np.abs(audio) > 1e-3)[0])


def test_follow_tempo_on_a_midi_clip_keeps_its_notes_on_their_beats(studio: Studio) -> None:
    page, log, box = open_roll(studio)
    other, other_log, _ = open_roll(studio)
    page.mouse.click(*at(box, 3 * STEP, 60))  # beat 0.75 at 120 BPM: 0.375 s
    wait_for(lambda: studio.notes())
    # The tempo halves from beat 0.5 (0.25 s) on; the clip does not follow yet: still 0.375 s.
    page.evaluate("window.daw.project.setTempoChange(null, 0, 120);"
                  "window.daw.project.setTempoChange(null, 0.5, 60)")
    follow = page.locator(".pr-follow")
    assert not follow.is_checked()
    assert page.locator(".pr-source-bpm").get_attribute("placeholder") == "120"
    wait_for(lambda: len(studio.server.document("roll", studio.token())["tempos"]) == 2)
    assert onset(studio.render()) == pytest.approx(3 * STEP, abs=16)

    # Switched on, it follows from the tempo at its start: beat 0.75 now plays at 0.5 s.
    follow.check()
    clip = wait_for(lambda: (c := studio.server.document("roll", studio.token())[
        "midi_clips"]["m1"]).get("follow_tempo") and c)
    assert clip["source_bpm"] == 120
    assert onset(studio.render()) == pytest.approx(RATE // 2, abs=16)
    other.wait_for_function("document.querySelector('.pr-follow').checked")
    assert other.locator(".pr-source-bpm").input_value() == "120"

    # A tempo no clip is written at is refused with a message; switched off, it plays as written.
    page.locator(".pr-source-bpm").fill("5")
    page.locator(".pr-source-bpm").press("Enter")
    page.wait_for_selector(".toast.error.show")
    assert "20 to 999 BPM" in page.locator(".toast").inner_text()
    follow.uncheck()
    wait_for(lambda: studio.server.document("roll", studio.token())["midi_clips"]["m1"][
        "follow_tempo"] is False)
    assert studio.server.document("roll", studio.token())["midi_clips"]["m1"]["source_bpm"] == 120
    assert onset(studio.render()) == pytest.approx(3 * STEP, abs=16)
    assert not log.errors(), log.messages
    assert not other_log.errors()
