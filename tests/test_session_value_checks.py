"""A NaN or infinite gain, frame or tempo the C engine would get is refused by the
session's own checks (like the track fader's), so the mix never goes NaN."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from collab.schema import ProjectDocument
from dsp_core.engine import Engine
from dsp_core.errors import ProjectError
from dsp_core.session import Bus, Clip, Send, Session, Track
from tests.helpers_audio import DictLoader

SOURCES = {"x": np.full((1, 4800), 0.1, dtype=np.float32)}


def _session(clip: Clip | None = None, send: Send | None = None, bus: Bus | None = None,
             master: Bus | None = None) -> Session:
    return Session(sample_rate=48000,
                   tracks=[Track("t", clips=[clip or Clip("x", 0, 4800, id="c")],
                                 sends=[send or Send("b", -6.0)])],
                   buses=[bus or Bus("b")], master=master or Bus("master", "Master"))


def _render(session: Session) -> np.ndarray:
    return Engine(session, loader=DictLoader(SOURCES)).render(0, 4800)


GAINS = {
    "bus": (lambda db: _session(bus=Bus("b", gain_db=db)), r"bus 'b': gain .* dB"),
    "master": (lambda db: _session(master=Bus("master", gain_db=db)),
               r"bus 'master': gain .* dB"),
    "clip": (lambda db: _session(clip=Clip("x", 0, 4800, gain_db=db, id="c")),
             r"track 't' clip 'c': gain .* dB"),
    "send": (lambda db: _session(send=Send("b", db)), r"track 't' send to 'b': level .* dB"),
}


@pytest.mark.parametrize("value", [math.nan, math.inf, 24.5, 1e6])
@pytest.mark.parametrize("where", list(GAINS))
def test_a_gain_that_is_nan_infinite_or_over_24_db_is_refused(where: str,
                                                              value: float) -> None:
    # a NaN (or +inf) bus, master, clip or send gain passed validate() and the render was
    # all NaN; a huge one overflowed the dB-to-linear conversion while the graph was built
    build, words = GAINS[where]
    session = build(value)
    with pytest.raises(ProjectError, match=f"{words} must be a number <= 24 dB"):
        session.validate()
    with pytest.raises(ProjectError, match=words):
        _render(session)


@pytest.mark.parametrize("where", list(GAINS))
def test_minus_infinity_db_still_plays_as_silence(where: str) -> None:
    session = GAINS[where][0](-math.inf)
    session.validate()
    assert np.isfinite(_render(session)).all()


@pytest.mark.parametrize("value", [math.nan, math.inf])
@pytest.mark.parametrize("name", ["position", "length", "offset", "fade_in", "fade_out",
                                  "crossfade"])
def test_a_clip_frame_that_is_not_finite_is_refused(name: str, value: float) -> None:
    # it passed validate() and the graph failed converting it to an integer (not a
    # ProjectError: the render answered 500)
    session = _session(clip=replace(Clip("x", 0, 4800, id="c"), **{name: value}))
    with pytest.raises(ProjectError, match=f"track 't' clip 'c': {name} must be a finite "
                                           "number of frames"):
        session.validate()


@pytest.mark.parametrize("bpm", [math.inf, 5.0, 5000.0])
def test_a_tempo_following_clip_needs_a_source_bpm_the_tempo_map_takes(bpm: float) -> None:
    # any source_bpm > 0 passed validate(), and the render then failed on it
    session = _session(clip=Clip("x", 0, 4800, id="c", follow_tempo=True, source_bpm=bpm))
    with pytest.raises(ProjectError, match=r"follow_tempo needs the source's tempo: set "
                                           r"source_bpm in \[10, 999\]"):
        session.validate()


def test_a_peers_tempo_following_clip_at_an_unplayable_tempo_plays_unstretched() -> None:
    # to_session kept it (the document checks only source_bpm > 0), and every render of
    # the project then failed on the tempo map's range
    project = ProjectDocument.from_session(_session())
    with project.transaction():
        project._roots["clips"]["c"]["follow_tempo"] = True
        project._roots["clips"]["c"]["source_bpm"] = 5000.0
    session = project.to_session()
    session.validate(allow_overlaps=True)
    assert not session.tracks[0].clips[0].follow_tempo
    assert np.abs(_render(session)).max() > 0.0
