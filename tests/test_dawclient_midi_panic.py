"""``dawclient --midi-in`` end to end: the keyboard unplugged mid-note (its JACK port gone)
with the sustain pedal down, and the client lets the note go; a real server, the client
as a subprocess playing through PortAudio's JACK host API."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from loopback import free_port
from midi_helpers import jack_server, playing_midi_client
from nodepeer import running_server

from dawserver.config import ServerConfig
from dawserver.keys import ROOMS
from dsp_core.midi import Instrument
from dsp_core.session import Session, Track

rtmidi = pytest.importorskip("rtmidi")
pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]
RATE, BLOCK = 48000, 256


@pytest.mark.alone  # a JACK server and the client playing in real time
async def test_a_keyboard_unplugged_mid_note_goes_silent_in_the_client(tmp_path: Path
                                                                      ) -> None:
    """Pedal down and a key held, then the keyboard's port vanishes about 1.3 s into an
    8 s session: the client notices (it checks every 0.5 s), lets the note go, and is
    silent, exactly, from 1.5 s after the unplug to its end (at least a second of it,
    however late a loaded machine unplugs); the note is recorded, ended where it was
    let go."""
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    session = Session(tracks=[Track("keys", instrument=Instrument(
        "synth", {"attack_ms": 0.0, "sustain": 1.0, "release_ms": 20.0}))])
    saved = tmp_path / "heard.wav"
    with jack_server(RATE, BLOCK) as server:
        os.environ["JACK_DEFAULT_SERVER"] = server
        keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "test keyboard")
        plugged = True
        try:
            keyboard.open_virtual_port("keys")
            async with running_server(config) as app:
                project_id, proc = await playing_midi_client(
                    app, config.base_url, session, server, tmp_path, saved, seconds=8.0)
                keyboard.send_message([0xB0, 64, 127])
                keyboard.send_message([0x90, 60, 100])
                await asyncio.sleep(0.3)
                keyboard.close_port()  # unplugged: the port vanishes, the key still down
                keyboard.delete()
                plugged = False
                unplugged = saved.stat().st_size // 8  # frames the client had played
                out, err = await asyncio.wait_for(proc.communicate(), 60)
                assert proc.returncode == 0, err.decode()
                async with app[ROOMS].use(project_id) as room:
                    recorded = room.document.to_session().tracks[0].midi_clips
        finally:
            if plugged:
                keyboard.close_port()
                keyboard.delete()
            os.environ.pop("JACK_DEFAULT_SERVER", None)
    heard, _ = sf.read(saved, dtype="float32")
    assert len(heard) >= 8 * RATE - BLOCK
    loud = np.flatnonzero(np.abs(heard[:, 0]) > 0.05)
    assert loud.size, "the key was not heard"
    silent_from = unplugged + 3 * RATE // 2  # the watch's 0.5 s, the release, some slack
    assert len(heard) - silent_from >= RATE, "unplugged too late to tell"
    assert not heard[silent_from:].any()  # let go when the port went, not at the end
    last = np.flatnonzero(heard[:, 0])[-1]
    print(f"\nheard from {loud[0] / RATE:.2f} s, silent from {(last + 1) / RATE:.2f} s "
          f"of {len(heard) / RATE:.2f} s")
    notes = [n for clip in recorded for n in clip.notes]
    assert [n.pitch for n in notes] == [60]
    assert "went away" in err.decode()
