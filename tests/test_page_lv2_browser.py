"""LV2 plug-ins on the page in headless Chromium.

A failing plug-in (web/src/bypassed.js): while the live mix plays, the test plug-in is
switched to output NaN; the server bypasses it and both pages (the editor's and a
viewer's that asked nothing) show the error on the effect, the track and the top bar
without polling; after the control is fixed, the editor's Restart clears it for both.

The installed plug-ins (web/src/lv2.js, GET /lv2/plugins): an LV2 effect added from the
effect picker's search reaches the server's document, its card shows the plug-in's name
and a control per port, a moved control is written by symbol, and its ports are
automation lanes; a MIDI track's instrument picker gives it the test LV2 instrument, whose
controls show on its card, and the server's render then plays its notes.
"""

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
from lv2_helpers import INSTRUMENT, MISBEHAVE, MODES, lv2_path  # noqa: F401
from pagebrowser import (
    BROWSER_TEST,
    CHROMIUM,
    CHROMIUM_FLAGS,
    ServerProcess,
    open_page,
    ride,
    screenshot,
    wait_for,
)

from collab.automation import lanes_from_json, owner_from_json
from collab.store import open_store
from collab.tokens import Role, TokenSigner
from dawserver.asset_store import AssetStore
from dawserver.projects import import_session
from dsp_core.effects import EffectSpec
from dsp_core.midi import MidiClip, Note
from dsp_core.session import Clip, Session, Track

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(180), pytest.mark.usefixtures("lv2_path")]

RATE = 48000
CARD = ".effect[data-kind=lv2]"
BADGE = f"{CARD} .effect-error"
HEADER_BADGE = ".track-header[data-track=t1] .plugin-error"


@dataclass
class Studio:
    server: ServerProcess
    browser: Any
    signer: TokenSigner
    project: str

    def url(self, user: str, role: Role = Role.EDITOR) -> str:
        token = self.signer.issue(self.project, role, user)
        return f"{self.server.url}/?project={self.project}&token={token}"

    def token(self) -> str:
        return self.signer.issue(self.project, Role.VIEWER, "checker")

    def document(self) -> dict[str, Any]:
        return self.server.document(self.project, self.token())

    def render(self, seconds: float) -> np.ndarray:
        body = self.server.get(f"/projects/{self.project}/render?frames={int(seconds * RATE)}",
                               self.token())
        return sf.read(io.BytesIO(body), dtype="float32")[0]


@pytest.fixture
def studio(tmp_path) -> Iterator[Studio]:
    """``dawserver serve`` with one track through the misbehaving test plug-in."""
    from playwright.sync_api import sync_playwright

    source = tmp_path / "noise.wav"
    rng = np.random.default_rng(5)
    sf.write(source, (0.1 * rng.standard_normal(8 * RATE)).astype(np.float32), RATE)
    track = Track("t1", "Synth", channels=1, clips=[Clip(str(source), 0, 8 * RATE)],
                  effects=[EffectSpec("lv2", {"uri": MISBEHAVE}, id="fx-1")])
    keys = Track("keys", "Keys", channels=1, midi_clips=[MidiClip(
        0, 2 * RATE, [Note(60, 127, RATE // 10, RATE // 2)])])  # no instrument yet: silent
    data = tmp_path / "data"
    data.mkdir()

    async def create() -> None:
        async with open_store(None, data) as store:
            await import_session(store, Session(name="Plug", sample_rate=RATE,
                                                tracks=[track, keys]),
                                 project_id="plug", assets=AssetStore(data / "assets"))

    asyncio.run(create())
    with ServerProcess(data, free_port()) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield Studio(server, browser, TokenSigner.from_data_dir(data), "plug")
        finally:
            browser.close()


def select_track(page: Any, track: str = "t1", card: str = CARD) -> None:
    page.locator(f".track-header[data-track={track}]").click(position={"x": 12, "y": 30})
    page.wait_for_selector(card)


def test_a_plugin_failing_while_playing_shows_an_error_and_restart_clears_it(
        studio: Studio) -> None:
    ana, log = open_page(studio.browser, studio.url("ana"))
    ben, ben_log = open_page(studio.browser, studio.url("ben", Role.VIEWER))
    asked: list[str] = []  # ben's requests for the list once open: none, no polling
    ben.on("request", lambda r: "/lv2/" in r.url and "/lv2/plugins" not in r.url
           and asked.append(r.url))
    for page in (ana, ben):
        select_track(page)
        assert page.locator(BADGE).is_hidden() and page.locator(".lv2-alert").is_hidden()
    ana.evaluate("window.daw.project.setTransport({ position: 0, loop_enabled: false })")
    ana.click("button.listen")
    ana.wait_for_function("window.daw.live.pc?.connectionState === 'connected'", timeout=15000)
    ana.evaluate("document.activeElement && document.activeElement.blur()")
    ana.keyboard.press("Space")
    ana.evaluate(f"window.daw.project.setEffectParam('t1', 0, 'mode', {MODES['nan']})")
    for page in (ana, ben):  # both told by the server, while it plays
        page.wait_for_selector(BADGE, state="visible", timeout=15000)
        text = page.locator(BADGE).inner_text()
        assert "failed" in text.lower() and "NaN" in text and "fx-1" in text, text
        assert page.locator(HEADER_BADGE).is_visible()
        assert "bypassed" in page.locator(HEADER_BADGE).get_attribute("title")
        assert page.locator(".lv2-alert").inner_text().startswith("1 plug-in bypassed")
    assert ben.locator(f"{BADGE} .lv2-restart").is_disabled()  # a viewer cannot restart
    screenshot(ana, "lv2-bypassed")
    # the control that broke it fixed, the editor restarts it: cleared for both
    ana.evaluate(f"window.daw.project.setEffectParam('t1', 0, 'mode', {MODES['pass']})")
    ana.wait_for_timeout(500)  # the edit reaches the live mix's engine
    ana.locator(f"{BADGE} .lv2-restart").click()
    for page in (ana, ben):
        page.wait_for_selector(BADGE, state="hidden", timeout=15000)
        assert page.locator(HEADER_BADGE).is_hidden()
        assert page.locator(".lv2-alert").is_hidden()
    ana.wait_for_timeout(1000)  # it keeps playing, not bypassed again
    assert ana.locator(BADGE).is_hidden()
    ana.keyboard.press("Space")
    assert asked == []
    assert log.errors() == [] and ben_log.errors() == []
    ana.context.close()
    ben.context.close()


def test_an_lv2_effect_added_from_the_picker_reaches_the_document_with_its_control(
        studio: Studio) -> None:
    ana, log = open_page(studio.browser, studio.url("ana"))
    select_track(ana)
    picker = ".lv2-add select.lv2-plugin"
    ana.wait_for_selector(f"{picker} option[value='{MISBEHAVE}']", state="attached")
    assert ana.locator(f"{picker} option").count() > 1  # the server's other plug-ins too
    assert ana.locator(f"{picker} option[value='{INSTRUMENT}']").count() == 0  # no effect
    ana.fill(".lv2-add .lv2-search", "misbehaving")  # the search narrows the list
    assert ana.locator(f"{picker} option").all_inner_texts() == ["Misbehaving test plug-in"]
    ana.select_option(picker, MISBEHAVE)
    # a track added meanwhile (a collaborator's, as the page hears it) keeps what was
    # typed and picked: the panel once rebuilt its adders, and Add took the first plug-in
    tracks = ana.evaluate("window.daw.project.roots.tracks.size")
    ana.evaluate("window.daw.project.addTrack('Bass')")
    ana.wait_for_function("document.querySelectorAll('.rows .track-header').length === "
                          f"{tracks + 1}")
    assert ana.input_value(".lv2-add .lv2-search") == "misbehaving"
    assert ana.input_value(picker) == MISBEHAVE
    ana.click(".lv2-add button.add-lv2")
    ana.wait_for_function(f"document.querySelectorAll('{CARD}').length === 2")
    card = ana.locator(CARD).nth(1)
    assert card.locator(".effect-title strong").inner_text() == "Misbehaving test plug-in"
    assert card.locator("input[data-param]").evaluate_all(
        "els => els.map((e) => [e.dataset.param, e.min, e.max, e.value])") == [
        ["gain", "0", "4", "1"], ["delay", "0", "127", "0"]]
    assert card.locator("input[data-param=gain] + .readout").inner_text() == "Unity"
    card.locator("input[data-param=gain]").fill("2.5")

    def added() -> dict[str, Any] | None:
        effects = studio.document()["tracks"]["t1"]["effects"]
        return effects[1] if len(effects) == 2 and "gain" in effects[1]["params"] else None
    effect = wait_for(added)
    assert effect["kind"] == "lv2" and effect["enabled"] is True and effect["id"]
    assert effect["params"] == {"uri": MISBEHAVE, "gain": 2.5}
    assert card.locator("input[data-param=gain] + .readout").inner_text() == "2.5"
    # its ports are the effect's automation lanes, named by symbol
    ana.click(".track-header[data-track=t1] .auto-toggle")
    lanes = ana.locator(".auto[data-track=t1] select.auto-param option").evaluate_all(
        "els => els.map((e) => e.value)")
    assert {f"fx:{effect['id']}:{symbol}" for symbol in ("mode", "gain", "delay")} <= set(lanes)
    screenshot(ana, "lv2-effect-picker")
    assert log.errors() == []
    ana.context.close()


def test_an_enumeration_port_is_a_menu_of_its_labels_that_writes_the_value(
        studio: Studio) -> None:
    """misbehave's mode (lv2:enumeration, its scale points Pass, NaN, Hang, Crash,
    Denormal for 0 to 4) is chosen by name; the choice is written as the number."""
    ana, log = open_page(studio.browser, studio.url("ana"))
    select_track(ana)
    menu = ana.locator(f"{CARD} select[data-param=mode]")
    menu.wait_for()
    assert menu.locator("option").all_inner_texts() == [
        "Pass", "NaN", "Hang", "Crash", "Denormal"]
    assert menu.input_value() == "0"  # the port's default, by its label
    assert ana.locator(f"{CARD} input[data-param=mode]").count() == 0  # no slider
    menu.select_option(label="Denormal")

    def params() -> dict[str, Any]:
        return studio.document()["tracks"]["t1"]["effects"][0]["params"]
    wait_for(lambda: params().get("mode") == 4)
    assert params() == {"uri": MISBEHAVE, "mode": 4}
    # a value between the points (a peer's, automation's) shows as the number
    ana.evaluate("window.daw.project.history.stopCapturing(); "  # an undo step of its own
                 "window.daw.project.setEffectParam('t1', 0, 'mode', 2.5)")
    ana.wait_for_function(
        "document.querySelector('.effect[data-kind=lv2] select[data-param=mode]').value === '2.5'")
    assert menu.locator("option:checked").inner_text() == "2.5"
    ana.evaluate("window.daw.project.undo()")  # undone like any edit: back to Denormal
    ana.wait_for_function(
        "document.querySelector('.effect[data-kind=lv2] select[data-param=mode]').value === '4'")
    assert menu.locator("option").all_inner_texts()[-1] == "Denormal"  # the number gone
    wait_for(lambda: params().get("mode") == 4)
    screenshot(ana, "lv2-enumeration-menu")
    assert log.errors() == []
    ana.context.close()


def test_a_midi_tracks_instrument_picker_plays_an_lv2_instrument(studio: Studio) -> None:
    ana, log = open_page(studio.browser, studio.url("ana"))
    ana.evaluate("window.daw.project.setTrack('keys', 'solo', true)")  # t1's noise apart
    wait_for(lambda: studio.document()["tracks"]["keys"]["solo"])
    assert np.abs(studio.render(1.0)).max() == 0  # no instrument: its notes are silent
    select_track(ana, "keys", ".effect.instrument")
    picker = ".effect.instrument select.instrument-kind"
    ana.wait_for_selector(f"{picker} option[value='lv2:{INSTRUMENT}']", state="attached")
    assert ana.locator(f"{picker} option[value='lv2:{MISBEHAVE}']").count() == 0  # an effect
    assert ana.locator(".track-header[data-track=t1]").count() == 1
    assert ana.locator(".effect.instrument").count() == 1
    ana.select_option(picker, f"lv2:{INSTRUMENT}")
    ana.wait_for_selector(f".effect.instrument[data-uri='{INSTRUMENT}'] input[data-param=delay]")
    card = ana.locator(".effect.instrument")
    assert card.locator("input[data-param]").evaluate_all(
        "els => els.map((e) => [e.dataset.param, e.min, e.max, e.value])") == [
        ["delay", "0", "127", "0"], ["crash", "0", "1", "0"]]

    def chosen() -> dict[str, Any] | None:
        return studio.document()["tracks"]["keys"].get("instrument")
    instrument = wait_for(chosen)
    assert instrument == {"kind": "lv2", "params": {"uri": INSTRUMENT}, "zones": {}}
    card.locator("input[data-param=delay]").fill("10")
    wait_for(lambda: chosen()["params"].get("delay") == 10)

    def heard() -> tuple[np.ndarray] | None:
        out = studio.render(1.0)[:, 0]
        return (out,) if np.abs(out).max() > 0 else None
    [left] = wait_for(heard, timeout=20)  # the test instrument: a step while the note holds
    start, end = RATE // 10, RATE // 10 + RATE // 2
    assert np.abs(left[:start - 64]).max() == 0 and np.abs(left[end + 64:]).max() == 0
    assert np.abs(left[start + 64:end - 64]).min() > 0.1
    # the built-in synth from the same picker
    ana.select_option(picker, "synth")
    wait_for(lambda: chosen()["kind"] == "synth" and chosen()["params"] == {})
    assert ana.locator(".effect.instrument input[data-param]").count() == 0
    assert log.errors() == []
    ana.context.close()


def test_an_lv2_port_slider_moved_in_latch_during_playback_writes_its_lane(
        studio: Studio) -> None:
    """A plug-in port's slider records its ``fx:ID:SYMBOL`` lane as a fader does, and
    latch leaves the port's static value as it was."""
    lane = "fx:fx-1:gain"
    ana, log = open_page(studio.browser, studio.url("ana"))
    select_track(ana)
    slider = ana.locator(f"{CARD} input[data-param=gain]")
    slider.wait_for()  # the catalogue came: the strip's picker lists the ports
    ana.click(".track-header[data-track=t1] .auto-toggle")
    ana.select_option(".auto[data-track=t1] .auto-param", lane)
    ana.select_option(".auto[data-track=t1] .auto-mode", "latch")

    def points() -> list[Any]:
        track = studio.document()["tracks"]["t1"]
        found = lanes_from_json(track.get("automation"), owner_from_json(track)).get(lane)
        return found.sorted_points() if found else []
    wait_for(lambda: (studio.document()["tracks"]["t1"].get("automation") or {})
             .get(f"{lane}@") == "latch")
    ride(ana, slider, 0.3, 0.08, 8)  # from about 1.2 up to about 3.4 over ~0.4 s
    written = wait_for(lambda: [p for p in points() if p.id.startswith("w")]
                       if any(p.value > 2.0 for p in points()) else None)  # up from 1.2
    assert max(p.value for p in written) <= 4.0 and min(p.value for p in written) < 1.5
    assert "gain" not in studio.document()["tracks"]["t1"]["effects"][0]["params"]
    assert log.errors() == []
    ana.context.close()
