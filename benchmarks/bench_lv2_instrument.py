"""The cost of playing MIDI tracks through LV2 instruments in their sandboxed workers,
against the built-in sampler playing the same sample, in the same run.

16 mono MIDI tracks, each a note every quarter second; in one session each track plays
LSP Sampler Mono (``lsp-plugins-lv2``) given the sample through its state, in the other
the built-in sampler given the same sample as its zone. 48 kHz, 128-frame blocks.
Run: ``python -m pytest benchmarks/bench_lv2_instrument.py --benchmark-enable -s``.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from benchmarks.conftest import SMOKE, median_ratio, record, rounds_of
from dsp_core import Engine, Session, Track, lv2_catalog
from dsp_core.midi import Instrument, MidiClip, Note, SampleZone

URI = "http://lsp-plug.in/plugins/lv2/sampler_mono"
RATE = 48000
BLOCK = 128
BLOCKS = 50 if SMOKE else 2000
TRACKS = 16
KEY = 57  # the note LSP's sampler maps its first sample to by default


def state_naming(path: Path) -> str:
    """A saved state giving the sampler's first sample the file ``path``."""
    return (
        "@prefix atom: <http://lv2plug.in/ns/ext/atom#> .\n"
        "@prefix lv2: <http://lv2plug.in/ns/lv2core#> .\n"
        "@prefix pset: <http://lv2plug.in/ns/ext/presets#> .\n"
        "@prefix state: <http://lv2plug.in/ns/ext/state#> .\n\n"
        f"<urn:maxbooster:lv2-state>\n\ta pset:Preset ;\n\tlv2:appliesTo <{URI}> ;\n"
        f'\tstate:state [\n\t\t<{URI}/ports#sf_0> "{path}"^^atom:Path\n\t] .\n')


def test_sixteen_lv2_instrument_tracks(benchmark, tmp_path: Path) -> None:
    # outside a server a state may name any file (lv2_state.confined: a server's own)
    try:
        lv2_catalog.plugin(URI)
    except Exception as exc:  # noqa: BLE001 - lilv or lsp-plugins-lv2 missing
        pytest.skip(f"{URI} is not installed ({exc})")
    t = np.arange(RATE // 2) / RATE
    sample = (0.2 * np.sin(2 * np.pi * 220.0 * t) * np.exp(-6.0 * t)).astype(np.float32)
    path = tmp_path / "pluck.wav"
    sf.write(path, sample, RATE, subtype="FLOAT")
    frames = BLOCK * BLOCKS
    notes = [Note(KEY, 100, start, RATE // 8) for start in range(0, frames, RATE // 4)]

    def session(hosted: bool) -> Session:
        instrument = (Instrument("lv2", {"uri": URI, "state": state_naming(path)}) if hosted
                      else Instrument("sampler", {"attack_ms": 0.0},
                                      [SampleZone(str(path), root=KEY)]))
        return Session(sample_rate=RATE, tracks=[
            Track(f"t{i}", instrument=instrument, midi_clips=[MidiClip(0, frames, notes)])
            for i in range(TRACKS)])

    def load(source: str, _rate: int) -> np.ndarray:
        return sample[None, :]

    with Engine(session(True), block_size=BLOCK, loader=load) as hosted, \
            Engine(session(False), block_size=BLOCK, loader=load) as built_in:
        times = rounds_of({"hosted": lambda: hosted.render(0, frames),
                           "built_in": lambda: built_in.render(0, frames)}, rounds=5)
        assert hosted.plugin_errors() == []
        assert np.abs(hosted.render(0, frames)).max() > 0.1  # the samples were heard
    seconds = frames / RATE
    record(benchmark, tracks=TRACKS, block=BLOCK,
           realtime_lv2_instruments=seconds / statistics.median(times["hosted"]),
           realtime_built_in_sampler=seconds / statistics.median(times["built_in"]),
           lv2_time_over_built_in=median_ratio(times, "hosted", "built_in"))
