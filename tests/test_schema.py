"""The project document: sessions round-trip, typed helpers edit, bad edits are named."""

from __future__ import annotations

import io
import math
from dataclasses import replace
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import soundfile as sf
from loopback import free_port
from nodepeer import eventually, running_server
from pycrdt import Array, Doc, Map

from collab.client import SyncClient
from collab.errors import SchemaError
from collab.schema import ProjectDocument
from dawclient.channel import connect
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import ROOMS, STORE, TOKENS
from dawserver.projects import import_session
from dsp_core.effects import EffectSpec
from dsp_core.engine import Engine
from dsp_core.session import Bus, Clip, Send, Session, Track
from tests.helpers_audio import DictLoader
from transcription.transcript import Passage, Segment, Transcript, Word


def a_session() -> Session:
    return Session(
        sample_rate=48000, name="Song",
        tracks=[
            Track("drums", "Drums", 2, [Clip("/a/drums.wav", 0, 48000, id="c1"),
                                        Clip("/a/drums.wav", 96000, 24000, 100, -3.0, 10, 20)],
                  gain_db=-2.0, pan=0.25, effects=[EffectSpec("biquad", {"shape": "lowshelf",
                                                                          "gain_db": 3.0})],
                  sends=[Send("verb", -12.0)]),
            Track("bass", "Bass", 1, [Clip("/a/bass.wav", 0, 96000, id="c3")], mute=True),
        ],
        buses=[Bus("verb", "Reverb", [EffectSpec("delay", {"time_ms": 120.0})], -6.0)],
        master=Bus("master", "Master", [EffectSpec("limiter")], -1.0),
    )


def replica(project: ProjectDocument) -> ProjectDocument:
    doc = Doc()
    doc.apply_update(project.doc.get_update())
    return ProjectDocument(doc)


def test_a_session_survives_the_document_round_trip() -> None:
    session = a_session()
    back = replica(ProjectDocument.from_session(session)).to_session()
    assert back.name == "Song" and back.sample_rate == 48000
    assert [t.id for t in back.tracks] == ["drums", "bass"]
    drums = back.tracks[0]
    assert (drums.gain_db, drums.pan, drums.channels, drums.mute) == (-2.0, 0.25, 2, False)
    assert [c.position for c in drums.clips] == [0, 96000]
    assert drums.clips[1].offset == 100 and drums.clips[1].fade_out == 20
    assert isinstance(drums.clips[1].length, int)
    assert drums.effects[0].kind == "biquad" and drums.effects[0].params["shape"] == "lowshelf"
    assert drums.sends == [Send("verb", -12.0, False)]
    assert back.buses[0].effects[0].params == {"time_ms": 120.0}
    assert back.master.gain_db == -1.0 and back.master.effects[0].kind == "limiter"
    back.validate()


def test_track_helpers_edit_one_field_each() -> None:
    project = ProjectDocument.from_session(a_session())
    project.set_track_gain("bass", -9.5)
    project.update_track("drums", solo=True, pan=-1.0, arm=True)
    copy = replica(project)
    assert copy.track("bass")["gain_db"] == -9.5
    assert copy.track("drums")["solo"] is True and copy.track("drums")["arm"] is True
    assert copy.track_ids() == ["drums", "bass"]


@pytest.mark.parametrize("fields,words", [
    ({"gain_db": 30.0}, "above the \\+24 dB"),
    ({"pan": 2.0}, "outside \\[-1, 1\\]"),
    ({"mute": "yes"}, "true or false"),
    ({"volume": 1.0}, "unknown track field"),
])
def test_bad_track_edits_are_refused_and_change_nothing(fields, words: str) -> None:
    project = ProjectDocument.from_session(a_session())
    before = project.doc.get_state()
    with pytest.raises(SchemaError, match=words):
        project.update_track("drums", **fields)
    assert project.doc.get_state() == before


def test_unknown_track_is_named() -> None:
    with pytest.raises(SchemaError, match="no track with id 'nope'"):
        ProjectDocument.from_session(a_session()).set_track_gain("nope", 0.0)


def test_effect_parameters_and_sends_change_the_session() -> None:
    project = ProjectDocument.from_session(a_session())
    project.set_effect_params("drums", 0, gain_db=-4.0, freq=200.0)
    project.set_effect_enabled("drums", 0, False)
    project.set_send("bass", "verb", -3.0, pre_fader=True)
    session = replica(project).to_session()
    effect = session.tracks[0].effects[0]
    assert effect.params["gain_db"] == -4.0 and effect.params["freq"] == 200.0
    assert effect.enabled is False
    assert session.tracks[1].sends == [Send("verb", -3.0, True)]
    with pytest.raises(Exception, match="outside"):
        project.set_effect_params("drums", 0, q=100.0)
    with pytest.raises(SchemaError, match="no aux bus"):
        project.set_send("bass", "nope", 0.0)


@pytest.mark.parametrize("level", [math.nan, math.inf, 30.0, "-3", True])
def test_a_send_level_the_mix_would_leave_out_is_refused_and_not_stored(level) -> None:  # noqa: ANN001
    project = ProjectDocument.from_session(a_session())
    project.set_send("bass", "verb", -3.0)
    with pytest.raises(SchemaError, match="level"):
        project.set_send("bass", "verb", level)
    assert replica(project).to_session().tracks[1].sends == [Send("verb", -3.0, False)]


@pytest.mark.parametrize(("fields", "words"), [
    ({"gain_db": math.nan}, "gain"), ({"gain_db": math.inf}, "gain"),
    ({"gain_db": "6"}, "gain_db must be a number"), ({"gain_db": None}, "number"),
    ({"fade_in": 40000, "fade_out": 20000}, "fades"), ({"length": 20}, "fades"),
    ({"follow_tempo": True, "source_bpm": 5000.0}, "source_bpm")])
def test_a_clip_edit_the_mix_would_leave_out_is_refused_and_not_stored(
        fields: dict, words: str) -> None:
    project = ProjectDocument.from_session(a_session())
    before = replica(project).to_session().tracks[0].clips
    clip_id = next(c["id"] for c in project.clips_of("drums") if c["position"] == 96000)
    with pytest.raises(SchemaError, match=words):
        project.update_clip(clip_id, **fields)
    assert replica(project).to_session().tracks[0].clips == before
    with pytest.raises(SchemaError, match="gain"):
        project.add_clip("drums", Clip("/a/drums.wav", 200000, 1000, gain_db=math.nan))
    with pytest.raises(SchemaError, match="source_bpm"):
        project.add_clip("drums", Clip("/a/drums.wav", 200000, 1000, follow_tempo=True,
                                       source_bpm=2.0))
    assert replica(project).to_session().tracks[0].clips == before


def test_a_clip_the_mix_leaves_out_already_can_still_be_moved_and_repointed() -> None:
    """A peer's bad value (fades longer than the clip) does not block the server's own
    writes to that clip (a source repointed by a move, a take trimming it): they do not
    make it worse; a write that breaks a playing clip is still refused."""
    project = ProjectDocument.from_session(a_session())
    clip_id = next(c["id"] for c in project.clips_of("drums") if c["position"] == 96000)
    with project.transaction():  # what a peer's raw Yjs write may leave
        project._clip_map(clip_id)["fade_in"] = 30000
    project.update_clip(clip_id, source="/new/drums.wav")
    project.update_clip(clip_id, position=120000)
    assert project._clip_map(clip_id).to_py()["source"] == "/new/drums.wav"
    with pytest.raises(SchemaError, match="fades"):
        project.update_clip("c1", fade_in=40000, fade_out=20000)


def test_a_write_with_time_keys_cannot_break_a_clip_that_plays_without_them() -> None:
    """A peer's bad time keys leave a clip playing untimed (the mix's defaults); a write
    that also sets a time key must not then make the clip one the mix leaves out. A
    write that fixes the time keys, or moves the clip, still goes through."""
    project = ProjectDocument.from_session(a_session())
    clip_id = next(c["id"] for c in project.clips_of("drums") if c["position"] == 96000)
    with project.transaction():  # what a peer's raw Yjs write may leave
        project._clip_map(clip_id)["follow_tempo"] = True
        project._clip_map(clip_id)["source_bpm"] = 5000.0
    assert project.to_session().tracks[0].clips[1].position == 96000  # still played
    before = replica(project).to_session().tracks[0].clips
    with pytest.raises(SchemaError, match="fades"):
        project.update_clip(clip_id, semitones=2.0, fade_in=10**9)
    assert replica(project).to_session().tracks[0].clips == before
    project.update_clip(clip_id, position=120000)
    project.update_clip(clip_id, source_bpm=120.0, semitones=2.0)
    assert project.to_session().tracks[0].clips[1].semitones == 2.0


def test_a_sidechain_is_stored_edited_and_cleared() -> None:
    session = a_session()
    session.tracks[1].effects.append(EffectSpec("compressor", {"ratio": 6.0}, id="duck",
                                                sidechain="drums"))
    project = ProjectDocument.from_session(session)
    assert replica(project).to_session().tracks[1].effects[0].sidechain == "drums"
    project.add_effect("drums", EffectSpec("gate", sidechain="bass"))
    project.set_effect_sidechain("bass", 0, "verb")  # a bus key
    copy = replica(project).to_session()
    assert copy.tracks[0].effects[1].sidechain == "bass"
    assert copy.tracks[1].effects[0].sidechain == "verb"
    project.set_effect_sidechain("bass", 0, "")
    assert replica(project).to_session().tracks[1].effects[0].sidechain == ""


@pytest.mark.parametrize("owner,index,source,words", [
    ("drums", 0, "bass", "only compressor and gate take a sidechain"),
    ("bass", 0, "nope", "'nope' is neither a track nor a bus"),
    ("bass", 0, "bass", "cannot key its own effect"),
    ("bass", 3, "drums", "no index 3"),
    ("nope", 0, "drums", "no track or bus with id 'nope'"),
])
def test_bad_sidechains_are_refused_and_change_nothing(owner: str, index: int, source: str,
                                                       words: str) -> None:
    session = a_session()
    session.tracks[1].effects.append(EffectSpec("compressor"))
    project = ProjectDocument.from_session(session)
    before = project.doc.get_state()
    with pytest.raises(SchemaError, match=words):
        project.set_effect_sidechain(owner, index, source)
    assert project.doc.get_state() == before


def test_clips_are_added_moved_and_removed() -> None:
    project = ProjectDocument.from_session(a_session())
    clip_id = project.add_clip("bass", Clip("/a/keys.wav", 200000, 1000))
    project.update_clip(clip_id, position=300000, gain_db=-1.5)
    assert [c["id"] for c in project.clips_of("bass")] == ["c3", clip_id]
    assert project.clip(clip_id)["position"] == 300000
    project.remove_clip("c3")
    session = replica(project).to_session()
    assert [c.position for c in session.tracks[1].clips] == [300000]
    with pytest.raises(SchemaError, match="unknown clip field"):
        project.update_clip(clip_id, colour="red")
    with pytest.raises(SchemaError, match="length must be a positive whole number"):
        project.update_clip(clip_id, length=0)


def test_clip_sources_follow_every_clip_edit_local_or_remote() -> None:
    project = ProjectDocument.from_session(a_session())
    before = project.clip_sources()
    assert before == {c["source"] for c in project.to_json()["clips"].values()}
    assert project.clip_sources() is before  # kept while nothing changes
    clip_id = project.add_clip("bass", Clip("/a/new.wav", 400000, 1000))
    assert "/a/new.wav" in project.clip_sources()
    project.remove_clip(clip_id)
    assert project.clip_sources() == before
    other = replica(project)  # an edit that arrives as an update from another client
    other.update_clip("c3", source="/a/moved.wav")
    project.doc.apply_update(other.doc.get_update(project.doc.get_state()))
    assert "/a/moved.wav" in project.clip_sources()


def test_adding_and_removing_tracks() -> None:
    project = ProjectDocument.from_session(a_session())
    project.add_track(Track("keys", "Keys", clips=[Clip("/a/keys.wav", 0, 10, id="k1")]))
    assert project.track_ids() == ["drums", "bass", "keys"]
    with pytest.raises(SchemaError, match="already exists"):
        project.add_track(Track("keys"))
    project.remove_track("drums")
    session = replica(project).to_session()
    assert [t.id for t in session.tracks] == ["bass", "keys"]
    assert "c1" not in project.to_json()["clips"]
    # added after a removal it still comes last: the count of tracks (2) was the order of
    # "keys", and the tie went by id ("a-late" before "keys")
    project.add_track(Track("a-late"))
    assert project.track_ids() == ["bass", "keys", "a-late"]


def test_transport_markers_and_comments() -> None:
    project = ProjectDocument.from_session(a_session())
    assert project.transport()["tempo"] == 120.0
    project.update_transport(tempo=96.0, playing=True, loop_enabled=True, loop_end=48000)
    with pytest.raises(SchemaError, match="tempo"):
        project.update_transport(tempo=5)
    project.add_marker(96000, "chorus")
    project.add_marker(48000, "verse")
    project.add_comment("ana", "louder snare", track="drums", position=1000)
    copy = replica(project)
    assert copy.transport()["tempo"] == 96.0 and copy.transport()["playing"] is True
    assert [m["name"] for m in copy.markers()] == ["verse", "chorus"]
    assert copy.comments()[0]["text"] == "louder snare"


@pytest.mark.parametrize(("fields", "words"), [
    ({"tempo": "fast"}, "tempo"), ({"tempo": float("nan")}, "tempo"),
    ({"beats_per_bar": 0}, "beats_per_bar"), ({"beats_per_bar": 65}, "beats_per_bar"),
    ({"beats_per_bar": 3.5}, "beats_per_bar"), ({"beat_unit": 3}, "beat_unit"),
    ({"position": -1}, "position"), ({"loop_end": float("inf")}, "loop_end"),
    ({"playing": "yes"}, "playing"), ({"loop_enabled": 1}, "loop_enabled"),
])
def test_transport_values_the_tempo_map_cannot_play_are_refused(fields: dict,
                                                                  words: str) -> None:
    # a 0/4 meter from an imported MIDI file was stored, and the project then played the
    # tempo map's 120 BPM 4/4 fallback while the transport said otherwise
    project = ProjectDocument.from_session(a_session())
    with pytest.raises(SchemaError, match=words):
        project.update_transport(**fields)
    assert project.transport() == ProjectDocument.from_session(a_session()).transport()
    project.update_transport(beats_per_bar=7, beat_unit=8, position=48000.0)
    assert [(m.numerator, m.denominator) for m in project.tempo_map().meters] == [(7, 8)]


def test_what_a_peer_wrote_in_another_shape_is_left_out_with_the_reason() -> None:
    # the room checks only that an update applies: one such value made every render,
    # bounce and export of the project answer 500
    project = ProjectDocument.from_session(a_session())
    with project.transaction():
        project._roots["clips"]["c1"]["position"] = "abc"
        project._roots["clips"]["c3"]["length"] = float("inf")
        project._roots["clips"]["junk"] = "x"
        project._roots["tracks"]["bass"]["order"] = "last"
        project._roots["tracks"]["drums"]["sends"] = Map({"verb": "loud"})
        project._roots["buses"]["verb"]["effects"].append([Map({"enabled": True})])
        project._roots["buses"]["master"]["gain_db"] = "x"
        project._roots["meta"]["sample_rate"] = 0
    session = project.to_session()
    assert [t.id for t in session.tracks] == ["bass"]  # drums' sends are unreadable
    assert session.tracks[0].clips == []  # its one clip's length is Infinity
    assert [e.kind for e in session.buses[0].effects] == ["delay"]
    assert session.master.gain_db == 0.0 and session.sample_rate == 48000
    reasons = "\n".join(project.bypassed)
    for what in ("clip 'c1'", "clip 'c3'", "track 'drums'", "bus 'verb' effect 1",
                 "bus 'master'"):
        assert what in reasons, (what, reasons)
    assert project.track_ids() == ["bass", "drums"]  # "last" reads as order 0
    assert [c["id"] for c in project.clips_of("drums")] == [
        c for c in project._roots["clips"].to_py() if c not in ("c1", "c3", "junk")]


def test_a_value_the_engine_refuses_leaves_out_only_its_entry_with_the_reason() -> None:
    # one NaN fader a peer wrote made the engine refuse the whole session: the live mix
    # kept its old state for good and every render answered 422; a NaN bus gain, clip
    # gain or send level passed the engine's checks and made the whole mix NaN
    faders = {"nan": ("gain_db", math.nan), "inf": ("gain_db", math.inf),
              "loud": ("gain_db", 25.0), "wide": ("pan", 5.0), "tri": ("channels", 3)}
    session = Session(sample_rate=48000, tracks=[
        Track("keep", channels=2, clips=[Clip("x", 300 * i, 4800, id=clip) for i, clip in
                                         enumerate(["good", "short", "faded", "before",
                                                    "behind", "timed", "nangain"])],
            effects=[EffectSpec("gain", {"gain_db": -3.0}, id="ok"),
                     EffectSpec("gain", {"gain_db": 1.0}, id="hot")],
            sends=[Send("verb", -6.0), Send("gone"), Send("panned"), Send("quiet")]),
        *(Track(key) for key in faders)],
        buses=[Bus("verb", "Reverb"), Bus("panned", "Panned"), Bus("quiet", "Quiet"),
               Bus("nanbus", "NaN")])
    project = ProjectDocument.from_session(session)
    with project.transaction():
        for key, (field, value) in faders.items():
            project._roots["tracks"][key][field] = value
        project._roots["tracks"]["keep"]["effects"][1]["params"]["gain_db"] = 99.0
        clips = project._roots["clips"]
        clips["short"]["length"] = -5
        clips["faded"]["fade_in"] = clips["faded"]["fade_out"] = 4000
        clips["before"]["offset"] = -1
        clips["behind"]["position"] = -1
        clips["timed"]["warp"] = [[0, 1500], [4800, 6300]]
        clips["timed"]["follow_tempo"] = True
        clips["timed"]["source_bpm"] = 120.0
        clips["nangain"]["gain_db"] = math.nan
        project._roots["tracks"]["keep"]["sends"]["quiet"]["level_db"] = math.nan
        project._roots["buses"]["nanbus"]["gain_db"] = math.nan
        project._roots["tracks"]["twin"] = Map({"id": "keep", "order": 99})
        project._roots["buses"]["panned"]["pan"] = 9.0
        project._roots["buses"]["verb2"] = Map({"id": "verb", "pan": 0.0})
        project._roots["buses"]["master"]["pan"] = math.nan
    session = project.to_session()
    session.validate(allow_overlaps=True)
    assert [t.id for t in session.tracks] == ["keep"]
    keep = session.tracks[0]
    assert [c.id for c in keep.clips] == ["good", "timed"]
    assert not keep.clips[1].is_stretched  # warp markers and follow_tempo: the defaults
    assert [e.id for e in keep.effects] == ["ok"]
    assert keep.sends == [Send("verb", -6.0)]
    assert [b.id for b in session.buses] == ["quiet", "verb"] and session.master.pan == 0.0
    reasons = "\n".join(project.bypassed)
    for what in [*(f"track {key!r}" for key in faders), "clip 'short'", "clip 'faded'",
                 "clip 'before'", "clip 'behind'",
                 "track 'keep' effect hot", "send to 'gone'",
                 "send to 'panned'", "track 'twin'", "bus 'panned'", "bus 'verb2'",
                 "bus 'master'", "clip 'nangain'", "send to 'quiet'", "bus 'nanbus'"]:
        assert what in reasons, (what, reasons)
    assert len(project.bypassed) == 19, reasons
    sources = {"x": np.full((2, 48000), 0.1, dtype=np.float32)}
    block = Engine(session, loader=DictLoader(sources)).render(0, 4800)
    assert block.shape[-1] == 4800 and np.isfinite(block).all() and np.abs(block).max() > 0


@pytest.mark.asyncio
async def test_an_editors_nan_fader_leaves_the_rest_of_the_project_rendering(
        tmp_path: Path) -> None:
    # a raw Yjs write (what the page could send) made /render answer 422 for everyone
    audio = tmp_path / "tone.flac"
    sf.write(audio, np.full(4800, 0.1, dtype=np.float32), 48000)
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    session = Session(name="P", tracks=[Track("t1", clips=[Clip(str(audio), 0, 4800)]),
                                        Track("t2")])
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        project = (await import_session(app[STORE], session, assets=app[ASSETS])).project_id

        async def the_server_has_it() -> bool:
            async with app[ROOMS].use(project) as room:
                return math.isnan(room.document.track("t2")["gain_db"])

        token = app[TOKENS].issue(project, "editor", "eve")
        async with connect(f"{config.collab_url}/{project}", token) as channel, \
                SyncClient(channel) as peer:
            await peer.wait_synced()
            peer.document._roots["tracks"]["t2"]["gain_db"] = math.nan
            await eventually(the_server_has_it)
        viewer = {"Authorization": f"Bearer {app[TOKENS].issue(project, 'viewer', 'vic')}"}
        async with http.get(f"{config.base_url}/projects/{project}/render?frames=4800",
                            headers=viewer) as response:
            status, body = response.status, await response.read()
    assert status == 200, body
    mix, _ = sf.read(io.BytesIO(body), dtype="float32")
    assert np.abs(mix).max() > 0.01  # t1 still plays


def test_midi_note_chase_is_a_transport_field_that_reaches_the_session() -> None:
    """``chase_notes`` (on by default) travels to a peer and into the session the engine
    renders; a project turned off keeps it through the document; a non-bool is refused."""
    project = ProjectDocument.from_session(a_session())
    assert project.transport()["chase_notes"] is True and project.to_session().chase_notes
    project.update_transport(chase_notes=False)
    copy = replica(project)
    assert copy.transport()["chase_notes"] is False and copy.to_session().chase_notes is False
    with pytest.raises(SchemaError, match="chase_notes"):
        project.update_transport(chase_notes="no")
    off = replace(a_session(), chase_notes=False)
    assert replica(ProjectDocument.from_session(off)).to_session().chase_notes is False


def test_a_document_written_before_the_note_chase_setting_chases_notes() -> None:
    """An older document's transport has no ``chase_notes``: its notes are chased."""
    doc = Doc()
    transport = doc.get("transport", type=Map)
    with doc.transaction():
        transport["tempo"] = 100.0
        transport["playing"] = False
    project = replica(ProjectDocument(doc))
    assert "chase_notes" not in project.doc.get("transport", type=Map).to_py()
    assert project.transport()["chase_notes"] is True
    assert project.to_session().chase_notes is True


def test_markers_and_comments_are_edited_and_deleted_and_the_project_renamed() -> None:
    project = ProjectDocument.from_session(a_session())
    marker = project.add_marker(48000, "verse")
    comment = project.add_comment("ana", "louder snare")
    project.update_marker(marker, name="intro", position=0)
    project.update_comment(comment, "quieter snare")
    project.rename("  New name ")
    copy = replica(project)
    assert [(m["name"], m["position"]) for m in copy.markers()] == [("intro", 0)]
    assert copy.comments()[0]["text"] == "quieter snare"
    assert copy.to_session().name == "New name"
    project.remove_marker(marker)
    project.remove_comment(comment)
    copy = replica(project)
    assert copy.markers() == [] and copy.comments() == []
    with pytest.raises(SchemaError, match="no marker with id 'gone'"):
        project.remove_marker("gone")
    with pytest.raises(SchemaError, match="no comment"):
        project.update_comment("gone", "x")
    with pytest.raises(SchemaError, match="non-empty"):
        project.rename("  ")


def test_transcripts_are_stored_per_clip_and_read_back_typed() -> None:
    project = ProjectDocument.from_session(a_session())
    transcript = Transcript("de", (
        Segment(0.5, 1.7, "Hallo Welt", (Word("Hallo", 0.5, 0.9, 0.98),
                                         Word("Welt", 1.0, 1.7, 0.91))),
    ), language_probability=0.87, duration=2.0, model="base")  # c3 lasts 2 s
    project.set_transcript("c3", transcript)
    assert replica(project).transcript("c3") == transcript
    assert project.transcript("c1") is None
    project.remove_clip("c3")
    assert project.transcript("c3") is None
    with pytest.raises(SchemaError, match="no clip"):
        project.set_transcript("c3", Transcript("en"))


def test_a_stored_transcript_keeps_the_shape_clients_read() -> None:
    project = ProjectDocument.from_session(a_session())
    project.set_transcript("c3", Transcript(
        "en", (Segment(0.5, 0.9, "Hi", (Word("Hi", 0.5, 0.9, 0.98),)),),
        passages=(Passage(0.0, 0.5, "music"), Passage(1.5, 2.0, "silence")), model="base"))
    assert project.to_json()["transcripts"]["c3"] == {
        "clip": "c3", "offset": 0, "language": "en", "language_probability": 1.0,
        "model": "base", "segments": [{"start": 0.5, "end": 0.9, "text": "Hi",
                      "words": [{"word": "Hi", "start": 0.5, "end": 0.9, "probability": 0.98}]}],
        "passages": [{"start": 0.0, "end": 0.5, "kind": "music"},
                     {"start": 1.5, "end": 2.0, "kind": "silence"}]}
    assert project.transcript("c3").duration == 2.0  # not stored: as long as the clip


def test_older_transcripts_read_without_the_fields_they_lack() -> None:
    project = ProjectDocument.from_session(a_session())
    project.doc.get("transcripts", type=Map)["c3"] = Map(
        {"clip": "c3", "language": "en", "model": "base", "segments": Array([])})
    assert project.transcript("c3") == Transcript("en", duration=2.0, model="base")


def test_a_malformed_transcript_is_named() -> None:
    project = ProjectDocument.from_session(a_session())
    project.doc.get("transcripts", type=Map)["c3"] = Map(
        {"clip": "c3", "segments": Array([{"start": "soon", "end": 1.0}])})
    with pytest.raises(SchemaError, match=r"clip 'c3' is malformed: "
                                          r"transcript.segments\[0\].start must be a finite"):
        project.transcript("c3")


def test_one_helper_call_is_one_update() -> None:
    project = ProjectDocument.from_session(a_session())
    updates: list[bytes] = []
    project.doc.observe(lambda event: updates.append(event.update))
    project.update_track("drums", gain_db=-1.0, pan=0.5, mute=True)
    with project.transaction():
        project.set_track_gain("bass", 1.0)
        project.add_marker(0, "start")
    assert len(updates) == 2
