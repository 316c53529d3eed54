"""Clips name assets by id: the server plays only the project's own assets (issue 19).

An editor edits the document over the collaboration WebSocket (a stock Yjs client) to
point a clip (or a convolution's ``ir``) at another project's asset or at an audio file
on the server; a bounce then fails naming the clip, and the live mix leaves the clip out
and says so in its answer. Nothing of the foreign file reaches the output.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
from loopback import free_port
from nodepeer import NodePeer, eventually, node_ready, running_server

from collab.tokens import Role
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import ROOMS, STORE, TOKENS
from dawserver.projects import import_session
from dawserver.rtc_client import RtcListener
from dsp_core.midi import Instrument, SampleZone
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90),
              pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))]
RATE = 48000


def tone(path: Path, freq: float, seconds: float = 1.0) -> Path:
    t = np.arange(int(RATE * seconds)) / RATE
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), RATE,
             subtype="FLOAT")
    return path


class Scene:
    """Two projects on one server (the asset store is shared) and an editor's peer."""

    def __init__(self, app, config: ServerConfig, mine: str, theirs: str, secret: Path,
                 peer: NodePeer, http: aiohttp.ClientSession) -> None:
        self.app, self.config, self.mine, self.theirs = app, config, mine, theirs
        self.secret, self.peer, self.http = secret, peer, http

    def headers(self, role: Role = Role.EDITOR) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.app[TOKENS].issue(self.mine, role, 'eve')}"}

    async def asset_of(self, project_id: str) -> str:
        async with self.app[ROOMS].use(project_id) as room:
            return next(iter(room.document.clip_sources()))

    async def clip_ids(self) -> list[str]:
        async with self.app[ROOMS].use(self.mine) as room:
            return sorted(room.document.clip_source_map())

    async def set_clip_source(self, clip_id: str, source: str) -> None:
        await self.peer.call("set_clip", clip=clip_id, field="source", value=source)
        async with self.app[ROOMS].use(self.mine) as room:
            await eventually(lambda: room.document.clip(clip_id)["source"] == source)

    async def add_convolution(self, effect: str, ir: str, mix: float) -> None:
        await self.peer.call("add_effect", track="t1", effect=effect, kind="convolution",
                             params={"ir": ir, "mix": mix})
        async with self.app[ROOMS].use(self.mine) as room:
            await eventually(lambda: [e.id for e in room.document.to_session().tracks[0]
                                      .effects] == [effect])

    async def bounce(self) -> dict:
        url = f"{self.config.base_url}/projects/{self.mine}/bounces"
        async with self.http.post(url, json={}, headers=self.headers()) as response:
            assert response.status == 202, await response.text()
            job = await response.json()
        for _ in range(500):
            async with self.http.get(f"{url}/{job['id']}", headers=self.headers()) as response:
                job = await response.json()
            if job["status"] in ("done", "failed"):
                return job
            await asyncio.sleep(0.02)
        raise AssertionError("the bounce did not finish")


@pytest_asyncio.fixture
async def scene(tmp_path: Path):
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    mine = tone(tmp_path / "mine.wav", 220)
    theirs = tone(tmp_path / "theirs.wav", 3000)
    secret = tone(tmp_path / "secret.wav", 5000)  # on the server, in no project
    async with running_server(config) as app, contextlib.AsyncExitStack() as stack:
        a = await import_session(app[STORE], Session(name="Mine", tracks=[
            Track("t1", clips=[Clip(str(mine), 0, RATE, id="c1")])]), assets=app[ASSETS])
        b = await import_session(app[STORE], Session(name="Theirs", tracks=[
            Track("t1", clips=[Clip(str(theirs), 0, RATE, id="c1")])]), assets=app[ASSETS])
        peer = await stack.enter_async_context(NodePeer())
        await peer.call("connect", url=config.collab_url, room=a.project_id,
                        token=app[TOKENS].issue(a.project_id, "editor", "eve"))
        await peer.wait_event("synced")
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield Scene(app, config, a.project_id, b.project_id, secret, peer, http)


async def test_an_imported_project_names_its_audio_by_asset_id(scene: Scene) -> None:
    source = await scene.asset_of(scene.mine)
    assert len(source) == 64 and scene.app[ASSETS].belongs(scene.mine, source)
    job = await scene.bounce()
    assert job["status"] == "done", job


@pytest.mark.parametrize("pick", ["their asset id", "their asset's path", "a server file"])
async def test_a_bounce_refuses_a_clip_naming_anything_but_the_projects_assets(
        scene: Scene, pick: str) -> None:
    their_id = await scene.asset_of(scene.theirs)
    source = {"their asset id": their_id,
              "their asset's path": scene.app[ASSETS].asset(their_id).path,
              "a server file": str(scene.secret)}[pick]
    await scene.set_clip_source("c1", source)
    job = await scene.bounce()
    assert job["status"] == "failed", job
    assert "clip 'c1' on track 't1'" in job["error"]
    assert "not one of this project's assets" in job["error"] or "not an asset id" in \
        job["error"]
    assert not scene.app[ASSETS].belongs(scene.mine, their_id)


async def test_a_convolution_ir_naming_a_server_file_is_refused(scene: Scene) -> None:
    their_id = await scene.asset_of(scene.theirs)
    for ir in (str(scene.secret), their_id):
        await scene.add_convolution(f"fx-{ir[-4:]}", ir, 1.0)
        job = await scene.bounce()
        assert job["status"] == "failed", job
        assert f"convolution 'fx-{ir[-4:]}' on track 't1' (its 'ir')" in job["error"]
        async with scene.app[ROOMS].use(scene.mine) as room:
            await room.edit(lambda d: d.remove_effect("t1", 0))
    mine = await scene.asset_of(scene.mine)  # the project's own asset as an ir: fine
    await scene.add_convolution("fx-own", mine, 0.5)
    job = await scene.bounce()
    assert job["status"] == "done", job


async def test_the_live_mix_leaves_out_and_reports_a_foreign_clip(scene: Scene) -> None:
    their_id = await scene.asset_of(scene.theirs)
    async with scene.app[ROOMS].use(scene.mine) as room:
        await room.edit(lambda d: d.add_clip("t1", Clip(their_id, RATE, RATE, id="c2")))
        await room.edit(lambda d: d.add_clip("t1", Clip(str(scene.secret), 2 * RATE, RATE,
                                                        id="c3")))
        await room.edit(lambda d: d.update_transport(playing=True, position=0))
    token = scene.app[TOKENS].issue(scene.mine, Role.VIEWER, "vic")
    async with RtcListener(scene.config.base_url, scene.mine, token,
                           low_latency=False) as listener:
        await listener.wait_frames(50)
        skipped = "\n".join(listener.skipped)
        assert "clip 'c2' on track 't1'" in skipped and "clip 'c3' on track 't1'" in skipped
        assert "clip 'c1'" not in skipped
        # the render route leaves them out too: its audio after the own clip is silence
        url = f"{scene.config.base_url}/projects/{scene.mine}/render"
        async with scene.http.get(url, params={"start": 0, "frames": 3 * RATE,
                                               "token": token}) as response:
            assert response.status == 200
            data, _ = sf.read(io.BytesIO(await response.read()),
                              dtype="float32")
        assert np.abs(data[:RATE]).max() > 0.1
        assert np.abs(data[RATE:]).max() == 0.0


async def test_a_document_from_before_ids_is_migrated_and_renders_the_same(
        tmp_path: Path) -> None:
    """A stored document whose clips carry asset-store paths (what the server wrote
    before ids) gets ids when its room loads, and renders exactly as it did."""
    from dawserver.clip_sources import MIGRATIONS
    from dsp_core import Engine

    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    take = tone(tmp_path / "take.wav", 330)
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        project = "old-project"
        asset = app[ASSETS].ingest_file(take, project_id=project, name="take.wav")
        old = Session(name="Old", tracks=[
            Track("t1", gain_db=-3.0, clips=[Clip(asset.path, 1000, RATE // 2, id="c1",
                                                  fade_in=480)])])
        await import_session(app[STORE], old, project_id=project)  # no ids: as before
        reference = Engine(old).render(0, RATE)  # what the old server played
        async with app[ROOMS].use(project) as room:
            async with asyncio.timeout(60):
                await app[MIGRATIONS].wait()
            await eventually(lambda: room.document.clip("c1")["source"] == asset.id)
        token = app[TOKENS].issue(project, Role.VIEWER, "vic")
        url = f"{config.base_url}/projects/{project}/render"
        async with http.get(url, params={"start": 0, "frames": RATE,
                                         "token": token}) as response:
            assert response.status == 200, await response.text()
            data, _ = sf.read(io.BytesIO(await response.read()), dtype="float32")
        np.testing.assert_array_equal(data.T, reference)


async def test_a_sampler_zone_naming_anything_but_the_projects_assets_is_refused(
        scene: Scene) -> None:
    their_id = await scene.asset_of(scene.theirs)
    for source in (str(scene.secret), their_id):
        sampler = Instrument("sampler", zones=[SampleZone(source, id="z1")])
        async with scene.app[ROOMS].use(scene.mine) as room:
            await room.edit(lambda d, s=sampler: d.set_instrument("t1", s))
        job = await scene.bounce()
        assert job["status"] == "failed", job
        assert "sampler zone 'z1' on track 't1'" in job["error"]
    mine = await scene.asset_of(scene.mine)  # the project's own asset as a zone: fine
    async with scene.app[ROOMS].use(scene.mine) as room:
        await room.edit(lambda d: d.set_instrument(
            "t1", Instrument("sampler", zones=[SampleZone(mine, id="z1")])))
    job = await scene.bounce()
    assert job["status"] == "done", job
