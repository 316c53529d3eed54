"""A stock yjs client (what the page runs) editing a MIDI clip at the same time as the
server: both notes land, and the server's engine plays the client's note."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest
from loopback import free_port
from nodepeer import NodePeer, eventually, node_ready, running_server

from dawserver.config import ServerConfig
from dawserver.keys import ENGINES, ROOMS, STORE, TOKENS
from dawserver.projects import import_session
from dsp_core.midi import Instrument, MidiClip
from dsp_core.session import Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60),
              pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))]


async def test_a_yjs_clients_note_merges_with_a_server_edit_and_is_heard(tmp_path: Path) -> None:
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    session = Session(tracks=[Track("keys", instrument=Instrument("synth", {"attack_ms": 0.0}),
                                    midi_clips=[MidiClip(0, 48000, [], id="m1")])])
    async with running_server(config) as app, contextlib.AsyncExitStack() as stack:
        info = await import_session(app[STORE], session)
        node = await stack.enter_async_context(NodePeer())
        await node.call("connect", url=config.collab_url, room=info.project_id,
                        token=app[TOKENS].issue(info.project_id, "editor", "ana"))
        await node.wait_event("synced")
        engine = app[ENGINES].get(info.project_id)
        assert np.abs(await engine.render(0, 2048)).max() == 0.0
        room = app[ROOMS].loaded(info.project_id)
        await node.call("add_note", clip="m1", note="from-js", pitch=69, velocity=127,
                        start=1000, length=500)
        server_note = []
        await room.edit(lambda d: server_note.append(d.add_note("m1", 48, 90, 20000, 500)))
        await eventually(lambda: len(room.document.notes("m1")) == 2)
        both = {"from-js", server_note[0]}

        async def node_has_both() -> bool:  # the server's note travels to it on its own
            dumped = await node.call("dump")
            return set(dumped["doc"]["midi_clips"]["m1"]["notes"]) == both

        await eventually(node_has_both, timeout=20)
        heard = await engine.render(0, 2048)
    assert set(room.document.notes("m1")) == both
    assert np.abs(heard[:, :1000]).max() == 0.0
    assert np.abs(heard[:, 1000:1600]).max() > 0.01   # the client's note, at its frame
