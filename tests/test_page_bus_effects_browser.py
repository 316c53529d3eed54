"""Aux buses' and the master's insert chains on the page, in headless Chromium.

The Effects panel's chain row (web/src/effects.js) names the selected track, each aux
bus and the master; choosing a bus shows its chain with the track's editing (add,
enable, parameters, a compressor's key, remove) writing to ``buses[id].effects``, which
the server's document holds, and another page sees each such edit live.
"""

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
    screenshot,
    wait_for,
)

from collab.store import open_store
from collab.tokens import Role, TokenSigner
from dawserver.asset_store import AssetStore
from dawserver.projects import import_session
from dsp_core.effects import EffectSpec
from dsp_core.midi import MidiClip, Note
from dsp_core.session import Bus, Clip, Send, Session, Track

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(180)]

RATE = 48000
PANEL = "section.effects"


@dataclass
class Studio:
    server: ServerProcess
    browser: Any
    signer: TokenSigner
    project: str

    def url(self, user: str, role: Role = Role.EDITOR) -> str:
        token = self.signer.issue(self.project, role, user)
        return f"{self.server.url}/?project={self.project}&token={token}"

    def buses(self) -> dict[str, Any]:
        token = self.signer.issue(self.project, Role.VIEWER, "checker")
        return self.server.document(self.project, token)["buses"]


@pytest.fixture
def studio(tmp_path) -> Iterator[Studio]:
    """``dawserver serve`` with a lead sending to the aux bus Verb, a MIDI track, and a
    limiter on the master."""
    from playwright.sync_api import sync_playwright

    source = tmp_path / "noise.wav"
    rng = np.random.default_rng(3)
    sf.write(source, (0.1 * rng.standard_normal(2 * RATE)).astype(np.float32), RATE)
    lead = Track("t1", "Lead", channels=1, clips=[Clip(str(source), 0, 2 * RATE)],
                 sends=[Send("verb", -6.0)])
    keys = Track("keys", "Keys", channels=1, midi_clips=[MidiClip(
        0, RATE, [Note(60, 100, 0, RATE // 2)])])
    master = Bus("master", "Master", effects=[EffectSpec("limiter", {"ceiling_db": -1.0},
                                                         id="fx-lim")])
    data = tmp_path / "data"
    data.mkdir()

    async def create() -> None:
        async with open_store(None, data) as store:
            await import_session(store, Session(name="Buses", sample_rate=RATE,
                                                tracks=[lead, keys], buses=[Bus("verb", "Verb")],
                                                master=master),
                                 project_id="buses", assets=AssetStore(data / "assets"))

    asyncio.run(create())
    with ServerProcess(data, free_port()) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield Studio(server, browser, TokenSigner.from_data_dir(data), "buses")
        finally:
            browser.close()


def choose(page: Any, owner: str, title: str) -> None:
    """Show the chain of ``owner`` (a bus id, or the selected track's) from the chain row."""
    page.locator(f"{PANEL} button.chain-owner[data-owner={owner}]").click()
    page.wait_for_function(
        f"document.querySelector('{PANEL} h3').textContent === 'Effects · {title}'")


def add(page: Any, kind: str) -> Any:
    """Add a built-in effect of ``kind`` to the chain shown; its card."""
    before = page.locator(f"{PANEL} .effect[data-kind={kind}]").count()
    page.select_option(f"{PANEL} select.add-effect-kind", kind)
    page.click(f"{PANEL} button.add-effect")
    page.wait_for_function(
        f"document.querySelectorAll('{PANEL} .effect[data-kind={kind}]').length === {before + 1}")
    return page.locator(f"{PANEL} .effect[data-kind={kind}]").nth(before)


def without_ids(effects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "id"} for e in effects]


def test_the_master_and_an_aux_bus_chain_are_edited_from_the_effects_panel(
        studio: Studio) -> None:
    ana, log = open_page(studio.browser, studio.url("ana"))
    row = ana.locator(f"{PANEL} button.chain-owner")
    assert row.evaluate_all("els => els.map((e) => [e.dataset.owner, e.textContent])") == [
        ["verb", "bus Verb"], ["master", "Master"]]  # no track selected yet
    # a MIDI track's chain has its instrument picker; a bus's has none
    ana.locator(".track-header[data-track=keys]").click(position={"x": 12, "y": 30})
    ana.wait_for_selector(f"{PANEL} select.instrument-kind")
    assert row.first.get_attribute("data-owner") == "keys"
    choose(ana, "master", "Master")
    assert ana.locator(f"{PANEL} select.instrument-kind").count() == 0
    assert ana.locator(f"{PANEL} button.chain-owner[data-owner=master]").get_attribute(
        "aria-pressed") == "true"
    assert ana.locator(f"{PANEL} .effect").evaluate_all(
        "els => els.map((e) => e.dataset.effect)") == ["fx-lim"]

    # the master: add a gain, move it, switch it off; remove the limiter, undo, remove again
    gain = add(ana, "gain")
    gain.locator("input[data-param=gain_db]").fill("-6")
    gain.locator(".effect-title input[type=checkbox]").uncheck()
    ana.wait_for_timeout(500)  # a separate undo step
    ana.locator(f"{PANEL} .effect[data-effect=fx-lim] .remove-effect").click()
    def kinds() -> list[str]:
        return [e["kind"] for e in studio.buses()["master"]["effects"]]
    wait_for(lambda: kinds() == ["gain"])
    ana.keyboard.press("Control+z")
    wait_for(lambda: kinds() == ["limiter", "gain"])
    ana.wait_for_selector(f"{PANEL} .effect[data-effect=fx-lim]")
    ana.locator(f"{PANEL} .effect[data-effect=fx-lim] .remove-effect").click()

    # an aux bus: a compressor keyed by the lead (not by itself nor the master), then a
    # delay added and removed
    choose(ana, "verb", "bus Verb")
    assert ana.locator(f"{PANEL} .effect").count() == 0
    compressor = add(ana, "compressor")
    key = compressor.locator("select.sidechain")
    assert sorted(key.locator("option").evaluate_all("els => els.map((e) => e.value)")) == [
        "", "keys", "t1"]
    key.select_option("t1")
    compressor.locator("input[data-param=threshold_db]").fill("-30")
    add(ana, "delay")
    ana.locator(f"{PANEL} .effect[data-kind=delay] .remove-effect").click()

    def settled() -> dict[str, Any] | None:
        buses = studio.buses()
        verb = buses["verb"]["effects"]
        done = (len(buses["master"]["effects"]) == 1 and len(verb) == 1
                and verb[0]["params"].get("threshold_db") == -30 and verb[0].get("sidechain"))
        return buses if done else None
    buses = wait_for(settled)
    # a collaborator's rename and new track show in the key picker as they land; the key
    # chosen stays (the panel no longer rebuilds for them)

    def keys_listed() -> list[str]:
        return key.locator("option").all_inner_texts()
    ana.wait_for_function("window.daw.plugins.loaded")  # (its arrival rebuilds the panel)
    ana.evaluate("window.daw.project.roots.tracks.get('t1').set('name', 'Lead vox')")
    wait_for(lambda: "track Lead vox" in keys_listed())
    ana.evaluate("window.daw.project.addTrack('Pad')")
    wait_for(lambda: "track Pad" in keys_listed())
    assert key.input_value() == "t1"
    assert without_ids(buses["master"]["effects"]) == [
        {"kind": "gain", "enabled": False, "params": {"gain_db": -6}}]
    assert without_ids(buses["verb"]["effects"]) == [
        {"kind": "compressor", "enabled": True, "params": {"threshold_db": -30}, "sidechain": "t1"}]

    # a bypassed plug-in on the master (the server names its owner) is badged there
    master_fx = buses["master"]["effects"][0]["id"]
    ana.evaluate("(id) => window.daw.bypassed._set([{owner: 'master', effect: id, index: 0, "
                 "reason: 'left_out', uri: 'urn:x', message: 'not installed'}])", master_fx)
    assert ana.locator(f"{PANEL} button.chain-owner[data-owner=master]").inner_text() == "⚠ Master"
    choose(ana, "master", "Master")
    badge = ana.locator(f"{PANEL} .effect[data-kind=gain] .effect-error")
    badge.wait_for()
    assert "not installed" in badge.inner_text()
    screenshot(ana, "bus-effects")
    # choosing the track again shows its chain; the buses' chains stay as they are
    choose(ana, "keys", "Keys")
    ana.wait_for_selector(f"{PANEL} select.instrument-kind")
    assert log.errors() == []
    ana.context.close()


def test_another_pages_edit_of_a_bus_chain_shows_live(studio: Studio) -> None:
    ana, log = open_page(studio.browser, studio.url("ana"))
    ben, ben_log = open_page(studio.browser, studio.url("ben", Role.VIEWER))
    choose(ana, "verb", "bus Verb")
    choose(ben, "verb", "bus Verb")
    assert ben.locator(f"{PANEL} .effect").count() == 0
    reverb = add(ana, "reverb")
    reverb.locator("input[data-param=mix]").fill("0.6")
    card = ben.locator(f"{PANEL} .effect[data-kind=reverb]")
    card.wait_for()
    ben.wait_for_function(f"document.querySelector('{PANEL} .effect[data-kind=reverb] "
                          "input[data-param=mix]').value === '0.6'")
    assert card.locator("input[data-param=mix]").is_disabled()  # a viewer only watches
    # an edit of the master's chain reaches ben while he looks at it
    choose(ben, "master", "Master")
    choose(ana, "master", "Master")
    ana.locator(f"{PANEL} .effect[data-effect=fx-lim] .effect-title input[type=checkbox]").uncheck()
    ben.wait_for_function(f"!document.querySelector('{PANEL} .effect[data-effect=fx-lim] "
                          ".effect-title input[type=checkbox]').checked")
    ana.locator(f"{PANEL} .effect[data-effect=fx-lim] .remove-effect").click()
    ben.wait_for_selector(f"{PANEL} .effect[data-effect=fx-lim]", state="detached")
    assert wait_for(lambda: studio.buses()["master"]["effects"] == [])
    assert without_ids(studio.buses()["verb"]["effects"]) == [
        {"kind": "reverb", "enabled": True, "params": {"mix": 0.6}}]
    assert log.errors() == [] and ben_log.errors() == []
    ana.context.close()
    ben.context.close()


def shows(page: Any, title: str) -> None:
    page.wait_for_function(
        f"document.querySelector('{PANEL} h3').textContent === 'Effects · {title}'")


def selected_rows(page: Any) -> list[str]:
    return page.locator(".bus-row .bus-header.selected").evaluate_all(
        "els => els.map((e) => e.dataset.bus)")


def test_a_bus_row_in_the_timeline_selects_the_bus_and_shows_its_chain(studio: Studio) -> None:
    ana, log = open_page(studio.browser, studio.url("ana"))
    ana.locator(".track-header[data-track=t1]").click(position={"x": 12, "y": 30})
    shows(ana, "Lead")
    assert selected_rows(ana) == []
    # the master's row (its name): the Effects panel shows its chain, the row is selected
    ana.click(".bus-row[data-bus=master] .bus-name")
    shows(ana, "Master")
    assert ana.locator(f"{PANEL} .effect").evaluate_all(
        "els => els.map((e) => e.dataset.effect)") == ["fx-lim"]
    assert selected_rows(ana) == ["master"]
    assert ana.locator(f"{PANEL} button.chain-owner[data-owner=master]").get_attribute(
        "aria-pressed") == "true"
    ana.click(".bus-row[data-bus=verb] .bus-name")
    shows(ana, "bus Verb")
    assert selected_rows(ana) == ["verb"]
    # the Effects panel's chain row selects the same way: its row in the timeline follows
    choose(ana, "master", "Master")
    assert selected_rows(ana) == ["master"]
    # selecting a track (or its clip) selects the track again
    ana.locator(".track-header[data-track=keys]").click(position={"x": 12, "y": 30})
    shows(ana, "Keys")
    assert selected_rows(ana) == []
    choose(ana, "verb", "bus Verb")
    assert selected_rows(ana) == ["verb"]
    ana.locator(".clip").first.click()
    shows(ana, "Lead")
    assert selected_rows(ana) == []
    assert log.errors() == []
    ana.context.close()


def test_a_bus_fader_and_pan_in_its_row_write_the_document_live_and_undo(
        studio: Studio) -> None:
    ana, log = open_page(studio.browser, studio.url("ana"))
    ben, ben_log = open_page(studio.browser, studio.url("ben", Role.VIEWER))
    row = ".bus-row[data-bus=verb]"
    assert ana.locator(f"{row} .gain").inner_text() == "0.0 dB"
    assert ben.locator(f"{row} .fader").is_disabled()  # a viewer only watches
    ana.locator(f"{row} .fader").fill("-6")
    wait_for(lambda: studio.buses()["verb"].get("gain_db") == -6)
    ben.wait_for_function(f"document.querySelector('{row} .fader').value === '-6'")
    assert ben.locator(f"{row} .gain").inner_text() == "-6.0 dB"
    ana.wait_for_timeout(500)  # a separate undo step
    ana.locator(".bus-row[data-bus=master] .pan").fill("-0.5")
    wait_for(lambda: studio.buses()["master"].get("pan") == -0.5)
    ben.wait_for_function(
        "document.querySelector('.bus-row[data-bus=master] .pan-text').textContent === 'L 50'")
    assert studio.buses()["verb"]["gain_db"] == -6  # the other bus keeps its fader
    ana.locator(".timeline").focus()
    ana.keyboard.press("Control+z")
    wait_for(lambda: studio.buses()["master"].get("pan") == 0)
    ben.wait_for_function(
        "document.querySelector('.bus-row[data-bus=master] .pan-text').textContent === 'C'")
    assert studio.buses()["verb"]["gain_db"] == -6
    assert log.errors() == [] and ben_log.errors() == []
    ana.context.close()
    ben.context.close()
