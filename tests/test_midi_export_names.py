"""GET /projects/{id}/midi/export with track names the MIDI library's Latin-1 cannot hold."""

from __future__ import annotations

import io

import mido
import pytest
from test_midi_routes import clients, song  # noqa: F401

from collab.tokens import Role
from dawserver.keys import ROOMS
from dsp_core.smf import read_smf

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def test_a_track_named_outside_latin1_exports_with_its_name_in_utf8(clients) -> None:  # noqa: ANN001, F811
    a, _ = clients
    project = f"/projects/{a.project_id}"
    _, body = await a.call("POST", f"{project}/midi/import", data=song(),
                           headers={"Content-Type": "audio/midi"})
    [lead] = body["track_ids"]
    _, body = await a.call("POST", f"{project}/midi/import", data=song(),
                           headers={"Content-Type": "audio/midi"})
    [vocal] = body["track_ids"]
    async with a.app[ROOMS].use(a.project_id) as room:
        await room.edit(lambda d: d.update_track(lead, name="Café"))
        await room.edit(lambda d: d.update_track(vocal, name="ボーカル 🎤"))
    status, data = await a.call("GET", f"{project}/midi/export", role=Role.VIEWER)
    assert status == 200, data
    assert read_smf(data, 48000).tracks[0].name == "Café"  # Latin-1 as before
    raw = [t[0].name.encode("latin-1") for t in mido.MidiFile(file=io.BytesIO(data)).tracks[1:]]
    assert raw == ["Café".encode("latin-1"), "ボーカル 🎤".encode()]  # the rest as UTF-8
