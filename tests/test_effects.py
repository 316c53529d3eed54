"""Effects do what their names promise (checked on the C backend and the twin)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsp_core import EffectSpec, ProjectError, get_backend
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
    (EffectSpec("reverb"), "unknown effect kind 'reverb'"),
    (EffectSpec("gain", {"gian_db": 1}), "unknown parameter 'gian_db'"),
    (EffectSpec("compressor", {"ratio": 0.5}), r"compressor.ratio = 0.5 is outside"),
    (EffectSpec("biquad", {"shape": "notch"}), "biquad shape 'notch' unknown"),
    (EffectSpec("delay", {"time_ms": float("nan")}), "delay.time_ms"),
])
def test_bad_effect_parameters_get_a_clear_error(spec: EffectSpec, message: str) -> None:
    with pytest.raises(ProjectError, match=message):
        spec.validate()
