"""A synthetic multi-track demo project with real audio files.

:func:`write_demo_project` synthesises a small set of source files (drum
hits, a drum loop, bass lines, detuned pads, arpeggios, noise beds; mono and
stereo; two of them at a different sample rate so the resampler is used)
and arranges many clips that reuse them over any number of tracks at
120 bpm, with EQs, compressors, two aux buses and a limited master.
Everything is deterministic for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from .audio_io import resampled_length
from .effects import EffectSpec, three_band_eq
from .errors import ProjectError
from .project import save_project
from .session import SUPPORTED_RATES, Bus, Clip, Send, Session, Track

TEMPO_BPM = 120.0
BEAT_S = 60.0 / TEMPO_BPM
BAR_S = 4 * BEAT_S
PEAK = 0.7  # sources peak at about -3 dBFS
A_MINOR_ROOTS = (45, 41, 48, 43)  # A, F, C, G (MIDI); one chord per bar
Synth = Callable[[int, np.random.Generator], np.ndarray]


def _hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def _decay(n: int, rate: int, tau_s: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (tau_s * rate))


def _saw_table(harmonics: int, size: int = 4096) -> np.ndarray:
    """One cycle of a band-limited sawtooth."""
    phase = np.arange(size) / size
    k = np.arange(1, harmonics + 1)[:, None]
    return (np.sin(2 * np.pi * k * phase) / k).sum(axis=0) * (2 / np.pi)


def _osc(table: np.ndarray, freq: np.ndarray | float, n: int, rate: int,
         phase: float = 0.0) -> np.ndarray:
    """Read ``table`` at ``freq`` Hz (constant or per-sample) for ``n`` frames."""
    steps = np.broadcast_to(np.asarray(freq, dtype=np.float64) / rate, (n,))
    cycles = phase + np.cumsum(steps)
    return table[(cycles * len(table)).astype(np.int64) % len(table)]


def _highpass(x: np.ndarray, rate: int, hz: float, order: int = 4) -> np.ndarray:
    sos = signal.butter(order, min(hz, 0.45 * rate), "highpass", fs=rate, output="sos")
    return signal.sosfilt(sos, x)


def _lowpass(x: np.ndarray, rate: int, hz: float, order: int = 2) -> np.ndarray:
    sos = signal.butter(order, min(hz, 0.45 * rate), "lowpass", fs=rate, output="sos")
    return signal.sosfilt(sos, x)


def kick(rate: int, rng: np.random.Generator) -> np.ndarray:
    """A pitch-swept sine (150 -> 45 Hz) with an exponential decay and a click."""
    n = int(0.5 * rate)
    freq = 45.0 + 105.0 * _decay(n, rate, 0.03)
    body = np.sin(2 * np.pi * np.cumsum(freq) / rate) * _decay(n, rate, 0.12)
    click = rng.standard_normal(n) * _decay(n, rate, 0.002) * 0.3
    return (body + click)[None]


def snare(rate: int, rng: np.random.Generator) -> np.ndarray:
    """A high-passed noise burst over a 185 Hz tone."""
    n = int(0.4 * rate)
    noise = _highpass(rng.standard_normal(n), rate, 1500.0, 2) * _decay(n, rate, 0.07)
    tone = np.sin(2 * np.pi * 185.0 * np.arange(n) / rate) * _decay(n, rate, 0.05)
    return (0.7 * noise + tone)[None]


def hat(open_: bool) -> Synth:
    """High-passed noise, short (closed) or long (open)."""

    def make(rate: int, rng: np.random.Generator) -> np.ndarray:
        n = int((0.5 if open_ else 0.12) * rate)
        noise = _highpass(rng.standard_normal(n), rate, 7000.0)
        return (noise * _decay(n, rate, 0.15 if open_ else 0.025))[None]

    return make


def clap(rate: int, rng: np.random.Generator) -> np.ndarray:
    """Three quick band-passed noise bursts and a tail."""
    n = int(0.35 * rate)
    sos = signal.butter(2, [900.0, min(2500.0, 0.45 * rate)], "bandpass", fs=rate, output="sos")
    noise = signal.sosfilt(sos, rng.standard_normal(n))
    env = _decay(n, rate, 0.06)
    for start in (0.0, 0.011, 0.022):
        first = int(start * rate)
        env[first:] += _decay(n - first, rate, 0.004)
    return (noise * env)[None]


def drum_loop(rate: int, rng: np.random.Generator) -> np.ndarray:
    """Two bars of kick, snare and panned hats, stereo."""
    n, beat = int(2 * BAR_S * rate), BEAT_S * rate
    out = np.zeros((2, n))
    hits = [(kick(rate, rng), beat * b, 0.0, 1.0) for b in (0, 1, 2, 3, 4, 5, 6, 6.5, 7)]
    hits += [(snare(rate, rng), beat * b, 0.1, 0.8) for b in (1, 3, 5, 7)]
    closed = hat(False)
    hits += [(closed(rate, rng), beat * e / 2, 0.5 * (-1) ** e, 0.2 + 0.25 * rng.random())
             for e in range(16)]
    for sound, start, pan, level in hits:
        first = int(start)
        length = min(sound.shape[1], n - first)
        gains = level * np.array([math.cos((pan + 1) * math.pi / 4),
                                  math.sin((pan + 1) * math.pi / 4)])
        out[:, first : first + length] += gains[:, None] * sound[0, :length]
    return out


def bass(pattern: tuple[int, ...]) -> Synth:
    """Two bars of eighth-note saw bass whose brightness decays per note."""

    def make(rate: int, rng: np.random.Generator) -> np.ndarray:
        step = int(BEAT_S / 2 * rate)
        bright, dark = _saw_table(24), _saw_table(3)
        notes = []
        for i in range(16):
            root = A_MINOR_ROOTS[(i // 8) * 2 % 4] - 12 + pattern[i % len(pattern)]
            freq = _hz(root)
            mix = _decay(step, rate, 0.06)
            tone = mix * _osc(bright, freq, step, rate) + (1 - mix) * _osc(dark, freq, step, rate)
            notes.append(tone * np.minimum(1.0, np.arange(step)[::-1] / (0.005 * rate)))
        return np.concatenate(notes)[None]

    return make


def pad(root: int) -> Synth:
    """Two bars of a minor/major triad of detuned saws, wider in stereo, slow swell."""

    def make(rate: int, rng: np.random.Generator) -> np.ndarray:
        n = int(2 * BAR_S * rate)
        table = _saw_table(12)
        third = 3 if root == 45 else 4  # A minor; F, C and G major
        out = np.zeros((2, n))
        for note in (root, root + third, root + 7, root + 12):
            for channel in (0, 1):
                for cents in (-9.0, 0.0, 7.0):
                    spread = cents * (1.6 if channel else 1.0)
                    out[channel] += _osc(table, _hz(note + 12 + spread / 100), n, rate,
                                         rng.random())
        out = _lowpass(out, rate, 2500.0)
        swell = np.minimum(1.0, np.arange(n) / (0.8 * rate)) * np.minimum(
            1.0, np.arange(n)[::-1] / (0.3 * rate))
        return out * swell

    return make


def arp(rate: int, rng: np.random.Generator) -> np.ndarray:
    """Two bars of sixteenth-note sine arpeggios over the chords, mono."""
    step = int(BEAT_S / 4 * rate)
    table = np.sin(2 * np.pi * np.arange(4096) / 4096) + 0.3 * np.sin(
        4 * np.pi * np.arange(4096) / 4096)
    notes = []
    for i in range(32):
        root = A_MINOR_ROOTS[i // 16 * 2]
        note = root + 24 + (0, 3, 7, 12, 7, 3)[i % 6]
        notes.append(_osc(table, _hz(note), step, rate) * _decay(step, rate, 0.05))
    return np.concatenate(notes)[None]


def noise_bed(bars: int) -> Synth:
    """Low-passed stereo noise with a slow swell, ``bars`` bars long."""

    def make(rate: int, rng: np.random.Generator) -> np.ndarray:
        n = int(bars * BAR_S * rate)
        noise = _lowpass(rng.standard_normal((2, n)), rate, 1200.0)
        lfo = 0.6 + 0.4 * np.sin(2 * np.pi * np.arange(n) / n - np.pi / 2)
        return noise * lfo

    return make


def riser(rate: int, rng: np.random.Generator) -> np.ndarray:
    """Two bars of rising filtered noise and a sine sweep, stereo."""
    n = int(2 * BAR_S * rate)
    ramp = np.arange(n) / n
    noise = _highpass(rng.standard_normal((2, n)), rate, 2000.0, 2) * ramp**2
    sweep = np.sin(2 * np.pi * np.cumsum(200.0 * 8.0**ramp) / rate) * ramp
    return noise + 0.5 * sweep


@dataclass(frozen=True)
class Source:
    """A demo source file: name, synthesiser and whether it uses the other sample rate."""

    name: str
    make: Synth
    other_rate: bool = False


SOURCES = (
    Source("kick", kick), Source("snare", snare), Source("hat_closed", hat(False)),
    Source("hat_open", hat(True)), Source("clap", clap), Source("drum_loop", drum_loop),
    Source("bass_a", bass((0, 0, 12, 0, 7, 0, 10, 12))),
    Source("bass_b", bass((0, 12, 0, 0, 3, 5, 7, 5))),
    Source("pad_am", pad(45)), Source("pad_f", pad(41)), Source("pad_c", pad(48)),
    Source("pad_g", pad(43)), Source("arp_44k", arp, other_rate=True),
    Source("noise_bed", noise_bed(4)), Source("noise_bed_44k", noise_bed(2), other_rate=True),
    Source("riser", riser),
)


@dataclass(frozen=True)
class Role:
    """How one kind of track is arranged: sources, rhythm, level and processing."""

    name: str
    sources: tuple[str, ...]
    step_beats: float  # distance between clip starts
    phase_beats: float = 0.0
    gain_db: float = 0.0
    effects: tuple[EffectSpec, ...] = ()
    sends: tuple[str, ...] = ()
    fades: bool = False


_COMP = EffectSpec("compressor", {"threshold_db": -20.0, "ratio": 4.0, "attack_ms": 5.0,
                                  "release_ms": 80.0, "makeup_db": 2.0})
ROLES = (
    Role("Kick", ("kick",), 1.0, effects=(*three_band_eq(3.0, -2.0, 0.0), _COMP)),
    Role("Drums", ("drum_loop",), 8.0, gain_db=-3.0, effects=(_COMP,)),
    Role("Bass", ("bass_a", "bass_b"), 8.0, gain_db=-2.0,
         effects=(*three_band_eq(2.0, -3.0, -6.0), _COMP)),
    Role("Pad", ("pad_am", "pad_f", "pad_c", "pad_g"), 8.0, gain_db=-6.0,
         sends=("verb", "echo"), fades=True),
    Role("Hats", ("hat_closed",), 0.5, gain_db=-8.0, effects=tuple(three_band_eq(-6, 0, 2))),
    Role("Bed 44.1k", ("noise_bed_44k",), 8.0, gain_db=-14.0, sends=("verb",), fades=True),
    Role("Snare", ("snare",), 2.0, phase_beats=1.0, gain_db=-3.0, sends=("verb",)),
    Role("Arp 44.1k", ("arp_44k",), 8.0, gain_db=-9.0, sends=("echo",), fades=True),
    Role("Clap", ("clap",), 4.0, phase_beats=3.0, gain_db=-6.0, sends=("verb",)),
    Role("Bed", ("noise_bed",), 16.0, gain_db=-16.0,
         effects=(EffectSpec("biquad", {"shape": "highpass", "freq": 200.0, "q": 0.707}),),
         fades=True),
    Role("Riser", ("riser",), 16.0, phase_beats=8.0, gain_db=-10.0, sends=("echo",), fades=True),
    Role("Open hat", ("hat_open",), 2.0, phase_beats=1.5, gain_db=-10.0),
)


def _buses() -> tuple[list[Bus], Bus]:
    verb = Bus("verb", "Reverb", [
        EffectSpec("delay", {"time_ms": 47.0, "feedback": 0.7, "mix": 1.0}),
        EffectSpec("delay", {"time_ms": 113.0, "feedback": 0.6, "mix": 0.5}),
        EffectSpec("biquad", {"shape": "lowpass", "freq": 6000.0, "q": 0.707}),
    ], gain_db=-6.0)
    echo = Bus("echo", "Echo", [
        EffectSpec("delay", {"time_ms": 375.0, "feedback": 0.35, "mix": 1.0}),
        EffectSpec("biquad", {"shape": "highpass", "freq": 300.0, "q": 0.707}),
    ], gain_db=-8.0)
    master = Bus("master", "Master", [
        EffectSpec("compressor", {"threshold_db": -12.0, "ratio": 2.0, "attack_ms": 20.0,
                                  "release_ms": 200.0}),
        EffectSpec("limiter", {"ceiling_db": -1.0, "release_ms": 50.0}),
    ])
    return [verb, echo], master


def _write_sources(audio: Path, rate: int, other_rate: int, seed: int,
                   tick: Callable[[], None]) -> dict[str, tuple[Path, int, int]]:
    """Write every source; returns name -> (path, channels, frames at the session rate)."""
    written = {}
    for index, source in enumerate(SOURCES):
        source_rate = other_rate if source.other_rate else rate
        data = source.make(source_rate, np.random.default_rng([seed, index]))
        data = (data * (PEAK / max(np.max(np.abs(data)), 1e-9))).astype(np.float32)
        path = audio / f"{source.name}.flac"
        sf.write(path, data.T, source_rate, subtype="PCM_24", format="FLAC")
        written[source.name] = (
            path, data.shape[0], resampled_length(data.shape[1], source_rate, rate))
        tick()
    return written


def _track(index: int, role: Role, sources: dict[str, tuple[Path, int, int]], rate: int,
           total: int, base_db: float, rng: np.random.Generator) -> Track:
    """One track of ``role``: clips on its rhythmic grid up to ``total`` frames."""
    beat = BEAT_S * rate
    track_id = f"t{index + 1:03d}"
    channels = sources[role.sources[0]][1]
    track = Track(
        id=track_id, name=f"{role.name} {index // len(ROLES) + 1}", channels=channels,
        gain_db=round(base_db + role.gain_db + float(rng.uniform(-3.0, 3.0)), 2),
        pan=round(float(rng.uniform(-0.7, 0.7) if channels == 1 else rng.uniform(-0.2, 0.2)), 3),
        effects=[EffectSpec(e.kind, dict(e.params)) for e in role.effects],
        sends=[Send(bus, round(float(rng.uniform(-18.0, -6.0)), 2)) for bus in role.sends],
    )
    if not track.effects and rng.random() < 0.4:
        track.effects = three_band_eq(*(round(float(g), 1) for g in rng.uniform(-4, 4, 3)))
    step = role.step_beats * beat
    k = 0
    while (start := round((role.phase_beats + k * role.step_beats) * beat)) < total:
        k += 1
        if role.step_beats >= 8 and rng.random() < 0.2:
            continue  # leave some sections out
        name = role.sources[int(rng.integers(len(role.sources)))]
        path, _, available = sources[name]
        limit = min(round(step), total - start)
        offset = 0
        if role.fades and available > limit // 2 and rng.random() < 0.3:
            offset = int(rng.integers(0, available - limit // 2))  # start part-way in
        length = min(limit, available - offset)
        fade = min(int(rate * rng.uniform(0.005, 0.2)), length // 2) if role.fades else 0
        track.clips.append(Clip(
            source=str(path), position=start, length=length, offset=offset,
            gain_db=round(float(rng.uniform(-2.0, 0.0)), 2), fade_in=fade, fade_out=fade,
            id=f"{track_id}-c{len(track.clips) + 1}",
        ))
    return track


def write_demo_project(
    directory: str | Path,
    tracks: int = 256,
    seconds: float = 16.0,
    sample_rate: int = 48000,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write a synthetic project into ``directory``; returns the project file's path.

    Parameters
    ----------
    directory
        Created if missing; sources go to ``directory/audio/`` and the project
        to ``directory/project.json``, which must not exist yet.
    tracks
        Number of tracks; roles (kick, drums, bass, pad, hats, ...) repeat.
    seconds
        Length of the arrangement.
    sample_rate
        Session rate; two sources are written at 44.1 kHz (48 kHz when the
        session itself runs at 44.1 kHz).
    seed
        Same seed, same files and project.
    progress
        Called as ``progress(done, total)`` after each file and track.
    """
    if sample_rate not in SUPPORTED_RATES:
        raise ProjectError(f"demo sample rate {sample_rate} Hz is not supported; use one of "
                           f"{', '.join(map(str, SUPPORTED_RATES))}")
    if tracks < 1 or not seconds > 0:
        raise ProjectError(f"demo needs tracks >= 1 and seconds > 0, got {tracks}, {seconds}")
    directory = Path(directory)
    project = directory / "project.json"
    if project.exists():
        raise ProjectError(f"{project} already exists; choose another directory or remove it")
    audio = directory / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    total_steps, done = len(SOURCES) + tracks, 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total_steps)

    other_rate = 48000 if sample_rate == 44100 else 44100
    sources = _write_sources(audio, sample_rate, other_rate, seed, tick)
    buses, master = _buses()
    session = Session(sample_rate=sample_rate, buses=buses, master=master,
                      name=f"Demo ({tracks} tracks, seed {seed})")
    rng = np.random.default_rng([seed, len(SOURCES)])
    total = round(seconds * sample_rate)
    base_db = -6.0 - 13.0 * math.log10(max(tracks, 8) / 8)  # between power and amplitude sums
    for index in range(tracks):
        session.tracks.append(_track(index, ROLES[index % len(ROLES)], sources, sample_rate,
                                     total, base_db, rng))
        tick()
    return save_project(session, project)
