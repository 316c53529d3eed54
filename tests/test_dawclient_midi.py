"""``dawclient --midi-in`` end to end: a real server, the client as a subprocess playing
through PortAudio's JACK host API, a virtual MIDI keyboard on the same JACK server.

What is played is heard (the client's saved output) and lands in the server's document
on the selected MIDI track, spaced as it was played."""

from __future__ import annotations

import asyncio
import os
import re
import time
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
#: Spacing of recorded notes against the spacing they were sent with (JACK hands MIDI
#: over once per 256-frame period, the client writes 256-frame blocks; a busy machine).
TOLERANCE = int(0.03 * RATE)


@pytest.mark.alone  # note spacing measured against the wall clock
async def test_notes_played_on_a_midi_port_are_heard_and_recorded(tmp_path: Path) -> None:
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    session = Session(tracks=[Track("drums"), Track("keys", instrument=Instrument(
        "synth", {"attack_ms": 0.0, "release_ms": 20.0}))])
    saved = tmp_path / "heard.wav"
    with jack_server(RATE, BLOCK) as server:
        os.environ["JACK_DEFAULT_SERVER"] = server
        keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "test keyboard")
        try:
            keyboard.open_virtual_port("keys")
            async with running_server(config) as app:
                project_id, proc = await playing_midi_client(
                    app, config.base_url, session, server, tmp_path, saved)
                sent, held = [], []  # when each note-on went, and for how long
                for pitch in (60, 64, 67):
                    keyboard.send_message([0x90, pitch, 100])
                    sent.append(time.monotonic())
                    await asyncio.sleep(0.2)
                    keyboard.send_message([0x80, pitch, 0])
                    held.append(time.monotonic() - sent[-1])
                    await asyncio.sleep(0.3)
                out, err = await asyncio.wait_for(proc.communicate(), 60)
                assert proc.returncode == 0, err.decode()
                async with app[ROOMS].use(project_id) as room:
                    recorded = room.document.to_session().tracks[1].midi_clips
        finally:
            keyboard.close_port()
            keyboard.delete()
            os.environ.pop("JACK_DEFAULT_SERVER", None)
    notes = sorted((clip.position + n.start, n.pitch, n.length)
                   for clip in recorded for n in clip.notes)
    assert [pitch for _start, pitch, _length in notes] == [60, 64, 67]
    for (start, _p, length), at, seconds in zip(notes, sent, held, strict=True):
        spacing = start - notes[0][0]
        assert abs(spacing - (at - sent[0]) * RATE) <= TOLERANCE, (notes, sent)
        assert abs(length - seconds * RATE) <= TOLERANCE, (notes, held)  # not the sleep's
    heard, _ = sf.read(saved, dtype="float32")
    assert np.abs(heard).max() > 0.05  # only the keyboard makes sound in this project
    found = re.search(r"MIDI: 3 note\(s\) recorded; note-on to first audible sample "
                      r"rendered: median ([\d.]+) ms", out.decode())
    assert found, out.decode()
    print(f"\ndawclient over JACK: note-on -> first audible sample rendered "
          f"{found[1]} ms median")
