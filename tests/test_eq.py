"""The 7-band parametric EQ and the de-esser: twins, response, smoothing, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp_core import EffectSpec, ProjectError, get_backend
from dsp_core.effects import TICK, EffectState
from dsp_core.eq_layout import COEFS, EQ_BANDS

pytestmark = pytest.mark.timeout(120)

SR = 48000
BACKENDS = ["native", "reference"]


def _process(fx: EffectState, signal: np.ndarray, backend: str, block: int = 128,
             changes: dict[int, dict] | None = None) -> np.ndarray:
    """Run ``signal`` (channels, frames) through ``fx`` block by block, in place of a copy."""
    kernels = get_backend(backend)
    out = signal.astype(np.float32).copy()
    for i, start in enumerate(range(0, out.shape[1], block)):
        if changes and i in changes:
            fx.set_params(changes[i])
        ch0 = np.ascontiguousarray(out[0, start:start + block])
        ch1 = np.ascontiguousarray(out[1, start:start + block]) if len(out) == 2 else None
        kernels.effect_process(fx, ch0, ch1, len(ch0), SR, start % TICK)
        out[0, start:start + block] = ch0
        if ch1 is not None:
            out[1, start:start + block] = ch1
    return out


def _sine(freq: float, seconds: float = 0.5, amp: float = 0.25) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (amp * np.sin(2 * math.pi * freq * t)).astype(np.float32)[None, :]


def _level_db(x: np.ndarray) -> float:
    tail = x[..., x.shape[-1] // 2:].astype(np.float64)
    return 10 * math.log10(float(np.mean(tail ** 2)) + 1e-30)


TWIN_CASES = [
    (EffectSpec("eq", {"low_gain_db": 6.0, "peak2_gain_db": -8.0, "peak2_q": 3.0,
                       "high_gain_db": 4.0, "peak4_on": 0, "peak4_gain_db": 5.0}),
     {"peak3_gain_db": 9.0, "peak4_on": 1, "low_freq": 300.0, "high_on": 0}),
    (EffectSpec("deesser", {"threshold_db": -40.0, "ratio": 8.0}),
     {"threshold_db": -20.0, "low_hz": 3000.0, "release_ms": 10.0}),
    (EffectSpec("deesser", {"threshold_db": -35.0, "mode": "wideband", "attack_ms": 0.1}),
     {"ratio": 3.0, "high_hz": 12000.0}),
]


@pytest.mark.parametrize("spec,change", TWIN_CASES,
                         ids=["eq", "deesser-split", "deesser-wideband"])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("sample_rate", [48000, 192000])
@pytest.mark.parametrize("block", [64, 100])
def test_c_and_twin_agree_bit_for_bit_through_a_glide(spec: EffectSpec, change: dict,
                                                      channels: int, sample_rate: int,
                                                      block: int) -> None:
    rng = np.random.default_rng(11)
    signal = (0.5 * rng.standard_normal((channels, 40 * block))).astype(np.float32)
    signal[:, 15 * block:20 * block] *= 0.01
    outs, states = [], []
    for backend in BACKENDS:
        fx = EffectState(spec, channels, sample_rate)
        kernels = get_backend(backend)
        out = signal.copy()
        for i, start in enumerate(range(0, out.shape[1], block)):
            if i == 10:
                fx.set_params(change)
            ch0 = np.ascontiguousarray(out[0, start:start + block])
            ch1 = np.ascontiguousarray(out[1, start:start + block]) if channels == 2 else None
            kernels.effect_process(fx, ch0, ch1, block, sample_rate, start % TICK)
            out[0, start:start + block] = ch0
            if ch1 is not None:
                out[1, start:start + block] = ch1
        outs.append(out)
        states.append(fx)
    assert np.all(np.isfinite(outs[0]))
    assert not np.array_equal(outs[0], signal)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(states[0].slots, states[1].slots)
    np.testing.assert_array_equal(states[0].memory, states[1].memory)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("band", [name for name, _, _ in EQ_BANDS[1:-1]])
@pytest.mark.parametrize("gain_db", [9.0, -6.0])
def test_a_peak_band_boosts_its_centre_by_its_gain(backend: str, band: str,
                                                   gain_db: float) -> None:
    freq = {"peak1": 180.0, "peak2": 700.0, "peak3": 2000.0, "peak4": 5000.0,
            "peak5": 11000.0}[band]
    fx = EffectState(EffectSpec("eq", {f"{band}_freq": freq, f"{band}_gain_db": gain_db,
                                       f"{band}_q": 2.0}), 1, SR)
    dry = _sine(freq)
    wet = _process(fx, dry, backend)
    assert _level_db(wet) - _level_db(dry) == pytest.approx(gain_db, abs=0.5)
    octave_off = _process(EffectState(fx.spec, 1, SR), _sine(freq * 4), backend)
    assert abs(_level_db(octave_off) - _level_db(_sine(freq * 4))) < abs(gain_db) / 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_shelves_lift_their_ends_and_leave_the_middle(backend: str) -> None:
    spec = EffectSpec("eq", {"low_freq": 200.0, "low_gain_db": 6.0, "high_freq": 6000.0,
                             "high_gain_db": -6.0})
    for probe, want in ((30.0, 6.0), (1000.0, 0.0), (18000.0, -6.0)):
        dry = _sine(probe)
        wet = _process(EffectState(spec, 1, SR), dry, backend)
        assert _level_db(wet) - _level_db(dry) == pytest.approx(want, abs=0.5), probe


@pytest.mark.parametrize("backend", BACKENDS)
def test_bands_at_zero_gain_or_switched_off_pass_the_signal_untouched(backend: str) -> None:
    rng = np.random.default_rng(3)
    signal = (0.3 * rng.standard_normal((2, 4096))).astype(np.float32)
    off = {f"{name}_on": 0 for name, _, _ in EQ_BANDS}
    off.update({f"{name}_gain_db": 12.0 for name, _, _ in EQ_BANDS})
    for params in ({}, off):
        out = _process(EffectState(EffectSpec("eq", params), 2, SR), signal, backend)
        np.testing.assert_array_equal(out, signal)


@pytest.mark.parametrize("backend", BACKENDS)
def test_switching_a_band_on_and_off_glides_without_a_click(backend: str) -> None:
    fx = EffectState(EffectSpec("eq", {"peak3_freq": 1000.0, "peak3_gain_db": 24.0,
                                       "peak3_on": 0}), 1, SR)
    dry = _sine(1000.0, seconds=0.6)
    out = _process(fx, dry, backend, changes={50: {"peak3_on": 1}, 150: {"peak3_on": 0}})
    step = np.abs(np.diff(out[0])).max()
    assert step <= 1.05 * np.abs(np.diff(dry[0])).max() * 10 ** (24 / 20)
    on = 50 * 128
    first_ms = out[:, on:on + 48].astype(np.float64)  # glides: not +24 dB at once
    assert 10 * math.log10(np.mean(first_ms ** 2)) < _level_db(dry) + 6
    assert _level_db(out[:, 150 * 128 - 4800:150 * 128]) > _level_db(dry) + 20
    assert _level_db(out[:, -4800:]) == pytest.approx(_level_db(dry), abs=0.1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_only_the_band_that_changed_is_redesigned(backend: str) -> None:
    fx = EffectState(EffectSpec("eq", {"peak1_gain_db": 3.0, "peak3_gain_db": 3.0}), 1, SR)
    _process(fx, _sine(500.0, 0.05), backend)  # settle
    marked = fx.memory[0, COEFS + 5 * 1:COEFS + 5 * 2].copy() * np.float32(1.0001)
    fx.memory[0, COEFS + 5:COEFS + 10] = marked
    before = fx.memory[0, COEFS + 5 * 3:COEFS + 5 * 4].copy()
    _process(fx, _sine(500.0, 0.01), backend)
    np.testing.assert_array_equal(fx.memory[0, COEFS + 5:COEFS + 10], marked)  # settled: kept
    fx.set_params({"peak3_gain_db": 9.0})
    _process(fx, _sine(500.0, 0.01), backend)
    np.testing.assert_array_equal(fx.memory[0, COEFS + 5:COEFS + 10], marked)
    assert not np.array_equal(fx.memory[0, COEFS + 15:COEFS + 20], before)


def _sibilant(seconds: float = 0.5) -> np.ndarray:
    return _sine(6500.0, seconds, amp=0.5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_deesser_reduces_loud_sibilance_by_its_ratio(backend: str) -> None:
    spec = EffectSpec("deesser", {"threshold_db": -30.0, "ratio": 4.0, "low_hz": 4000.0,
                                  "high_hz": 10000.0, "attack_ms": 1.0, "release_ms": 50.0})
    dry = _sibilant()
    wet = _process(EffectState(spec, 1, SR), dry, backend)
    peak_db = 20 * math.log10(0.5)  # the band passes 6.5 kHz at nearly 0 dB
    want = -(peak_db + 30.0) * (1 - 1 / 4)
    assert _level_db(wet) - _level_db(dry) == pytest.approx(want, abs=1.5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_deesser_leaves_a_loud_voice_band_alone_in_split_mode(backend: str) -> None:
    spec = EffectSpec("deesser", {"threshold_db": -30.0, "ratio": 8.0})
    dry = _sine(200.0, amp=0.5)
    wet = _process(EffectState(spec, 1, SR), dry, backend)
    assert _level_db(wet) - _level_db(dry) == pytest.approx(0.0, abs=0.1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_wideband_mode_ducks_everything_while_split_mode_only_the_band(backend: str) -> None:
    voice, hiss = _sine(200.0, amp=0.5), _sibilant()
    both = voice + hiss
    results = {}
    for mode in ("split", "wideband"):
        fx = EffectState(EffectSpec("deesser", {"threshold_db": -30.0, "ratio": 8.0,
                                                "mode": mode}), 1, SR)
        out = _process(fx, both, backend)
        # the voice's share of the output: project onto the 200 Hz tone
        tail = slice(both.shape[1] // 2, None)
        v = voice[0, tail].astype(np.float64)
        results[mode] = float(np.dot(out[0, tail], v) / np.dot(v, v))
    assert results["split"] == pytest.approx(1.0, abs=0.02)
    assert results["wideband"] < 0.5


@pytest.mark.parametrize("spec,message", [
    (EffectSpec("eq", {"peak3_freq": 5.0}), r"eq.peak3_freq = 5.0 is outside \[20.0, 20000.0\]"),
    (EffectSpec("eq", {"peak6_gain_db": 1.0}), "eq: unknown parameter 'peak6_gain_db'"),
    (EffectSpec("eq", {"high_gain_db": 30.0}), r"eq.high_gain_db = 30.0 is outside"),
    (EffectSpec("eq", {"low_q": "wide"}), "eq.low_q = 'wide' is not a number"),
    (EffectSpec("deesser", {"low_hz": 9000.0, "high_hz": 6000.0}),
     "deesser: low_hz 9000 must be below high_hz 6000"),
    (EffectSpec("deesser", {"mode": "narrow"}), "deesser mode 'narrow' unknown; use one of"),
    (EffectSpec("deesser", {"ratio": 0.5}), r"deesser.ratio = 0.5 is outside \[1.0, 20.0\]"),
])
def test_bad_parameters_get_a_clear_error(spec: EffectSpec, message: str) -> None:
    with pytest.raises(ProjectError, match=message):
        spec.validate()


def test_eq_targets_survive_a_reset() -> None:
    fx = EffectState(EffectSpec("eq", {"peak2_gain_db": 6.0}), 2, SR)
    _process(fx, _sine(600.0, 0.05).repeat(2, axis=0), "native")
    fx.reset()
    again = EffectState(EffectSpec("eq", {"peak2_gain_db": 6.0}), 2, SR)
    np.testing.assert_array_equal(fx.memory, again.memory)
    np.testing.assert_array_equal(fx.slots, again.slots)


def test_eq_layout_matches_internal_h() -> None:
    from dsp_core import eq_layout
    from tests.test_engine_header import defines

    internal = defines("internal.h")
    assert int(internal["EQ_BANDS"]) == len(eq_layout.EQ_BANDS) == len(eq_layout.EQ_SHAPES)
    assert {k: int(internal[f"EQ_{k}"]) for k in ("TARGETS", "VALUES", "COEFS", "STATE",
                                                  "ROW")} == {
        "TARGETS": eq_layout.TARGETS, "VALUES": eq_layout.VALUES, "COEFS": eq_layout.COEFS,
        "STATE": eq_layout.STATE, "ROW": eq_layout.EQ_ROW}
    assert int(internal["DEESSER_CHUNK"]) == eq_layout.DEESSER_CHUNK
    assert eq_layout.STATE + 2 * len(eq_layout.EQ_BANDS) <= eq_layout.EQ_ROW
