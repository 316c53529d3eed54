"""Equal-power crossfades between overlapping clips: the curves, C against the twin."""

from __future__ import annotations

import numpy as np
import pytest

from dsp_core import Clip, EffectSpec, Engine, Session, Track
from dsp_core.crossfade import Crossfade, Span, equal_power_gains, plan_crossfades
from dsp_core.errors import ProjectError
from tests.helpers_audio import DictLoader, noise_sources

BACKENDS = ["native", "reference"]
RATE = 48000


def _sides(frames: int = 4000) -> DictLoader:
    """A stereo source heard only on the left, and one heard only on the right."""
    left = np.zeros((2, frames), np.float32)
    left[0] = 1.0
    right = np.zeros((2, frames), np.float32)
    right[1] = 1.0
    return DictLoader({"left": left, "right": right})


def _pair(overlap: int, crossfade: int = 0) -> Session:
    a = Clip("left", position=0, length=2000, id="a")
    b = Clip("right", position=2000 - overlap, length=2000, id="b", crossfade=crossfade)
    return Session(RATE, [Track("t", channels=2, clips=[a, b])])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("block", [64, 1024])
def test_overlapping_clips_crossfade_with_equal_power(backend: str, block: int) -> None:
    out = Engine(_pair(700), backend=backend, block_size=block,
                 loader=_sides()).render(0, 4000)
    fade = slice(1300, 2000)
    np.testing.assert_allclose(out[0, fade] ** 2 + out[1, fade] ** 2, 1.0, atol=2e-6)
    assert np.all(np.diff(out[0, fade]) < 0) and np.all(np.diff(out[1, fade]) > 0)
    assert np.all(out[0, :1300] == 1.0) and np.all(out[1, :1300] == 0.0)  # a alone
    assert np.all(out[1, 2000:3300] == 1.0) and np.all(out[0, 2000:] == 0.0)  # b alone
    fall, rise = equal_power_gains(700)
    np.testing.assert_allclose(out[0, fade], fall, atol=1e-7)
    np.testing.assert_allclose(out[1, fade], rise, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_explicit_crossfade_takes_the_end_of_the_overlap(backend: str) -> None:
    out = Engine(_pair(700, crossfade=200), backend=backend, loader=_sides()).render(0, 4000)
    assert np.all(out[0, :1800] == 1.0) and np.all(out[1, :1800] == 0.0)  # b silent first
    np.testing.assert_allclose(out[0, 1800:2000] ** 2 + out[1, 1800:2000] ** 2, 1.0, atol=2e-6)
    assert np.all(out[1, 2000:3300] == 1.0)


def test_clips_that_only_touch_do_not_crossfade() -> None:
    out = Engine(_pair(0), loader=_sides()).render(0, 4000)
    assert np.all(out[0, :2000] == 1.0) and np.all(out[1, 2000:4000] == 1.0)


def test_plan_ignores_a_clip_inside_another_and_chains_three() -> None:
    assert plan_crossfades([Span(0, 1000), Span(100, 200)]) == [Crossfade(), Crossfade()]
    assert plan_crossfades([Span(0, 1000), Span(900, 1000), Span(1800, 500, 50)]) == [
        Crossfade(0, 0, 100), Crossfade(0, 100, 50), Crossfade(50, 50, 0)]


def test_a_project_refuses_overlaps_that_are_not_crossfades() -> None:
    nested = Session(RATE, [Track("t", clips=[Clip("x", 0, 1000), Clip("y", 10, 10)])])
    with pytest.raises(ProjectError, match="a clip may overlap only the one before it"):
        nested.validate()
    nested.validate(allow_overlaps=True)  # a live document layers them
    _pair(500).validate()
    with pytest.raises(ProjectError, match="crossfade must be >= 0"):
        _pair(500, crossfade=-1).validate()


def _crossfading_session(channels: int, insert: bool) -> Session:
    source = "mono" if channels == 1 else "stereo"
    tracks = []
    for i in range(4):
        clips = [Clip(source, position=37 * i, length=20000, offset=5 * i, fade_in=300,
                      gain_db=-1.5, id=f"a{i}"),
                 Clip(source, position=37 * i + 17000, length=15000, offset=1000,
                      crossfade=1500 * (i % 2), id=f"b{i}"),
                 Clip(source, position=37 * i + 31000, length=9000, offset=77, fade_out=400,
                      id=f"c{i}")]
        effects = [EffectSpec("gain", {"gain_db": 0.0})] if insert else []
        tracks.append(Track(f"t{i}", channels=channels, pan=0.25 * i - 0.4, clips=clips,
                            effects=effects))
    return Session(RATE, tracks)


@pytest.mark.parametrize("block", [128, 1000])
def test_native_crossfaded_clip_reads_match_the_numpy_twin_bit_for_bit(block: int) -> None:
    # One stereo track with an insert: the clips are read into the track's buffer in
    # the same float32 operations by C and twin (the curve in double, rounded once).
    loader = DictLoader(noise_sources(RATE))
    session = _crossfading_session(2, insert=True)
    session.tracks = session.tracks[1:2]
    a = Engine(session, backend="native", block_size=block, loader=loader).render(0, 42000)
    b = Engine(session, backend="reference", block_size=block, loader=loader).render(0, 42000)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a[:, 17000:20000]).max() > 0.1


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("insert", [False, True])
def test_native_crossfades_match_the_numpy_twin_to_float_rounding(channels: int,
                                                                  insert: bool) -> None:
    # Plain tracks mix their clips straight into the master (g a + g b, where the twin
    # sums a + b first, then applies g) and the mono pan law rounds differently: the two
    # agree to a few float32 ulps of unit-scale audio.
    loader = DictLoader(noise_sources(RATE))
    session = _crossfading_session(channels, insert)
    a = Engine(session, backend="native", block_size=512, loader=loader).render(0, 42000)
    b = Engine(session, backend="reference", block_size=512, loader=loader).render(0, 42000)
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
