"""The sample browser drawer in real headless Chromium: search, audition, drag onto a lane."""

from __future__ import annotations

import asyncio
import io
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import samples_audio as audio
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

from collab.schema import ProjectDocument
from collab.store import open_store
from collab.tokens import Role, TokenSigner
from dsp_core.session import Session, Track

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(180)]

PROJECT = "beats"
TEMPO = 100.0  # the project's; the samples are at 120 BPM


@dataclass
class Site:
    server: ServerProcess
    browser: Any
    signer: TokenSigner

    def token(self, role: Role = Role.EDITOR) -> str:
        return self.signer.issue(PROJECT, role, "ana")

    def url(self, role: Role = Role.EDITOR) -> str:
        return f"{self.server.url}/?project={PROJECT}&token={self.token(role)}"

    def clips_on(self, track: str) -> list[dict[str, Any]]:
        clips = self.server.document(PROJECT, self.token())["clips"].values()
        return [c for c in clips if c["track"] == track]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.server.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token()}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def render(self, start: int, frames: int) -> np.ndarray:
        body = self.server.get(f"/projects/{PROJECT}/render?start={start}&frames={frames}",
                               self.token(Role.VIEWER))
        return sf.read(io.BytesIO(body), dtype="float32")[0]


async def create_project(data: Path) -> None:
    document = ProjectDocument.from_session(
        Session(name="Beats", tracks=[Track("drums", "Drums"), Track("keys", "Keys")]),
        name="Beats")
    async with open_store(None, data) as store:
        await store.create_project(PROJECT, "Beats", document.doc.get_update())


def write_samples(folder: Path) -> None:
    """A small library: a kick, a hat and an A-minor chord loop at 120 BPM."""
    folder.mkdir()
    for name, data in (("Kick_Punchy.wav", audio.kick()), ("HiHat_Closed.wav", audio.hat()),
                       ("Chords_Am_loop.wav", audio.am_chord(4.0))):
        sf.write(folder / name, data.T, audio.RATE, subtype="FLOAT")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server whose sample roots hold the generated library, indexed; one Chromium."""
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("samplepage")
    data, library = root / "data", root / "library"
    data.mkdir()
    write_samples(library)
    signer = TokenSigner.from_data_dir(data)
    asyncio.run(create_project(data))
    env = {"DAW_SAMPLE_ROOTS": str(library)}
    with ServerProcess(data, free_port(), env) as server, sync_playwright() as playwright:
        site = Site(server, None, signer)
        job = site.call("POST", "/samples/index", {"folder": str(library)})
        done = wait_for(lambda: (lambda j: j if j["state"] in ("done", "failed") else None)(
            site.call("GET", f"/samples/index-jobs/{job['id']}")), timeout=90, interval=0.2)
        assert done["state"] == "done", done
        site.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield site
        finally:
            site.browser.close()


def names_listed(page: Any) -> list[str]:
    return page.locator(".sample-results .sample-name").all_inner_texts()


def test_search_audition_and_drag_a_sample_onto_a_track(site: Site) -> None:
    page, log = open_page(site.browser, site.url())
    previews: list[str] = []
    page.on("request", lambda r: previews.append(r.url) if "/preview" in r.url else None)
    page.evaluate(f"window.daw.project.setTransport({{ tempo: {TEMPO} }})")
    drawer = page.get_by_role("complementary", name="Sample browser")
    assert drawer.is_hidden()
    toggle = page.get_by_role("button", name="Samples")
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert drawer.is_visible() and toggle.get_attribute("aria-expanded") == "true"
    # the first opening lists the whole library; pages of two, then the rest
    wait_for(lambda: len(names_listed(page)) == 3)
    page.evaluate("window.daw.samples.pageSize = 2")
    drawer.get_by_role("button", name="Search").click()
    wait_for(lambda: page.locator(".sample-count").inner_text() == "3 samples (2 shown)")
    assert len(names_listed(page)) == 2
    drawer.get_by_role("button", name="More results").click()
    wait_for(lambda: page.locator(".sample-count").inner_text() == "3 samples")
    assert sorted(names_listed(page)) == ["Chords_Am_loop.wav", "HiHat_Closed.wav",
                                          "Kick_Punchy.wav"]
    assert drawer.get_by_role("button", name="More results").is_hidden()
    # filters: by class, then by text and type through the keyboard
    drawer.get_by_label("Class").select_option("kick")
    drawer.get_by_role("button", name="Search").click()
    wait_for(lambda: names_listed(page) == ["Kick_Punchy.wav"])
    drawer.get_by_label("Class").select_option("")
    drawer.get_by_label("Search text").fill("chords")
    drawer.get_by_label("Type").select_option("loop")
    drawer.get_by_label("Search text").press("Enter")
    wait_for(lambda: names_listed(page) == ["Chords_Am_loop.wav"])
    facts = page.locator(".sample-results .sample-facts").inner_text()
    assert "120 BPM" in facts and "A minor" in facts and "4.00 s" in facts
    drawer.get_by_label("Lowest BPM").fill("125")
    drawer.get_by_label("Search text").press("Enter")
    wait_for(lambda: page.locator(".sample-count").inner_text() == "0 samples")
    drawer.get_by_label("Lowest BPM").fill("")
    drawer.get_by_label("Search text").press("Enter")
    wait_for(lambda: names_listed(page) == ["Chords_Am_loop.wav"])

    # audition: the preview is asked for at the project's tempo and the chosen key
    drawer.get_by_label("Project key").select_option("B minor")
    drawer.get_by_role("button", name="Audition Chords_Am_loop.wav").press("Enter")
    wait_for(lambda: previews)
    query = urllib.parse.parse_qs(urllib.parse.urlparse(previews[-1]).query)
    assert float(query["tempo"][0]) == TEMPO and query["key"] == ["B minor"]
    wait_for(lambda: page.evaluate(
        "(() => { const a = document.querySelector('.sample-audio'); "
        "return a.dataset.method === 'rubberband' && a.duration > 0 && a.duration })()"))
    played = page.evaluate("document.querySelector('.sample-audio').duration")
    assert abs(played - 4.0 * 120 / TEMPO) < 0.1  # stretched to 100 BPM

    # drag the result onto the Keys lane, 2 s in
    zoom = page.evaluate("window.daw.timeline.zoom")  # px per second
    lane = page.locator(".lane[data-track=keys]")
    page.locator(".sample-results .sample").drag_to(
        lane, source_position={"x": 60, "y": 10}, target_position={"x": 2.0 * zoom, "y": 20})
    clips = wait_for(lambda: site.clips_on("keys"), timeout=30)
    assert len(clips) == 1
    rate = int(site.server.document(PROJECT, site.token())["meta"]["sample_rate"])
    beat = round(60 / TEMPO * rate)  # one grid step (a beat) in project frames
    position = clips[0]["position"]
    assert abs(position - 2 * rate) <= beat, position
    assert abs(clips[0]["length"] - 4.8 * rate) < 0.05 * rate  # matched to 100 BPM
    page.wait_for_selector(f".lane[data-track=keys] .clip[data-clip='{clips[0]['id']}']",
                           timeout=10000)
    # the server's engine plays it from where it was dropped, and nothing before
    deadline = time.monotonic() + 20
    while True:
        before, after = site.render(0, position), site.render(position, rate // 2)
        if float(np.sqrt(np.mean(after ** 2))) > 0.01 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert float(np.sqrt(np.mean(after ** 2))) > 0.01
    assert float(np.abs(before).max()) < 1e-4
    screenshot(page, "sample-browser")
    assert log.errors() == []
    page.context.close()


def test_add_button_puts_the_sample_on_the_selected_track_at_the_playhead(site: Site) -> None:
    page, log = open_page(site.browser, site.url())
    page.get_by_role("button", name="Samples").click()
    drawer = page.get_by_role("complementary", name="Sample browser")
    drawer.get_by_label("Search text").fill("kick")
    drawer.get_by_label("Search text").press("Enter")
    wait_for(lambda: names_listed(page) == ["Kick_Punchy.wav"])
    page.locator(".track-header[data-track=drums]").click(position={"x": 12, "y": 30})
    page.evaluate("window.daw.transport.seek(96000)")
    drawer.get_by_role("button", name="Add Kick_Punchy.wav to the selected track at the playhead"
                       ).click()
    clips = wait_for(lambda: site.clips_on("drums"), timeout=30)
    assert [c["position"] for c in clips] == [96000]
    # again at the same playhead: it goes right after the first, not over it
    drawer.get_by_role("button", name="Add Kick_Punchy.wav to the selected track at the playhead"
                       ).click()
    clips = wait_for(lambda: (lambda c: c if len(c) == 2 else None)(site.clips_on("drums")),
                     timeout=30)
    first, second = sorted(clips, key=lambda c: c["position"])
    assert first["position"] == 96000 and second["position"] == 96000 + first["length"]
    # a viewer has no drag and no add
    viewer, _ = open_page(site.browser, site.url(Role.VIEWER))
    viewer.get_by_role("button", name="Samples").click()
    wait_for(lambda: len(names_listed(viewer)) == 3)
    assert viewer.locator(".sample-add:disabled").count() == 3
    assert log.errors() == []
    page.context.close()
    viewer.context.close()
