"""The page's lane picker (an effect parameter's lane drawn and heard) and sidechain
picker (a compressor keyed by another track) in headless Chromium."""

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

from collab.automation import lanes_from_json, owner_from_json
from collab.store import open_store
from collab.tokens import Role, TokenSigner
from dawserver.asset_store import AssetStore
from dawserver.projects import import_session
from dsp_core.effects import EffectSpec
from dsp_core.param_automation import ParamLane
from dsp_core.session import Bus, Clip, Send, Session, Track

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(180)]

RATE = 48000
SECONDS = 4
LANE = "fx:g:gain_db"


@dataclass
class Studio:
    server: ServerProcess
    browser: Any
    signer: TokenSigner

    def url(self) -> str:
        token = self.signer.issue("pick", Role.EDITOR, "ana")
        return f"{self.server.url}/?project=pick&token={token}"

    def track(self, track_id: str) -> dict[str, Any]:
        token = self.signer.issue("pick", Role.VIEWER, "checker")
        return self.server.document("pick", token)["tracks"][track_id]

    def render(self) -> np.ndarray:
        token = self.signer.issue("pick", Role.VIEWER, "checker")
        body = self.server.get(f"/projects/pick/render?frames={SECONDS * RATE}", token)
        return sf.read(io.BytesIO(body), dtype="float32")[0][:, 0]


@pytest.fixture
def studio(tmp_path) -> Iterator[Studio]:
    """A mono track of a constant 0.5 with a gain effect ``g``, a compressor ``c`` and a
    send to bus ``verb``; a second track ``t2`` to key the compressor with."""
    from playwright.sync_api import sync_playwright

    source = tmp_path / "dc.wav"
    sf.write(source, np.full(SECONDS * RATE, 0.5, dtype=np.float32), RATE)
    tracks = [Track("t1", "Voice", clips=[Clip(str(source), 0, SECONDS * RATE)],
                    sends=[Send("verb", -144.0)],
                    effects=[EffectSpec("gain", {"gain_db": 0.0}, id="g"),
                             EffectSpec("compressor", {"threshold_db": 0.0}, id="c")]),
              Track("t2", "Kick")]
    data = tmp_path / "data"
    data.mkdir()

    async def create() -> None:
        async with open_store(None, data) as store:
            await import_session(store, Session(name="Pick", sample_rate=RATE, tracks=tracks,
                                                buses=[Bus("verb", "Verb")]),
                                 project_id="pick", assets=AssetStore(data / "assets"))

    asyncio.run(create())
    with ServerProcess(data, free_port()) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield Studio(server, browser, TokenSigner.from_data_dir(data))
        finally:
            browser.close()


def test_an_effect_parameter_lane_is_picked_drawn_and_heard(studio: Studio) -> None:
    page, log = open_page(studio.browser, studio.url())
    page.click(".row[data-track=t1] .auto-toggle")
    svg = page.locator(".auto[data-track=t1] .auto-svg")
    svg.wait_for()
    options = page.locator(".auto[data-track=t1] .auto-param option")
    keys = [options.nth(i).get_attribute("value") for i in range(options.count())]
    assert {"gain_db", "send:verb", LANE, "fx:c:threshold_db"} <= set(keys)
    page.select_option(".auto[data-track=t1] .auto-param", LANE)
    box = svg.bounding_box()
    zoom = page.evaluate("window.daw.timeline.zoom")  # px per second
    for seconds, height in [(1.0, 0.95), (2.0, 0.5)]:  # near the floor, then the middle
        page.mouse.click(box["x"] + seconds * zoom, box["y"] + height * box["height"])

    def lane() -> list:
        data = studio.track("t1")
        found = lanes_from_json(data.get("automation"), owner_from_json(data)).get(LANE)
        return found.sorted_points() if found else []

    points = wait_for(lambda: len(lane()) == 2 and lane())
    assert all("@" in k for k in studio.track("t1")["automation"] if k.startswith("fx:"))
    assert [round(p.frame / RATE, 1) for p in points] == [1.0, 2.0]
    assert -120.0 <= points[0].value < points[1].value <= 24.0
    envelope = ParamLane(np.array([p.frame for p in points]), np.array([p.value for p in points]),
                         np.zeros(2, dtype=bool), apply=lambda v: None)
    dry = 0.5 * np.sqrt(0.5)  # a centred mono track
    wet = studio.render()
    for seconds in (0.5, 3.0):  # where the lane has held its value long enough to settle
        frame = int(seconds * RATE)
        expected = dry * 10 ** (envelope.value_at(frame) / 20)
        assert wet[frame] == pytest.approx(expected, rel=1e-3)
    assert not log.errors()


def test_the_sidechain_picker_keys_the_compressor(studio: Studio) -> None:
    page, log = open_page(studio.browser, studio.url())
    page.locator(".track-header[data-track=t1]").click(position={"x": 12, "y": 30})
    picker = ".effects .effect[data-kind=compressor] select.sidechain"
    page.wait_for_selector(picker)
    labels = page.locator(f"{picker} option").all_inner_texts()
    assert labels == ["own input", "track Kick", "bus Verb"]
    page.select_option(picker, "t2")
    wait_for(lambda: studio.track("t1")["effects"][1].get("sidechain") == "t2")
    page.select_option(picker, "verb")
    wait_for(lambda: studio.track("t1")["effects"][1].get("sidechain") == "verb")
    page.select_option(picker, "")
    wait_for(lambda: studio.track("t1")["effects"][1].get("sidechain") == "")
    assert not log.errors()
