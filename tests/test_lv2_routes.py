"""GET /lv2/plugins: the installed plug-ins with their controls (any token, a signed-in
person; none and the reason without liblilv). GET /projects/{id}/lv2/bypassed and POST
.../lv2/restart: a plug-in that fails in the
server's engine is listed (and announced to the project's peers through awareness), a
restart after the control that broke it is fixed clears it, an effect the document's
session leaves out is listed with its reason; viewers read but cannot restart, and
another project's token or another account's person sees nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from accounts_helpers import Person, accounts_server
from loopback import free_port
from lv2_helpers import INSTRUMENT, MISBEHAVE, MODES, lv2_path  # noqa: F401
from nodepeer import NodePeer, eventually, running_server
from smtp_server import SmtpServer

from collab import protocol as p
from collab.client import SyncClient
from dawclient.channel import connect
from dawserver.config import ServerConfig
from dawserver.keys import ROOMS, STORE, TOKENS
from dawserver.lv2_faults import AWARENESS_KEY, LV2_FAULTS, FaultLog, left_out
from dawserver.projects import import_session
from dsp_core import lv2_catalog
from dsp_core.effects import EffectSpec
from dsp_core.lv2_chain import PluginError
from dsp_core.lv2_lilv import Lv2Unavailable
from dsp_core.midi import Instrument
from dsp_core.session import Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120), pytest.mark.usefixtures("lv2_path")]
RATE = 48000
GHOST = "urn:maxbooster:test:not-installed"


class Api:
    def __init__(self, app: Any, config: ServerConfig, http: aiohttp.ClientSession,
                 project: str) -> None:
        self.app, self.config, self.http, self.project = app, config, http, project

    def token(self, role: str = "editor", project: str | None = None) -> str:
        return self.app[TOKENS].issue(project or self.project, role, "ed")

    async def call(self, method: str, path: str, role: str = "editor",
                   token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.token(role)}"}
        body = {} if method == "POST" else None
        async with self.http.request(method, self.config.base_url + path, headers=headers,
                                     json=body) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.read()

    async def bypassed(self, role: str = "viewer") -> list[dict[str, Any]]:
        status, body = await self.call("GET", f"/projects/{self.project}/lv2/bypassed", role)
        assert status == 200, body
        assert body["project_id"] == self.project
        return body["plugins"]

    async def render(self) -> None:
        status, _ = await self.call("GET", f"/projects/{self.project}/render?frames=4800")
        assert status == 200

    async def mode(self, mode: str) -> None:
        async with self.app[ROOMS].use(self.project) as room:
            await room.edit(lambda d: d.set_effect_params("t1", 0, mode=float(MODES[mode])))
        await asyncio.sleep(0.2)  # the engine applies document changes debounced


@pytest_asyncio.fixture
async def api(tmp_path: Path):
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    track = Track("t1", channels=1,  # no clip: the plug-in runs on silence
                  effects=[EffectSpec("lv2", {"uri": MISBEHAVE}, id="fx-1")])
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        info = await import_session(app[STORE], Session(name="Plug", sample_rate=RATE,
                                                        tracks=[track]))
        yield Api(app, config, http, info.project_id)


async def test_a_failed_plugin_is_listed_announced_and_restarted(api: Api) -> None:
    async with connect(f"{api.config.collab_url}/{api.project}", api.token("viewer")) as ch, \
            SyncClient(ch) as peer:
        await peer.wait_synced()
        await api.render()
        assert await api.bypassed() == []  # plays: nothing bypassed, nothing announced
        await api.mode("nan")
        await api.render()
        [fault] = await api.bypassed()
        assert fault["reason"] == "failed" and fault["owner"] == "t1"
        assert fault["effect"] == "fx-1" and fault["index"] == 0
        assert fault["uri"] == MISBEHAVE and fault["name"]
        assert "NaN" in fault["message"] or "nan" in fault["message"].lower()
        assert fault["engines"] == ["render"] and fault["since"] > 0
        # every peer of the project is told, without asking
        async with asyncio.timeout(5):
            while not any(AWARENESS_KEY in s for s in peer.presence.values()):
                await asyncio.sleep(0.02)
        [state] = [s for s in peer.presence.values() if AWARENESS_KEY in s]
        assert state[AWARENESS_KEY]["bypassed"] == [fault]
        # a restart with the control still broken: restarted, and bypassed again once it runs
        status, body = await api.call("POST", f"/projects/{api.project}/lv2/restart")
        assert status == 200, body
        assert [(f["owner"], f["effect"]) for f in body["restarted"]] == [("t1", "fx-1")]
        assert body["bypassed"] == []
        await api.render()
        assert [f["effect"] for f in await api.bypassed()] == ["fx-1"]
        # the control fixed, a restart clears it
        await api.mode("pass")
        status, body = await api.call("POST", f"/projects/{api.project}/lv2/restart")
        assert status == 200, body
        assert [(f["owner"], f["effect"]) for f in body["restarted"]] == [("t1", "fx-1")]
        assert body["bypassed"] == []
        await api.render()
        assert await api.bypassed() == []
        async with asyncio.timeout(5):  # the announcement is withdrawn
            while any(AWARENESS_KEY in s for s in peer.presence.values()):
                await asyncio.sleep(0.02)
        # nothing failed: a restart restarts nothing
        status, body = await api.call("POST", f"/projects/{api.project}/lv2/restart")
        assert status == 200 and body == {"project_id": api.project, "restarted": [],
                                          "bypassed": []}


async def test_a_peer_cannot_clear_or_fake_the_announced_bypassed_list(api: Api) -> None:
    server_id = api.app[LV2_FAULTS].client_id
    assert server_id >= 1 << 32  # above every yjs client id (uint32)
    async with connect(f"{api.config.collab_url}/{api.project}", api.token("viewer")) as ch, \
            SyncClient(ch) as peer, \
            connect(f"{api.config.collab_url}/{api.project}", api.token()) as mallory:
        await peer.wait_synced()
        await api.mode("nan")
        await api.render()
        [fault] = await api.bypassed()
        async with asyncio.timeout(5):
            while server_id not in peer.presence:
                await asyncio.sleep(0.02)
        fake = {**fault, "owner": "t9", "effect": "fx-9"}
        await mallory.send(p.awareness(p.encode_awareness([
            p.AwarenessEntry(server_id, 1_000, None),  # withdraw the list
            p.AwarenessEntry(server_id, 1_001, {AWARENESS_KEY: {"bypassed": [fake]}})])))
        await mallory.send(p.awareness(p.encode_awareness([  # or add to it, as itself
            p.AwarenessEntry(12345, 1, {"user": "m", AWARENESS_KEY: {"bypassed": [fake]}})])))
        async with asyncio.timeout(5):
            while 12345 not in peer.presence:
                await asyncio.sleep(0.02)
        assert peer.presence[12345] == {"user": "m"}
        assert peer.presence[server_id] == {AWARENESS_KEY: {"bypassed": [fault]}}
        assert [s for s in peer.presence.values() if AWARENESS_KEY in s] == \
            [{AWARENESS_KEY: {"bypassed": [fault]}}]
        async with NodePeer() as page:  # stock yjs reads the server's id (past 2^32) too
            await page.call("connect", url=api.config.collab_url, room=api.project,
                            token=api.token("viewer"))
            await page.wait_event("synced")
            await eventually(lambda: _announced(page, server_id, fault))


async def _announced(page: NodePeer, server_id: int, fault: dict[str, Any]) -> bool:
    states = (await page.call("presence_dump"))["states"]
    return states.get(str(server_id)) == {AWARENESS_KEY: {"bypassed": [fault]}}


async def test_an_effect_the_session_leaves_out_is_listed_with_its_reason(api: Api) -> None:
    async with api.app[ROOMS].use(api.project) as room:
        def ghost(document: Any) -> None:  # a peer's write add_effect would refuse
            effects = document._track_map("t1")["effects"]
            with document.transaction():
                effects[0]["params"]["uri"] = GHOST
        await room.edit(ghost)
    [fault] = await api.bypassed()
    assert fault["reason"] == "left_out" and fault["owner"] == "t1"
    assert fault["effect"] == "fx-1" and GHOST in fault["message"]
    assert fault["engines"] == ["document"] and fault["uri"] is None
    assert not fault["message"].endswith("played bypassed")
    status, body = await api.call("POST", f"/projects/{api.project}/lv2/restart")
    assert status == 200 and body["restarted"] == [] and body["bypassed"] == [fault]


async def test_viewers_read_but_cannot_restart_and_other_projects_see_nothing(
        api: Api) -> None:
    path = f"/projects/{api.project}/lv2"
    assert (await api.call("GET", f"{path}/bypassed", "viewer"))[0] == 200
    status, body = await api.call("POST", f"{path}/restart", "viewer")
    assert status == 403 and "project.edit" in body["error"]
    other = await import_session(api.app[STORE], Session(name="Other", sample_rate=RATE))
    token = api.token("owner", project=other.project_id)
    assert (await api.call("GET", f"{path}/bypassed", token=token))[0] == 403
    assert (await api.call("POST", f"{path}/restart", token=token))[0] == 403
    status, body = await api.call("GET", "/projects/nope/lv2/bypassed",
                                  token=api.app[TOKENS].issue("*", "owner", "admin"))
    assert status == 404 and "nope" in body["error"]


async def test_another_accounts_project_answers_as_missing(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        eve = Person(config.base_url, smtp_server, "eve@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            await eve.sign_up_and_in("Eve")
            status, project, _ = await ada.call("POST", f"/accounts/{ada.id}/projects",
                                                {"name": "Single"})
            assert status == 201, project
            path = f"/projects/{project['id']}/lv2"
            status, body, _ = await ada.call("GET", f"{path}/bypassed")
            assert status == 200 and body["plugins"] == []
            assert (await ada.call("POST", f"{path}/restart", {}))[0] == 200
            assert (await eve.call("GET", f"{path}/bypassed"))[0] == 404
            assert (await eve.call("POST", f"{path}/restart", {}))[0] == 404
        finally:
            await ada.close()
            await eve.close()


async def test_an_lv2_instrument_is_listed_with_its_track_and_plugin() -> None:
    """A MIDI track's lv2 instrument fails (index -1) or is left out of the session in
    its own words: both name the track, ``instrument`` and, failed, its plug-in."""
    instrument = Instrument("lv2", {"uri": MISBEHAVE})
    session = Session(name="Keys", sample_rate=RATE,
                      tracks=[Track("keys", channels=2, instrument=instrument)])
    log = FaultLog("render")
    assert log.see([PluginError("keys", "instrument", -1, "answered NaN")], session)
    [fault] = log.failed
    assert (fault.owner, fault.effect, fault.index) == ("keys", "instrument", -1)
    assert fault.uri == MISBEHAVE and fault.name and fault.message == "answered NaN"

    [fault] = left_out([f"track 'keys' instrument: lv2: {GHOST} is not installed; the "
                        "instrument plays as none"], {})
    assert (fault.reason, fault.owner, fault.effect) == ("left_out", "keys", "instrument")
    assert fault.message == f"lv2: {GHOST} is not installed"


async def test_the_installed_plugins_are_listed_with_their_controls(api: Api) -> None:
    status, body = await api.call("GET", "/lv2/plugins", "viewer")
    assert status == 200, body
    assert "reason" not in body  # None is left out of answers
    listed = {p["uri"]: p for p in body["plugins"]}
    assert [p["uri"] for p in body["plugins"]] == sorted(listed)
    effect, instrument = listed[MISBEHAVE], listed[INSTRUMENT]
    assert effect["effect"] and not effect["instrument"] and effect["problems"] == []
    assert effect["name"] == "Misbehaving test plug-in" and effect["reports_latency"]
    assert (effect["audio_inputs"], effect["audio_outputs"]) == (1, 1)
    mode, gain, delay = effect["controls"]
    assert (mode["symbol"], mode["minimum"], mode["maximum"], mode["default"]) == \
        ("mode", 0, 4, 0)
    assert mode["integer"] and not gain["integer"] and not gain["toggled"]
    assert (gain["name"], gain["default"]) == ("Gain", 1.0)
    assert delay["symbol"] == "delay" and "scale_points" not in delay  # only where some
    assert mode["enumeration"] and [(p["value"], p["label"]) for p in mode["scale_points"]] \
        == [(0, "Pass"), (1, "NaN"), (2, "Hang"), (3, "Crash"), (4, "Denormal")]
    assert instrument["instrument"] and not instrument["effect"]
    assert instrument["problems"] and instrument["instrument_problems"] == []
    # any project's token lists them; without a token, 401
    other = await import_session(api.app[STORE], Session(name="Other", sample_rate=RATE))
    token = api.token("viewer", project=other.project_id)
    assert (await api.call("GET", "/lv2/plugins", token=token))[0] == 200
    async with api.http.get(api.config.base_url + "/lv2/plugins") as response:
        assert response.status == 401
    admin = api.app[TOKENS].issue("*", "owner", "admin")  # names the project it acts for
    assert (await api.call("GET", f"/lv2/plugins?account={api.project}", token=admin))[0] == 200
    assert (await api.call("GET", "/lv2/plugins", token=admin))[0] == 400


async def test_a_server_without_liblilv_lists_none_and_says_why(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> list[Any]:
        raise Lv2Unavailable("cannot load liblilv-0.so.0; install the Debian package "
                             "liblilv-0-0")
    monkeypatch.setattr(lv2_catalog, "plugins", missing)
    status, body = await api.call("GET", "/lv2/plugins", "viewer")
    assert status == 200, body
    assert body["plugins"] == [] and "liblilv-0-0" in body["reason"]


async def test_a_signed_in_person_lists_the_installed_plugins(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            status, body, _ = await ada.call("GET", "/lv2/plugins")
            assert status == 200, body
            assert MISBEHAVE in {p["uri"] for p in body["plugins"]}
        finally:
            await ada.close()
