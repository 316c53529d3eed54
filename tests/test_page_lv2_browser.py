"""A failing LV2 plug-in on the page (web/src/bypassed.js) in headless Chromium: while the
live mix plays, the test plug-in is switched to output NaN; the server bypasses it and
both pages (the editor's and a viewer's that asked nothing) show the error on the effect,
the track and the top bar without polling; after the control is fixed, the editor's
Restart clears it for both."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from loopback import free_port
from lv2_helpers import MISBEHAVE, MODES, lv2_path  # noqa: F401
from pagebrowser import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    ServerProcess,
    browser_missing,
    open_page,
    screenshot,
)

from collab.store import open_store
from collab.tokens import Role, TokenSigner
from dawserver.asset_store import AssetStore
from dawserver.projects import import_session
from dsp_core.effects import EffectSpec
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing())),
              pytest.mark.timeout(180), pytest.mark.usefixtures("lv2_path")]

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


@pytest.fixture
def studio(tmp_path) -> Iterator[Studio]:
    """``dawserver serve`` with one track through the misbehaving test plug-in."""
    from playwright.sync_api import sync_playwright

    source = tmp_path / "noise.wav"
    rng = np.random.default_rng(5)
    sf.write(source, (0.1 * rng.standard_normal(8 * RATE)).astype(np.float32), RATE)
    track = Track("t1", "Synth", channels=1, clips=[Clip(str(source), 0, 8 * RATE)],
                  effects=[EffectSpec("lv2", {"uri": MISBEHAVE}, id="fx-1")])
    data = tmp_path / "data"
    data.mkdir()

    async def create() -> None:
        async with open_store(None, data) as store:
            await import_session(store, Session(name="Plug", sample_rate=RATE, tracks=[track]),
                                 project_id="plug", assets=AssetStore(data / "assets"))

    asyncio.run(create())
    with ServerProcess(data, free_port()) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield Studio(server, browser, TokenSigner.from_data_dir(data), "plug")
        finally:
            browser.close()


def select_track(page: Any) -> None:
    page.locator(".track-header[data-track=t1]").click(position={"x": 12, "y": 30})
    page.wait_for_selector(CARD)


def test_a_plugin_failing_while_playing_shows_an_error_and_restart_clears_it(
        studio: Studio) -> None:
    ana, log = open_page(studio.browser, studio.url("ana"))
    ben, ben_log = open_page(studio.browser, studio.url("ben", Role.VIEWER))
    asked: list[str] = []  # ben's requests for the list once open: none, no polling
    ben.on("request", lambda r: "/lv2/" in r.url and asked.append(r.url))
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
