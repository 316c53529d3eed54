"""Numpy twin of ``native/instruments.c``: the MIDI synth and sampler.

Same state layout (:mod:`dsp_core.instrument_graph`), same double formulas, same event
order; each voice's stretch between two events is computed as vectors (the resonant
low-pass runs as one ``lfilter`` call per 32-frame filter tick), so C and twin agree to
the rounding of ``sin``/``lfilter``, not bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter

from .instrument_graph import (
    BEND,
    CC,
    NOTE_OFF,
    NOTE_ON,
    S_NO_CHASE,
    SYNTH,
    InstrumentState,
    chase,
)

F32 = np.float32
FILTER_TICK = 32
(P_GAIN, P_BEND, P_A, P_D, P_S, P_R, P_OSC1, P_OSC2, P_DETUNE, P_MIX, P_CUTOFF, P_Q,
 P_FENV, P_FA, P_FD, P_FS, P_FR, P_INV_A, P_INV_D, P_INV_R, P_INV_FA, P_INV_FD,
 P_INV_FR) = range(23)
AMP = (P_A, P_D, P_S, P_R, P_INV_A, P_INV_D, P_INV_R)
FILTER = (P_FA, P_FD, P_FS, P_FR, P_INV_FA, P_INV_FD, P_INV_FR)
(V_ACTIVE, V_KEY, V_CH, V_VEL, V_ON, V_OFF, V_REL, V_FREL, V_PH1, V_PH2, V_Z1, V_Z2,
 V_B0, V_B1, V_B2, V_A1, V_A2, V_ZONE, V_POS, V_HELD, V_SERIAL) = range(21)
S_NEXT, S_CURSOR, S_SERIAL, S_BEND = 0, 1, 2, 3
S_VOL, S_SUS = S_BEND + 16, S_BEND + 32
TWO_PI = 6.283185307179586


def adsr(age: np.ndarray, t: tuple[float, ...]) -> np.ndarray:
    """Level ``age`` frames after note-on, before any release (linear segments);
    ``t`` = (attack, decay, sustain, release, 1/attack, 1/decay, 1/release)."""
    a, d, s, _, inv_a, inv_d, _ = t
    out = np.full(age.shape, s, dtype=np.float64)
    decay = age < a + d
    out[decay] = 1.0 - (1.0 - s) * ((age[decay] - a) * inv_d)
    attack = age < a
    out[attack] = age[attack] * inv_a
    return out


def _adsr1(age: float, t: tuple[float, ...]) -> float:
    a, d, s, _, inv_a, inv_d, _ = t
    if age < a:
        return age * inv_a
    if age < a + d:
        return 1.0 - (1.0 - s) * ((age - a) * inv_d)
    return s


def _times(inst: InstrumentState, slots: tuple[int, ...]) -> tuple[float, ...]:
    return tuple(float(inst.params[i]) for i in slots)


def envelope(v: np.ndarray, f: np.ndarray, t: tuple[float, ...], rel: float) -> np.ndarray:
    """An envelope at frames ``f``: ADSR while held, a line to 0 over the release after."""
    if v[V_OFF] < 0.0:
        return adsr(f - v[V_ON], t)
    since = f - v[V_OFF]
    out = np.zeros(f.shape, dtype=np.float64)
    live = since < t[3]
    out[live] = rel * (1.0 - since[live] * t[6])
    return out


def filter_coefficients(inst: InstrumentState, v: np.ndarray, f: float, sr: float) -> None:
    """RBJ low-pass coefficients from the cutoff moved by the filter envelope at ``f``."""
    p = inst.params
    fenv = float(envelope(v, np.array([f]), _times(inst, FILTER), v[V_FREL])[0])
    cutoff = min(max(p[P_CUTOFF] * math.pow(2.0, p[P_FENV] * fenv), 20.0), 0.45 * sr)
    w = TWO_PI * cutoff / sr
    alpha = math.sin(w) / (2.0 * p[P_Q])
    cw, a0 = math.cos(w), 1.0 + alpha
    v[V_B0] = (1.0 - cw) / 2.0 / a0
    v[V_B1] = (1.0 - cw) / a0
    v[V_B2] = v[V_B0]
    v[V_A1] = -2.0 * cw / a0
    v[V_A2] = (1.0 - alpha) / a0


def _frac(x: np.ndarray | float) -> np.ndarray | float:
    return x - np.floor(x)


def blep(t: np.ndarray, dt: float) -> np.ndarray:
    """PolyBLEP residual of a unit step at each phase wrap (twin of ``blep``)."""
    out = np.zeros(t.shape, dtype=np.float64)
    lo = t < dt
    x = t[lo] / dt
    out[lo] = x + x - x * x - 1.0
    hi = ~lo & (t > 1.0 - dt)
    x = (t[hi] - 1.0) / dt
    out[hi] = x * x + x + x + 1.0
    return out


def _wave(kind: float, phase: np.ndarray, dt: float) -> np.ndarray:
    if kind == 0.0:
        return 2.0 * phase - 1.0 - blep(phase, dt)
    if kind == 1.0:
        return np.where(phase < 0.5, 1.0, -1.0) + blep(phase, dt) - blep(_frac(phase + 0.5), dt)
    return np.sin(TWO_PI * phase)


def _scale(inst: InstrumentState, v: np.ndarray) -> float:
    return v[V_VEL] * inst.state[S_VOL + int(v[V_CH])] * inst.params[P_GAIN]


def _left(inst: InstrumentState, v: np.ndarray, f0: int, n: int) -> int:
    if v[V_OFF] < 0.0:
        return n
    end = v[V_OFF] + inst.params[P_R]
    return min(n, 0 if end <= f0 else math.ceil(end - f0))


def synth_voice(inst: InstrumentState, v: np.ndarray, sr: float, f0: int, n: int,
                out: np.ndarray) -> None:
    """Twin of ``synth_voice``: two oscillators, the filter, the amp envelope."""
    p = inst.params
    bend = inst.state[S_BEND + int(v[V_CH])]
    inc1 = 440.0 * math.pow(2.0, (v[V_KEY] - 69.0 + bend) / 12.0) / sr
    inc2 = inc1 * p[P_DETUNE]
    scale, mix = _scale(inst, v), p[P_MIX]
    live = _left(inst, v, f0, n)
    k = np.arange(live, dtype=np.float64)
    x = ((1.0 - mix) * _wave(p[P_OSC1], _frac(v[V_PH1] + inc1 * k), inc1)
         + mix * _wave(p[P_OSC2], _frac(v[V_PH2] + inc2 * k), inc2))
    y = np.empty(live, dtype=np.float64)
    lo = 0
    while lo < live:
        if (f0 + lo) % FILTER_TICK == 0:
            filter_coefficients(inst, v, float(f0 + lo), sr)
        hi = min(live, lo + FILTER_TICK - (f0 + lo) % FILTER_TICK)
        y[lo:hi], zf = lfilter([v[V_B0], v[V_B1], v[V_B2]], [1.0, v[V_A1], v[V_A2]], x[lo:hi],
                               zi=[v[V_Z1], v[V_Z2]])
        v[V_Z1], v[V_Z2] = zf
        lo = hi
    env = envelope(v, f0 + k, _times(inst, AMP), v[V_REL])
    out[:live] += (y * env * scale).astype(F32)
    v[V_PH1] = _frac(v[V_PH1] + inc1 * n)
    v[V_PH2] = _frac(v[V_PH2] + inc2 * n)
    if live < n:
        v[V_ACTIVE] = 0.0


def sampler_voice(inst: InstrumentState, v: np.ndarray, f0: int, n: int,
                  out: np.ndarray) -> None:
    """Twin of ``sampler_voice``: the zone's sample, resampled by key, linear interpolation."""
    zone = inst.zones[int(v[V_ZONE])]
    bend = inst.state[S_BEND + int(v[V_CH])]
    ratio = math.pow(2.0, (v[V_KEY] - zone.root + bend) / 12.0)
    scale, last = _scale(inst, v), float(zone.data.shape[0] - 1)
    live = _left(inst, v, f0, n)
    pos = v[V_POS] + ratio * np.arange(live, dtype=np.float64)
    past = np.flatnonzero(pos >= last)
    if past.size:
        live = int(past[0])
        pos = pos[:live]
    i = pos.astype(np.int64)
    t = pos - i
    d0 = zone.data[i].astype(np.float64)
    x = d0 + (zone.data[i + 1].astype(np.float64) - d0) * t
    env = envelope(v, (f0 + np.arange(live)).astype(np.float64), _times(inst, AMP), v[V_REL])
    out[:live] += (x * env * scale).astype(F32)
    v[V_POS] += ratio * n
    if live < n:
        v[V_ACTIVE] = 0.0


def release_voice(inst: InstrumentState, v: np.ndarray, f: float) -> None:
    """Twin of ``release``: the voice's envelopes start their release at frame ``f``."""
    v[V_REL] = _adsr1(f - v[V_ON], _times(inst, AMP))
    v[V_FREL] = _adsr1(f - v[V_ON], _times(inst, FILTER))
    v[V_OFF] = f
    v[V_HELD] = 0.0


def _zone_of(inst: InstrumentState, key: int, velocity: int) -> int:
    for z, zone in enumerate(inst.zones):
        if (zone.key_lo <= key <= zone.key_hi and zone.vel_lo <= velocity <= zone.vel_hi
                and zone.data.shape[0] >= 2):
            return z
    return -1


def _free_voice(inst: InstrumentState) -> np.ndarray | None:
    best, best_released = None, False
    for v in inst.voices:
        if v[V_ACTIVE] == 0.0:
            return v
        released = v[V_OFF] >= 0.0
        if best is None or released > best_released or (
                released == best_released and v[V_SERIAL] < best[V_SERIAL]):
            best, best_released = v, released
    return best


def _note_on(inst: InstrumentState, e: np.void, sr: float) -> np.ndarray | None:
    """Start a voice for ``e``; returns it (None: no zone plays the note, or no voice)."""
    zone = 0
    if inst.kind != SYNTH:
        zone = _zone_of(inst, int(e["key"]), int(e["value"]))
        if zone < 0:
            return None
    v = _free_voice(inst)
    if v is None:
        return None
    v[:] = 0.0
    v[V_ACTIVE], v[V_KEY], v[V_CH] = 1.0, e["key"], int(e["channel"]) & 15
    v[V_VEL] = int(e["value"]) / 127.0
    v[V_ON], v[V_OFF], v[V_ZONE] = float(e["frame"]), -1.0, zone
    v[V_SERIAL] = inst.state[S_SERIAL]
    inst.state[S_SERIAL] += 1
    if inst.kind == SYNTH:
        filter_coefficients(inst, v, float(e["frame"]), sr)
    return v


def apply_event(inst: InstrumentState, e: np.void, sr: float, notes: bool) -> None:
    """Twin of ``apply_event`` (``notes`` False: controllers only, as in a chase)."""
    state, kind, ch = inst.state, int(e["kind"]), int(e["channel"]) & 15
    value, frame = int(e["value"]), float(e["frame"])
    if kind == NOTE_ON and notes:
        _note_on(inst, e, sr)
    elif kind == NOTE_OFF and notes:
        for v in inst.voices:
            if v[V_ACTIVE] == 0.0 or v[V_KEY] != e["key"] or v[V_CH] != ch or v[V_OFF] >= 0.0:
                continue
            if state[S_SUS + ch] != 0.0:
                v[V_HELD] = 1.0
            else:
                release_voice(inst, v, frame)
    elif kind == CC:
        if e["key"] == 7:
            state[S_VOL + ch] = (value / 127.0) * (value / 127.0)
        if e["key"] == 64:
            state[S_SUS + ch] = 1.0 if value >= 64 else 0.0
            if notes and value < 64:
                for v in inst.voices:
                    if v[V_ACTIVE] != 0.0 and v[V_HELD] != 0.0 and v[V_CH] == ch:
                        release_voice(inst, v, frame)
    elif kind == BEND:
        state[S_BEND + ch] = value / 8192.0 * inst.params[P_BEND]


def _seek(inst: InstrumentState, start: int, sr: float) -> None:
    inst.voices[:] = 0.0
    inst.state[S_BEND:S_BEND + 16] = 0.0
    inst.state[S_VOL:S_VOL + 16] = 1.0
    inst.state[S_SUS:S_SUS + 16] = 0.0
    i = 0
    while i < inst.events.shape[0] and inst.events[i]["frame"] < start:
        apply_event(inst, inst.events[i], sr, False)
        i += 1
    inst.state[S_CURSOR] = i
    if inst.state[S_NO_CHASE] != 0.0:
        return
    for e, held in zip(*chase(inst.events, start), strict=True):  # twin of ``chase_notes``
        v = _note_on(inst, e, sr)
        if v is not None and held:
            v[V_HELD] = 1.0


def instrument_render(inst: InstrumentState, sample_rate: float, start: int, frames: int,
                      out: np.ndarray) -> None:
    """Twin of ``daw_instrument_render``: frames [start, start + frames) into ``out``."""
    state, events = inst.state, inst.events
    if state[S_NEXT] != float(start):
        _seek(inst, start, sample_rate)
    out[:frames] = 0.0
    end, pos, cursor = start + frames, start, int(state[S_CURSOR])
    while pos < end:
        while cursor < events.shape[0] and events[cursor]["frame"] <= pos:
            apply_event(inst, events[cursor], sample_rate, True)
            cursor += 1
        stop = min(int(events[cursor]["frame"]), end) if cursor < events.shape[0] else end
        for v in inst.voices:
            if v[V_ACTIVE] == 0.0:
                continue
            seg = out[pos - start:stop - start]
            if inst.kind == SYNTH:
                synth_voice(inst, v, sample_rate, pos, stop - pos, seg)
            else:
                sampler_voice(inst, v, pos, stop - pos, seg)
        pos = stop
    state[S_CURSOR] = cursor
    state[S_NEXT] = float(end)
