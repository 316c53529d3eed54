"""The engine follows changed MIDI clips only: the document hands back unchanged clips as
the same objects, and the engine's per-clip structure key is computed once per object."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from pycrdt import Doc

from collab.schema import ProjectDocument
from dsp_core import instrument_graph
from dsp_core.engine import Engine
from dsp_core.midi import Instrument, MidiClip, Note
from dsp_core.session import Session, Track

pytestmark = pytest.mark.timeout(60)


def three_clip_project() -> tuple[ProjectDocument, list[str]]:
    doc = ProjectDocument.from_session(Session(tracks=[Track("keys"), Track("bass")]))
    doc.set_instrument("keys", Instrument("synth", {"attack_ms": 0.0}))
    doc.set_instrument("bass", Instrument("synth"))
    ids = [doc.add_midi_clip("keys", MidiClip(0, 24000)),
           doc.add_midi_clip("keys", MidiClip(24000, 24000)),
           doc.add_midi_clip("bass", MidiClip(0, 48000))]
    for n, clip_id in enumerate(ids):
        for k in range(50):
            doc.add_note(clip_id, 40 + n + k % 30, 90, start=k * 400, length=300)
    return doc, ids


def clips_by_id(session: Session) -> dict[str, MidiClip]:
    return {c.id: c for t in session.tracks for c in t.midi_clips}


def test_unchanged_clips_come_back_as_the_same_objects() -> None:
    doc, ids = three_clip_project()
    first = clips_by_id(doc.to_session())
    note_id = next(iter(doc.notes(ids[1])))
    doc.update_note(ids[1], note_id, pitch=100)
    second = clips_by_id(doc.to_session())
    assert second[ids[0]] is first[ids[0]] and second[ids[2]] is first[ids[2]]
    assert second[ids[1]] is not first[ids[1]]
    assert any(n.pitch == 100 for n in second[ids[1]].notes)
    assert not any(n.pitch == 100 for n in first[ids[1]].notes)


def test_a_peers_update_and_a_removed_clip_are_seen() -> None:
    doc, ids = three_clip_project()
    doc.to_session()
    other = ProjectDocument(Doc())
    other.doc.apply_update(doc.doc.get_update())
    other.update_midi_clip(ids[2], position=4800)
    other.remove_midi_clip(ids[0])
    doc.doc.apply_update(other.doc.get_update(doc.doc.get_state()))
    clips = clips_by_id(doc.to_session())
    assert ids[0] not in clips and clips[ids[2]].position == 4800


def test_a_read_inside_a_transaction_sees_its_own_writes() -> None:
    doc, ids = three_clip_project()
    doc.to_session()
    with doc.transaction():
        doc.update_midi_clip(ids[0], position=9600)
        assert clips_by_id(doc.to_session())[ids[0]].position == 9600
    assert clips_by_id(doc.to_session())[ids[0]].position == 9600


def test_an_engine_update_sorts_only_the_changed_clip(monkeypatch: pytest.MonkeyPatch) -> None:
    doc, ids = three_clip_project()
    engine = Engine(doc.to_session(), block_size=256, backend="reference")
    engine.render(0, 1024)
    computed: list[int] = []
    real = instrument_graph._clip_key

    def counting(clip: MidiClip) -> tuple:
        computed.append(len(clip.notes))
        return real(clip)

    monkeypatch.setattr(instrument_graph, "_clip_key", counting)
    doc.add_note(ids[1], 72, 100, start=100, length=1000)
    before = engine.graph.tracks[1].instrument
    engine.apply(doc.to_session())
    assert computed == [51]  # the edited clip alone, once
    assert engine.graph.tracks[1].instrument is before  # bass: untouched, not rebuilt
    assert 72 in engine.graph.tracks[0].instrument.events["key"]


def test_a_clip_edited_in_place_is_still_seen() -> None:
    track = Track("keys", instrument=Instrument("synth"),
                  midi_clips=[MidiClip(0, 48000, [Note(60, 100, 0, 1000)])])
    key = instrument_graph.instrument_structure(track)
    track.midi_clips[0].notes.append(Note(64, 100, 2000, 1000))
    assert instrument_graph.instrument_structure(track) != key
    track.midi_clips[0].position = 480
    moved = instrument_graph.instrument_structure(track)
    assert moved[3][0][0] == 480
    twin = copy.deepcopy(track)
    twin.midi_clips[0].notes[0].pitch = 61
    assert instrument_graph.instrument_structure(twin) != moved
    assert np.array_equal(instrument_graph.midi_events(track.midi_clips, 1.0)["key"],
                          [60, 60, 64, 64])
