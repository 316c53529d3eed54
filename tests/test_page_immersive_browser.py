"""The immersive panel of the page (web/src/immersive.js) in headless Chromium: an object
dragged on the pad moves in the document, another editor sees it move, and the server's
immersive render (GET /projects/ID/render/immersive) plays it from the loudspeakers where
it was dragged; bed routes and the ADM BWF export from the page."""

from __future__ import annotations

import asyncio
import io
import re
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
from dsp_core.immersive import BED_714, ImmersiveRoute
from dsp_core.session import Clip, Session, Track

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(180)]

RATE = 48000
FRAMES = RATE // 2
PAD = ".immersive-pad[data-track=obj]"


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

    def route(self) -> dict[str, Any] | None:
        return self.server.document(self.project, self.token())["tracks"]["obj"].get("immersive")

    def speakers(self, layout: str = "7.1.4") -> dict[str, float]:
        """Energy per loudspeaker label of the server's immersive render."""
        body = self.server.get(f"/projects/{self.project}/render/immersive?layout={layout}"
                               f"&frames={FRAMES}", self.token())
        audio, rate = sf.read(io.BytesIO(body), dtype="float32", always_2d=True)
        assert rate == RATE and audio.shape == (FRAMES, len(BED_714))
        return dict(zip(BED_714, (audio.astype(np.float64) ** 2).sum(axis=0), strict=True))


def loudest(energy: dict[str, float]) -> tuple[str, float]:
    """The loudest loudspeaker and its share of the energy."""
    label = max(energy, key=energy.__getitem__)
    return label, energy[label] / sum(energy.values())


@pytest.fixture
def studio(tmp_path) -> Iterator[Studio]:
    """``dawserver serve`` with one mono object track (noise, in front)."""
    from playwright.sync_api import sync_playwright

    source = tmp_path / "noise.wav"
    rng = np.random.default_rng(3)
    sf.write(source, (0.1 * rng.standard_normal(FRAMES)).astype(np.float32), RATE)
    track = Track("obj", "Bird", channels=1, clips=[Clip(str(source), 0, FRAMES)],
                  immersive=ImmersiveRoute("object", azimuth=0.0, elevation=0.0))
    data = tmp_path / "data"
    data.mkdir()

    async def create() -> None:
        async with open_store(None, data) as store:
            await import_session(store, Session(name="Atmos", sample_rate=RATE, tracks=[track]),
                                 project_id="atmos", assets=AssetStore(data / "assets"))

    asyncio.run(create())
    with ServerProcess(data, free_port()) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield Studio(server, browser, TokenSigner.from_data_dir(data), "atmos")
        finally:
            browser.close()


def select_track(page: Any) -> None:
    page.locator(".track-header[data-track=obj]").click(position={"x": 12, "y": 30})
    page.wait_for_selector(PAD)


def drag_to(page: Any, azimuth: float, distance: float = 1.0) -> None:
    """Press on the pad's centre and drag to an ADM position (azimuth positive left)."""
    box = page.locator(PAD).bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    radius = box["width"] / 2 - 10 * box["width"] / 140  # immersive.js RADIUS
    a = np.radians(azimuth)
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx - np.sin(a) * distance * radius, cy - np.cos(a) * distance * radius,
                    steps=6)
    page.mouse.up()


def test_dragged_object_moves_in_the_document_and_plays_from_there(studio: Studio) -> None:
    assert loudest(studio.speakers()) == ("M+000", pytest.approx(1.0, abs=1e-6))
    ana, log = open_page(studio.browser, studio.url("ana"))
    ben, _ = open_page(studio.browser, studio.url("ben"))
    select_track(ana)
    select_track(ben)
    for azimuth, speaker in [(90.0, "M+090"), (-135.0, "M-135"), (30.0, "M+030")]:
        drag_to(ana, azimuth)
        route = wait_for(lambda a=azimuth: (r := studio.route()) and abs(r["azimuth"] - a) < 2.5
                         and abs(r["distance"] - 1) < 0.02 and r)  # the drag's last move
        assert route["kind"] == "object"
        # ben's pad follows the document
        wait_for(lambda r=route: float(ben.locator(f"{PAD} .pad-object").get_attribute(
            "data-azimuth")) == r["azimuth"])
        label, share = loudest(studio.speakers())
        assert label == speaker and share > 0.97, (azimuth, studio.speakers())
    # elevation from the slider: up to the top front left loudspeaker
    drag_to(ana, 45.0)
    wait_for(lambda: abs(studio.route()["azimuth"] - 45) < 2.5)
    ana.locator(".immersive-elevation").evaluate(
        "el => { el.value = '30'; el.dispatchEvent(new Event('input', { bubbles: true })) }")
    wait_for(lambda: studio.route()["elevation"] == 30)
    assert loudest(studio.speakers())[0] == "U+045"
    wait_for(lambda: ben.locator(".immersive-elevation").input_value() == "30")
    assert "el 30°" in ben.locator(".immersive-readout").inner_text()
    screenshot(ben, "immersive-panel")
    assert log.errors() == []


def test_route_selector_writes_bed_object_and_none(studio: Studio) -> None:
    ana, log = open_page(studio.browser, studio.url("ana"))
    select_track(ana)
    ana.select_option(".immersive-kind", "bed")
    wait_for(lambda: studio.route() == {"kind": "bed", "channels": ["M+000"]})
    ana.select_option(".immersive-bed[data-index='0']", "U-135")
    wait_for(lambda: studio.route() == {"kind": "bed", "channels": ["U-135"]})
    assert loudest(studio.speakers()) == ("U-135", pytest.approx(1.0, abs=1e-6))
    ana.select_option(".immersive-kind", "none")
    wait_for(lambda: studio.route() is None)
    energy = studio.speakers()  # a track without a route feeds the front pair
    assert energy["M+030"] > 0 and energy["M-030"] > 0
    assert sum(energy.values()) == pytest.approx(energy["M+030"] + energy["M-030"])
    assert ana.locator(PAD).count() == 0
    ana.select_option(".immersive-kind", "object")
    wait_for(lambda: (studio.route() or {}).get("kind") == "object")
    ana.wait_for_selector(PAD)
    # monitoring: a binaural preview of the immersive mix plays from the playhead
    ana.select_option(".immersive-monitor", "binaural")
    with ana.expect_response(lambda r: "/render/immersive?layout=binaural" in r.url) as answer:
        ana.click(".immersive-preview")
    assert answer.value.status == 200
    ana.wait_for_function("document.querySelector('.immersive-preview').textContent === 'Stop'")
    assert ana.evaluate("localStorage.getItem('daw:monitor')") == "binaural"
    # the live mix follows the picker: Listen offers the binaural mix, a switch re-offers
    with ana.expect_request(lambda r: r.url.endswith("/rtc")) as offer:
        ana.click("button.listen")
    assert offer.value.post_data_json["monitor"] == "binaural"
    ana.wait_for_selector("button.listen.on")
    with ana.expect_request(lambda r: r.url.endswith("/rtc")) as offer:
        ana.select_option(".immersive-monitor", "mix")
    assert offer.value.post_data_json["monitor"] == "mix"
    ana.wait_for_selector("button.listen.on")
    assert ana.locator(".immersive-preview").is_disabled()  # nothing immersive to preview
    assert log.errors() == []


def test_adm_export_from_the_page_carries_the_dragged_position(studio: Studio) -> None:
    ana, log = open_page(studio.browser, studio.url("ana"))
    select_track(ana)
    drag_to(ana, -60.0, 0.5)
    route = wait_for(lambda: (r := studio.route()) and abs(r["azimuth"] + 60) < 2.5
                     and abs(r["distance"] - 0.5) < 0.02 and r)
    ana.click("button.bounce-adm")
    ana.wait_for_selector("a.bounce-adm-download:not([hidden])", timeout=30000)
    href = ana.get_attribute("a.bounce-adm-download", "href")
    body = studio.server.get(href.split("?")[0], studio.token())
    assert body[:4] in (b"RIFF", b"BW64") and b"axml" in body and b"chna" in body
    xml = body[body.index(b"<?xml"):].split(b"</ebuCoreMain>")[0].decode()
    assert 'typeLabel="0003"' in xml  # an Objects pack: the track as an object
    placed = {c: [float(v) for v in re.findall(rf'coordinate="{c}">([^<]+)<', xml)]
              for c in ("azimuth", "distance")}
    assert route["azimuth"] in placed["azimuth"]  # the bed's speakers carry theirs too
    assert route["distance"] in placed["distance"]
    assert log.errors() == []
