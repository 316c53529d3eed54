"""Convolution reverb: the C FFT and convolver against numpy, latency, IR loading, errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from dsp_core import EffectSpec, ProjectError, get_backend
from dsp_core.convolution_layout import (
    H_CROSS,
    H_FILL,
    H_HEAD,
    H_PARTS,
    H_RING,
    H_TAIL_FILL,
    H_TAIL_HEAD,
    H_TAIL_PARTS,
    HEAD_FRAMES,
    MAX_IR_SECONDS,
    PARTITION,
)
from dsp_core.effects import TICK, EffectState

pytestmark = pytest.mark.timeout(120)

SR = 48000
BACKENDS = ["native", "reference"]
#: |C - twin| bound, relative to the twin's peak output: float32 FFT vs numpy's float64.
CONV_RTOL = 2e-6


def _ir(channels: int, frames: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    decay = np.exp(-np.arange(frames) / (frames / 5))
    return (0.3 * rng.standard_normal((channels, frames)) * decay).astype(np.float32)


def _loader(ir: np.ndarray):
    return lambda source, rate: ir


def _process(fx: EffectState, signal: np.ndarray, backend: str, block: int = 128,
             sample_rate: int = SR, changes: dict[int, dict] | None = None) -> np.ndarray:
    kernels = get_backend(backend)
    out = signal.astype(np.float32).copy()
    for i, start in enumerate(range(0, out.shape[1], block)):
        if changes and i in changes:
            fx.set_params(changes[i])
        n = min(block, out.shape[1] - start)
        ch0 = np.ascontiguousarray(out[0, start:start + n])
        ch1 = np.ascontiguousarray(out[1, start:start + n]) if len(out) == 2 else None
        kernels.effect_process(fx, ch0, ch1, n, sample_rate, start % TICK)
        out[0, start:start + n] = ch0
        if ch1 is not None:
            out[1, start:start + n] = ch1
    return out


@pytest.mark.parametrize("n", [4, 8, 64, 512, 8192])
def test_the_c_real_fft_matches_numpy(n: int) -> None:
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    native, reference = get_backend("native"), get_backend("reference")
    spectrum = native.rfft(x)
    want = np.fft.rfft(x.astype(np.float64))
    assert np.max(np.abs(spectrum - want)) <= 1e-6 * np.max(np.abs(want))
    np.testing.assert_allclose(reference.rfft(x), want, rtol=1e-6, atol=1e-5)
    back = native.irfft(spectrum, n)
    assert np.max(np.abs(back - x)) <= 2e-6 * np.max(np.abs(x))


@pytest.mark.parametrize("channels,ir_channels", [(1, 1), (2, 1), (2, 2), (1, 2), (2, 4),
                                                  (1, 4)])
@pytest.mark.parametrize("sample_rate", [48000, 96000])
@pytest.mark.parametrize("block", [64, 100, 1000])
@pytest.mark.parametrize("ir_frames", [3 * PARTITION + 17, HEAD_FRAMES + 2 * 4096 + 5])
def test_c_and_twin_agree_through_a_glide(channels: int, ir_channels: int, sample_rate: int,
                                          block: int, ir_frames: int) -> None:
    ir = _ir(ir_channels, ir_frames)
    spec = EffectSpec("convolution", {"ir": "hall", "mix": 0.5, "pre_delay_ms": 2.0})
    rng = np.random.default_rng(5)
    signal = (0.5 * rng.standard_normal((channels, 20000))).astype(np.float32)
    change = {20 * 64 // block: {"mix": 0.9, "wet_db": -6.0, "pre_delay_ms": 4.0}}
    outs, states = [], []
    for backend in BACKENDS:
        fx = EffectState(spec, channels, sample_rate, _loader(ir))
        outs.append(_process(fx, signal, backend, block, sample_rate, change))
        states.append(fx)
    assert np.all(np.isfinite(outs[0]))
    peak = np.max(np.abs(outs[1]))
    assert np.max(np.abs(outs[0] - outs[1])) <= CONV_RTOL * peak
    np.testing.assert_array_equal(states[0].slots, states[1].slots)
    for h in (H_FILL, H_HEAD, H_RING, H_PARTS, H_TAIL_FILL, H_TAIL_HEAD, H_TAIL_PARTS,
              H_CROSS):
        np.testing.assert_array_equal(states[0].memory[:, h], states[1].memory[:, h])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ir_frames", [1000, HEAD_FRAMES, HEAD_FRAMES + 1, 20000])
def test_fully_wet_output_is_the_convolution_late_by_its_latency(backend: str,
                                                                 ir_frames: int) -> None:
    ir = _ir(1, ir_frames)
    fx = EffectState(EffectSpec("convolution", {"ir": "x", "mix": 1.0}), 1, SR, _loader(ir))
    assert fx.latency_frames == PARTITION
    assert len(fx.ir.layout.stages) == (1 if ir_frames <= HEAD_FRAMES else 2)
    frames = 30000
    x = (0.5 * np.random.default_rng(2).standard_normal((1, frames))).astype(np.float32)
    out = _process(fx, x, backend, block=100)
    want = np.convolve(x[0].astype(np.float64), ir[0].astype(np.float64))[:frames - PARTITION]
    assert np.all(out[0, :PARTITION] == 0.0)
    np.testing.assert_allclose(out[0, PARTITION:], want, atol=1e-5 * np.max(np.abs(want)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_dry_path_is_the_input_late_by_the_same_latency(backend: str) -> None:
    fx = EffectState(EffectSpec("convolution", {"ir": "x", "mix": 0.0}), 2, SR,
                     _loader(_ir(2, 700)))
    x = np.random.default_rng(4).standard_normal((2, 3000)).astype(np.float32)
    out = _process(fx, x, backend, block=77)
    np.testing.assert_array_equal(out[:, fx.latency_frames:], x[:, :-fx.latency_frames])


@pytest.mark.parametrize("backend", BACKENDS)
def test_pre_delay_and_wet_gain_shape_the_wet_path(backend: str) -> None:
    ir = np.zeros((1, 10), np.float32)
    ir[0, 0] = 1.0
    impulse = np.zeros((1, 8000), np.float32)
    impulse[0, 0] = 1.0
    fx = EffectState(EffectSpec("convolution", {"ir": "x", "mix": 1.0, "pre_delay_ms": 50.0,
                                                "wet_db": -6.0}), 1, SR, _loader(ir))
    out = _process(fx, impulse, backend)
    at = PARTITION + int(0.05 * SR)
    assert int(np.argmax(np.abs(out[0]))) == at
    assert out[0, at] == pytest.approx(10 ** (-6 / 20), rel=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ir_frames", [700, HEAD_FRAMES + 5000])
def test_a_true_stereo_ir_sends_each_input_to_both_outputs(backend: str,
                                                           ir_frames: int) -> None:
    ir = _ir(4, ir_frames, seed=7)  # LL, LR, RL, RR
    fx = EffectState(EffectSpec("convolution", {"ir": "x", "mix": 1.0}), 2, SR, _loader(ir))
    assert fx.ir.true_stereo and fx.memory.shape[0] == 2
    frames = 20000
    x = (0.5 * np.random.default_rng(3).standard_normal((2, frames))).astype(np.float32)
    x[1, :5000] = 0.0  # the right input starts late: the left's cross path is heard alone
    out = _process(fx, x, backend, block=100)

    def conv(a: np.ndarray, h: np.ndarray) -> np.ndarray:
        return np.convolve(a.astype(np.float64), h.astype(np.float64))[:frames - PARTITION]

    want = np.stack([conv(x[0], ir[0]) + conv(x[1], ir[2]),   # left: L->L + R->L
                     conv(x[0], ir[1]) + conv(x[1], ir[3])])  # right: L->R + R->R
    assert np.all(out[:, :PARTITION] == 0.0)
    np.testing.assert_allclose(out[:, PARTITION:], want, atol=1e-5 * np.max(np.abs(want)))


def test_a_true_stereo_ir_without_cross_paths_is_a_stereo_ir() -> None:
    ir = _ir(4, 900)
    ir[1:3] = 0.0
    x = np.random.default_rng(6).standard_normal((2, 6000)).astype(np.float32)
    for backend in BACKENDS:
        four = EffectState(EffectSpec("convolution", {"ir": "x"}), 2, SR, _loader(ir))
        two = EffectState(EffectSpec("convolution", {"ir": "x"}), 2, SR, _loader(ir[[0, 3]]))
        a, b = _process(four, x, backend, 64), _process(two, x, backend, 64)
        assert np.max(np.abs(a - b)) <= 1e-6 * np.max(np.abs(b))


def test_a_mono_track_hears_a_true_stereo_ir_as_its_centred_sum() -> None:
    ir = _ir(4, 300)
    mono = EffectState(EffectSpec("convolution", {"ir": "x"}), 1, SR, _loader(ir))
    assert not mono.ir.true_stereo and mono.memory[0, H_CROSS] == 0.0
    np.testing.assert_allclose(mono.ir.samples[0], ir.sum(axis=0) / 2, rtol=1e-6, atol=1e-7)


def test_a_mono_track_hears_a_stereo_ir_averaged() -> None:
    ir = _ir(2, 300)
    mono = EffectState(EffectSpec("convolution", {"ir": "x", "mix": 1.0}), 1, SR, _loader(ir))
    np.testing.assert_allclose(mono.ir.samples[0], (ir[0] + ir[1]) / 2)
    stereo = EffectState(EffectSpec("convolution", {"ir": "x"}), 2, SR, _loader(ir[:1]))
    np.testing.assert_array_equal(stereo.ir.samples, np.repeat(ir[:1], 2, axis=0))


def test_the_ir_is_read_from_a_file_and_resampled_to_the_render_rate(tmp_path) -> None:
    ir = np.zeros(2400, np.float32)
    ir[100] = 1.0
    sf.write(tmp_path / "room.wav", ir, 24000, subtype="FLOAT")
    fx = EffectState(EffectSpec("convolution", {"ir": str(tmp_path / "room.wav")}), 1, 48000)
    assert fx.ir.samples.shape[1] == 4800
    assert abs(int(np.argmax(fx.ir.samples[0])) - 200) <= 1


@pytest.mark.parametrize("ir,message", [
    (np.zeros((1, int(MAX_IR_SECONDS * SR) + 1), np.float32),
     r"is 10.00 s long at 48000 Hz; the limit is 10 s: trim the impulse response"),
    (np.zeros((3, 100), np.float32), r"true-stereo \(4 channels: LL, LR, RL, RR\)"),
    (np.zeros((1, 0), np.float32), "needs mono, stereo or true-stereo"),
])
def test_unusable_impulse_responses_are_refused(ir: np.ndarray, message: str) -> None:
    with pytest.raises(ProjectError, match=message):
        EffectState(EffectSpec("convolution", {"ir": "big.wav"}), 2, SR, _loader(ir))


@pytest.mark.parametrize("spec,message", [
    (EffectSpec("convolution", {"mix": 0.5}), "convolution: 'ir' must name the impulse-response"),
    (EffectSpec("convolution", {"ir": "a.wav", "pre_delay_ms": 600.0}),
     r"convolution.pre_delay_ms = 600.0 is outside \[0.0, 500.0\]"),
    (EffectSpec("convolution", {"ir": "a.wav", "wet": 1.0}), "unknown parameter 'wet'"),
])
def test_bad_parameters_get_a_clear_error(spec: EffectSpec, message: str) -> None:
    with pytest.raises(ProjectError, match=message):
        spec.validate()


def test_a_missing_ir_file_names_the_effect(tmp_path) -> None:
    from dsp_core import AudioFileError

    with pytest.raises(AudioFileError, match="convolution impulse response: .*no such audio"):
        EffectState(EffectSpec("convolution", {"ir": str(tmp_path / "hall.wav")}), 2, SR)


def test_the_c_engine_refuses_an_effect_without_its_ir_memory() -> None:
    from dsp_core import NativeError

    fx = EffectState(EffectSpec("convolution", {"ir": "x"}), 1, SR, _loader(_ir(1, 600)))
    fx.memory = np.zeros((1, 100), np.float32)
    x = np.zeros(64, np.float32)
    with pytest.raises(NativeError, match="daw_effect_process"):
        get_backend("native").effect_process(fx, x, None, 64, SR, 0)


def test_other_effects_add_no_latency() -> None:
    for kind in ("eq", "deesser", "reverb", "compressor"):
        assert EffectState(EffectSpec(kind), 2, SR).latency_frames == 0


def test_convolution_layout_matches_internal_h() -> None:
    from dsp_core import convolution_layout as layout
    from tests.test_engine_header import defines

    internal = defines("internal.h")
    assert int(internal["CONV_PARTITION"]) == layout.PARTITION
    assert int(internal["CONV_TAIL_PARTITION"]) == layout.TAIL_PARTITION
    assert int(internal["CONV_MAX_FFT"]) == layout.MAX_FFT
    assert int(internal["CONV_HEADER"]) == layout.HEADER
    assert float(internal["CONV_MAX_PRE_MS"]) == layout.MAX_PRE_MS
    names = ("FILL", "HEAD", "RING", "PARTS", "TAIL_FILL", "TAIL_HEAD", "TAIL_PARTS",
             "CROSS")
    assert [int(internal[f"CONV_H_{k}"]) for k in names] == [
        layout.H_FILL, layout.H_HEAD, layout.H_RING, layout.H_PARTS, layout.H_TAIL_FILL,
        layout.H_TAIL_HEAD, layout.H_TAIL_PARTS, layout.H_CROSS]
