"""Constants copied from the C headers into Python are held to the headers here.

``native/engine.h`` (and ``native/internal.h`` for the maths) is the one description of
the C engine; ``dsp_core`` keeps Python copies of its numbers (slot layout, effect
kinds, lanes, smoothing). Parsing the headers, not the compiled module, keeps the check
meaningful on a machine without a compiler, where the numpy twins run alone.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dsp_core import (
    effects,
    engine,
    graph,
    instrument_graph,
    reference,
    reference_modulation,
    reverb_layout,
)

pytestmark = pytest.mark.timeout(30)

NATIVE = Path(__file__).resolve().parent.parent / "native"

#: Every ``DAW_*`` constant of engine.h that Python copies, and the copy.
COPIES: dict[str, int] = {
    "DAW_TICK": effects.TICK,
    "DAW_LANES": graph.LANES,
    "DAW_MAX_THREADS": engine.MAX_THREADS,
    "DAW_FX_SLOTS": effects.FX_SLOTS,
    "DAW_SLOT_TARGET": effects.SLOT_TARGET,
    "DAW_SLOT_VALUE": effects.SLOT_VALUE,
    "DAW_SLOT_COEF": effects.SLOT_COEF,
    "DAW_SLOT_MEM": effects.SLOT_MEM,
    "DAW_SLOT_READY": effects.SLOT_READY,
    "DAW_FADER_SLOTS": effects.FADER_SLOTS,
    "DAW_FADER_TARGET": effects.FADER_TARGET,
    "DAW_FADER_END": effects.FADER_END,
    "DAW_FADER_START": effects.FADER_START,
    **{f"DAW_FX_{kind.upper()}": code for kind, code in effects.KIND_CODES.items()},
    **{f"DAW_BQ_{shape.upper()}": code for shape, code in effects.BIQUAD_SHAPES.items()},
    "DAW_INST_PARAMS": instrument_graph.INST_PARAMS,
    "DAW_VOICE_SLOTS": instrument_graph.VOICE_SLOTS,
    "DAW_INST_STATE": instrument_graph.INST_STATE,
    "DAW_INST_NO_CHASE": instrument_graph.S_NO_CHASE,
    "DAW_INST_SYNTH": instrument_graph.SYNTH,
    "DAW_INST_SAMPLER": instrument_graph.SAMPLER,
    "DAW_MIDI_NOTE_ON": instrument_graph.NOTE_ON,
    "DAW_MIDI_NOTE_OFF": instrument_graph.NOTE_OFF,
    "DAW_MIDI_CC": instrument_graph.CC,
    "DAW_MIDI_BEND": instrument_graph.BEND,
}

#: engine.h constants Python does not copy: status codes are read from the compiled
#: module (``native_backend._STATUS``), which gets them from the header itself.
C_ONLY = {"DAW_OK", "DAW_ERR_NULL", "DAW_ERR_FRAMES", "DAW_ERR_CHANNELS", "DAW_ERR_KIND",
          "DAW_ERR_BUS", "DAW_ERR_THREADS"}

#: internal.h's floating-point constants and their twins in dsp_core.reference.
FLOAT_COPIES: dict[str, float] = {
    "SMOOTH_SECONDS": reference.SMOOTH_SECONDS,
    "GAIN_EPS": reference.GAIN_EPS,
    "LOG2_TO_DB": reference.LOG2_TO_DB,
    "DB_TO_LOG2": reference.DB_TO_LOG2,
}


def defines(header: str) -> dict[str, str]:
    """``#define NAME value`` lines of a header (comments dropped), as text."""
    found = {}
    for line in (NATIVE / header).read_text().splitlines():
        match = re.match(r"#define\s+(\w+)\s+(\S+)\s*(?:/\*.*)?$", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def function_body(source: str, name: str) -> str:
    """The text of C function ``name`` in ``source``, from its name to the closing brace."""
    start = re.search(rf"\b{name}\([^)]*\)\s*{{", source)
    assert start, f"{name} not found"
    depth, pos = 0, start.end() - 1
    for pos in range(start.end() - 1, len(source)):
        depth += {"{": 1, "}": -1}.get(source[pos], 0)
        if depth == 0:
            break
    return source[start.start():pos + 1]


def horner_coefficients(body: str) -> list[float]:
    """Coefficients of a Horner polynomial written as ``p = c0; p = p * x + c1; ...``."""
    first = re.search(r"(?:float p = |vf p = splat\()(-?[\d.]+)f", body)
    steps = re.findall(r"p = p \* \w+ ([+-]) (-?[\d.]+)f", body)
    assert first and steps, "no polynomial found"
    return [float(first.group(1)), *(float(v) * (-1 if s == "-" else 1) for s, v in steps)]


def test_every_engine_constant_python_copies_matches_the_header() -> None:
    header = {name: int(value) for name, value in defines("engine.h").items()
              if name.startswith("DAW_") and re.fullmatch(r"-?\d+", value)}
    assert {name: header.get(name) for name in COPIES} == COPIES


def test_every_engine_constant_is_either_copied_or_known_to_stay_in_c() -> None:
    header = {name for name in defines("engine.h") if name.startswith("DAW_")}
    header.discard("DAW_ENGINE_H")
    assert header - COPIES.keys() - C_ONLY == set(), "add new constants to COPIES or C_ONLY"
    assert (COPIES.keys() | C_ONLY) - header == set(), "a copied constant left engine.h"


def test_effect_kinds_and_shapes_are_the_whole_header_lists() -> None:
    header = defines("engine.h")
    kinds = {n.removeprefix("DAW_FX_").lower() for n in header
             if n.startswith("DAW_FX_") and n != "DAW_FX_SLOTS"}
    shapes = {n.removeprefix("DAW_BQ_").lower() for n in header if n.startswith("DAW_BQ_")}
    assert kinds == set(effects.KIND_CODES) == set(effects.PARAMS)
    assert shapes == set(effects.BIQUAD_SHAPES)


def test_smoothing_and_decibel_constants_match_internal_h() -> None:
    header = {name: float(value.rstrip("f")) for name, value in defines("internal.h").items()
              if name in FLOAT_COPIES}
    assert header.keys() == FLOAT_COPIES.keys()
    for name, copy in FLOAT_COPIES.items():
        assert np.float32(header[name]) == np.float32(copy), name


@pytest.mark.parametrize("source,function,twin", [
    ("internal.h", "fast_log2", reference._LOG2_POLY),
    ("internal.h", "fast_exp2", reference._EXP2_POLY),
    ("lanes.c", "v_log2", reference._LOG2_POLY),
    ("lanes.c", "v_exp2", reference._EXP2_POLY),
])
def test_log2_and_exp2_polynomials_match_the_twins(source: str, function: str,
                                                   twin: list[np.float32]) -> None:
    body = function_body((NATIVE / source).read_text(), function)
    assert [np.float32(c) for c in horner_coefficients(body)] == twin


def test_reverb_layout_and_lfo_constants_match_the_c_sources() -> None:
    internal = defines("internal.h")
    assert int(internal["REVERB_COMBS"]) == len(reverb_layout.COMB_TUNING)
    assert int(internal["REVERB_ALLPASSES"]) == len(reverb_layout.ALLPASS_TUNING)
    assert int(internal["REVERB_HEADER"]) == reverb_layout.HEADER
    assert int(internal["REVERB_SPREAD"]) == reverb_layout.SPREAD
    floats = {"REVERB_TUNING_RATE": reverb_layout.TUNING_RATE,
              "REVERB_MAX_PRE_MS": reverb_layout.MAX_PRE_MS,
              "REVERB_INPUT_GAIN": reverb_layout.INPUT_GAIN,
              "REVERB_WET_SCALE": reverb_layout.WET_SCALE,
              "MOD_LFO_STEREO_OFFSET": reference_modulation.LFO_STEREO_OFFSET,
              "PHASER_STAGES": reference_modulation.PHASER_STAGES,
              "PHASER_SWEEP_OCTAVES": reference_modulation.PHASER_SWEEP_OCTAVES}
    for name, copy in floats.items():
        assert np.float32(float(internal[name].rstrip("f"))) == np.float32(copy), name
    source = (NATIVE / "reverb.c").read_text()
    for name, copy in (("COMB_TUNING", reverb_layout.COMB_TUNING),
                       ("ALLPASS_TUNING", reverb_layout.ALLPASS_TUNING)):
        found = re.search(rf"{name}\[\w+\] = \{{([^}}]*)\}}", source)
        assert found, name
        assert tuple(int(v) for v in found.group(1).split(",")) == copy
    header = {name: int(value) for name, value in defines("reverb.c").items()
              if name.startswith("H_")}
    assert header == {"H_COMB_STORE": reverb_layout.COMB_STORE,
                      "H_COMB_INDEX": reverb_layout.COMB_INDEX,
                      "H_ALLPASS_INDEX": reverb_layout.ALLPASS_INDEX,
                      "H_PRE_INDEX": reverb_layout.PRE_INDEX}
