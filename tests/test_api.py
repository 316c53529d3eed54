"""The HTTP API: projects, token issuing, revocation that disconnects at once, renders."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
from loopback import free_port
from nodepeer import NodePeer, eventually, node_ready, running_server
from yjs_updates import TYPE_REF_9

from collab import protocol as p
from collab.client import SyncClient
from dawclient.channel import connect
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import STORE, TOKENS
from dawserver.projects import import_session
from dsp_core.session import Clip, Session, Track

pytestmark = pytest.mark.asyncio


class Api:
    def __init__(self, app, config: ServerConfig, http: aiohttp.ClientSession, project_id: str
                 ) -> None:
        self.app, self.config, self.http, self.project_id = app, config, http, project_id

    def token(self, role: str = "owner", user: str = "olga", project: str | None = None) -> str:
        return self.app[TOKENS].issue(project or self.project_id, role, user)

    async def call(self, method: str, path: str, token: str | None = None, **kwargs):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, self.config.base_url + path, headers=headers,
                                     **kwargs) as response:
            body = await response.read()
            ctype = response.content_type
            return response.status, (await response.json() if ctype == "application/json"
                                     else body)


@pytest_asyncio.fixture
async def api(tmp_path: Path):
    audio = tmp_path / "tone.flac"
    sf.write(audio, np.full(4800, 0.1, dtype=np.float32), 48000)
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    session = Session(name="Api", tracks=[Track("t1", clips=[Clip(str(audio), 0, 4800)])])
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        info = await import_session(app[STORE], session, assets=app[ASSETS])
        yield Api(app, config, http, info.project_id)


async def test_health_and_project_listing_need_an_admin_token(api: Api) -> None:
    assert (await api.call("GET", "/healthz"))[0] == 200
    status, body = await api.call("GET", "/projects", api.token(project="*"))
    assert status == 200 and [p["id"] for p in body] == [api.project_id]
    status, body = await api.call("GET", "/projects", api.token())
    assert status == 403 and "not" in body["error"]
    status, body = await api.call("GET", "/projects")
    assert status == 401 and "no token" in body["error"]


async def test_an_owner_renames_a_project_in_the_list_and_the_document(api: Api) -> None:
    path = f"/projects/{api.project_id}"
    status, body = await api.call("PATCH", path, api.token(), json={"name": " Second take "})
    assert (status, body) == (200, {"id": api.project_id, "name": "Second take"})
    _, listed = await api.call("GET", "/projects", api.token(project="*"))
    assert [p["name"] for p in listed] == ["Second take"]
    _, project = await api.call("GET", path, api.token(role="viewer"))
    assert project["document"]["meta"]["name"] == "Second take"
    status, body = await api.call("PATCH", path, api.token(role="editor"), json={"name": "No"})
    assert status == 403
    status, body = await api.call("PATCH", path, api.token(), json={"name": "  "})
    assert status == 422 and "body.name" in body["error"]
    status, body = await api.call("PATCH", "/projects/nope", api.token(project="*"),
                                  json={"name": "X"})
    assert status == 404 and "nope" in body["error"]
    _, listed = await api.call("GET", "/projects", api.token(project="*"))
    assert [p["name"] for p in listed] == ["Second take"]


async def test_an_admin_creates_projects_empty_or_from_project_json(api: Api) -> None:
    admin = api.token(project="*")
    status, body = await api.call("POST", "/projects", admin, json={"name": "Empty"})
    assert status == 201 and body["name"] == "Empty"
    project = {"format": "max-booster-project", "version": 1, "name": "X", "sample_rate": 48000,
               "tracks": [{"id": "v", "clips": []}]}
    status, body = await api.call("POST", "/projects", admin, json={"name": "X",
                                                                      "project": project})
    assert status == 201
    status, doc = await api.call("GET", f"/projects/{body['id']}", admin)
    assert status == 200 and list(doc["document"]["tracks"]) == ["v"]
    status, body = await api.call("POST", "/projects", admin, json={"project": {"tracks": 5}})
    assert status == 400 and "invalid project" in body["error"]


async def test_owners_issue_tokens_and_editors_cannot(api: Api) -> None:
    status, body = await api.call("POST", f"/projects/{api.project_id}/tokens", api.token(),
                                  json={"role": "editor", "user": "sam"})
    assert status == 201 and body["websocket"].endswith(f"/collab/{api.project_id}")
    grant = api.app[TOKENS].verify(body["token"])
    assert (grant.role.value, grant.user, grant.project_id) == ("editor", "sam", api.project_id)
    status, _ = await api.call("POST", f"/projects/{api.project_id}/tokens", body["token"],
                               json={"role": "owner"})
    assert status == 403
    status, body = await api.call("POST", f"/projects/{api.project_id}/tokens", api.token(),
                                  json={"role": "boss"})
    assert status == 422 and "viewer, editor, owner" in body["error"]


async def test_revoking_a_member_disconnects_them_now_and_refuses_old_tokens(api: Api) -> None:
    url = f"{api.config.collab_url}/{api.project_id}"
    ben_token = api.token("editor", "ben")
    async with connect(url, api.token("editor", "ana")) as ana_channel, \
            connect(url, ben_token) as ben_channel:
        ana = SyncClient(ana_channel)
        ben = SyncClient(ben_channel)
        await ana.start()
        await ben.start()
        await ana.wait_synced()
        await ben.wait_synced()
        status, body = await api.call("DELETE", f"/projects/{api.project_id}/members/ben",
                                      api.token())
        assert status == 200 and body == {"revoked": "ben", "disconnected": 1}
        await asyncio.wait_for(ben.closed.wait(), 5)
        assert ben_channel.close_code == p.CloseCode.ROLE_REVOKED
        assert not ana.closed.is_set()
        await ana.stop()
    async with connect(url, ben_token) as again:
        await asyncio.wait_for(SyncClient(again)._read_loop(), 5)
        assert again.close_code == p.CloseCode.ROLE_REVOKED
    async with connect(url, api.token("editor", "ben")) as fresh, SyncClient(fresh) as client:
        await client.wait_synced()


@pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))
async def test_revocation_closes_a_node_client_with_the_revoked_code(api: Api) -> None:
    async with NodePeer() as node:
        await node.call("connect", url=api.config.collab_url, room=api.project_id,
                        token=api.token("viewer", "vic"))
        await node.wait_event("synced")
        await api.call("DELETE", f"/projects/{api.project_id}/members/vic", api.token())
        closed = await node.wait_event("close")
        assert closed["code"] == p.CloseCode.ROLE_REVOKED and "revoked" in closed["reason"]


async def test_a_new_role_applies_to_live_sessions_and_replaces_old_tokens(api: Api) -> None:
    url = f"{api.config.collab_url}/{api.project_id}"
    path = f"/projects/{api.project_id}/members/ben"
    old_token = api.token("editor", "ben")
    async with connect(url, old_token) as channel, SyncClient(channel) as ben:
        await ben.wait_synced()
        status, body = await api.call("PUT", path, api.token(), json={"role": "viewer"})
        assert status == 200 and (body["user"], body["role"], body["changed"]) == (
            "ben", "viewer", 1)
        ben.document.set_track_gain("t1", -9.0)
        await eventually(lambda: ben.denials)
        assert "role viewer cannot edit" in ben.denials[0] and not ben.closed.is_set()
    _, project = await api.call("GET", f"/projects/{api.project_id}", api.token())
    assert project["document"]["tracks"]["t1"]["gain_db"] == 0.0
    async with connect(url, old_token) as again:
        await asyncio.wait_for(SyncClient(again)._read_loop(), 5)
        assert again.close_code == p.CloseCode.ROLE_REVOKED
    grant = api.app[TOKENS].verify(body["token"])
    assert (grant.role.value, grant.user, grant.project_id) == ("viewer", "ben", api.project_id)
    async with connect(url, body["token"]) as fresh, SyncClient(fresh) as client:
        await client.wait_synced()
        assert client.document.track("t1")["gain_db"] == 0.0


async def test_role_changes_are_for_owners_and_name_a_real_role(api: Api) -> None:
    path = f"/projects/{api.project_id}/members"
    status, body = await api.call("PUT", f"{path}/ben", api.token(), json={"role": "boss"})
    assert status == 422 and "viewer, editor, owner" in body["error"]
    status, body = await api.call("PUT", f"{path}/olga", api.token(), json={"role": "viewer"})
    assert status == 400 and "another owner" in body["error"]
    status, _ = await api.call("PUT", f"{path}/ben", api.token("editor", "eve"),
                               json={"role": "owner"})
    assert status == 403


async def test_owners_cannot_revoke_themselves(api: Api) -> None:
    status, body = await api.call("DELETE", f"/projects/{api.project_id}/members/olga",
                                  api.token())
    assert status == 400 and "another owner" in body["error"]


async def test_render_returns_the_live_mix_as_a_wav(api: Api) -> None:
    status, body = await api.call("GET", f"/projects/{api.project_id}/render?frames=4800",
                                  api.token("viewer", "vic"))
    assert status == 200
    audio, rate = sf.read(io.BytesIO(body), dtype="float32")
    assert rate == 48000 and audio.shape == (4800, 2) and np.abs(audio).max() > 0.01
    status, body = await api.call("GET", f"/projects/{api.project_id}/render?frames=x",
                                  api.token())
    assert status == 422 and body["fields"][0]["path"] == "query.frames"
    status, body = await api.call("GET", f"/projects/{api.project_id}/render?frames=99999999",
                                  api.token())
    assert status == 400 and "frames must be in" in body["error"]
    status, body = await api.call("GET", f"/projects/{api.project_id}/render?start={2**63}",
                                  api.token())
    assert status == 422 and body["fields"][0]["path"] == "query.start"


async def test_metrics_count_refused_updates_by_reason(api: Api) -> None:
    def refused(text: str) -> float:
        line = next(x for x in text.splitlines()
                    if x.startswith('collab_updates_refused_total{reason="format"}'))
        return float(line.split()[-1])

    status, before = await api.call("GET", "/metrics")
    assert status == 200
    before_count = refused(before.decode()) if b'reason="format"' in before else 0.0
    token = api.token(role="editor", user="mallory")
    async with api.http.ws_connect(f"{api.config.collab_url}/{api.project_id}",
                                   params={"token": token}) as ws:
        await ws.send_bytes(p.sync_update(TYPE_REF_9))
        while (message := await ws.receive(timeout=20)).type == aiohttp.WSMsgType.BINARY:
            pass
        assert message.data == p.CloseCode.MALFORMED_MESSAGE
    _, after = await api.call("GET", "/metrics")
    assert refused(after.decode()) == before_count + 1
