"""The files a plug-in's saved state may name: each server confines its own documents to
its own asset directories (dawserver/lv2_confine.py), and nothing outside a server is
confined (dsp_core.lv2_state.confined)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from loopback import free_port
from lv2_helpers import MISBEHAVE, lv2_path  # noqa: F401
from nodepeer import running_server
from pycrdt import Map

from collab.schema import ProjectDocument
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import ROOMS, STORE, TOKENS
from dawserver.projects import import_session
from dsp_core import EffectSpec, ProjectError, Session, Track, lv2_state

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120), pytest.mark.usefixtures("lv2_path")]

OUTSIDE = "outside the server's asset directories"


def naming(path: Path) -> str:
    """A saved state of the test plug-in naming the file ``path``."""
    return ("@prefix atom: <http://lv2plug.in/ns/ext/atom#> .\n"
            "@prefix lv2: <http://lv2plug.in/ns/lv2core#> .\n"
            "@prefix pset: <http://lv2plug.in/ns/ext/presets#> .\n"
            "@prefix state: <http://lv2plug.in/ns/ext/state#> .\n\n"
            f"<urn:maxbooster:lv2-state>\n\ta pset:Preset ;\n\tlv2:appliesTo <{MISBEHAVE}> ;\n"
            f'\tstate:state [\n\t\t<urn:x:file> "{path}"^^atom:Path\n\t] .\n')


async def left_out(app: Any, http: aiohttp.ClientSession, project: str, base_url: str,
                   file: Path) -> list[str]:
    """Write a state naming ``file`` into ``project``'s document as a peer may (no check),
    then ask the server which effects it leaves out."""
    def write(document: Any) -> None:
        effects = document.doc.get("tracks", type=Map)["t1"]["effects"]
        effects[0]["params"]["state"] = naming(file)

    async with app[ROOMS].use(project) as room:
        await room.edit(write)
    token = app[TOKENS].issue(project, "viewer", "ed")
    async with http.get(f"{base_url}/projects/{project}/lv2/bypassed",
                        headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200
        return [p["message"] for p in (await response.json())["plugins"]]


async def test_two_servers_in_one_process_each_confine_states_to_their_own_assets(
        tmp_path: Path) -> None:
    track = Track("t1", channels=1, effects=[EffectSpec("lv2", {"uri": MISBEHAVE}, id="fx-1")])
    configs = [ServerConfig(port=free_port(), data_dir=tmp_path / name) for name in "ab"]
    async with running_server(configs[0]) as one, running_server(configs[1]) as two, \
            aiohttp.ClientSession() as http:
        servers = []
        for app, config in ((one, configs[0]), (two, configs[1])):
            project = (await import_session(app[STORE], Session(
                name="Confined", sample_rate=48000, tracks=[track]))).project_id
            own = app[ASSETS].root / "objects" / "ir.wav"
            own.parent.mkdir(parents=True, exist_ok=True)
            own.write_bytes(b"RIFF")
            servers.append((app, config.base_url, project, own))
        for index, (app, base_url, project, own) in enumerate(servers):
            other = servers[1 - index][3]  # the other server's asset
            assert await left_out(app, http, project, base_url, own) == []
            [message] = await left_out(app, http, project, base_url, other)
            assert OUTSIDE in message and str(other) in message
            [message] = await left_out(app, http, project, base_url, Path("/etc/passwd"))
            assert OUTSIDE in message
    # outside any server (a local render, a benchmark) a state may name any file
    doc = ProjectDocument.from_session(Session(tracks=[Track("t")]))
    doc.add_effect("t", EffectSpec("lv2", {"uri": MISBEHAVE, "state": naming(servers[0][3])}))
    doc.set_effect_params("t", 0, state=naming(Path("/etc/passwd")))
    assert lv2_state.file_roots() is None


async def test_a_confinement_scope_allows_only_its_own_roots(tmp_path: Path) -> None:
    """Scopes nest and end: the roots of the innermost one, then those before it."""
    first, second = tmp_path / "first", tmp_path / "second"
    doc = ProjectDocument.from_session(Session(tracks=[Track("t")]))
    doc.add_effect("t", EffectSpec("lv2", {"uri": MISBEHAVE}))
    with lv2_state.confined([first]):
        doc.set_effect_params("t", 0, state=naming(first / "a.wav"))
        with pytest.raises(ProjectError, match=OUTSIDE):
            doc.set_effect_params("t", 0, state=naming(second / "a.wav"))
        with lv2_state.confined([second]):
            doc.set_effect_params("t", 0, state=naming(second / "a.wav"))
            with pytest.raises(ProjectError, match=OUTSIDE):
                doc.set_effect_params("t", 0, state=naming(first / "a.wav"))
        with pytest.raises(ProjectError, match=OUTSIDE):
            doc.set_effect_params("t", 0, state=naming(second / "a.wav"))
    doc.set_effect_params("t", 0, state=naming(Path("/etc/passwd")))  # none: any file
