"""Effects do what their names promise (checked on the C backend and the twin)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp_core import EffectSpec, NativeError, ProjectError, get_backend
from dsp_core.effects import EffectState

SR = 48000


def _run(spec: EffectSpec, signal: np.ndarray, backend: str, block: int = 256) -> np.ndarray:
    kernels = get_backend(backend)
    fx = EffectState(spec, 1, SR)
    out = signal.astype(np.float32).copy()
    for start in range(0, len(out), block):
        chunk = np.ascontiguousarray(out[start:start + block])
        kernels.effect_process(fx, chunk, None, len(chunk), SR, start % 32)
        out[start:start + block] = chunk
    return out


def _sine(freq: float, seconds: float = 0.5, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (amp * np.sin(2 * math.pi * freq * t)).astype(np.float32)


def _gain_db(out: np.ndarray, ref: np.ndarray) -> float:
    tail = slice(len(out) // 2, None)
    return 20 * math.log10(np.sqrt(np.mean(out[tail] ** 2)) / np.sqrt(np.mean(ref[tail] ** 2)))


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("shape,freq,probe,want_db", [
    ("peaking", 1000.0, 1000.0, 6.0),
    ("lowshelf", 200.0, 30.0, 6.0),
    ("highshelf", 5000.0, 15000.0, 6.0),
    ("lowpass", 1000.0, 1000.0, -3.01),
    ("highpass", 1000.0, 1000.0, -3.01),
    ("lowpass", 500.0, 8000.0, -48.0),
])
def test_biquad_has_the_cookbook_response(backend: str, shape: str, freq: float, probe: float,
                                          want_db: float) -> None:
    spec = EffectSpec("biquad", {"shape": shape, "freq": freq, "q": 0.7071, "gain_db": 6.0})
    sine = _sine(probe)
    got = _gain_db(_run(spec, sine, backend), sine)
    assert got == pytest.approx(want_db, abs=0.15 if want_db > -10 else 2.0)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_compressor_follows_its_static_curve(backend: str) -> None:
    level_db = -6.0
    dc = np.full(SR // 2, 10 ** (level_db / 20), dtype=np.float32)
    spec = EffectSpec("compressor", {"threshold_db": -20.0, "ratio": 4.0, "knee_db": 0.0,
                                     "attack_ms": 1.0, "release_ms": 50.0, "makeup_db": 2.0})
    out = _run(spec, dc, backend)
    want = level_db - (1 - 1 / 4) * (level_db + 20.0) + 2.0
    assert 20 * math.log10(out[-1]) == pytest.approx(want, abs=0.01)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_compressor_leaves_quiet_signal_alone(backend: str) -> None:
    sine = _sine(440.0, amp=0.01)  # -40 dBFS, far below threshold and knee
    spec = EffectSpec("compressor", {"threshold_db": -20.0, "ratio": 8.0, "knee_db": 6.0})
    np.testing.assert_allclose(_run(spec, sine, backend), sine, atol=1e-6)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_limiter_never_exceeds_its_ceiling(backend: str) -> None:
    rng = np.random.default_rng(3)
    loud = (3.0 * rng.standard_normal(SR // 4)).astype(np.float32)
    out = _run(EffectSpec("limiter", {"ceiling_db": -1.0, "release_ms": 30.0}), loud, backend)
    assert np.abs(out).max() <= 10 ** (-1 / 20) + 1e-7
    assert np.abs(out).max() > 0.8, "it limits, it does not mute"


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_delay_echoes_at_its_time_with_feedback(backend: str) -> None:
    impulse = np.zeros(4000, dtype=np.float32)
    impulse[0] = 1.0
    spec = EffectSpec("delay", {"time_ms": 20.0, "feedback": 0.5, "mix": 0.5})
    out = _run(spec, impulse, backend)
    d = int(0.02 * SR)
    assert out[0] == pytest.approx(0.5)
    assert out[d] == pytest.approx(0.5)
    assert out[2 * d] == pytest.approx(0.25)
    assert np.flatnonzero(np.abs(out) > 1e-6).tolist() == [0, d, 2 * d, 3 * d, 4 * d]


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_gain_effect_glides_to_new_gain(backend: str) -> None:
    kernels = get_backend(backend)
    fx = EffectState(EffectSpec("gain", {"gain_db": 0.0}), 1, SR)
    ones = np.ones(256, dtype=np.float32)
    kernels.effect_process(fx, ones, None, 256, SR, 0)
    fx.set_params({"gain_db": -20.0})
    out = np.ones(SR // 5, dtype=np.float32)
    kernels.effect_process(fx, out, None, len(out), SR, 0)
    assert np.abs(np.diff(out)).max() < 0.01
    assert out[-1] == pytest.approx(0.1, rel=1e-3)


@pytest.mark.parametrize("spec,message", [
    (EffectSpec("vocoder"), "unknown effect kind 'vocoder'"),
    (EffectSpec("reverb", {"room_size": 1.5}), r"reverb.room_size = 1.5 is outside \[0.0, 1.0\]"),
    (EffectSpec("reverb", {"pre_delay_ms": 300}), r"reverb.pre_delay_ms = 300 is outside"),
    (EffectSpec("chorus", {"rate": 1.0}), "chorus: unknown parameter 'rate'"),
    (EffectSpec("flanger", {"feedback": 1.0}),
     r"flanger.feedback = 1.0 is outside \[-0.95, 0.95\]"),
    (EffectSpec("gate", {"range_db": -6}), r"gate.range_db = -6 is outside \[0.0, 120.0\]"),
    (EffectSpec("saturation", {"drive_db": float("nan")}), "saturation.drive_db"),
    (EffectSpec("phaser", {"center_hz": 10}), r"phaser.center_hz = 10 is outside \[50.0, 5000.0\]"),
    (EffectSpec("gain", {"gian_db": 1}), "unknown parameter 'gian_db'"),
    (EffectSpec("compressor", {"ratio": 0.5}), r"compressor.ratio = 0.5 is outside"),
    (EffectSpec("biquad", {"shape": "notch"}), "biquad shape 'notch' unknown"),
    (EffectSpec("delay", {"time_ms": float("nan")}), "delay.time_ms"),
])
def test_bad_effect_parameters_get_a_clear_error(spec: EffectSpec, message: str) -> None:
    with pytest.raises(ProjectError, match=message):
        spec.validate()


def _run_stereo(spec: EffectSpec, signal: np.ndarray, backend: str,
                block: int = 512) -> np.ndarray:
    kernels = get_backend(backend)
    fx = EffectState(spec, 2, SR)
    out = signal.astype(np.float32).copy()
    for start in range(0, out.shape[1], block):
        left = np.ascontiguousarray(out[0, start:start + block])
        right = np.ascontiguousarray(out[1, start:start + block])
        kernels.effect_process(fx, left, right, len(left), SR, start % 32)
        out[:, start:start + block] = left, right
    return out


def _window_db(x: np.ndarray, start_s: float, end_s: float) -> float:
    part = x[..., int(start_s * SR):int(end_s * SR)]
    return 10 * math.log10(float(np.mean(part.astype(np.float64) ** 2)) + 1e-30)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_reverb_tail_decays_and_lasts_longer_in_a_larger_room(backend: str) -> None:
    impulse = np.zeros((2, int(1.5 * SR)), dtype=np.float32)
    impulse[:, 0] = 1.0
    tails = {}
    for room in (0.3, 0.9):
        spec = EffectSpec("reverb", {"room_size": room, "damping": 0.2, "mix": 1.0})
        out = _run_stereo(spec, impulse, backend)
        early, late = _window_db(out, 0.05, 0.25), _window_db(out, 1.2, 1.4)
        assert late < early - 6.0, f"room {room}: the tail decays"
        assert np.all(np.isfinite(out))
        tails[room] = early - late
    # a larger room (more comb feedback) loses fewer dB between early and late windows
    assert tails[0.9] < tails[0.3] - 10.0


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_reverb_pre_delay_and_width_shape_the_wet_signal(backend: str) -> None:
    impulse = np.zeros((2, SR // 4), dtype=np.float32)
    impulse[:, 0] = 1.0
    late = _run_stereo(EffectSpec("reverb", {"pre_delay_ms": 100.0, "mix": 1.0}), impulse,
                       backend)
    prompt = _run_stereo(EffectSpec("reverb", {"pre_delay_ms": 0.0, "mix": 1.0}), impulse,
                         backend)
    shift = int(0.1 * SR)
    assert np.abs(late[:, :shift]).max() == 0.0
    np.testing.assert_allclose(late[:, shift:], prompt[:, :-shift], atol=1e-7)
    narrow = _run_stereo(EffectSpec("reverb", {"width": 0.0, "mix": 1.0}), impulse, backend)
    np.testing.assert_array_equal(narrow[0], narrow[1])
    assert np.abs(prompt[0] - prompt[1]).max() > 1e-3, "full width decorrelates the sides"


@pytest.mark.parametrize("backend", ["native", "reference"])
@pytest.mark.parametrize("kind", ["chorus", "flanger"])
def test_modulation_changes_the_sound_but_keeps_its_level(backend: str, kind: str) -> None:
    rng = np.random.default_rng(5)
    noise = (0.3 * rng.standard_normal((2, SR // 2))).astype(np.float32)
    spec = EffectSpec(kind, {"rate_hz": 2.0, "depth_ms": 3.0, "feedback": 0.0, "mix": 0.5})
    out = _run_stereo(spec, noise, backend)
    assert np.abs(out - noise).max() > 0.1
    level = _window_db(out, 0.1, 0.5) - _window_db(noise, 0.1, 0.5)
    assert abs(level) < 1.0, f"{kind} moved the level by {level:.2f} dB"
    assert np.abs(out[0] - out[1]).max() > 0.0 or np.array_equal(noise[0], noise[1])


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_chorus_delay_sweeps_with_the_lfo(backend: str) -> None:
    impulses = np.zeros(SR, dtype=np.float32)
    impulses[::SR // 8] = 1.0  # eight clicks, each echoed at the LFO's current delay
    spec = EffectSpec("chorus", {"rate_hz": 1.0, "depth_ms": 8.0, "delay_ms": 5.0, "mix": 1.0})
    out = _run(spec, impulses, backend)
    echoes = []
    for k in range(8):
        start = k * SR // 8
        window = np.abs(out[start + 1:start + int(0.02 * SR)])
        echoes.append((start + 1 + int(np.argmax(window)) - start) / SR * 1000)
    assert min(echoes) >= 4.9 and max(echoes) <= 13.1
    assert max(echoes) - min(echoes) > 6.0, echoes


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_gate_closes_below_threshold_and_opens_above(backend: str) -> None:
    loud, quiet = _sine(200.0, 0.25, 0.5), _sine(200.0, 0.25, 0.001)  # -6 and -60 dBFS
    signal = np.concatenate([loud, quiet, loud])
    spec = EffectSpec("gate", {"threshold_db": -30.0, "range_db": 60.0, "attack_ms": 0.1,
                               "hold_ms": 10.0, "release_ms": 5.0})
    out = _run(spec, signal, backend)
    q = len(loud)
    settled = int(0.005 * SR)  # the sine starts at 0, below threshold: the gate opens on it
    np.testing.assert_allclose(out[settled:q], loud[settled:], atol=1e-6)  # open: untouched
    closed = out[q + int(0.1 * SR):2 * q]  # after hold (10 ms) and release (5 ms)
    gain_db = 20 * math.log10(np.abs(closed).max() / 0.001)
    assert gain_db == pytest.approx(-60.0, abs=0.5)
    reopened = out[2 * q + int(0.005 * SR):]
    assert np.abs(reopened).max() == pytest.approx(0.5, rel=1e-3)
    # held: still open just after the loud part ends
    assert np.abs(out[q:q + int(0.005 * SR)]).max() > 0.9e-3


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_saturation_bounds_the_peak_and_is_linear_when_quiet(backend: str) -> None:
    hot = _sine(100.0, 0.25, 4.0)
    spec = EffectSpec("saturation", {"drive_db": 24.0, "mix": 1.0, "output_db": -3.0})
    out = _run(spec, hot, backend)
    ceiling = 10 ** (-3 / 20)
    assert np.abs(out).max() <= ceiling * (1 + 1e-6)
    assert np.abs(out).max() == pytest.approx(ceiling, rel=1e-6), "it saturates fully"
    whisper = _sine(100.0, 0.25, 1e-4)
    gain = np.abs(_run(spec, whisper, backend)).max() / np.abs(whisper).max()
    assert gain == pytest.approx(10 ** (21 / 20), rel=1e-3)  # drive times output gain
    curve = _run(EffectSpec("saturation", {"drive_db": 0.0}), np.linspace(-3, 3, 601,
                                                                         dtype=np.float32),
                 backend)
    assert np.all(np.diff(curve) >= -2.4e-7), "the curve is monotonic (to float rounding)"
    assert np.abs(curve).max() == 1.0
    np.testing.assert_allclose(curve, np.tanh(np.linspace(-3, 3, 601)), atol=0.03)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_phaser_notches_its_center_and_passes_far_below(backend: str) -> None:
    # six allpasses turn the phase by 6 x 90 degrees at their break frequency: the
    # 50/50 mix of dry and shifted cancels there
    spec = EffectSpec("phaser", {"depth": 0.0, "center_hz": 1000.0, "feedback": 0.0,
                                 "mix": 0.5})
    at_center = _sine(1000.0)
    assert _gain_db(_run(spec, at_center, backend), at_center) < -40.0
    low = _sine(60.0)
    assert _gain_db(_run(spec, low, backend), low) > -1.0


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_phaser_sweep_does_not_depend_on_the_block_size(backend: str) -> None:
    rng = np.random.default_rng(11)
    noise = (0.3 * rng.standard_normal(SR // 10)).astype(np.float32)
    spec = EffectSpec("phaser", {"rate_hz": 4.0, "depth": 1.0, "feedback": 0.5})
    by_64, by_100 = _run(spec, noise, backend, block=64), _run(spec, noise, backend, block=100)
    np.testing.assert_array_equal(by_64, by_100)
    assert np.abs(by_64 - noise).max() > 0.05


def test_a_reverb_made_for_one_rate_is_refused_at_a_higher_one() -> None:
    fx = EffectState(EffectSpec("reverb"), 1, 44100)
    block = np.zeros(64, dtype=np.float32)
    with pytest.raises(NativeError, match="buffer"):
        get_backend("native").effect_process(fx, block, None, 64, 96000, 0)


def test_a_sidechain_key_shorter_than_the_block_is_refused_by_the_c_kernel() -> None:
    kernels = get_backend("native")
    fx = EffectState(EffectSpec("compressor", {"threshold_db": -20.0}), 1, SR)
    fx.key = np.zeros((2, 64), dtype=np.float32)  # key_stride 64: two channels of 64
    block = np.full(128, 0.5, dtype=np.float32)
    with pytest.raises(NativeError, match="daw_effect_process"):
        kernels.effect_process(fx, block, None, 128, SR, 0)
    kernels.effect_process(fx, block, None, 64, SR, 0)  # within the key: fine
