"""The EQ, de-esser and convolution reverb through the whole engine and the formats."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

from collab.schema import ProjectDocument
from dsp_core import Bus, Clip, EffectSpec, Engine, ProjectError, Send, Session, Track
from dsp_core.convolution_layout import PARTITION
from dsp_core.project import load_project
from tests.helpers_audio import DictLoader

pytestmark = pytest.mark.timeout(120)

SR = 48000
BACKENDS = ["native", "reference"]


def _sine(freq: float, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.25 * np.sin(2 * math.pi * freq * t)).astype(np.float32)[None, :]


def _render(session: Session, loader: DictLoader, backend: str, block: int = 128) -> np.ndarray:
    engine = Engine(session, block_size=block, backend=backend, loader=loader)
    out = np.zeros((2, engine.length), np.float32)
    for offset, part in engine.blocks(0, engine.length):
        out[:, offset:offset + part.shape[1]] = part
    return out


def _level_db(x: np.ndarray) -> float:
    tail = x[..., x.shape[-1] // 2:].astype(np.float64)
    return 10 * math.log10(float(np.mean(tail ** 2)) + 1e-30)


def _track(effects: list[EffectSpec], source: str = "tone", frames: int = SR // 2,
           channels: int = 1, **kw) -> Track:
    return Track(id="t", channels=channels, effects=effects,
                 clips=[Clip(source=source, position=0, length=frames)], **kw)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("band,corner,probe,gain", [
    ("low", 120.0, 60.0, 6.0), ("peak3", 1200.0, 1200.0, 9.0), ("peak5", 9000.0, 9000.0, -12.0),
    ("high", 8000.0, 16000.0, 4.0)])
def test_an_eq_band_in_a_project_sets_the_level_at_its_frequency(backend: str, band: str,
                                                                 corner: float, probe: float,
                                                                 gain: float) -> None:
    """Peaks measured at their centre, shelves an octave beyond their corner."""
    loader = DictLoader({"tone": _sine(probe)})
    params = {f"{band}_freq": corner, f"{band}_gain_db": gain}
    flat = _render(Session(tracks=[_track([EffectSpec("eq")])]), loader, backend)
    boosted = _render(Session(tracks=[_track([EffectSpec("eq", params)])]), loader, backend)
    assert np.all(np.isfinite(boosted))
    assert _level_db(boosted) - _level_db(flat) == pytest.approx(gain, abs=0.5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_deesser_on_a_track_tames_sibilance_in_the_mix(backend: str) -> None:
    loader = DictLoader({"ess": 2 * _sine(7000.0)})
    spec = EffectSpec("deesser", {"threshold_db": -30.0, "ratio": 10.0})
    plain = _render(Session(tracks=[_track([], source="ess")]), loader, backend)
    tamed = _render(Session(tracks=[_track([spec], source="ess")]), loader, backend)
    assert np.all(np.isfinite(tamed))
    assert _level_db(tamed) < _level_db(plain) - 10


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_convolution_bus_adds_the_ir_to_a_send_late_by_its_latency(backend: str) -> None:
    impulse = np.zeros((1, 4000), np.float32)
    impulse[0, 10] = 1.0
    ir = np.zeros((2, 600), np.float32)
    ir[0, 300], ir[1, 450] = 0.5, -0.25
    loader = DictLoader({"hit": impulse, "room.wav": ir})
    session = Session(
        tracks=[_track([], source="hit", frames=4000, sends=[Send(bus="verb", level_db=0.0)],
                       mute=False, gain_db=-math.inf)],
        buses=[Bus(id="verb", effects=[EffectSpec("convolution", {"ir": "room.wav",
                                                                  "mix": 1.0})])])
    out = _render(session, loader, backend)
    assert np.all(np.isfinite(out)) and np.max(np.abs(out)) == 0.0  # post-fader, fader at -inf
    send = math.sqrt(0.5)  # a mono track's pre-fader send is centred
    session.tracks[0].sends = [Send(bus="verb", level_db=0.0, pre_fader=True)]
    out = _render(session, loader, backend)
    left, right = 10 + PARTITION + 300, 10 + PARTITION + 450
    assert out[0, left] == pytest.approx(0.5 * send, rel=1e-4)
    assert out[1, right] == pytest.approx(-0.25 * send, rel=1e-4)
    quiet = np.ones(out.shape[1], bool)
    quiet[[left, right]] = False
    assert np.max(np.abs(out[0, quiet])) < 1e-5 and np.max(np.abs(out[1, quiet])) < 1e-5


def test_native_and_twin_render_the_same_project_with_all_three() -> None:
    rng = np.random.default_rng(9)
    loader = DictLoader({"voice": (0.3 * rng.standard_normal((2, SR // 4))).astype(np.float32),
                         "ir": (0.2 * rng.standard_normal((1, 2000))
                                * np.exp(-np.arange(2000) / 400)).astype(np.float32)})
    track = _track([EffectSpec("eq", {"peak2_gain_db": 5.0, "high_gain_db": -3.0}),
                    EffectSpec("deesser", {"threshold_db": -35.0})], source="voice",
                   frames=SR // 4, channels=2, sends=[Send(bus="verb", level_db=-6.0)])
    session = Session(tracks=[track], buses=[
        Bus(id="verb", effects=[EffectSpec("convolution", {"ir": "ir", "mix": 1.0})])])
    native = _render(session, loader, "native", block=100)
    twin = _render(session, loader, "reference", block=100)
    assert np.all(np.isfinite(native))
    assert np.max(np.abs(native - twin)) <= 2e-6 * np.max(np.abs(twin)) + 1e-7


def test_a_new_ir_in_a_live_edit_builds_a_new_convolver() -> None:
    one, two = np.zeros((1, 50), np.float32), np.zeros((1, 50), np.float32)
    one[0, 0], two[0, 40] = 1.0, 1.0
    hit = np.zeros((1, 2048), np.float32)
    hit[0, 0] = 1.0
    loader = DictLoader({"hit": hit, "one": one, "two": two})
    session = Session(tracks=[_track([EffectSpec("convolution", {"ir": "one", "mix": 1.0})],
                                     source="hit", frames=2048)])
    engine = Engine(session, block_size=1024, loader=loader)
    first = engine.render(0, 1024).copy()
    assert int(np.argmax(np.abs(first[0]))) == PARTITION
    session.tracks[0].effects[0].params["ir"] = "two"
    engine.apply(session)
    assert engine.graph.tracks[0].effects[0].ir.source == "two"
    engine.reset()
    again = engine.render(0, 1024)
    assert int(np.argmax(np.abs(again[0]))) == PARTITION + 40


def test_a_project_file_names_its_ir_relative_to_itself(tmp_path) -> None:
    sf.write(tmp_path / "voice.wav", _sine(440.0)[0], SR, subtype="FLOAT")
    ir = np.zeros(1000, np.float32)
    ir[500] = 0.5
    (tmp_path / "irs").mkdir()
    sf.write(tmp_path / "irs" / "plate.wav", ir, SR, subtype="FLOAT")
    project = {"format": "maxbooster-project", "version": 2, "sample_rate": SR, "tracks": [{
        "id": "v", "clips": [{"source": "voice.wav", "position": 0, "length": SR // 2}],
        "effects": [{"kind": "eq", "params": {"peak3_gain_db": 3.0, "peak3_on": 1}},
                    {"kind": "deesser", "params": {"mode": "wideband"}},
                    {"kind": "convolution", "params": {"ir": "irs/plate.wav", "mix": 0.5}}]}]}
    from dsp_core.project import FORMAT_NAME
    project["format"] = FORMAT_NAME
    (tmp_path / "p.json").write_text(json.dumps(project))
    session = load_project(tmp_path / "p.json")
    assert session.tracks[0].effects[2].params["ir"] == str(tmp_path / "irs" / "plate.wav")
    engine = Engine(session, block_size=512)
    out = np.concatenate([b.copy() for _, b in engine.blocks()], axis=1)
    assert np.all(np.isfinite(out)) and np.max(np.abs(out)) > 0.05


@pytest.mark.parametrize("effect,message", [
    ({"kind": "deesser", "params": {"mode": "loud"}}, r"params.mode: unknown mode 'loud'"),
    ({"kind": "eq", "params": {"peak1_q": 0.0}}, r"params.peak1_q: must be in \[0.1, 24\]"),
    ({"kind": "convolution", "params": {"mix": 0.5}}, "'ir' must name the impulse-response"),
    ({"kind": "convolution", "params": {"ir": 3}}, r"params.ir"),
    ({"kind": "deesser", "params": {"low_hz": 8000, "high_hz": 5000}},
     "low_hz 8000 must be below high_hz 5000"),
])
def test_a_project_file_with_bad_effect_parameters_is_refused(tmp_path, effect: dict,
                                                              message: str) -> None:
    from dsp_core.project import FORMAT_NAME

    project = {"format": FORMAT_NAME, "version": 2, "sample_rate": SR,
               "tracks": [{"id": "v", "effects": [effect]}]}
    (tmp_path / "p.json").write_text(json.dumps(project))
    with pytest.raises(ProjectError, match=message):
        load_project(tmp_path / "p.json")


def test_the_document_carries_the_new_effects_and_checks_their_parameters() -> None:
    doc = ProjectDocument.from_session(Session(tracks=[Track(id="t")]))
    doc.add_effect("t", EffectSpec("eq", {"peak2_gain_db": 4.0}))
    doc.add_effect("t", EffectSpec("deesser", {"mode": "wideband"}))
    doc.add_effect("t", EffectSpec("convolution", {"ir": "assets/hall.wav", "mix": 0.2}))
    doc.set_effect_params("t", 0, peak2_on=0.0)
    effects = doc.to_session().tracks[0].effects
    assert [e.kind for e in effects] == ["eq", "deesser", "convolution"]
    assert effects[0].params == {"peak2_gain_db": 4.0, "peak2_on": 0.0}
    assert effects[1].params["mode"] == "wideband"
    assert effects[2].params["ir"] == "assets/hall.wav"
    with pytest.raises(ProjectError, match="deesser: low_hz"):
        doc.set_effect_params("t", 1, low_hz=12000.0)
    with pytest.raises(ProjectError, match=r"eq.peak2_freq = 30000.0 is outside"):
        doc.set_effect_params("t", 0, peak2_freq=30000.0)
    with pytest.raises(ProjectError, match="convolution: 'ir' must name"):
        doc.add_effect("t", EffectSpec("convolution", {"ir": ""}))


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_render_does_not_depend_on_the_block_size(backend: str) -> None:
    rng = np.random.default_rng(12)
    loader = DictLoader({"voice": (0.3 * rng.standard_normal((2, 12000))).astype(np.float32),
                         "ir": (0.2 * rng.standard_normal((2, 9000))
                                * np.exp(-np.arange(9000) / 2000)).astype(np.float32)})
    track = _track([EffectSpec("eq", {"peak4_gain_db": 6.0, "low_gain_db": -4.0}),
                    EffectSpec("deesser", {"threshold_db": -40.0}),
                    EffectSpec("convolution", {"ir": "ir", "mix": 0.4, "pre_delay_ms": 1.0})],
                   source="voice", frames=12000, channels=2)
    session = Session(tracks=[track])
    small = _render(session, loader, backend, block=64)
    large = _render(session, loader, backend, block=1000)
    np.testing.assert_array_equal(small, large)
