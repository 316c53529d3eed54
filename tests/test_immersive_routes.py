"""GET /projects/ID/render/immersive: the live document's immersive mix in a layout."""

from __future__ import annotations

import io
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
from loopback import free_port
from nodepeer import running_server

from collab.tokens import Role
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import ROOMS, STORE, TOKENS
from dawserver.projects import import_session
from dsp_core.immersive import BED_714, LAYOUTS, ImmersiveRoute
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

RATE = 48000
FRAMES = 4800


class Client:
    def __init__(self, app, base: str, project_id: str, http: aiohttp.ClientSession) -> None:  # noqa: ANN001
        self.app, self.base, self.project_id, self.http = app, base, project_id, http

    async def get(self, query: str, *, project: str | None = None) -> tuple[int, object]:
        token = self.app[TOKENS].issue(self.project_id, Role.VIEWER, "vic")
        path = f"/projects/{project or self.project_id}/render/immersive?{query}"
        async with self.http.get(self.base + path,
                                 headers={"Authorization": f"Bearer {token}"}) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            audio, rate = sf.read(io.BytesIO(await response.read()), dtype="float32",
                                  always_2d=True)
            assert rate == RATE
            return response.status, audio.T


@pytest_asyncio.fixture
async def clients(tmp_path: Path):
    source = tmp_path / "noise.wav"
    rng = np.random.default_rng(5)
    sf.write(source, (0.1 * rng.standard_normal(FRAMES)).astype(np.float32), RATE)
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data", engine=False)
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        made = []
        for name, azimuth in (("A", 90.0), ("B", -90.0)):
            track = Track("obj", channels=1, clips=[Clip(str(source), 0, FRAMES)],
                          immersive=ImmersiveRoute("object", azimuth=azimuth))
            info = await import_session(app[STORE], Session(name=name, tracks=[track]),
                                        assets=app[ASSETS])
            made.append(Client(app, f"http://127.0.0.1:{config.port}", info.project_id, http))
        yield made


async def test_each_layout_places_the_object_where_the_document_has_it(clients) -> None:  # noqa: ANN001
    a, _ = clients
    status, speakers = await a.get(f"layout=7.1.4&frames={FRAMES}")
    assert status == 200 and speakers.shape == (len(BED_714), FRAMES)
    energy = (speakers.astype(np.float64) ** 2).sum(axis=1)
    assert BED_714[int(energy.argmax())] == "M+090" and energy.max() / energy.sum() > 0.999
    status, five = await a.get(f"layout=5.1&frames={FRAMES}")
    assert five.shape == (len(LAYOUTS["5.1"]), FRAMES)
    # moved through the document (as the page does): the next render follows
    async with a.app[ROOMS].use(a.project_id) as room:
        room.document.move_object("obj", azimuth=-30.0)
    _, speakers = await a.get(f"layout=7.1.4&frames={FRAMES}")
    energy = (speakers.astype(np.float64) ** 2).sum(axis=1)
    assert BED_714[int(energy.argmax())] == "M-030"


async def test_binaural_is_two_ears_and_a_window_is_cut_and_padded(clients) -> None:  # noqa: ANN001
    a, _ = clients
    status, ears = await a.get(f"layout=binaural&frames={FRAMES}")
    assert status == 200 and ears.shape == (2, FRAMES)
    left, right = (ears.astype(np.float64) ** 2).sum(axis=1)
    assert left > 4 * right  # the object is at +90 degrees: the left ear
    _, tail = await a.get(f"layout=stereo&start={FRAMES - 100}&frames=1000")
    assert tail.shape == (2, 1000) and np.abs(tail[:, :100]).max() > 0
    assert not tail[:, 100:].any()  # past the end of the mix: silence


async def test_bad_layout_and_other_projects_are_refused(clients) -> None:  # noqa: ANN001
    a, b = clients
    status, body = await a.get("layout=9.1.6")
    assert status == 400 and "7.1.4" in str(body)
    status, _ = await a.get("layout=stereo", project=b.project_id)  # A's token on B
    assert status in (403, 404)
    status, _ = await a.get("layout=stereo", project="nosuchproject")
    assert status in (403, 404)
    status, body = await a.get("layout=stereo&frames=48000000")  # 1,000 s in one request
    assert status == 400 and "60 s" in str(body)


async def test_the_render_thread_keeps_the_servers_plug_in_state_confinement(
        clients, monkeypatch) -> None:  # noqa: ANN001
    """The render runs in the request's context: an lv2 state's files are checked against
    the server's asset directories there too (dawserver/lv2_confine.py)."""
    from dsp_core import lv2_state

    seen = []

    def render(playable, layout):  # noqa: ANN001, ANN202 - render_immersive's stand-in
        seen.append(lv2_state.file_roots())
        return np.zeros((len(LAYOUTS[layout]), FRAMES), dtype=np.float32)

    monkeypatch.setattr("dawserver.immersive_routes.render_immersive", render)
    a, _ = clients
    status, _ = await a.get(f"layout=5.1&frames={FRAMES}")
    assert status == 200 and seen and seen[0]  # the server's roots, not None (anywhere)
