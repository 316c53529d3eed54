"""MIDI over HTTP: Standard MIDI File import and export, note edits as document writes."""

from __future__ import annotations

import io
from pathlib import Path

import aiohttp
import mido
import pytest
import pytest_asyncio
from loopback import free_port
from lv2_helpers import INSTRUMENT, MISBEHAVE, lv2_path  # noqa: F401
from nodepeer import running_server
from test_smf import one_note_file as one_note

from collab.tokens import Role
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import ROOMS, STORE, TOKENS
from dawserver.projects import import_session
from dsp_core.session import Session
from dsp_core.smf import read_smf
from dsp_core.sources import local_resolver, resolve_session

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


def song() -> bytes:
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100)),
                                       mido.MetaMessage("time_signature", numerator=3,
                                                        denominator=4)]))
    midi.tracks.append(mido.MidiTrack([
        mido.MetaMessage("track_name", name="Lead"),
        mido.Message("note_on", note=60, velocity=100, time=10),   # off the grid
        mido.Message("note_off", note=60, time=470),
        mido.Message("note_on", note=64, velocity=50, time=0),
        mido.Message("note_off", note=64, time=480)]))
    data = io.BytesIO()
    midi.save(file=data)
    return data.getvalue()


class Client:
    def __init__(self, app, base: str, project_id: str, http: aiohttp.ClientSession) -> None:  # noqa: ANN001
        self.app, self.base, self.project_id, self.http = app, base, project_id, http

    async def call(self, method: str, path: str, *, role: Role = Role.EDITOR, **kwargs):  # noqa: ANN003, ANN201
        token = self.app[TOKENS].issue(self.project_id, role, "ana")
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        async with self.http.request(method, self.base + path, **kwargs,
                                     headers=headers) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.read()


@pytest_asyncio.fixture
async def clients(tmp_path: Path):
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data", engine=False)
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        made = []
        for name in ("A", "B"):
            info = await import_session(app[STORE], Session(name=name, tracks=[]))
            made.append(Client(app, f"http://127.0.0.1:{config.port}", info.project_id, http))
        yield made


async def test_import_edit_and_export_a_midi_file(clients) -> None:  # noqa: ANN001
    a, b = clients
    project = f"/projects/{a.project_id}"
    status, body = await a.call("POST", f"{project}/midi/import", data=song(),
                                headers={"Content-Type": "audio/midi"})
    assert status == 200, body
    assert body["notes"] == 2 and body["tempo"] == pytest.approx(100.0)
    [clip_id] = body["clip_ids"]
    async with a.app[ROOMS].use(a.project_id) as room:
        assert room.document.transport()["tempo"] == pytest.approx(100.0)
        assert room.document.transport()["beats_per_bar"] == 3
        [track] = room.document.to_session().tracks
    assert track.name == "Lead" and track.instrument.kind == "synth"
    frames_per_tick = 48000 * 60 / 100 / 480
    assert [n.start for n in sorted(track.midi_clips[0].notes, key=lambda n: n.pitch)] == [
        round(10 * frames_per_tick), round(480 * frames_per_tick)]

    status, body = await a.call("POST", f"{project}/midi/clips/{clip_id}/edit",
                                json={"operation": "quantize", "division": 4})
    assert (status, body) == (200, {"clip_id": clip_id, "changed": 1})
    status, body = await a.call("POST", f"{project}/midi/clips/{clip_id}/edit",
                                json={"operation": "transpose", "semitones": -2})
    assert body["changed"] == 2
    status, body = await a.call("POST", f"{project}/midi/clips/{clip_id}/edit",
                                json={"operation": "velocity", "offset": 20})
    assert body["changed"] == 2

    status, data = await a.call("GET", f"{project}/midi/export", role=Role.VIEWER)
    assert status == 200
    exported = read_smf(data, 48000)
    notes = sorted(exported.tracks[0].midi_clips[0].notes, key=lambda n: n.pitch)
    assert [(n.pitch, n.velocity, n.start) for n in notes] == [
        (58, 120, 0), (62, 70, round(480 * frames_per_tick))]
    assert exported.tempo == pytest.approx(100.0)


async def test_bad_midi_requests_are_refused_clearly(clients) -> None:  # noqa: ANN001
    a, b = clients
    project = f"/projects/{a.project_id}"
    status, body = await a.call("POST", f"{project}/midi/import", data=b"not midi",
                                headers={"Content-Type": "audio/midi"})
    assert status == 400 and "not a readable Standard MIDI File" in body["error"]
    status, body = await a.call("POST", f"{project}/midi/clips/nope/edit",
                                json={"operation": "transpose", "semitones": 1})
    assert status == 404 and "no MIDI clip 'nope'" in body["error"]
    _, imported = await a.call("POST", f"{project}/midi/import", data=song(),
                               headers={"Content-Type": "audio/midi"})
    clip = imported["clip_ids"][0]
    status, body = await a.call("POST", f"{project}/midi/clips/{clip}/edit",
                                json={"operation": "transpose", "semitones": 100})
    assert status == 400 and "leaves 0..127" in body["error"]
    status, body = await a.call("POST", f"{project}/midi/clips/{clip}/edit", role=Role.VIEWER,
                                json={"operation": "transpose", "semitones": 1})
    assert status == 403
    status, body = await b.call("POST", f"/projects/{b.project_id}/midi/clips/{clip}/edit",
                                json={"operation": "transpose", "semitones": 1})
    assert status == 404   # another project's clip is not found in this one


def wav(seconds: float = 0.5) -> bytes:
    import numpy as np
    import soundfile as sf

    t = np.arange(int(48000 * seconds)) / 48000
    buffer = io.BytesIO()
    sf.write(buffer, 0.5 * np.sin(2 * np.pi * 261.63 * t), 48000, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


async def test_a_sampler_plays_an_asset_of_the_project(clients) -> None:  # noqa: ANN001
    import numpy as np

    from dsp_core import Engine

    a, b = clients
    project = f"/projects/{a.project_id}"
    status, asset = await a.call("POST", f"{project}/assets", params={"name": "c4.wav"},
                                 data=wav(), headers={"Content-Type": "audio/wav"})
    assert status == 201, asset
    _, imported = await a.call("POST", f"{project}/midi/import", data=song(),
                               headers={"Content-Type": "audio/midi"})
    track_id = imported["track_ids"][0]
    status, body = await a.call("PUT", f"{project}/tracks/{track_id}/instrument", json={
        "kind": "sampler", "params": {"attack_ms": 0.0},
        "zones": [{"asset_id": asset["id"], "root": 60}]})
    assert status == 200, body
    async with a.app[ROOMS].use(a.project_id) as room:
        session = room.document.to_session()
    [zone] = session.tracks[0].instrument.zones
    assert zone.source == body["zones"][0] == asset["id"]  # never a server path
    played, refused = resolve_session(session, local_resolver(a.app[ASSETS].root))
    assert refused == [] and Path(played.tracks[0].instrument.zones[0].source).is_file()
    out = Engine(played, block_size=256).render(0, 48000)
    assert np.abs(out).max() > 0.05
    # an asset of another project, a bad parameter, an unknown track
    status, other = await b.call("POST", f"/projects/{b.project_id}/assets",
                                 params={"name": "x.wav"}, data=wav(0.1),
                                 headers={"Content-Type": "audio/wav"})
    status, body = await a.call("PUT", f"{project}/tracks/{track_id}/instrument", json={
        "kind": "sampler", "zones": [{"asset_id": other["id"]}]})
    assert status == 404 and "upload the sample first" in body["error"]
    status, body = await a.call("PUT", f"{project}/tracks/{track_id}/instrument", json={
        "kind": "synth", "params": {"cutoff_hz": 1}})
    assert status == 400 and "cutoff_hz" in body["error"]
    status, body = await a.call("PUT", f"{project}/tracks/nope/instrument", json={
        "kind": "synth"})
    assert status == 404


def long_wait() -> bytes:
    """A file whose note lands past 2**63 frames (slowest tempo, 1 tick per beat)."""
    midi = mido.MidiFile(type=0, ticks_per_beat=1)
    events = [mido.MetaMessage("set_tempo", tempo=500000),
              mido.MetaMessage("set_tempo", tempo=0xFFFFFF, time=1),
              mido.Message("note_on", note=60, velocity=100, time=0)]
    events += [mido.MetaMessage("text", text="wait", time=0x0FFFFFFF)] * 400
    events += [mido.Message("note_off", note=60, time=0x0FFFFFFF)]
    midi.tracks.append(mido.MidiTrack(events))
    data = io.BytesIO()
    midi.save(file=data)
    return data.getvalue()


async def test_an_import_too_large_or_too_long_is_refused_and_writes_nothing(
        clients, monkeypatch) -> None:  # noqa: ANN001
    from dawserver import midi_routes

    a, _ = clients
    project = f"/projects/{a.project_id}"
    async with a.app[ROOMS].use(a.project_id) as room:
        before = room.document.to_json()
    status, body = await a.call("POST", f"{project}/midi/import", data=long_wait(),
                                headers={"Content-Type": "audio/midi"})
    assert status == 400 and "MIDI file track 1" in body["error"]
    monkeypatch.setattr(midi_routes, "MAX_IMPORT_EVENTS", 1)
    status, body = await a.call("POST", f"{project}/midi/import", data=song(),
                                headers={"Content-Type": "audio/midi"})
    assert status == 413 and "more than 1 notes" in body["error"]
    async with a.app[ROOMS].use(a.project_id) as room:
        assert room.document.to_json() == before


@pytest.mark.parametrize("data", [one_note([mido.MetaMessage("set_tempo", tempo=0)]),
                                  one_note([], ticks_per_beat=0)], ids=["tempo-0", "tpb-0"])
async def test_a_file_with_invalid_timing_answers_400_and_writes_nothing(
        clients, data: bytes) -> None:  # noqa: ANN001
    a, _ = clients
    async with a.app[ROOMS].use(a.project_id) as room:
        before = room.document.to_json()
    status, body = await a.call("POST", f"/projects/{a.project_id}/midi/import", data=data,
                                headers={"Content-Type": "audio/midi"})
    assert status == 400 and "the MIDI file's timing is invalid" in body["error"]
    async with a.app[ROOMS].use(a.project_id) as room:
        assert room.document.to_json() == before


async def test_an_empty_project_keeps_its_meter_over_a_bad_time_signature(
        clients) -> None:  # noqa: ANN001
    a, _ = clients
    async with a.app[ROOMS].use(a.project_id) as room:
        await room.edit(lambda d: d.update_transport(beats_per_bar=6, beat_unit=8))
    data = one_note([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100)),
                     mido.MetaMessage("time_signature", numerator=0, denominator=4)])
    status, body = await a.call("POST", f"/projects/{a.project_id}/midi/import", data=data,
                                headers={"Content-Type": "audio/midi"})
    assert status == 200 and body["tempo"] == pytest.approx(100.0)
    async with a.app[ROOMS].use(a.project_id) as room:
        transport, tempo = room.document.transport(), room.document.tempo_map()
    assert (transport["tempo"], transport["beats_per_bar"], transport["beat_unit"]) == (
        pytest.approx(100.0), 6, 8)
    assert tempo.bpm_at_beat(0) == pytest.approx(100.0)   # what plays is what it says
    assert (tempo.meter_at_bar(0).numerator, tempo.meter_at_bar(0).denominator) == (6, 8)


@pytest.mark.parametrize("us, bpm", [(12_000_000, "5"), (50_000, "1200")])
async def test_an_empty_project_refuses_a_file_tempo_it_cannot_play(
        clients, us: int, bpm: str) -> None:  # noqa: ANN001
    a, _ = clients
    async with a.app[ROOMS].use(a.project_id) as room:
        before = room.document.to_json()
    data = one_note([mido.MetaMessage("set_tempo", tempo=us)])
    status, body = await a.call("POST", f"/projects/{a.project_id}/midi/import", data=data,
                                headers={"Content-Type": "audio/midi"})
    assert status == 400, body
    assert f"the MIDI file's tempo {bpm} BPM is outside the 10..999 BPM" in body["error"]
    async with a.app[ROOMS].use(a.project_id) as room:
        assert room.document.to_json() == before


async def test_a_note_edit_over_a_broken_note_answers_400_and_writes_nothing(
        clients) -> None:  # noqa: ANN001
    a, _ = clients
    project = f"/projects/{a.project_id}"
    _, imported = await a.call("POST", f"{project}/midi/import", data=song(),
                               headers={"Content-Type": "audio/midi"})
    clip = imported["clip_ids"][0]
    async with a.app[ROOMS].use(a.project_id) as room:
        notes = room.document._roots["midi_clips"][clip]["notes"]
        broken = sorted(notes.keys())[-1]
        await room.edit(lambda d: d._roots["midi_clips"][clip]["notes"][broken].__setitem__(
            "channel", 99))  # as a buggy peer would
        before = room.document.to_json()
    status, body = await a.call("POST", f"{project}/midi/clips/{clip}/edit",
                                json={"operation": "velocity", "scale": 2})
    assert status == 400 and f"note '{broken}' channel" in body["error"]
    async with a.app[ROOMS].use(a.project_id) as room:
        assert room.document.to_json() == before
        stored = await a.app[STORE].load(a.project_id)
    assert stored.last_seq >= 1


@pytest.mark.usefixtures("lv2_path")
async def test_an_lv2_instrument_is_set_over_http_and_plays(clients) -> None:  # noqa: ANN001
    """The test instrument holds velocity/127 while a note sounds: the notes (velocities
    100 and 50) are heard at those levels; a plug-in without MIDI input, or zones, are
    refused with the reason."""
    from dsp_core import Engine

    a, _ = clients
    project = f"/projects/{a.project_id}"
    _, imported = await a.call("POST", f"{project}/midi/import", data=song(),
                               headers={"Content-Type": "audio/midi"})
    track_id = imported["track_ids"][0]
    path = f"{project}/tracks/{track_id}/instrument"
    status, body = await a.call("PUT", path, json={"kind": "lv2",
                                                   "params": {"uri": INSTRUMENT}})
    assert status == 200 and body == {"track_id": track_id, "kind": "lv2", "zones": []}
    async with a.app[ROOMS].use(a.project_id) as room:
        session = room.document.to_session()
    instrument = session.tracks[0].instrument
    assert instrument.kind == "lv2" and instrument.params["uri"] == INSTRUMENT
    out = Engine(session, block_size=256).render(0, 60000)  # 100 bpm: a beat is 28,800
    assert not out[:, :500].any()  # the first note starts 10 ticks (600 frames) in
    first, second = out[0, 12000], out[0, 40000]  # velocity 100, then 50
    assert first > 0.3 and abs(first / second - 2.0) < 1e-3
    status, body = await a.call("PUT", path, json={"kind": "lv2",
                                                   "params": {"uri": MISBEHAVE}})
    assert status == 400 and "cannot play a MIDI track" in body["error"]
    status, body = await a.call("PUT", path, json={"kind": "lv2",
                                                   "params": {"uri": INSTRUMENT},
                                                   "zones": [{"asset_id": "a" * 64}]})
    assert status in (400, 404), body


async def test_the_export_takes_the_tempo_and_meter_the_project_plays(clients) -> None:  # noqa: ANN001
    # it read the transport: a project playing its tempo changes exported the transport's
    # tempo, and a transport tempo a peer wrote as text answered 500
    a, _ = clients
    status, _ = await a.call("POST", f"/projects/{a.project_id}/midi/import",
                             data=song(), headers={"Content-Type": "audio/midi"})
    assert status == 200

    def peer_writes(document) -> None:  # noqa: ANN001 - collab.schema.ProjectDocument
        document.set_tempo_change("opening", 0, 90.0)
        document.set_meter_change("opening", 0, 6, 8)
        document._roots["transport"]["tempo"] = "fast"

    async with a.app[ROOMS].use(a.project_id) as room:
        await room.edit(peer_writes)
    status, data = await a.call("GET", f"/projects/{a.project_id}/midi/export",
                                role=Role.VIEWER)
    assert status == 200, data
    exported = read_smf(data, 48000)
    assert exported.tempo == pytest.approx(90.0)
    assert (exported.beats_per_bar, exported.beat_unit) == (6, 8)


async def test_a_flood_of_uncounted_events_answers_413_and_writes_nothing(
        clients) -> None:  # noqa: ANN001
    """450,000 aftertouch events (1.3 MiB, under the 8 MiB body limit): the import counts
    no aftertouch, and mido built every message before the file was refused; the scan
    refuses it past 401,000 events of any kind, before mido parses it."""
    from test_smf import aftertouch_flood

    a, _ = clients
    async with a.app[ROOMS].use(a.project_id) as room:
        before = room.document.to_json()
    status, body = await a.call("POST", f"/projects/{a.project_id}/midi/import",
                                data=aftertouch_flood(450_000),
                                headers={"Content-Type": "audio/midi"})
    assert status == 413 and "more than 401000 MIDI events" in body["error"], body
    async with a.app[ROOMS].use(a.project_id) as room:
        assert room.document.to_json() == before
