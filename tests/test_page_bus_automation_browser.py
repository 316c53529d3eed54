"""Automation lanes of an aux bus and the master on the page, in headless Chromium.

Under the tracks, the timeline has a row per aux bus and the master (web/src/timeline.js);
its *A* opens the same automation strip as a track's (web/src/automation.js, owned by the
bus): the picker lists the bus's fader (volume, pan; no mute) and its effects' parameters,
and the points and modes drawn land flat in ``buses[id].automation`` in the server's
document, which another page shows live and the server's render plays.
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
from pagebrowser import (
    BROWSER_TEST,
    CHROMIUM,
    CHROMIUM_FLAGS,
    ServerProcess,
    open_page,
    ride,
    wait_for,
)

from collab.automation import lanes_from_json, owner_from_json
from collab.store import open_store
from collab.tokens import Role, TokenSigner
from dawserver.asset_store import AssetStore
from dawserver.projects import import_session
from dsp_core.effects import EffectSpec
from dsp_core.session import AutomationPoint, Bus, Clip, Send, Session, Track

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(180)]

RATE = 48000
SECONDS = 4
FX = "fx:bg:gain_db"


@dataclass
class Studio:
    server: ServerProcess
    browser: Any
    signer: TokenSigner

    def url(self, user: str) -> str:
        token = self.signer.issue("busauto", Role.EDITOR, user)
        return f"{self.server.url}/?project=busauto&token={token}"

    def bus(self, bus_id: str) -> dict[str, Any]:
        token = self.signer.issue("busauto", Role.VIEWER, "checker")
        return self.server.document("busauto", token)["buses"][bus_id]

    def lane(self, bus_id: str, param: str) -> list[AutomationPoint]:
        data = self.bus(bus_id)
        found = lanes_from_json(data.get("automation"),
                                owner_from_json(data, track=False)).get(param)
        return found.sorted_points() if found else []

    def render(self) -> np.ndarray:
        token = self.signer.issue("busauto", Role.VIEWER, "checker")
        body = self.server.get(f"/projects/busauto/render?frames={SECONDS * RATE}", token)
        return sf.read(io.BytesIO(body), dtype="float32")[0][:, 0]


@pytest.fixture
def studio(tmp_path) -> Iterator[Studio]:
    """A mono track of a constant 0.5 heard only through a pre-fader send to the aux bus
    Verb (its fader is at the floor), which holds a gain effect ``bg``; a plain master."""
    from playwright.sync_api import sync_playwright

    source = tmp_path / "dc.wav"
    sf.write(source, np.full(SECONDS * RATE, 0.5, dtype=np.float32), RATE)
    track = Track("t1", "Voice", gain_db=-144.0, clips=[Clip(str(source), 0, SECONDS * RATE)],
                  sends=[Send("verb", 0.0, pre_fader=True)])
    verb = Bus("verb", "Verb", effects=[EffectSpec("gain", {"gain_db": 0.0}, id="bg")])
    data = tmp_path / "data"
    data.mkdir()

    async def create() -> None:
        async with open_store(None, data) as store:
            await import_session(store, Session(name="Bus lanes", sample_rate=RATE,
                                                tracks=[track], buses=[verb],
                                                master=Bus("master", "Master")),
                                 project_id="busauto", assets=AssetStore(data / "assets"))

    asyncio.run(create())
    with ServerProcess(data, free_port()) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield Studio(server, browser, TokenSigner.from_data_dir(data))
        finally:
            browser.close()


def open_strip(page: Any, bus: str) -> Any:
    page.click(f".bus-row[data-bus={bus}] .auto-toggle")
    page.wait_for_selector(f".auto[data-bus={bus}] .auto-svg")
    return page.locator(f".auto[data-bus={bus}] .auto-svg")


def picker(page: Any, bus: str) -> list[str]:
    return page.locator(f".auto[data-bus={bus}] .auto-param option").evaluate_all(
        "els => els.map((e) => e.value)")


def draw(page: Any, svg: Any, zoom: float, where: list[tuple[float, float]]) -> None:
    box = svg.bounding_box()
    for seconds, height in where:
        page.mouse.click(box["x"] + seconds * zoom, box["y"] + height * box["height"])


def drag(page: Any, bus: str, point: str, dx: float, dy: float) -> None:
    dot = page.locator(f".auto[data-bus={bus}] .auto-point[data-point='{point}']").bounding_box()
    page.mouse.move(dot["x"] + 4, dot["y"] + 4)
    page.mouse.down()
    page.mouse.move(dot["x"] + 4 + dx, dot["y"] + 4 + dy, steps=5)
    page.mouse.up()


def gain(*db: float) -> float:
    return float(10 ** (sum(db) / 20))


def test_bus_and_master_lanes_are_drawn_shared_and_heard(studio: Studio) -> None:
    base = studio.render()
    assert base[RATE // 2] > 0.1  # the send carries the track to Verb, and on to the master
    ana, log = open_page(studio.browser, studio.url("ana"))
    ben, ben_log = open_page(studio.browser, studio.url("ben"))
    assert ana.locator(".bus-row").evaluate_all("els => els.map((e) => e.dataset.bus)") == [
        "verb", "master"]
    assert ana.locator(".auto").count() == 0  # hidden until A is pressed
    zoom = ana.evaluate("window.daw.timeline.zoom")  # px per second
    master = open_strip(ana, "master")
    open_strip(ben, "master")
    verb = open_strip(ana, "verb")
    # the picker lists what the document can automate on each: no mute, the bus's effects
    assert picker(ana, "master") == ["gain_db", "pan"]
    assert picker(ana, "verb") == ["gain_db", "pan", FX]

    # the master's volume: two points, the second dragged half a second later and down
    draw(ana, master, zoom, [(1.0, 0.3), (2.0, 0.6)])
    points = wait_for(lambda: len(studio.lane("master", "gain_db")) == 2
                      and studio.lane("master", "gain_db"))
    assert [round(p.frame / RATE, 1) for p in points] == [1.0, 2.0]
    drag(ana, "master", points[1].id, zoom / 2, 6)
    # (the last of the drag's five moves: the one before it is at 2.4 s)
    points = wait_for(lambda: (lane := studio.lane("master", "gain_db"))[1].frame > 2.45 * RATE
                      and lane)
    assert points[0].value > points[1].value  # higher in the strip is louder
    automation = studio.bus("master")["automation"]
    assert automation.keys() >= {f"gain_db@{p.id}" for p in points}  # flat, as the schema says
    # another page sees the lane change live
    wait_for(lambda: ben.locator(".auto[data-bus=master] .auto-point").evaluate_all(
        "els => els.map((e) => Number(e.dataset.frame))") == [p.frame for p in points])

    # Verb's gain effect parameter, by effect id
    ana.select_option(".auto[data-bus=verb] .auto-param", FX)
    draw(ana, verb, zoom, [(1.0, 0.2), (2.0, 0.7)])
    fx = wait_for(lambda: len(studio.lane("verb", FX)) == 2 and studio.lane("verb", FX))
    assert [round(p.frame / RATE, 1) for p in fx] == [1.0, 2.0]
    assert fx[0].value > fx[1].value

    # modes: latch on Verb's lane (played), off on the master's (ignored)
    ana.select_option(".auto[data-bus=verb] .auto-mode", "latch")
    ana.select_option(".auto[data-bus=master] .auto-mode", "off")
    wait_for(lambda: studio.bus("verb")["automation"].get(f"{FX}@") == "latch"
             and studio.bus("master")["automation"].get("gain_db@") == "off")
    wait_for(lambda: ben.locator(".auto[data-bus=master]").get_attribute("data-mode") == "off")
    wet = studio.render()
    for seconds, db in [(0.5, fx[0].value), (3.0, fx[1].value)]:
        assert wet[int(seconds * RATE)] == pytest.approx(base[int(seconds * RATE)] * gain(db),
                                                         rel=1e-3), seconds
    assert abs(wet[3 * RATE] / base[3 * RATE] - 1) > 0.1  # the drawn bus lane is heard
    ana.select_option(".auto[data-bus=master] .auto-mode", "read")
    wait_for(lambda: studio.bus("master")["automation"].get("gain_db@") == "read")
    wet = studio.render()
    for seconds, dbs in [(0.5, (points[0].value, fx[0].value)),
                         (3.0, (points[1].value, fx[1].value))]:
        assert wet[int(seconds * RATE)] == pytest.approx(base[int(seconds * RATE)] * gain(*dbs),
                                                         rel=1e-3), seconds

    # delete a point, then undo brings it back (the page's own edits only)
    ana.wait_for_timeout(500)  # past the undo manager's capture window
    ana.dblclick(f".auto[data-bus=verb] .auto-point[data-point='{fx[1].id}']")
    wait_for(lambda: len(studio.lane("verb", FX)) == 1)
    ana.locator(".timeline").focus()
    ana.keyboard.press("Control+z")
    wait_for(lambda: [p.id for p in studio.lane("verb", FX)] == [p.id for p in fx])
    assert not log.errors() and not ben_log.errors()


def test_a_bus_fader_moved_in_touch_during_playback_writes_its_lane(studio: Studio) -> None:
    """A bus fader ridden in touch writes its lane, though a collaborator renames another
    bus mid-drag (the bus rows rebuild once the fader is let go)."""
    ana, log = open_page(studio.browser, studio.url("ana"))
    ben, ben_log = open_page(studio.browser, studio.url("ben"))
    open_strip(ana, "master")
    ana.select_option(".auto[data-bus=master] .auto-mode", "touch")
    wait_for(lambda: studio.bus("master")["automation"].get("gain_db@") == "touch")

    def ben_renames_verb() -> None:
        ben.evaluate("window.daw.project.roots.buses.get('verb').set('name', 'Hall')")
        ana.wait_for_function("window.daw.project.roots.buses.get('verb').get('name') === 'Hall'")

    # down to the bottom of the fader over ~0.6 s
    ride(ana, ana.locator(".bus-row[data-bus=master] .fader"), 0.8, -0.08, 12,
         midway=ben_renames_verb)
    points = wait_for(lambda: (lane := studio.lane("master", "gain_db"))
                      and any(p.id.startswith("w") for p in lane) and lane)
    written = [p for p in points if p.id.startswith("w")]
    assert min(p.value for p in written) == -60.0  # the fader's floor was written
    # on release the lane glides back to what it was; touch leaves the static value
    assert written[0].id.endswith(".a") and written[-1].id.endswith(".c")
    assert written[-1].value == written[0].value == 0.0
    assert studio.bus("master").get("gain_db", 0.0) == 0.0
    assert all(key.startswith("gain_db@") for key in studio.bus("master")["automation"])
    ana.wait_for_function("document.querySelectorAll('.auto[data-bus=master] .auto-point')"
                          f".length === {len(points)}")
    ana.wait_for_selector(".bus-row[data-bus=verb] .bus-header:has-text('Hall')")
    assert not log.errors() and not ben_log.errors()


@pytest.mark.parametrize("focus", ["focused", "unfocused"])
def test_a_bus_effect_slider_moved_in_touch_during_playback_writes_its_lane(
        studio: Studio, focus: str) -> None:
    """An effect's parameter slider records its ``fx:ID:PARAM`` lane as a fader does,
    even when the server's LV2 list arrives mid-drag and the panel's cards rebuild; also
    where a pressed slider takes no focus (``unfocused``: as in Safari)."""
    ana, log = open_page(studio.browser, studio.url("ana"))
    if focus == "unfocused":
        ana.evaluate("document.addEventListener('focusin', (e) => "
                     "e.target.type === 'range' && e.target.blur(), true)")
    held: list[Any] = []  # the LV2 list's request, answered halfway through the drag
    ana.route("**/lv2/plugins*", lambda route: held.append(route))
    open_strip(ana, "verb")
    ana.select_option(".auto[data-bus=verb] .auto-param", FX)
    ana.select_option(".auto[data-bus=verb] .auto-mode", "touch")
    wait_for(lambda: studio.bus("verb")["automation"].get(f"{FX}@") == "touch")
    ana.locator(".effects button.chain-owner[data-owner=verb]").click()
    # a loaded page paints seldom: its last tick before the stop is behind the drag's end
    ana.evaluate("window.daw.writer.tick = () => {}")
    # from about -5 dB down to about -85 dB over ~0.5 s

    def plugins_arrive() -> None:
        held.pop().continue_()
        ana.wait_for_function("window.daw.plugins.loaded")

    ride(ana, ana.locator(".effects .effect[data-effect=bg] input[data-param=gain_db]"),
         0.8, -0.06, 10, midway=plugins_arrive)
    points = wait_for(lambda: (lane := studio.lane("verb", FX))
                      and any(p.id.startswith("w") for p in lane) and lane)
    written = [p for p in points if p.id.startswith("w")]
    assert min(p.value for p in written) < -60.0  # the drag's low end was written
    # on release the lane glides back to what it was; touch leaves the static value
    assert written[0].id.endswith(".a") and written[-1].id.endswith(".c")
    assert written[-1].value == written[0].value == 0.0
    assert studio.bus("verb")["effects"][0]["params"]["gain_db"] == 0.0
    assert not log.errors()
