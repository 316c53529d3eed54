"""Numpy twins of the C kernels in ``native/engine.c``.

Each public function here has the same name and meaning as the C function it
mirrors (``daw_mix`` -> :func:`mix`, ``daw_render`` -> :func:`render`, ...) and
follows the same order of operations, so the two agree to float32 rounding
(the C build may fuse multiply-adds).  Recursive filters loop over samples in
Python: this backend is slow by design and exists to check the fast one.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter

from .effects import (
    FADER_END,
    FADER_START,
    FADER_TARGET,
    KIND_CODES,
    SLOT_COEF,
    SLOT_MEM,
    SLOT_READY,
    SLOT_TARGET,
    SLOT_VALUE,
    TICK,
    EffectState,
)
from .graph import BusState, ClipState, Graph, TrackState
from .reference_automation import automation_gains
from .reference_convolution import conv_coefficients, conv_run
from .reference_eq import deesser_coefficients, deesser_run, eq_run, eq_settled, eq_tick
from .reference_instruments import instrument_render
from .reference_lookahead import lookahead_run
from .reference_modulation import (
    modulation_coefficients,
    modulation_run,
    phaser_coefficients,
    phaser_run,
)
from .reference_reverb import reverb_coefficients, reverb_run
from .reference_shaping import (
    gate_coefficients,
    gate_run,
    saturation_coefficients,
    saturation_run,
)
from .schedule import DelayState, KeyState, RunState

F32 = np.float32
# Copies of native/internal.h's numbers; tests/test_engine_header.py holds them to it.
SMOOTH_SECONDS = 0.01
GAIN_EPS = F32(1e-6)
LOG2_TO_DB = F32(6.020599913)
DB_TO_LOG2 = F32(0.166096405)
_LOG2_POLY = [F32(c) for c in (-0.025790712, 0.121468526, -0.277337223,
                                0.457156131, -0.718033203, 1.44253476)]
_EXP2_POLY = [F32(c) for c in (0.00187623429, 0.00899259431, 0.0558235814,
                                0.240154545, 0.693152965, 0.999999927)]
GAIN, BIQUAD, COMPRESSOR, DELAY, LIMITER = (KIND_CODES[k] for k in
                                            ("gain", "biquad", "compressor", "delay", "limiter"))
REVERB, CHORUS, FLANGER, GATE, SATURATION, PHASER = (
    KIND_CODES[k] for k in ("reverb", "chorus", "flanger", "gate", "saturation", "phaser"))
EQ, DEESSER, CONVOLUTION = (KIND_CODES[k] for k in ("eq", "deesser", "convolution"))
LOOKAHEAD_LIMITER = KIND_CODES["lookahead_limiter"]


# ------------------------------------------------------------------ math

def log2(x: np.ndarray) -> np.ndarray:
    """Twin of ``daw_log2``: exponent plus a degree-6 polynomial of the mantissa."""
    x = np.asarray(x, dtype=F32)
    bits = x.view(np.int32)
    e = (((bits >> 23) & 255) - 127).astype(F32)
    m = ((bits & 0x007FFFFF) | 0x3F800000).view(F32) - F32(1.0)
    p = np.full_like(m, _LOG2_POLY[0])
    for c in _LOG2_POLY[1:]:
        p = p * m + c
    return e + p * m


def exp2(x: np.ndarray) -> np.ndarray:
    """Twin of ``daw_exp2``: 2**floor(x) by exponent bits times a polynomial."""
    x = np.clip(np.asarray(x, dtype=F32), F32(-126.0), F32(126.0))
    fl = np.floor(x)
    f = x - fl
    p = np.full_like(f, _EXP2_POLY[0])
    for c in _EXP2_POLY[1:]:
        p = p * f + c
    bits = p.view(np.int32) + (fl.astype(np.int32) << 23)
    return bits.view(F32)


def rfft(x: np.ndarray) -> np.ndarray:
    """Twin of ``daw_rfft``: numpy's real FFT (float64 inside), as complex64."""
    return np.fft.rfft(np.asarray(x, dtype=np.float64)).astype(np.complex64)


def irfft(spectrum: np.ndarray, n: int) -> np.ndarray:
    """Twin of ``daw_irfft``: numpy's inverse real FFT, as float32."""
    return np.fft.irfft(np.asarray(spectrum, dtype=np.complex128), n).astype(F32)


def smooth_toward(value: float, target: float, alpha: float, eps: float) -> float:
    """One control tick of the one-pole parameter glide."""
    value, target = F32(value), F32(target)
    nxt = F32(value + F32((target - value) * F32(alpha)))
    if abs(F32(target - nxt)) <= eps:
        nxt = target
    return nxt


def tick_alpha(sample_rate: float) -> np.float32:
    """Per-tick smoothing coefficient for a 10 ms time constant."""
    return F32(1.0 - math.exp(-TICK / (SMOOTH_SECONDS * sample_rate)))


def param_eps(target: float) -> np.float32:
    """Snap distance of a smoothed effect parameter."""
    return F32(1e-4) * F32(max(abs(float(target)), 1.0))


# ------------------------------------------------------------------ plain mix

def pan_gains(gains: np.ndarray, pans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equal-power pan law gains (computed in float64, rounded to float32)."""
    angle = (np.clip(pans.astype(np.float64), -1.0, 1.0) + 1.0) * math.pi / 4.0
    g = gains.astype(np.float64)
    return (g * np.cos(angle)).astype(F32), (g * np.sin(angle)).astype(F32)


def mix(tracks: np.ndarray, gains: np.ndarray, pans: np.ndarray, threads: int = 1) -> np.ndarray:
    """Twin of ``daw_mix``: mono tracks to stereo with the equal-power pan law.

    ``threads`` is accepted for the same signature; BLAS chooses its own threads.
    """
    left, right = pan_gains(gains, pans)
    return np.stack([left @ tracks, right @ tracks]).astype(F32, copy=False)


# ------------------------------------------------------------------ faders

def fader_apply(fader: np.ndarray, src_l: np.ndarray, src_r: np.ndarray, dst_l: np.ndarray,
                dst_r: np.ndarray, frames: int, phase: int, alpha: float) -> None:
    """Twin of the C ``fader_apply``: add smoothed-gain copies of src to dst."""
    start = fader[FADER_START:FADER_START + 2]
    end = fader[FADER_END:FADER_END + 2]
    target = fader[FADER_TARGET:FADER_TARGET + 2]
    if np.array_equal(start, end) and np.array_equal(end, target):
        if end[0] != 0:
            dst_l[:frames] += end[0] * src_l[:frames]
        if end[1] != 0:
            dst_r[:frames] += end[1] * src_r[:frames]
        return
    pos, ph = 0, phase
    while pos < frames:
        if ph == 0:
            for c in range(2):
                start[c] = end[c]
                end[c] = smooth_toward(end[c], target[c], alpha, GAIN_EPS)
        n = min(frames - pos, TICK - ph)
        t = np.arange(ph + 1, ph + n + 1, dtype=F32) * F32(1.0 / TICK)
        seg = slice(pos, pos + n)
        dst_l[seg] += (start[0] + (end[0] - start[0]) * t) * src_l[seg]
        dst_r[seg] += (start[1] + (end[1] - start[1]) * t) * src_r[seg]
        pos += n
        ph = (ph + n) % TICK


# ------------------------------------------------------------------ effects

def biquad_coefficients(slots: np.ndarray, sr: float) -> None:
    """RBJ cookbook coefficients (float64 maths, float32 result) into the COEF slots."""
    q = float(slots[SLOT_VALUE + 2]) if slots[SLOT_VALUE + 2] > F32(1e-3) else 1e-3
    slots[SLOT_COEF:SLOT_COEF + 5] = biquad_design(
        int(slots[SLOT_TARGET]), float(slots[SLOT_VALUE + 1]), q,
        float(slots[SLOT_VALUE + 3]), sr)


def biquad_design(shape: int, freq: float, q: float, gain_db: float,
                  sr: float) -> tuple[float, ...]:
    """Twin of the C ``biquad_design``: b0, b1, b2, a1, a2 (normalised by a0)."""
    q = max(q, 1e-3)
    freq = min(max(freq, 1.0), 0.49 * sr)
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * freq / sr
    cw, sw = math.cos(w0), math.sin(w0)
    alpha = sw / (2.0 * q)
    if shape == 0:
        b = ((1 - cw) / 2, 1 - cw, (1 - cw) / 2)
        den = (1 + alpha, -2 * cw, 1 - alpha)
    elif shape == 1:
        b = ((1 + cw) / 2, -(1 + cw), (1 + cw) / 2)
        den = (1 + alpha, -2 * cw, 1 - alpha)
    elif shape == 2:
        b = (1 + alpha * a, -2 * cw, 1 - alpha * a)
        den = (1 + alpha / a, -2 * cw, 1 - alpha / a)
    elif shape == 3:
        k = 2 * math.sqrt(a) * alpha
        b = (a * ((a + 1) - (a - 1) * cw + k), 2 * a * ((a - 1) - (a + 1) * cw),
             a * ((a + 1) - (a - 1) * cw - k))
        den = ((a + 1) + (a - 1) * cw + k, -2 * ((a - 1) + (a + 1) * cw),
               (a + 1) + (a - 1) * cw - k)
    else:
        k = 2 * math.sqrt(a) * alpha
        b = (a * ((a + 1) + (a - 1) * cw + k), -2 * a * ((a - 1) + (a + 1) * cw),
             a * ((a + 1) + (a - 1) * cw - k))
        den = ((a + 1) - (a - 1) * cw + k, 2 * ((a - 1) - (a + 1) * cw),
               (a + 1) - (a - 1) * cw - k)
    a0 = den[0]
    return (b[0] / a0, b[1] / a0, b[2] / a0, den[1] / a0, den[2] / a0)


def biquad_run(coef: np.ndarray, mem: np.ndarray, x: np.ndarray) -> None:
    """Transposed direct form II in place (scipy's lfilter uses the same form)."""
    b = coef[0:3].astype(F32)
    a = np.array([1.0, coef[3], coef[4]], dtype=F32)
    y, zf = lfilter(b, a, x, zi=mem.astype(F32))
    x[:] = y
    mem[:] = zf


def compressor_coefficients(slots: np.ndarray, sr: float) -> None:
    """Attack/release smoothing coefficients from the target times."""
    attack = float(slots[SLOT_TARGET + 3]) * 1e-3
    release = float(slots[SLOT_TARGET + 4]) * 1e-3
    slots[SLOT_COEF] = math.exp(-1.0 / (attack * sr if attack > 1e-5 else 1e-5 * sr))
    slots[SLOT_COEF + 1] = math.exp(-1.0 / (release * sr if release > 1e-5 else 1e-5 * sr))


def compressor_run(slots: np.ndarray, x0: np.ndarray, x1: np.ndarray | None,
                   k0: np.ndarray | None = None, k1: np.ndarray | None = None) -> None:
    """Feed-forward compressor: gain computer, attack/release, makeup.

    The detector reads ``k0``/``k1`` (a sidechain key) when given, else the input.
    """
    if k0 is None:
        k0, k1 = x0, x1
    v = slots[SLOT_VALUE:SLOT_VALUE + 8]
    threshold, knee, makeup = v[0], v[2], v[5]
    slope = F32(1.0) - F32(1.0) / max(v[1], F32(1.0))
    half = F32(0.5) * knee
    inv_2knee = F32(1.0) / (F32(2.0) * knee) if knee > 0 else F32(0.0)
    level = np.abs(k0) if k1 is None else np.maximum(np.abs(k0), np.abs(k1))
    level = np.maximum(level, F32(1e-10))
    over = LOG2_TO_DB * log2(level) - threshold
    red = slope * over
    if knee > 0:
        in_knee = over + half
        inside = (over > -half) & (over < half)
        red = np.where(inside, slope * in_knee * in_knee * inv_2knee, red)
    red = np.where(over <= -half, F32(0.0), red).astype(F32)
    att, rel = float(slots[SLOT_COEF]), float(slots[SLOT_COEF + 1])
    y = float(slots[SLOT_MEM])
    smoothed = np.empty_like(red)
    for i, c in enumerate(red.tolist()):
        d = float(F32(y - c))
        y = float(F32(c + (att if d < 0.0 else rel) * d))
        smoothed[i] = y
    slots[SLOT_MEM] = y
    gain = exp2((makeup - smoothed) * DB_TO_LOG2)
    x0 *= gain
    if x1 is not None:
        x1 *= gain


def limiter_coefficients(slots: np.ndarray, sr: float) -> None:
    """Ceiling (linear) and release coefficient."""
    release = float(slots[SLOT_VALUE + 1]) * 1e-3
    slots[SLOT_COEF] = 10.0 ** (float(slots[SLOT_VALUE]) / 20.0)
    slots[SLOT_COEF + 1] = math.exp(-1.0 / (release * sr if release > 1e-4 else 1e-4 * sr))


def limiter_run(slots: np.ndarray, x0: np.ndarray, x1: np.ndarray | None) -> None:
    """Zero-latency peak limiter: instant attack, exponential release, hard ceiling."""
    ceiling, rel = F32(slots[SLOT_COEF]), F32(slots[SLOT_COEF + 1])
    g = F32(slots[SLOT_MEM])
    peaks = np.abs(x0) if x1 is None else np.maximum(np.abs(x0), np.abs(x1))
    gains = np.empty_like(x0)
    for i, peak in enumerate(peaks):
        needed = ceiling / peak if peak > ceiling else F32(1.0)
        g = F32(F32(1.0) - rel * (F32(1.0) - g))
        g = min(g, needed)
        gains[i] = g
    slots[SLOT_MEM] = g
    for x in (x0, x1):
        if x is not None:
            np.clip(x * gains, -ceiling, ceiling, out=x)


def gain_coefficients(slots: np.ndarray) -> None:
    """Shift the tick's end gain to its start and compute the new end gain."""
    slots[SLOT_COEF] = slots[SLOT_COEF + 1]
    slots[SLOT_COEF + 1] = 10.0 ** (float(slots[SLOT_VALUE]) / 20.0)


def gain_run(slots: np.ndarray, x: np.ndarray, ph: int) -> None:
    """Gain ramped linearly inside the tick."""
    s = slots[SLOT_COEF]
    d = slots[SLOT_COEF + 1] - s
    t = np.arange(ph + 1, ph + len(x) + 1, dtype=F32) * F32(1.0 / TICK)
    x *= s + d * t


def delay_run(fx: EffectState, x: np.ndarray, channel: int, sr: float, w: int) -> int:
    """Fractional delay line with feedback and dry/wet mix; returns the write index."""
    v = fx.slots[SLOT_VALUE:SLOT_VALUE + 8]
    ring = fx.memory[channel]
    length = ring.shape[0]
    d = F32(float(v[0]) * 1e-3 * sr)
    d = min(max(d, F32(1.0)), F32(length - 2))
    feedback, mixv = v[1], v[2]
    whole = int(d)
    frac = F32(d - F32(whole))
    for i in range(len(x)):
        r0 = w - whole
        r0 += length if r0 < 0 else 0
        r1 = r0 - 1 if r0 > 0 else length - 1
        wet = F32(ring[r0] * (F32(1.0) - frac) + ring[r1] * frac)
        sample = x[i]
        ring[w] = sample + feedback * wet
        x[i] = sample * (F32(1.0) - mixv) + wet * mixv
        w = 0 if w + 1 == length else w + 1
    return w


def effect_tick(fx: EffectState, sr: float, alpha: float) -> None:
    """Advance smoothed parameters by one tick and refresh coefficients."""
    s = fx.slots
    first = s[SLOT_READY] == 0
    changed = first
    for k in range(8):
        before, target = s[SLOT_VALUE + k], s[SLOT_TARGET + k]
        after = target if first else smooth_toward(before, target, alpha, param_eps(target))
        changed = changed or after != before
        s[SLOT_VALUE + k] = after
    s[SLOT_READY] = 1.0
    if fx.kind == BIQUAD and changed:
        biquad_coefficients(s, sr)
    elif fx.kind == COMPRESSOR:
        compressor_coefficients(s, sr)
    elif fx.kind == LIMITER:
        if changed:
            limiter_coefficients(s, sr)
        if first:
            s[SLOT_MEM] = 1.0
    elif fx.kind == GAIN:
        if first:
            s[SLOT_COEF + 1] = 10.0 ** (float(s[SLOT_VALUE]) / 20.0)
        gain_coefficients(s)
    elif fx.kind == REVERB and changed:
        reverb_coefficients(s, sr)
    elif fx.kind in (CHORUS, FLANGER) and changed:
        modulation_coefficients(s, sr)
    elif fx.kind == GATE:
        if changed:
            gate_coefficients(s, sr)
        if first:
            s[SLOT_MEM] = 1.0
    elif fx.kind == SATURATION and changed:
        saturation_coefficients(s)
    elif fx.kind == PHASER and changed:
        phaser_coefficients(s, sr)
    elif fx.kind == EQ:
        eq_tick(fx, sr, alpha, first, biquad_design, smooth_toward, param_eps)
    elif fx.kind == DEESSER and changed:
        deesser_coefficients(s, sr)
    elif fx.kind == CONVOLUTION and changed:
        conv_coefficients(s, sr)


def effect_settled(fx: EffectState) -> bool:
    """True when no parameter is gliding, so a block needs no tick splitting."""
    s = fx.slots
    if s[SLOT_READY] == 0:
        return False
    if not np.array_equal(s[SLOT_VALUE:SLOT_VALUE + 8], s[SLOT_TARGET:SLOT_TARGET + 8]):
        return False
    if fx.kind == GAIN and s[SLOT_COEF] != s[SLOT_COEF + 1]:
        return False
    return not (fx.kind == EQ and not eq_settled(fx))


def effect_segment(fx: EffectState, ch0: np.ndarray, ch1: np.ndarray | None, sr: float,
                   ph: int, pos: int = 0) -> None:
    """Process one stretch of frames with constant (per-tick) parameters.

    ``pos`` is where the stretch starts in the block (a sidechain key is read from there).
    """
    s = fx.slots
    k0 = k1 = None
    if fx.key is not None:
        k0, k1 = fx.key[0, pos:pos + ch0.shape[0]], fx.key[1, pos:pos + ch0.shape[0]]
    if fx.kind == BIQUAD:
        biquad_run(s[SLOT_COEF:SLOT_COEF + 5], s[SLOT_MEM:SLOT_MEM + 2], ch0)
        if ch1 is not None:
            biquad_run(s[SLOT_COEF:SLOT_COEF + 5], s[SLOT_MEM + 2:SLOT_MEM + 4], ch1)
    elif fx.kind == COMPRESSOR:
        compressor_run(s, ch0, ch1, k0, k1)
    elif fx.kind == LIMITER:
        limiter_run(s, ch0, ch1)
    elif fx.kind == GAIN:
        gain_run(s, ch0, ph)
        if ch1 is not None:
            gain_run(s, ch1, ph)
    elif fx.kind == DELAY:
        w = int(s[SLOT_MEM])
        nxt = delay_run(fx, ch0, 0, sr, w)
        if ch1 is not None:
            delay_run(fx, ch1, 1, sr, w)
        s[SLOT_MEM] = nxt
    elif fx.kind == REVERB:
        reverb_run(fx, ch0, ch1, sr)
    elif fx.kind in (CHORUS, FLANGER):
        modulation_run(fx, ch0, ch1)
    elif fx.kind == GATE:
        gate_run(s, ch0, ch1, k0, k1)
    elif fx.kind == SATURATION:
        saturation_run(s, ch0, ch1)
    elif fx.kind == PHASER:
        phaser_run(s, ch0, ch1, sr, ph)
    elif fx.kind == EQ:
        eq_run(fx, ch0, ch1)
    elif fx.kind == DEESSER:
        deesser_run(s, ch0, ch1, log2, exp2, LOG2_TO_DB, DB_TO_LOG2)
    elif fx.kind == CONVOLUTION:
        conv_run(fx, ch0, ch1, sr)
    elif fx.kind == LOOKAHEAD_LIMITER:
        lookahead_run(fx, ch0, ch1, sr)


def effect_process(fx: EffectState, ch0: np.ndarray, ch1: np.ndarray | None, frames: int,
                   sample_rate: float, phase: int) -> None:
    """Twin of ``daw_effect_process``: run one effect in place on 1 or 2 channels."""
    if not fx.enabled or frames == 0:
        return
    ch0 = ch0[:frames]
    ch1 = None if ch1 is None else ch1[:frames]
    alpha = tick_alpha(sample_rate)
    if effect_settled(fx):
        effect_segment(fx, ch0, ch1, sample_rate, phase)
        return
    pos, ph = 0, phase
    while pos < frames:
        if ph == 0 or fx.slots[SLOT_READY] == 0:
            effect_tick(fx, sample_rate, alpha)
        n = min(frames - pos, TICK - ph)
        seg = slice(pos, pos + n)
        effect_segment(fx, ch0[seg], None if ch1 is None else ch1[seg], sample_rate, ph, pos)
        pos += n
        ph = (ph + n) % TICK


# ------------------------------------------------------------------ graph

def xfade_gain(j: np.ndarray, n: int) -> np.ndarray:
    """Twin of the C ``xfade_gain``: sin(pi/2 (j + 0.5) / n) in double, then float32."""
    return np.sin(1.5707963267948966 * (j.astype(np.float64) + 0.5) / float(n)).astype(F32)


def clip_read(clip: ClipState, channels: int, start: int, frames: int, buf: np.ndarray) -> None:
    """Add the part of ``clip`` inside [start, start + frames) to a track buffer."""
    s = max(start, clip.position)
    e = min(start + frames, clip.position + clip.length)
    if s >= e:
        return
    k = np.arange(s - clip.position, e - clip.position)
    left = clip.length - 1 - k
    env = np.full(k.shape, F32(clip.gain), dtype=F32)
    if clip.fade_in:
        fin = k < clip.fade_in
        env[fin] = env[fin] * (k[fin].astype(F32) / F32(clip.fade_in))
    if clip.fade_out:
        fout = left < clip.fade_out
        env[fout] = env[fout] * (left[fout].astype(F32) / F32(clip.fade_out))
    if clip.xfade_in_at or clip.xfade_in:
        silent = k < clip.xfade_in_at
        env[silent] = F32(0.0)
        rise = ~silent & (k < clip.xfade_in_at + clip.xfade_in)
        env[rise] = env[rise] * xfade_gain(k[rise] - clip.xfade_in_at, clip.xfade_in)
    if clip.xfade_out:
        fall = left < clip.xfade_out
        env[fall] = env[fall] * xfade_gain(left[fall], clip.xfade_out)
    src = clip.data[:, clip.offset + k]
    out = slice(s - start, e - start)
    if channels == 1:
        x = (src[0] + src[1]) * F32(0.5) if src.shape[0] == 2 else src[0]
        buf[0, out] += env * x
    else:
        buf[0, out] += env * src[0]
        buf[1, out] += env * src[-1]


def run_chain(effects: list[EffectState], buf: np.ndarray, frames: int, sr: float,
              phase: int) -> None:
    """Run an insert chain in place on a (channels, max_block) buffer."""
    for fx in effects:
        effect_process(fx, buf[0], buf[1] if buf.shape[0] == 2 else None, frames, sr, phase)


def render_track(g: Graph, tr: TrackState, start: int, frames: int, phase: int,
                 alpha: float, source: RunState | None = None) -> None:
    """Clips, inserts, fader, pan and sends of one track into the bus buffers.

    ``source``: the track renders alone (a key source, or automated with latency): its
    keys are filled after its chain, its buffer delayed by the step's ``out_delay`` and
    its automation read at its output's place (twin of ``render_scheduled_source``).
    """
    buf = tr.buffer
    buf[:, :frames] = 0.0
    for clip in tr.clips:
        if clip.position >= start + frames:
            break
        clip_read(clip, tr.channels, start, frames, buf)
    if tr.instrument is not None:
        instrument_render(tr.instrument, g.sample_rate, start, frames, tr.instrument.scratch)
        buf[:, :frames] += tr.instrument.scratch[:frames]
    run_chain(tr.effects, buf, frames, g.sample_rate, phase)
    if source is not None:
        for k in source.keys:
            key_fill(k, frames)
        if source.out_delay is not None:
            delay_apply(source.out_delay, buf, frames)
    b0, b1 = buf[0], buf[-1]
    for send in tr.sends:
        if send.pre_fader:
            bus = g.buses[send.bus].buffer
            fader_apply(send.fader, b0, b1, bus[0], bus[1], frames, phase, alpha)
    master = g.master.buffer
    gains = None
    if tr.automation is not None:
        at = start if source is None else start + source.offset - source.automation_offset
        gains = automation_gains(tr.automation, tr.channels, tr.fader, at, frames)
    if all(send.pre_fader for send in tr.sends):
        _track_fader(tr, gains, b0, b1, master, frames, phase, alpha)
        return
    post = np.zeros((2, frames), dtype=F32)
    _track_fader(tr, gains, b0, b1, post, frames, phase, alpha)
    master[:, :frames] += post
    for send in tr.sends:
        if not send.pre_fader:
            bus = g.buses[send.bus].buffer
            fader_apply(send.fader, post[0], post[1], bus[0], bus[1], frames, phase, alpha)


def _track_fader(tr: TrackState, gains: tuple[np.ndarray, np.ndarray] | None, b0: np.ndarray,
                 b1: np.ndarray, dst: np.ndarray, frames: int, phase: int, alpha: float) -> None:
    """The track's fader into dst: the automated gains when it has them (twin of
    ``gains_apply``), else the smoothed fader."""
    if gains is None:
        fader_apply(tr.fader, b0, b1, dst[0], dst[1], frames, phase, alpha)
        return
    dst[0, :frames] += gains[0] * b0[:frames]
    dst[1, :frames] += gains[1] * b1[:frames]


def _bus_out(bus: BusState, g: Graph, frames: int, phase: int, alpha: float,
             dst: np.ndarray) -> None:
    run_chain(bus.effects, bus.buffer, frames, g.sample_rate, phase)
    fader_apply(bus.fader, bus.buffer[0], bus.buffer[1], dst[0], dst[1], frames, phase, alpha)


def delay_apply(d: DelayState, x: np.ndarray, frames: int) -> None:
    """Twin of the C ``delay_apply``: x's rows delayed in place by ``d.delay`` frames."""
    if d.delay <= 0:
        return
    length = d.memory.shape[1]
    w = int(d.write[0]) if 0 <= d.write[0] < length else 0
    for c in range(x.shape[0]):
        ring = d.memory[c]
        history = ring[(w - d.delay + np.arange(d.delay)) % length]  # oldest first
        block = x[c, :frames].copy()
        if frames >= length:
            ring[(w + frames - length + np.arange(length)) % length] = block[frames - length:]
        else:
            ring[(w + np.arange(frames)) % length] = block
        x[c, :frames] = np.concatenate([history, block])[:frames]
    d.write[0] = (w + frames) % length


def key_fill(k: KeyState, frames: int) -> None:
    """Twin of ``key_fill``: the source's post-insert signal, delayed, into the key."""
    k.key[0, :frames] = k.source[0, :frames]
    k.key[1, :frames] = k.source[-1, :frames]
    delay_apply(k.delay, k.key, frames)


def _render_scheduled(g: Graph, start: int, frames: int, phase: int, alpha: float) -> None:
    """Twin of ``render_scheduled``: the steps in order, then the aligned sums."""
    s = g.schedule
    assert s is not None
    s.bus_sum[:, :frames] = 0.0
    for run in s.runs:
        if run.bus >= 0:
            bus = g.buses[run.bus]
            run_chain(bus.effects, bus.buffer, frames, g.sample_rate, phase)
            for k in run.keys:
                key_fill(k, frames)
            delay_apply(s.bus_delays[run.bus], bus.buffer, frames)
            fader_apply(bus.fader, bus.buffer[0], bus.buffer[1], s.bus_sum[0], s.bus_sum[1],
                        frames, phase, alpha)
            continue
        for tr in g.tracks[run.first:run.first + run.count]:
            render_track(g, tr, start - run.offset, frames, phase, alpha,
                         None if not run.own_buffer else run)
    delay_apply(s.direct, g.master.buffer, frames)
    g.master.buffer[:, :frames] += s.bus_sum[:, :frames]


def render(g: Graph, start: int, frames: int, out: np.ndarray) -> None:
    """Twin of ``daw_render``: one block of the whole graph into ``out`` (2, frames)."""
    phase = g.frames_done % TICK
    alpha = tick_alpha(g.sample_rate)
    g.master.buffer[:] = 0.0
    for bus in g.buses:
        bus.buffer[:] = 0.0
    if g.schedule is not None:
        _render_scheduled(g, start, frames, phase, alpha)
    else:
        for tr in g.tracks:
            render_track(g, tr, start, frames, phase, alpha)
        for bus in g.buses:
            _bus_out(bus, g, frames, phase, alpha, g.master.buffer)
    out[:, :frames] = 0.0
    _bus_out(g.master, g, frames, phase, alpha, out)
    g.frames_done += frames
