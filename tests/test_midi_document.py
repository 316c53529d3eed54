"""MIDI clips, notes and instruments in the collaborative document and the project file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pycrdt import Doc

from collab import note_edits
from collab.changes import StructureChanged
from collab.errors import SchemaError
from collab.schema import ProjectDocument
from dsp_core.errors import ProjectError
from dsp_core.midi import ControlEvent, Instrument, MidiClip, Note, SampleZone
from dsp_core.project import load_project, save_project, session_from_dict, session_to_dict
from dsp_core.session import Session, Track


def sync(a: ProjectDocument, b: ProjectDocument) -> None:
    a.doc.apply_update(b.doc.get_update(a.doc.get_state()))
    b.doc.apply_update(a.doc.get_update(b.doc.get_state()))


def peer(of: ProjectDocument) -> ProjectDocument:
    other = ProjectDocument(Doc())
    other.doc.apply_update(of.doc.get_update())
    return other


def midi_project() -> tuple[ProjectDocument, str]:
    doc = ProjectDocument.from_session(Session(tracks=[Track("keys")]))
    doc.set_instrument("keys", Instrument("synth", {"voices": 4, "osc1": "square"}))
    clip_id = doc.add_midi_clip("keys", MidiClip(48000, 96000))
    return doc, clip_id


def test_notes_controls_and_instrument_reach_the_session() -> None:
    doc, clip_id = midi_project()
    a = doc.add_note(clip_id, 60, 100, 0, 24000)
    b = doc.add_note(clip_id, 64, 90, 12000, 6000, channel=1)
    doc.add_control(clip_id, ControlEvent("pitch_bend", 500, -4096))
    doc.update_note(clip_id, a, velocity=70)
    track = doc.to_session().tracks[0]
    assert track.instrument == Instrument("synth", {"voices": 4, "osc1": "square"})
    [clip] = track.midi_clips
    assert (clip.id, clip.position, clip.length) == (clip_id, 48000, 96000)
    assert {(n.id, n.pitch, n.velocity, n.start, n.length, n.channel) for n in clip.notes} == {
        (a, 60, 70, 0, 24000, 0), (b, 64, 90, 12000, 6000, 1)}
    assert [(c.kind, c.frame, c.value) for c in clip.controls] == [("pitch_bend", 500, -4096)]
    doc.remove_note(clip_id, b)
    assert list(doc.notes(clip_id)) == [a]


def test_two_people_editing_one_clip_merge_without_loss() -> None:
    ana, clip_id = midi_project()
    shared = ana.add_note(clip_id, 60, 100, 0, 1000)
    ben = peer(ana)
    # at once: each adds notes, ana moves the shared note, ben changes its velocity,
    # ben adds a pitch bend and ana a controller
    ana_note = ana.add_note(clip_id, 67, 80, 2000, 500)
    ben_note = ben.add_note(clip_id, 72, 90, 2000, 500)
    ana.update_note(clip_id, shared, start=480)
    ben.update_note(clip_id, shared, velocity=40)
    ben.add_control(clip_id, ControlEvent("pitch_bend", 10, 100))
    ana.add_control(clip_id, ControlEvent("cc", 20, 127, number=64))
    sync(ana, ben)
    for doc in (ana, ben):
        notes = doc.notes(clip_id)
        assert set(notes) == {shared, ana_note, ben_note}
        assert (notes[shared].start, notes[shared].velocity) == (480, 40)
        assert len(doc.midi_clip(clip_id).controls) == 2
    assert ana.to_session().tracks[0].midi_clips == ben.to_session().tracks[0].midi_clips


def test_concurrent_instrument_parameter_changes_both_land() -> None:
    ana, _ = midi_project()
    ben = peer(ana)
    ana.set_instrument_params("keys", cutoff_hz=800.0)
    ben.set_instrument_params("keys", release_ms=50.0)
    sync(ana, ben)
    assert ben.instrument("keys").params == {"voices": 4, "osc1": "square", "cutoff_hz": 800.0,
                                             "release_ms": 50.0}


@pytest.mark.parametrize("call, words", [
    (lambda d, c: d.add_note(c, 128, 100, 0, 10), "pitch: must be an integer in [0, 127]"),
    (lambda d, c: d.add_note(c, 60, 0, 0, 10), "velocity: must be an integer in [1, 127]"),
    (lambda d, c: d.add_note(c, 60, 100, 0, 0), "length: must be an integer in [1,"),
    (lambda d, c: d.add_note(c, 60, 100, -1, 5), "start: must be an integer in [0,"),
    (lambda d, c: d.add_note(c, 60, 100, 0, 5, channel=16), "channel: must be an integer"),
    (lambda d, c: d.add_note("nope", 60, 100, 0, 5), "no MIDI clip with id 'nope'"),
    (lambda d, c: d.update_note(c, "n-x", pitch=1), "has no note 'n-x'"),
    (lambda d, c: d.add_control(c, ControlEvent("cc", 0, 200, number=7)), "value: must be"),
    (lambda d, c: d.add_control(c, ControlEvent("aftertouch", 0, 1)), "'aftertouch' is not"),
    (lambda d, c: d.add_control(c, ControlEvent("pitch_bend", 0, 9000)), "[-8192, 8191]"),
    (lambda d, c: d.set_instrument("keys", Instrument("organ")), "'organ' is not one of"),
    (lambda d, c: d.set_instrument_params("keys", cutoff_hz=5.0), "[20, 20000]"),
    (lambda d, c: d.set_instrument_params("keys", wobble=1), "unknown instrument parameter"),
    (lambda d, c: d.set_instrument_params("keys", osc1="noise"), "wave 'noise' is not one of"),
    (lambda d, c: d.set_instrument("keys", Instrument("sampler", zones=[
        SampleZone("/a.wav", key_lo=70, key_hi=60)])), "ranges must run low to high"),
    (lambda d, c: d.update_midi_clip(c, length=0), "length: must be an integer in [1,"),
])
def test_bad_midi_edits_are_refused_and_change_nothing(call, words: str) -> None:
    doc, clip_id = midi_project()
    before = doc.to_json()
    with pytest.raises(SchemaError) as info:
        call(doc, clip_id)
    assert words in str(info.value)
    assert doc.to_json() == before


def test_quantise_transpose_and_velocity_write_only_their_fields() -> None:
    doc, clip_id = midi_project()  # clip at frame 48000, 120 BPM: sixteenths are 6000 frames
    a = doc.add_note(clip_id, 60, 100, 5900, 100)   # timeline 53900 -> 54000
    b = doc.add_note(clip_id, 64, 50, 8000, 100)    # timeline 56000 -> 54000 (nearer than 60000)
    c = doc.add_note(clip_id, 67, 120, 12000, 100)  # on the grid already
    other = peer(doc)
    assert note_edits.quantize(doc, clip_id, division=16) == 2
    other.update_note(clip_id, a, velocity=11)       # concurrently: another field of a
    sync(doc, other)
    notes = other.notes(clip_id)
    assert [notes[k].start for k in (a, b, c)] == [6000, 6000, 12000]
    assert notes[a].velocity == 11
    assert note_edits.transpose(doc, clip_id, 12, note_ids=[a, b]) == 2
    assert note_edits.edit_velocity(doc, clip_id, scale=2.0) == 3
    notes = doc.notes(clip_id)
    assert [(notes[k].pitch, notes[k].velocity) for k in (a, b, c)] == [
        (72, 22), (76, 100), (67, 127)]
    assert note_edits.quantize(doc, clip_id, division=4, strength=0.5, note_ids=[c]) == 1
    assert doc.notes(clip_id)[c].start == 18000  # timeline 60000, half-way to the beat at 72000
    with pytest.raises(SchemaError, match="leaves 0..127"):
        note_edits.transpose(doc, clip_id, 100)
    with pytest.raises(SchemaError, match="grid division 5"):
        note_edits.quantize(doc, clip_id, division=5)
    with pytest.raises(SchemaError, match="has no note"):
        note_edits.edit_velocity(doc, clip_id, note_ids=["nope"])


def test_quantise_follows_the_tempo_map_not_only_the_transport_tempo() -> None:
    doc, clip_id = midi_project()  # clip at frame 48000; the transport stays at 120 BPM
    doc.set_tempo_change("t0", 0.0, 90.0)   # quarters are 32000 frames at 90 BPM
    on = doc.add_note(clip_id, 60, 100, 64000 - 48000, 1000)    # beat 2: stays
    off = doc.add_note(clip_id, 62, 100, 78000 - 48000, 1000)   # beat 2.44 -> 2 (64000)
    assert note_edits.quantize(doc, clip_id, division=4) == 1
    notes = doc.notes(clip_id)
    assert (notes[on].start, notes[off].start) == (16000, 16000)
    doc, clip_id = midi_project()
    doc.set_tempo_change("t0", 0.0, 120.0)
    doc.set_tempo_change("t1", 2.0, 60.0)   # from frame 48000, quarters are 48000 frames
    late = doc.add_note(clip_id, 60, 100, 110000 - 48000, 1000)  # beat 3.29 -> 3 (96000)
    assert note_edits.quantize(doc, clip_id, division=4) == 1
    assert doc.notes(clip_id)[late].start == 96000 - 48000


def test_quantise_counts_the_grid_from_each_bar_line() -> None:
    # 7/8 at 120 BPM: a bar is 3.5 quarters (84000 frames), so bar 2 starts off the
    # quarter grid counted from the song's start; a note just after that bar line belongs
    # on it, not on the song's quarter 4
    doc, clip_id = midi_project()  # clip at frame 48000 (beat 2)
    doc.set_meter_change("m0", 0, 7, 8)
    after_bar = doc.add_note(clip_id, 60, 100, 86400 - 48000, 100)  # beat 3.6 -> 3.5
    in_bar = doc.add_note(clip_id, 62, 100, 106800 - 48000, 100)    # beat 4.45 -> 4.5
    assert note_edits.quantize(doc, clip_id, division=4) == 2
    notes = doc.notes(clip_id)
    assert (notes[after_bar].start, notes[in_bar].start) == (84000 - 48000, 108000 - 48000)
    # after a bar's last quarter the next line is the bar line, half a step on: 3.3 -> 3.5
    late = doc.add_note(clip_id, 64, 100, 79200 - 48000, 100)  # beat 3.3
    note_edits.quantize(doc, clip_id, division=4, note_ids=[late])
    assert doc.notes(clip_id)[late].start == 84000 - 48000


def test_a_midi_edit_is_reported_to_watchers() -> None:
    doc, clip_id = midi_project()
    seen: list = []
    watch = doc.watch(seen.extend)
    doc.add_note(clip_id, 60, 100, 0, 10)
    watch.close()
    assert StructureChanged("midi_clips") in seen


def test_removing_a_track_removes_its_midi_clips() -> None:
    doc, clip_id = midi_project()
    doc.remove_track("keys")
    assert doc.to_json()["midi_clips"] == {}


def test_a_note_a_peer_wrote_out_of_range_is_left_out_of_the_mix() -> None:
    doc, clip_id = midi_project()
    good = doc.add_note(clip_id, 60, 100, 0, 10)
    bad = doc.add_note(clip_id, 61, 100, 0, 10)
    doc._roots["midi_clips"][clip_id]["notes"][bad]["pitch"] = 300  # a buggy peer
    assert [n.id for n in doc.to_session().tracks[0].midi_clips[0].notes] == [good]


def midi_session(tmp: Path) -> Session:
    return Session(tracks=[
        Track("audio"),
        Track("keys", instrument=Instrument("sampler", {"attack_ms": 1.0}, [
            SampleZone(str(tmp / "piano.wav"), root=60, key_lo=0, key_hi=72, id="low")]),
            midi_clips=[MidiClip(0, 48000, [Note(60, 100, 0, 4800, id="n1")],
                                 [ControlEvent("cc", 10, 64, number=64, id="c1")], "m1")]),
    ])



def test_a_zone_named_by_asset_id_stays_an_id_in_a_project_file(tmp_path: Path) -> None:
    """The server names a sampler's zones by asset id; a project file holding one (a
    privacy export whose audio was left out) reads back with the id, not a path."""
    asset_id = "ab" * 32
    session = Session(tracks=[Track("keys", instrument=Instrument("sampler", {}, [
        SampleZone(asset_id, root=60, id="z")]))])
    path = save_project(session, tmp_path / "project.json")
    assert json.loads(path.read_text())["tracks"][0]["instrument"]["zones"][0][
        "source"] == asset_id
    assert load_project(path).tracks[0].instrument.zones[0].source == asset_id


def test_the_project_file_keeps_midi_and_audio_tracks_read_as_before(tmp_path: Path) -> None:
    session = midi_session(tmp_path)
    path = save_project(session, tmp_path / "project.json")
    data = json.loads(path.read_text())
    assert data["version"] == 4
    assert "midi_clips" not in data["tracks"][0] and "instrument" not in data["tracks"][0]
    assert data["tracks"][1]["instrument"]["zones"][0]["source"] == "piano.wav"
    loaded = load_project(path)
    assert loaded.tracks == session.tracks
    doc = ProjectDocument.from_session(loaded)
    back = doc.to_session().tracks
    assert [(t.instrument, t.midi_clips) for t in back] == [
        (t.instrument, t.midi_clips) for t in session.tracks]


@pytest.mark.parametrize("edit, words", [
    (lambda t: t["midi_clips"][0]["notes"][0].update(pitch=200),
     "tracks[1].midi_clips[0].notes[0] pitch: must be an integer in [0, 127], got 200"),
    (lambda t: t["midi_clips"][0].update(tempo=1), "unknown key(s) 'tempo'"),
    (lambda t: t["instrument"].update(kind="fm"),
     "'fm' is not one of synth, sampler, soundfont"),
    (lambda t: t["instrument"]["params"].update(voices=0), "voices: must be a number in [1, 32]"),
])
def test_bad_midi_in_a_project_file_names_the_json_path(tmp_path: Path, edit, words) -> None:
    data = session_to_dict(midi_session(tmp_path))
    edit(data["tracks"][1])
    with pytest.raises(ProjectError) as info:
        session_from_dict(data)
    assert words in str(info.value)


def test_check_sources_names_a_missing_sampler_zone(tmp_path: Path) -> None:
    from dsp_core.errors import AudioFileError
    from dsp_core.project import check_sources

    with pytest.raises(AudioFileError, match=r"tracks\[1\]\.instrument\.zones\[0\] "
                                             r"\(track 'keys', zone 'low'\)"):
        check_sources(midi_session(tmp_path), decode=False)


@pytest.mark.parametrize("where, value", [
    ("params", []), ("params", "loud"), ("zones", ["x"]), ("zone", "not a map"),
    ("zone_root", "abc"), ("zone_root", None), ("zone_root", float("inf")),
    ("kind", 7)])
def test_a_bad_instrument_a_peer_wrote_plays_as_none_and_never_raises(where, value) -> None:
    doc, clip_id = midi_project()
    doc.add_note(clip_id, 60, 100, 0, 10)
    doc.set_instrument("keys", Instrument("sampler", {}, [
        SampleZone("/a.wav", 60, id="z1"), SampleZone("/b.wav", 72, id="z2")]))
    instrument = doc._roots["tracks"]["keys"]["instrument"]
    if where in ("params", "zones", "kind"):
        instrument[where] = value  # a buggy or hostile peer: any value at all
    elif where == "zone":
        instrument["zones"]["z1"] = value
    else:
        instrument["zones"]["z1"]["root"] = value
    track = doc.to_session().tracks[0]
    assert len(track.midi_clips[0].notes) == 1  # the clip still plays
    if where in ("zone", "zone_root"):  # the bad zone goes, the good one stays
        assert [z.id for z in track.instrument.zones] == ["z2"]
    else:
        assert track.instrument is None


@pytest.mark.parametrize("write", [
    lambda clips, cid: clips[cid].__setitem__("notes", [1, 2]),
    lambda clips, cid: clips[cid].__setitem__("notes", "many"),
    lambda clips, cid: clips[cid].__setitem__("position", "soon"),
    lambda clips, cid: clips.__setitem__("junk", "not a clip"),
    lambda clips, cid: clips.__setitem__("junk", [1]),
])
def test_a_bad_clip_a_peer_wrote_is_left_out_and_never_raises(write) -> None:
    doc, clip_id = midi_project()
    other = doc.add_midi_clip("keys", MidiClip(0, 100, [Note(62, 90, 0, 10)]))
    write(doc._roots["midi_clips"], clip_id)
    clips = doc.to_session().tracks[0].midi_clips
    assert other in [c.id for c in clips]


def test_a_note_with_a_field_a_peer_added_or_broke_refuses_edits_and_changes_nothing() -> None:
    doc, clip_id = midi_project()
    first = doc.add_note(clip_id, 60, 100, 10, 10)
    bad = doc.add_note(clip_id, 62, 100, 20, 10)
    doc._roots["midi_clips"][clip_id]["notes"][first]["colour"] = "red"  # unknown key
    assert doc.notes(clip_id)[first].velocity == 100  # read, the unknown key ignored
    doc._roots["midi_clips"][clip_id]["notes"][bad]["channel"] = 99
    state = doc.doc.get_state()
    for edit in (lambda: note_edits.edit_velocity(doc, clip_id, scale=2.0),
                 lambda: note_edits.quantize(doc, clip_id, 4),
                 lambda: note_edits.transpose(doc, clip_id, 1)):
        with pytest.raises(SchemaError, match=f"note '{bad}' channel.*nothing was changed"):
            edit()
        assert doc.doc.get_state() == state  # not one note written
    del doc._roots["midi_clips"][clip_id]["notes"][bad]["channel"]
    assert note_edits.edit_velocity(doc, clip_id, scale=0.5) == 2
    assert {n.velocity for n in doc.notes(clip_id).values()} == {50}


def test_adding_a_track_with_a_bad_midi_clip_writes_nothing() -> None:
    doc = ProjectDocument.from_session(Session(tracks=[]))
    state = doc.doc.get_state()
    track = Track("keys", instrument=Instrument("synth"),
                  midi_clips=[MidiClip(2 ** 80, 10, [Note(60, 100, 0, 10)], id="m")])
    with pytest.raises(SchemaError, match="position"), doc.transaction():
        doc._put_midi(track)
    assert doc.doc.get_state() == state
