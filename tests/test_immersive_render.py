"""Immersive renders from the engine: loudspeaker layouts and binaural."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from dsp_core.effects import EffectSpec
from dsp_core.errors import DspError
from dsp_core.immersive import BED_714, LAYOUTS, nominal_position
from dsp_core.immersive_binaural import load_sofa
from dsp_core.immersive_render import render_immersive, render_stems
from dsp_core.session import Clip, Session, Track
from tests.immersive_helpers import loader, mixed_session, object_track, sources

pytestmark = pytest.mark.timeout(120)

SOFA_MISSING = not load_sofa.__globals__["DEFAULT_SOFA"].is_file()


def _rms(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean(np.square(x, dtype=np.float64), axis=-1))


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("label", ["M+000", "M-090", "U+135", "M+135"])
def test_a_mono_object_at_a_loudspeaker_lands_in_that_loudspeaker(label: str,
                                                                   backend: str) -> None:
    session = Session(tracks=[object_track("o", *nominal_position(label), gain_db=-6.0)])
    out = render_immersive(session, "7.1.4", loader=loader(), backend=backend)
    assert out.shape == (12, 4800) and out.dtype == np.float32
    expected = sources()["mono"][0] * np.float32(10 ** (-6 / 20))
    np.testing.assert_allclose(out[BED_714.index(label)], expected, atol=2e-6)
    others = np.delete(out, BED_714.index(label), axis=0)
    assert np.abs(others).max() < 1e-6


def test_bed_routes_and_plain_tracks_keep_their_channels() -> None:
    session = mixed_session()
    del session.tracks[0]  # the object above the side: it would reach U+045 too
    out = render_immersive(session, "7.1.4", loader=loader())
    held = sources()
    np.testing.assert_allclose(out[BED_714.index("U+045")], held["stereo"][0], atol=1e-6)
    np.testing.assert_allclose(out[BED_714.index("U-045")], held["stereo"][1], atol=1e-6)
    # the plain mono track keeps its pan on the front pair (equal-power law, pan 0.3);
    # the object at -15 degrees shares the right and centre loudspeakers
    angle = (0.3 + 1) * math.pi / 4
    np.testing.assert_allclose(out[0], held["mono"][0] * np.float32(math.cos(angle)),
                               atol=1e-6)
    fx = held["other"][0] * np.float32(math.sqrt(0.5))
    np.testing.assert_allclose(out[1], held["mono"][0] * np.float32(math.sin(angle)) + fx,
                               atol=1e-6)
    np.testing.assert_allclose(out[2], fx, atol=1e-6)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_native_and_reference_renders_agree_on_every_layout(layout: str) -> None:
    native = render_immersive(mixed_session(), layout, loader=loader(), backend="native")
    twin = render_immersive(mixed_session(), layout, loader=loader(), backend="reference")
    assert native.shape == (len(LAYOUTS[layout]), 4800)
    np.testing.assert_allclose(native, twin, atol=1e-5)


def test_objects_keep_energy_on_5_1() -> None:
    session = Session(tracks=[object_track("o", 70.0, 10.0)])
    out = render_immersive(session, "5.1", loader=loader())
    assert float(np.sum(_rms(out) ** 2)) == pytest.approx(_rms(sources()["mono"][0]) ** 2,
                                                          rel=1e-4)


def test_a_soloed_track_silences_objects_and_bed() -> None:
    session = mixed_session()
    session.tracks[1] = dataclasses.replace(session.tracks[1], solo=True)
    stems = render_stems(session, loader=loader())
    assert not stems.bed.any()
    assert not stems.objects[0].signal.any() and stems.objects[1].signal.any()


def test_unknown_target_is_refused() -> None:
    with pytest.raises(DspError, match="choose one of 7.1.4, 5.1, stereo, binaural"):
        render_immersive(mixed_session(), "9.1.6", loader=loader())


@pytest.mark.skipif(SOFA_MISSING, reason="Debian's libmysofa1 SOFA file is not installed")
def test_binaural_is_finite_and_puts_a_left_object_in_the_left_ear() -> None:
    session = Session(tracks=[object_track("o", 90.0)])
    out = render_immersive(session, "binaural", loader=loader())
    assert out.shape == (2, 4800) and np.isfinite(out).all()
    left, right = _rms(out)
    assert left > 2.0 * right > 0.0  # at least 6 dB louder in the near ear


@pytest.mark.skipif(SOFA_MISSING, reason="Debian's libmysofa1 SOFA file is not installed")
def test_binaural_of_a_centred_object_is_symmetric() -> None:
    session = Session(tracks=[object_track("o", 0.0, 0.0)])
    out = render_immersive(session, "binaural", loader=loader())
    left, right = _rms(out)
    assert left > 0.01 and abs(20 * math.log10(left / right)) < 0.5


def test_a_missing_sofa_file_says_what_to_install(tmp_path) -> None:
    with pytest.raises(DspError, match="install Debian's libmysofa1"):
        load_sofa(tmp_path / "none.sofa")


def test_an_object_keyed_by_another_track_ducks_as_in_the_stereo_mix() -> None:
    ducker = EffectSpec("compressor", {"threshold_db": -40.0, "ratio": 20.0},
                        sidechain="key")
    keyed = object_track("pad", 0.0, effects=[ducker])
    key = Track(id="key", clips=[Clip("other", 0, 4800)], mute=True)
    out = render_immersive(Session(tracks=[keyed, key]), "7.1.4", loader=loader())
    alone = render_immersive(Session(tracks=[dataclasses.replace(keyed, effects=[])]),
                             "7.1.4", loader=loader())
    centre = BED_714.index("M+000")
    assert _rms(out[centre]) < 0.5 * _rms(alone[centre])  # the muted key still ducks it
    assert not np.delete(out, centre, axis=0).any()  # and is not heard


@pytest.mark.parametrize("routed", [False, True])
def test_a_render_follows_the_projects_tempo_map_and_note_chase(routed: bool) -> None:
    """A synth note written at 120 bpm one beat in, in a clip that follows the tempo, in
    a project at 60 bpm: the render has it where the engine does, two seconds in (a part
    session without the tempo map played it at one); the parts keep ``chase_notes``."""
    from dsp_core.engine import Engine
    from dsp_core.immersive import ImmersiveRoute
    from dsp_core.immersive_render import _alone
    from dsp_core.midi import Instrument, MidiClip, Note
    from dsp_core.tempo import TempoChange, TempoMap

    route = ImmersiveRoute("object", azimuth=0.0) if routed else None
    clip = MidiClip(0, 72000, [Note(69, 110, 24000, 4800)], follow_tempo=True,
                    source_bpm=120.0)
    pad = Track("keys", immersive=route, instrument=Instrument("synth"), midi_clips=[clip])
    session = Session(tracks=[pad], tempo=TempoMap([TempoChange(0, 60)]), chase_notes=False)
    mixed = Engine(dataclasses.replace(session, tracks=[_alone(pad, False)])).render(0, 72000)
    rendered = render_immersive(session, "stereo")
    first = [int(np.flatnonzero(np.abs(x).max(axis=0) > 1e-4)[0]) for x in (mixed, rendered)]
    assert 48000 <= first[0] < 48100 and abs(first[1] - first[0]) < 16
    seen: list[Session] = []
    real = Engine.__init__

    def spy(self: Engine, part: Session, *args: object, **kwargs: object) -> None:
        seen.append(part)
        real(self, part, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Engine, "__init__", spy)
        render_stems(session)
    assert seen and all(not p.chase_notes and p.tempo is session.tempo for p in seen)
