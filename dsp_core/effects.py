"""Effect descriptions and their mapping onto the engine's parameter slots.

Each effect kind has an ordered list of parameters; their values become the
``target`` slots of the effect's state array (layout in ``native/engine.h``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import ProjectError
from .reverb_layout import MAX_PRE_MS, reverb_layout

# Copies of native/engine.h's numbers; tests/test_engine_header.py holds them to it.
TICK = 32
FX_SLOTS = 64
SLOT_TARGET, SLOT_VALUE, SLOT_COEF, SLOT_MEM, SLOT_READY = 0, 8, 16, 24, 40
FADER_SLOTS = 8
FADER_TARGET, FADER_END, FADER_START = 0, 2, 4

KIND_CODES = {"gain": 1, "biquad": 2, "compressor": 3, "delay": 4, "limiter": 5, "reverb": 6,
              "chorus": 7, "flanger": 8, "gate": 9, "saturation": 10, "phaser": 11,
              "lookahead_limiter": 32}
BIQUAD_SHAPES = {"lowpass": 0, "highpass": 1, "peaking": 2, "lowshelf": 3, "highshelf": 4}
MAX_DELAY_MS = 2000.0
MAX_MODULATION_MS = 50.0  # chorus and flanger lines: delay_ms + depth_ms stays below
MAX_LOOKAHEAD_MS = 20.0  # the lookahead limiter's longest lookahead (its latency)
#: Effects whose level detector may listen to another track or bus (``EffectSpec.sidechain``).
SIDECHAIN_KINDS = ("compressor", "gate")


@dataclass(frozen=True)
class Param:
    """One parameter: name, default and inclusive valid range."""

    name: str
    default: float
    low: float
    high: float


PARAMS: dict[str, tuple[Param, ...]] = {
    "gain": (Param("gain_db", 0.0, -120.0, 24.0),),
    "biquad": (
        Param("shape", 2.0, 0.0, 4.0),
        Param("freq", 1000.0, 10.0, 96000.0),
        Param("q", 0.707, 0.05, 40.0),
        Param("gain_db", 0.0, -36.0, 36.0),
    ),
    "compressor": (
        Param("threshold_db", -18.0, -80.0, 0.0),
        Param("ratio", 4.0, 1.0, 100.0),
        Param("knee_db", 6.0, 0.0, 36.0),
        Param("attack_ms", 10.0, 0.01, 1000.0),
        Param("release_ms", 100.0, 1.0, 5000.0),
        Param("makeup_db", 0.0, -24.0, 36.0),
    ),
    "delay": (
        Param("time_ms", 250.0, 0.1, MAX_DELAY_MS),
        Param("feedback", 0.3, 0.0, 0.98),
        Param("mix", 0.3, 0.0, 1.0),
    ),
    "limiter": (Param("ceiling_db", -0.3, -24.0, 0.0), Param("release_ms", 50.0, 1.0, 2000.0)),
    "reverb": (
        Param("room_size", 0.5, 0.0, 1.0),
        Param("damping", 0.5, 0.0, 1.0),
        Param("pre_delay_ms", 0.0, 0.0, MAX_PRE_MS),
        Param("width", 1.0, 0.0, 1.0),
        Param("mix", 0.25, 0.0, 1.0),
    ),
    "chorus": (
        Param("rate_hz", 0.8, 0.01, 10.0),
        Param("depth_ms", 3.0, 0.0, 10.0),
        Param("feedback", 0.0, 0.0, 0.9),
        Param("mix", 0.5, 0.0, 1.0),
        Param("delay_ms", 12.0, 1.0, 30.0),
    ),
    "flanger": (
        Param("rate_hz", 0.3, 0.01, 10.0),
        Param("depth_ms", 2.0, 0.0, 10.0),
        Param("feedback", 0.5, -0.95, 0.95),
        Param("mix", 0.5, 0.0, 1.0),
        Param("delay_ms", 1.0, 0.1, 10.0),
    ),
    "gate": (
        Param("threshold_db", -50.0, -100.0, 0.0),
        Param("range_db", 80.0, 0.0, 120.0),
        Param("attack_ms", 1.0, 0.01, 500.0),
        Param("hold_ms", 20.0, 0.0, 2000.0),
        Param("release_ms", 100.0, 1.0, 5000.0),
    ),
    "saturation": (
        Param("drive_db", 12.0, 0.0, 48.0),
        Param("mix", 1.0, 0.0, 1.0),
        Param("output_db", 0.0, -24.0, 12.0),
    ),
    "phaser": (
        Param("rate_hz", 0.5, 0.01, 10.0),
        Param("depth", 0.7, 0.0, 1.0),
        Param("center_hz", 700.0, 50.0, 5000.0),
        Param("feedback", 0.3, -0.9, 0.9),
        Param("mix", 0.5, 0.0, 1.0),
    ),
    "lookahead_limiter": (
        Param("ceiling_db", -0.3, -24.0, 0.0),
        Param("release_ms", 50.0, 1.0, 2000.0),
        Param("lookahead_ms", 5.0, 0.0, MAX_LOOKAHEAD_MS),
    ),
}


@dataclass
class EffectSpec:
    """An insert effect: its kind, parameters by name, and whether it runs.

    For ``biquad`` the ``shape`` parameter may be given as a name
    (``"lowshelf"``, ``"peaking"``, ...). ``sidechain`` (compressor and gate only)
    names the track or bus whose post-insert, pre-fader signal the detector listens
    to; empty, the effect listens to its own input.
    """

    kind: str
    params: dict[str, float | str] = field(default_factory=dict)
    enabled: bool = True
    id: str = ""
    sidechain: str = ""

    def validate(self) -> None:
        """Raise :class:`ProjectError` for an unknown kind, parameter or a bad value."""
        if self.kind not in PARAMS:
            raise ProjectError(
                f"unknown effect kind {self.kind!r}; known kinds: {', '.join(PARAMS)}"
            )
        if self.sidechain and self.kind not in SIDECHAIN_KINDS:
            raise ProjectError(
                f"{self.kind}: only {' and '.join(SIDECHAIN_KINDS)} take a sidechain; "
                f"remove sidechain {self.sidechain!r}"
            )
        known = {p.name for p in PARAMS[self.kind]}
        for name in self.params:
            if name not in known:
                raise ProjectError(
                    f"{self.kind}: unknown parameter {name!r}; known: {', '.join(sorted(known))}"
                )
        self.values()

    def values(self) -> list[float]:
        """Parameter values in slot order, defaults filled in, ranges checked."""
        result = []
        for param in PARAMS[self.kind]:
            raw = self.params.get(param.name, param.default)
            if param.name == "shape" and isinstance(raw, str):
                if raw not in BIQUAD_SHAPES:
                    raise ProjectError(
                        f"biquad shape {raw!r} unknown; use one of {', '.join(BIQUAD_SHAPES)}"
                    )
                raw = BIQUAD_SHAPES[raw]
            value = float(raw)
            if math.isnan(value) or not (param.low <= value <= param.high):
                raise ProjectError(
                    f"{self.kind}.{param.name} = {raw!r} is outside [{param.low}, {param.high}]"
                )
            result.append(value)
        return result


def memory_length(kind: str, sample_rate: float) -> int:
    """Floats per channel of an effect's delay lines (0: it has none)."""
    if kind == "delay":
        return int(math.ceil(MAX_DELAY_MS * 1e-3 * sample_rate)) + 4
    if kind in ("chorus", "flanger"):
        return int(math.ceil(MAX_MODULATION_MS * 1e-3 * sample_rate)) + 4
    if kind == "reverb":
        return reverb_layout(sample_rate).total
    if kind == "lookahead_limiter":
        return 3 * lookahead_ring(sample_rate)
    return 0


def lookahead_ring(sample_rate: float) -> int:
    """Length of each of the lookahead limiter's rings (delay, needed gain, smoothed gain)."""
    return int(math.ceil(MAX_LOOKAHEAD_MS * 1e-3 * sample_rate)) + 2


def lookahead_frames(lookahead_ms: float, sample_rate: float) -> int:
    """Frames of lookahead (and latency) for ``lookahead_ms``, as the C engine rounds it.

    The value is taken as the float32 slot holds it: ``floor(ms * 1e-3 * rate + 0.5)``.
    """
    return int(math.floor(float(np.float32(lookahead_ms)) * 1e-3 * sample_rate + 0.5))


def latency(spec: EffectSpec, sample_rate: float) -> int:
    """Frames by which ``spec`` delays its input (0 for every built-in but the
    lookahead limiter; a bypassed effect adds none)."""
    if not spec.enabled or spec.kind != "lookahead_limiter":
        return 0
    values = dict(zip((p.name for p in PARAMS[spec.kind]), spec.values(), strict=True))
    return lookahead_frames(values["lookahead_ms"], sample_rate)


class EffectState:
    """The numpy-owned state of one effect instance, shared by both backends."""

    def __init__(self, spec: EffectSpec, channels: int, sample_rate: float) -> None:
        spec.validate()
        self.kind = KIND_CODES[spec.kind]
        self.spec = spec
        self.enabled = spec.enabled
        self.channels = channels
        self.slots = np.zeros(FX_SLOTS, dtype=np.float32)
        self.memory = np.zeros((channels, memory_length(spec.kind, sample_rate)),
                               dtype=np.float32)
        #: the sidechain key this effect's detector reads, (2, max_block), or None
        self.key: np.ndarray | None = None
        self.set_params(spec.params)

    def set_params(self, params: dict[str, float | str], replace: bool = False) -> None:
        """Change parameter targets; the engine glides to them (no zipper noise).

        Unnamed parameters keep their value, or return to their default with
        ``replace=True``.
        """
        merged = dict(params) if replace else {**self.spec.params, **params}
        spec = EffectSpec(self.spec.kind, merged, self.enabled, self.spec.id,
                          self.spec.sidechain)
        values = spec.values()
        self.spec = spec
        self.slots[SLOT_TARGET : SLOT_TARGET + len(values)] = values

    def reset(self) -> None:
        """Forget filter memory and smoothing so the next block starts fresh."""
        targets = self.slots[SLOT_TARGET : SLOT_TARGET + 8].copy()
        self.slots[:] = 0.0
        self.slots[SLOT_TARGET : SLOT_TARGET + 8] = targets
        self.memory[:] = 0.0


def three_band_eq(low_db: float, mid_db: float, high_db: float) -> list[EffectSpec]:
    """A classic 3-band EQ: low shelf 120 Hz, peak 1 kHz, high shelf 8 kHz."""
    bands = (("lowshelf", 120.0, 0.707, low_db), ("peaking", 1000.0, 1.0, mid_db),
             ("highshelf", 8000.0, 0.707, high_db))
    return [
        EffectSpec("biquad", {"shape": shape, "freq": freq, "q": q, "gain_db": gain})
        for shape, freq, q, gain in bands
    ]
