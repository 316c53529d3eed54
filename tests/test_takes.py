"""A take placed over older clips cuts them away, leaving a session the engine accepts."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from collab.schema import ProjectDocument
from collab.takes import loop_passes, place_passes, place_take
from dsp_core.graph import clip_stretch
from dsp_core.session import Clip, Session, Track


def document(*clips: Clip) -> ProjectDocument:
    return ProjectDocument.from_session(Session(tracks=[Track("t", clips=list(clips)),
                                                        Track("other")]))


def spans(doc: ProjectDocument) -> list[tuple]:
    return [(c["source"], c["position"], c["length"], c["offset"], c["fade_in"],
             c["fade_out"]) for c in doc.clips_of("t")]


def test_a_take_on_an_empty_stretch_is_just_added() -> None:
    doc = document(Clip("old", 0, 100, id="a"))
    clip_id = place_take(doc, "t", "take", 200, 50)
    assert spans(doc) == [("old", 0, 100, 0, 0, 0), ("take", 200, 50, 0, 0, 0)]
    assert doc.clip(clip_id)["source"] == "take"


def test_clips_under_a_take_are_trimmed_removed_and_moved() -> None:
    doc = document(Clip("a", 0, 100, fade_in=10, fade_out=30, id="a"),
                   Clip("b", 120, 20, id="b"),
                   Clip("c", 150, 100, offset=5, fade_out=20, id="c"))
    place_take(doc, "t", "take", 90, 80)
    assert spans(doc) == [("a", 0, 90, 0, 10, 0), ("take", 90, 80, 0, 0, 0),
                          ("c", 170, 80, 25, 0, 20)]
    doc.to_session().validate()


def test_a_take_inside_a_long_clip_splits_it() -> None:
    doc = document(Clip("long", 100, 1000, offset=7, fade_in=20, fade_out=40, id="l"))
    place_take(doc, "t", "take", 300, 100)
    assert spans(doc) == [("long", 100, 200, 7, 20, 0), ("take", 300, 100, 0, 0, 0),
                          ("long", 400, 700, 307, 0, 40)]
    doc.to_session().validate()
    assert doc.clips_of("other") == []


def test_a_take_recorded_over_a_loop_is_cut_into_its_passes() -> None:
    loop = (1000, 2000)
    # from before the loop: the pre-roll and the first pass are one, then whole passes
    assert loop_passes(400, 2900, loop) == [(400, 0, 1600), (1000, 1600, 1000),
                                            (1000, 2600, 300)]
    assert loop_passes(1500, 400, loop) == [(1500, 0, 400)]  # stopped before the end
    assert loop_passes(1500, 1550, loop) == [(1500, 0, 500), (1000, 500, 1000)]
    assert loop_passes(1500, 1580, loop) == [(1500, 0, 500), (1000, 500, 1000)]  # 80 left
    assert loop_passes(2000, 3000, loop) == [(2000, 0, 3000)]  # after the loop: no jump
    assert loop_passes(400, 3000, None) == [(400, 0, 3000)]


def test_loop_passes_stay_in_the_loop_and_the_last_one_wins() -> None:
    # the take was laid out straight from its start: it cut away a clip after the loop
    doc = document(Clip("verse", 3000, 2000, id="v"))
    ids = place_passes(doc, "t", "take", loop_passes(1000, 2500, (1000, 2000)))
    assert len(ids) == 3
    assert spans(doc) == [("take", 1000, 500, 2000, 0, 0), ("take", 1500, 500, 1500, 0, 0),
                          ("verse", 3000, 2000, 0, 0, 0)]
    doc.to_session().validate()


def test_a_take_over_a_clip_a_peer_broke_keeps_its_parts_as_they_were() -> None:
    """A NaN gain (a peer's raw write) leaves the clip out of the mix; a take placed
    over its middle is placed all the same, its parts as broken as the clip was."""
    doc = document(Clip("long", 0, 100_000, id="l"))
    with doc.transaction():
        doc._clip_map("l")["gain_db"] = math.nan
    place_take(doc, "t", "take", 10_000, 1000)
    assert [s[:4] for s in spans(doc)] == [("long", 0, 10_000, 0), ("take", 10_000, 1000, 0),
                                           ("long", 11_000, 89_000, 11_000)]
    assert all(math.isnan(c["gain_db"]) for c in doc.clips_of("t") if c["source"] == "long")


SOURCE_FRAMES = 960_000


@pytest.mark.parametrize("timing", [
    {"stretch": 2.0}, {"semitones": 3.0}, {"stretch": 0.5, "semitones": -2.0},
    {"follow_tempo": True, "source_bpm": 100.0},
    {"warp": ((0, 1000), (48_000, 97_000), (400_000, 500_000))}])
def test_a_take_splitting_a_timed_clip_leaves_a_tail_that_plays_what_it_played(
        timing: dict) -> None:
    """The part after the take keeps the clip's time keys and reads its render from
    where the whole clip would have been at that frame."""
    doc = document(Clip("long", 1000, 400_000, offset=4800, id="l", **timing))
    doc.set_tempo_change("slower", 8.0, 90.0)  # the tempo changes under the clip
    place_take(doc, "t", "take", 150_000, 20_000)
    session = doc.to_session()
    [head, _, tail] = session.tracks[0].clips
    assert (head.length, tail.position, tail.length) == (149_000, 170_000, 231_000)
    whole = replace(head, length=400_000)

    def render_at(clip: Clip, frame: int) -> tuple[str, int]:
        spec, start = clip_stretch(clip, session, 48_000, SOURCE_FRAMES)
        return spec.key("long", 48_000), (clip.offset if start is None else start) + (
            frame - clip.position)

    key, frame = render_at(tail, 170_000)
    whole_key, whole_frame = render_at(whole, 170_000)
    assert key == whole_key and abs(frame - whole_frame) <= 2
