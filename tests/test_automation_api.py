"""POST /projects/{id}/automation/write: a pass of fader events becomes lane points that the
server's render plays, viewers are refused, bad batches say what is wrong."""

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

from dawserver.config import ServerConfig
from dawserver.keys import ROOMS, STORE, TOKENS
from dawserver.projects import import_session
from dsp_core.session import AutomationLane, Clip, Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]
RATE = 48000


class Api:
    def __init__(self, app, config: ServerConfig, http: aiohttp.ClientSession, project: str):
        self.app, self.config, self.http, self.project = app, config, http, project

    def token(self, role: str = "editor", user: str = "ed") -> str:
        return self.app[TOKENS].issue(self.project, role, user)

    async def call(self, method: str, path: str, role: str = "editor", **kwargs):
        headers = {"Authorization": f"Bearer {self.token(role)}"}
        async with self.http.request(method, self.config.base_url + path, headers=headers,
                                     **kwargs) as response:
            body = await response.read()
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, body

    async def write(self, role: str = "editor", **batch):
        return await self.call("POST", f"/projects/{self.project}/automation/write", role,
                               json=batch)


@pytest_asyncio.fixture
async def api(tmp_path: Path):
    audio = tmp_path / "dc.wav"
    sf.write(audio, np.full(3 * RATE, 0.5, dtype=np.float32), RATE)
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    track = Track("t1", channels=1, pan=0.0, clips=[Clip(str(audio), 0, 3 * RATE)],
                  automation={"gain_db": AutomationLane("touch")})
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        info = await import_session(app[STORE], Session(name="Auto", sample_rate=RATE,
                                                        tracks=[track]))
        yield Api(app, config, http, info.project_id)


async def test_a_touch_written_in_batches_is_heard_in_the_render(api: Api) -> None:
    _, before = await api.call("GET", f"/projects/{api.project}/render?frames={2 * RATE}")
    quiet = RATE // 2 + 1000
    status, body = await api.write(pass_id="pg1", track="t1", param="gain_db", start=0,
                                   events=[[RATE // 2, -20.0, True]], now=RATE // 2 + 10)
    assert status == 200 and body["mode"] == "touch" and body["changed"] > 0
    status, body = await api.write(pass_id="pg1", track="t1", param="gain_db", start=0,
                                   events=[[RATE, -20.0, False]], stop=RATE + 100)
    assert status == 200 and body["done"]
    _, after = await api.call("GET", f"/projects/{api.project}/render?frames={2 * RATE}")
    dry = sf.read(io.BytesIO(before), dtype="float32")[0][:, 0]
    wet = sf.read(io.BytesIO(after), dtype="float32")[0][:, 0]
    assert np.allclose(wet[:RATE // 2], dry[:RATE // 2], rtol=1e-5)   # before the touch
    assert wet[quiet] == pytest.approx(dry[quiet] * 10 ** (-20 / 20), rel=1e-5)
    assert wet[RATE + RATE // 2] == pytest.approx(dry[RATE + RATE // 2], rel=1e-5)  # back
    _, project = await api.call("GET", f"/projects/{api.project}")
    points = project["document"]["tracks"]["t1"]["automation"]["gain_db"]["points"]
    assert points and all(k.startswith("pg1.") for k in points)


async def test_viewers_are_refused_and_bad_batches_say_why(api: Api) -> None:
    batch = {"pass_id": "v", "track": "t1", "param": "gain_db", "start": 0,
             "events": [[10, -3.0, False]]}
    status, _ = await api.write("viewer", **batch)
    assert status == 403
    status, body = await api.write(**{**batch, "param": "colour"})
    assert status == 400 and "cannot be automated" in body["error"]
    status, body = await api.write(**{**batch, "track": "nope"})
    assert status == 400 and "no track" in body["error"]
    status, body = await api.write(**{**batch, "pass_id": "a b"})
    assert status == 400 and "pass id" in body["error"]
    status, body = await api.write(**{**batch, "events": [[10, "loud", True]]})
    assert status == 422


async def test_a_pass_the_server_lost_goes_on_without_losing_what_it_wrote(api: Api) -> None:
    from dawserver.keys import AUTOMATION_PASSES

    batch = {"pass_id": "lost", "track": "t1", "param": "gain_db", "start": 0}
    await api.write(**batch, events=[[RATE // 2, -20.0, True]], now=RATE // 2)
    api.app[AUTOMATION_PASSES].clear()  # as after a restart of the process
    status, body = await api.write(**batch, events=[[RATE, -10.0, False]], stop=RATE + 10)
    assert status == 200 and body["done"]
    _, project = await api.call("GET", f"/projects/{api.project}")
    points = project["document"]["tracks"]["t1"]["automation"]["gain_db"]["points"]
    values = {p["value"] for k, p in points.items() if k.startswith("lost.")}
    assert -20.0 in values
    assert any(k.startswith("lost-") and p["value"] == -10.0 for k, p in points.items())


async def test_huge_frames_and_too_many_passes_are_refused_and_the_lane_stays_whole(
        api: Api, monkeypatch) -> None:
    from dawserver import automation_api

    first = {"pass_id": "ok", "track": "t1", "param": "gain_db", "start": 0,
             "events": [[100, -3.0, True], [4800, -6.0, True]], "now": 4800}
    assert (await api.write(**first))[0] == 200
    status, body = await api.write(**{**first, "pass_id": "big",
                                      "events": [[10 ** 30, 0.0, True]], "now": None})
    assert status == 422 and "events" in str(body)  # a frame past 2**53: never reaches pycrdt
    async with api.app[ROOMS].use(api.project) as room:
        points = room.document.automation("t1")["gain_db"]["points"]
    assert sorted(points) and all(k.startswith("ok.") for k in points)
    status, body = await api.write(**{**first, "events": [[9600, -9.0, True]], "now": 9600})
    assert status == 200 and body["points"] >= 3  # the pass goes on

    monkeypatch.setattr(automation_api, "MAX_OPEN_PASSES", 2)
    assert (await api.write(**{**first, "pass_id": "two"}))[0] == 200
    async with api.http.post(
            f"{api.config.base_url}/projects/{api.project}/automation/write",
            headers={"Authorization": f"Bearer {api.token()}"},
            json={**first, "pass_id": "three"}) as response:
        assert response.status == 429 and response.headers["Retry-After"] == "120"
        assert "stop one" in (await response.json())["error"]
    assert (await api.write(**{**first, "pass_id": "two", "stop": 9600}))[0] == 200
    assert (await api.write(**{**first, "pass_id": "three"}))[0] == 200  # room again


async def test_a_pass_past_its_event_cap_answers_413(api: Api, monkeypatch) -> None:
    from collab import automation_write

    monkeypatch.setattr(automation_write, "MAX_PASS_EVENTS", 5)
    batch = {"pass_id": "long", "track": "t1", "param": "gain_db", "start": 0,
             "events": [[f * 480, -f / 2, True] for f in range(4)], "now": 2000}
    assert (await api.write(**batch))[0] == 200
    status, body = await api.write(**{**batch, "events": [[f * 480, -1.0, True]
                                                         for f in range(4, 8)]})
    assert status == 413 and "new pass" in body["error"]
