"""Effect descriptions and their mapping onto the engine's parameter slots.

Each effect kind has an ordered list of parameters; their values become the
``target`` slots of the effect's state array (layout in ``native/engine.h``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .convolution_layout import MAX_PRE_MS as CONV_MAX_PRE_MS
from .convolution_layout import PARTITION as CONV_PARTITION
from .convolution_layout import ConvolutionIR, load_ir
from .eq_layout import EQ_BANDS, EQ_ROW
from .errors import ProjectError
from .reverb_layout import MAX_PRE_MS, reverb_layout

# Copies of native/engine.h's numbers; tests/test_engine_header.py holds them to it.
TICK = 32
FX_SLOTS = 64
SLOT_TARGET, SLOT_VALUE, SLOT_COEF, SLOT_MEM, SLOT_READY = 0, 8, 16, 24, 40
FADER_SLOTS = 8
FADER_TARGET, FADER_END, FADER_START = 0, 2, 4

KIND_CODES = {"gain": 1, "biquad": 2, "compressor": 3, "delay": 4, "limiter": 5, "reverb": 6,
              "chorus": 7, "flanger": 8, "gate": 9, "saturation": 10, "phaser": 11, "eq": 12,
              "deesser": 13, "convolution": 14, "lookahead_limiter": 32}
BIQUAD_SHAPES = {"lowpass": 0, "highpass": 1, "peaking": 2, "lowshelf": 3, "highshelf": 4}
DEESSER_MODES = {"split": 0, "wideband": 1}
#: Parameters that may be given by name: (kind, parameter) -> {name: value}.
CHOICES: dict[tuple[str, str], dict[str, int]] = {
    ("biquad", "shape"): BIQUAD_SHAPES, ("deesser", "mode"): DEESSER_MODES}
#: Parameters that are text, not numbers (no slot): the convolution's impulse response,
#: an audio source resolved like a clip's ``source``.
TEXT_PARAMS: dict[str, tuple[str, ...]] = {"convolution": ("ir",)}
MAX_DELAY_MS = 2000.0
MAX_MODULATION_MS = 50.0  # chorus and flanger lines: delay_ms + depth_ms stays below
MAX_LOOKAHEAD_MS = 20.0  # the lookahead limiter's longest lookahead (its latency)
#: Effects that run outside the C engine, hosted in a worker process
#: (``lv2``: a third-party LV2 plug-in, params ``uri`` and control values by port symbol;
#: see dsp_core/lv2_chain.py and docs/lv2.md).
HOSTED_KINDS = ("lv2",)
#: Effects whose level detector may listen to another track or bus (``EffectSpec.sidechain``).
SIDECHAIN_KINDS = ("compressor", "gate")


@dataclass(frozen=True)
class Param:
    """One parameter: name, default and inclusive valid range."""

    name: str
    default: float
    low: float
    high: float


def _eq_params() -> tuple[Param, ...]:
    """Four parameters per band of the 7-band EQ, band by band (memory row order)."""
    params = []
    for name, freq, q in EQ_BANDS:
        params += [Param(f"{name}_freq", freq, 20.0, 20000.0),
                   Param(f"{name}_gain_db", 0.0, -24.0, 24.0),
                   Param(f"{name}_q", q, 0.1, 24.0), Param(f"{name}_on", 1.0, 0.0, 1.0)]
    return tuple(params)


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
    "eq": _eq_params(),
    "deesser": (
        Param("threshold_db", -30.0, -80.0, 0.0),
        Param("ratio", 4.0, 1.0, 20.0),
        Param("attack_ms", 0.5, 0.01, 100.0),
        Param("release_ms", 60.0, 1.0, 2000.0),
        Param("low_hz", 4000.0, 1000.0, 16000.0),
        Param("high_hz", 10000.0, 2000.0, 20000.0),
        Param("mode", 0.0, 0.0, 1.0),
    ),
    "convolution": (
        Param("mix", 0.3, 0.0, 1.0),
        Param("pre_delay_ms", 0.0, 0.0, CONV_MAX_PRE_MS),
        Param("wet_db", 0.0, -60.0, 12.0),
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
    (``"lowshelf"``, ``"peaking"``, ...), as may the de-esser's ``mode``
    (``"split"``, ``"wideband"``). A ``convolution``'s ``ir`` names its
    impulse-response audio (a path or asset, resolved like a clip's ``source``).
    ``sidechain`` (compressor and gate only) names the track or bus whose
    post-insert, pre-fader signal the detector listens to; empty, the effect
    listens to its own input.
    """

    kind: str
    params: dict[str, float | str] = field(default_factory=dict)
    enabled: bool = True
    id: str = ""
    sidechain: str = ""

    def validate(self) -> None:
        """Raise :class:`ProjectError` for an unknown kind, parameter or a bad value."""
        if self.kind in HOSTED_KINDS:
            self._validate_hosted()
            return
        if self.kind not in PARAMS:
            raise ProjectError(
                f"unknown effect kind {self.kind!r}; known kinds: {', '.join(PARAMS)}"
            )
        if self.sidechain and self.kind not in SIDECHAIN_KINDS:
            raise ProjectError(
                f"{self.kind}: only {' and '.join(SIDECHAIN_KINDS)} take a sidechain; "
                f"remove sidechain {self.sidechain!r}"
            )
        known = {p.name for p in PARAMS[self.kind]} | set(TEXT_PARAMS.get(self.kind, ()))
        for name in self.params:
            if name not in known:
                raise ProjectError(
                    f"{self.kind}: unknown parameter {name!r}; known: {', '.join(sorted(known))}"
                )
        self.values()

    def _validate_hosted(self) -> None:
        """An ``lv2`` effect: its URI and controls checked against discovery."""
        if self.sidechain:
            raise ProjectError(f"lv2: plug-ins take no sidechain here; remove sidechain "
                               f"{self.sidechain!r}")
        from .lv2_catalog import validate_spec  # liblilv is needed only for lv2 effects

        validate_spec(self.params)

    def values(self) -> list[float]:
        """Parameter values in slot order, defaults filled in, ranges checked."""
        if self.kind in HOSTED_KINDS:  # no slots: the worker holds its controls
            self._validate_hosted()
            return []
        result = []
        for param in PARAMS[self.kind]:
            raw = self.params.get(param.name, param.default)
            choices = CHOICES.get((self.kind, param.name))
            if choices is not None and isinstance(raw, str):
                if raw not in choices:
                    raise ProjectError(f"{self.kind} {param.name} {raw!r} unknown; "
                                       f"use one of {', '.join(choices)}")
                raw = choices[raw]
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise ProjectError(
                    f"{self.kind}.{param.name} = {raw!r} is not a number") from None
            if math.isnan(value) or not (param.low <= value <= param.high):
                raise ProjectError(
                    f"{self.kind}.{param.name} = {raw!r} is outside [{param.low}, {param.high}]"
                )
            result.append(value)
        self._check_together(result)
        return result

    def _check_together(self, values: list[float]) -> None:
        """Checks that involve more than one parameter."""
        if self.kind == "deesser" and values[4] >= values[5]:
            raise ProjectError(f"deesser: low_hz {values[4]:g} must be below high_hz "
                               f"{values[5]:g}; the band runs from low_hz to high_hz")
        if self.kind == "convolution":
            ir = self.params.get("ir")
            if not isinstance(ir, str) or not ir:
                raise ProjectError("convolution: 'ir' must name the impulse-response audio "
                                   f"(a file or asset, like a clip's source), got {ir!r}")


def memory_length(kind: str, sample_rate: float) -> int:
    """Floats per channel of an effect's delay lines (0: it has none)."""
    if kind == "delay":
        return int(math.ceil(MAX_DELAY_MS * 1e-3 * sample_rate)) + 4
    if kind in ("chorus", "flanger"):
        return int(math.ceil(MAX_MODULATION_MS * 1e-3 * sample_rate)) + 4
    if kind == "reverb":
        return reverb_layout(sample_rate).total
    if kind == "eq":
        return EQ_ROW
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
    """Frames by which ``spec`` delays its input: the lookahead limiter's lookahead, the
    convolution's partition, 0 for every other built-in; a bypassed effect adds none.

    (The same figure as :attr:`EffectState.latency_frames`, known without building
    the effect.)
    """
    if not spec.enabled:
        return 0
    if spec.kind in HOSTED_KINDS:  # what the plug-in reports on its latency port
        from .lv2_host import measured_latency

        return measured_latency(spec.params, int(sample_rate))
    if spec.kind == "convolution":
        return CONV_PARTITION
    if spec.kind != "lookahead_limiter":
        return 0
    values = dict(zip((p.name for p in PARAMS[spec.kind]), spec.values(), strict=True))
    return lookahead_frames(values["lookahead_ms"], sample_rate)


SourceLoad = Callable[[str, int], np.ndarray]


class EffectState:
    """The numpy-owned state of one effect instance, shared by both backends.

    ``load(source, sample_rate) -> (channels, frames)`` reads a convolution's impulse
    response (the engine passes its clip loader). ``latency_frames`` is how late the
    effect's output is (its wet and dry paths alike): the convolution's partition,
    0 for every other kind.
    """

    def __init__(self, spec: EffectSpec, channels: int, sample_rate: float,
                 load: SourceLoad | None = None) -> None:
        if spec.kind in HOSTED_KINDS:
            raise ProjectError(f"{spec.kind} plug-ins run in a worker process, not in the C "
                               "engine: build the chain with dsp_core.lv2_chain.HostedChain")
        spec.validate()
        self.kind = KIND_CODES[spec.kind]
        self.spec = spec
        self.enabled = spec.enabled
        self.channels = channels
        self.latency_frames = 0
        self.ir: ConvolutionIR | None = None
        self.slots = np.zeros(FX_SLOTS, dtype=np.float32)
        if spec.kind == "convolution":
            self.ir = load_ir(str(spec.params["ir"]), channels, int(sample_rate), load)
            self.memory = self.ir.new_memory()
            self.latency_frames = self.ir.layout.partition
        else:
            self.memory = np.zeros((channels, memory_length(spec.kind, sample_rate)),
                                   dtype=np.float32)
        self.sample_rate = sample_rate
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
        if self.ir is not None and spec.params["ir"] != self.spec.params["ir"]:
            raise ProjectError("convolution: a new 'ir' needs a new effect state "
                               "(the engine rebuilds the chain when the ir changes)")
        self.spec = spec
        if spec.kind == "lookahead_limiter":  # its latency is its lookahead
            self.latency_frames = latency(spec, self.sample_rate)
        if spec.kind == "eq":  # 28 targets: they live in memory row 0 (eq_layout.py)
            self.memory[0, :len(values)] = values
        else:
            self.slots[SLOT_TARGET : SLOT_TARGET + len(values)] = values

    def reset(self) -> None:
        """Forget filter memory and smoothing so the next block starts fresh."""
        targets = self.slots[SLOT_TARGET : SLOT_TARGET + 8].copy()
        self.slots[:] = 0.0
        self.slots[SLOT_TARGET : SLOT_TARGET + 8] = targets
        if self.ir is not None:
            self.memory[:] = self.ir.new_memory()
            return
        self.memory[:] = 0.0
        if self.spec.kind == "eq":
            self.set_params(self.spec.params)


def three_band_eq(low_db: float, mid_db: float, high_db: float) -> list[EffectSpec]:
    """A classic 3-band EQ: low shelf 120 Hz, peak 1 kHz, high shelf 8 kHz."""
    bands = (("lowshelf", 120.0, 0.707, low_db), ("peaking", 1000.0, 1.0, mid_db),
             ("highshelf", 8000.0, 0.707, high_db))
    return [
        EffectSpec("biquad", {"shape": shape, "freq": freq, "q": q, "gain_db": gain})
        for shape, freq, q, gain in bands
    ]
