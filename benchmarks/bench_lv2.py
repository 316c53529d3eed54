"""The cost of hosting an LV2 plug-in in a sandboxed worker, per block, against running
the same plug-in in this process through the same lilv code (no worker, no pipe), in the
same run. The plug-in is swh's amp (almost no work of its own), so the ratio is the
sandbox's overhead: the shared-memory copies, the two 8-byte messages and the wake-up of
the other process. A second figure renders a 16-track session in which one track holds the
plug-in (its chain rendered ahead in Python segments) against the same session with a
built-in gain in its place. A third renders 16 tracks with the plug-in each, at 128- and
1024-frame blocks, with their chains side by side (the engine's way) against one after
another (``Engine.side_by_side = False``) in the same run.
Run: ``python -m pytest benchmarks/bench_lv2.py --benchmark-enable -s``.
"""

from __future__ import annotations

import mmap
import os
import statistics
from collections.abc import Callable

import numpy as np
import pytest

from benchmarks.conftest import SMOKE, median_ratio, record, rounds_of
from dsp_core import Bus, Clip, EffectSpec, Engine, Send, Session, Track, lv2_catalog
from dsp_core.lv2_host import HostedPlugin
from dsp_core.lv2_layout import FLOAT, Layout
from dsp_core.lv2_worker import Worker

URI = "http://plugin.org.uk/swh-plugins/amp"
RATE = 48000
BLOCK = 128
BLOCKS = 50 if SMOKE else 2000
TRACKS = 16


@pytest.fixture(scope="module")
def amp() -> lv2_catalog.PluginInfo:
    try:
        return lv2_catalog.plugin(URI)
    except Exception as exc:  # noqa: BLE001 - lilv or swh-lv2 missing
        pytest.skip(f"{URI} is not installed ({exc})")


def test_worker_overhead_per_block(benchmark, amp: lv2_catalog.PluginInfo) -> None:
    x = (0.1 * np.random.default_rng(1).standard_normal((1, BLOCK))).astype(np.float32)
    hosted = HostedPlugin({"uri": URI, "gain": -6.0}, 1, RATE, BLOCK)
    layout = Layout.of(amp, BLOCK, 1)
    fd = os.memfd_create("bench-lv2", 0)
    os.ftruncate(fd, layout.floats * FLOAT)
    local = Worker(amp, RATE, BLOCK, 1, fd)
    area = np.frombuffer(mmap.mmap(fd, layout.floats * FLOAT), dtype=np.float32)
    area[layout.control(0, 0)] = -6.0
    in_row, out_row = (layout.audio(0, p.index) for p in (amp.audio(False)[0],
                                                          amp.audio(True)[0]))

    def in_process() -> None:
        block = x.copy()
        for _ in range(BLOCKS):
            area[in_row:in_row + BLOCK] = block[0]
            local.run(BLOCK)
            block[0] = area[out_row:out_row + BLOCK]

    def sandboxed() -> None:
        block = x.copy()
        for _ in range(BLOCKS):
            hosted.process(block, BLOCK)

    try:
        times = rounds_of({"in_process": in_process, "worker": sandboxed}, rounds=5)
        assert hosted.failed is None
    finally:
        hosted.close()
    record(benchmark, block=BLOCK,
           us_per_block_in_process=1e6 * statistics.median(times["in_process"]) / BLOCKS,
           us_per_block_worker=1e6 * statistics.median(times["worker"]) / BLOCKS,
           worker_time_over_in_process=median_ratio(times, "worker", "in_process"))


def hosted_against_built_in(session: Callable[[bool], Session], data: np.ndarray
                            ) -> tuple[float, float, float]:
    """Render ``session(True)`` (the plug-in hosted) and ``session(False)`` (a built-in
    in its place), each track ``t<i>`` reading row ``i`` of ``data``, in alternating
    rounds: ``(real-time factor hosted, real-time factor built-in, hosted time over
    built-in)``."""
    frames = data.shape[1]

    def load(path: str, _rate: int) -> np.ndarray:
        return data[int(path[1:]):int(path[1:]) + 1]

    with Engine(session(True), block_size=BLOCK, loader=load) as hosted, \
            Engine(session(False), block_size=BLOCK, loader=load) as built_in:
        times = rounds_of({"hosted": lambda: hosted.render(0, frames),
                           "built_in": lambda: built_in.render(0, frames)}, rounds=5)
        assert hosted.plugin_errors() == []
    seconds = frames / RATE
    return (seconds / statistics.median(times["hosted"]),
            seconds / statistics.median(times["built_in"]),
            median_ratio(times, "hosted", "built_in"))


def test_session_with_one_hosted_track(benchmark, amp: lv2_catalog.PluginInfo) -> None:
    frames = BLOCK * BLOCKS
    data = (0.05 * np.random.default_rng(2).standard_normal((TRACKS, frames))).astype(
        np.float32)

    def session(hosted: bool) -> Session:
        middle = (EffectSpec("lv2", {"uri": URI, "gain": -6.0}) if hosted
                  else EffectSpec("gain", {"gain_db": -6.0}))
        return Session(sample_rate=RATE, tracks=[
            Track(f"t{i}", clips=[Clip(f"s{i}", 0, frames)],
                  effects=[EffectSpec("biquad", {"shape": "lowshelf", "gain_db": 3.0}),
                           *([middle] if i == 0 else [])])
            for i in range(TRACKS)])

    hosted, built_in, ratio = hosted_against_built_in(session, data)
    record(benchmark, tracks=TRACKS, block=BLOCK, realtime_hosted=hosted,
           realtime_built_in=built_in, hosted_time_over_built_in=ratio)


def test_session_with_a_hosted_bus(benchmark, amp: lv2_catalog.PluginInfo) -> None:
    """16 tracks sent to an aux bus that holds the plug-in (the bus's chain, then the
    master's, run after the C call: dsp_core/lv2_bus.py), against a built-in gain there."""
    frames = BLOCK * BLOCKS
    data = (0.05 * np.random.default_rng(3).standard_normal((TRACKS, frames))).astype(
        np.float32)

    def session(hosted: bool) -> Session:
        middle = (EffectSpec("lv2", {"uri": URI, "gain": -6.0}) if hosted
                  else EffectSpec("gain", {"gain_db": -6.0}))
        return Session(sample_rate=RATE, tracks=[
            Track(f"t{i}", clips=[Clip(f"s{i}", 0, frames)], sends=[Send("fx", -6.0)],
                  effects=[EffectSpec("biquad", {"shape": "lowshelf", "gain_db": 3.0})])
            for i in range(TRACKS)], buses=[Bus("fx", effects=[middle])],
            master=Bus("master", effects=[EffectSpec("limiter", {"ceiling_db": -1.0})]))

    hosted, built_in, ratio = hosted_against_built_in(session, data)
    record(benchmark, tracks=TRACKS, block=BLOCK, realtime_hosted_bus=hosted,
           realtime_built_in_bus=built_in, hosted_bus_time_over_built_in=ratio)


@pytest.mark.parametrize("block", [128, 1024])
def test_sixteen_hosted_tracks_side_by_side(benchmark, amp: lv2_catalog.PluginInfo,
                                            block: int) -> None:
    """16 tracks with the plug-in each: their chains run side by side (every worker has
    its block before any is awaited, the engine's way) against one after another
    (``Engine.side_by_side = False``, the way before), in alternating rounds of one run."""
    frames = BLOCK * BLOCKS
    data = (0.05 * np.random.default_rng(4).standard_normal((TRACKS, frames))).astype(
        np.float32)

    def load(path: str, _rate: int) -> np.ndarray:
        return data[int(path[1:]):int(path[1:]) + 1]

    session = Session(sample_rate=RATE, tracks=[
        Track(f"t{i}", clips=[Clip(f"s{i}", 0, frames)],
              effects=[EffectSpec("lv2", {"uri": URI, "gain": -6.0})])
        for i in range(TRACKS)])
    with Engine(session, block_size=block, loader=load) as engine:
        def run(side_by_side: bool) -> Callable[[], object]:
            def render() -> object:
                engine.side_by_side = side_by_side
                return engine.render(0, frames)
            return render

        times = rounds_of({"side_by_side": run(True), "one_after_another": run(False)},
                          rounds=5)
        assert engine.plugin_errors() == []
    seconds = frames / RATE
    record(benchmark, tracks=TRACKS, block=block,
           realtime_side_by_side=seconds / statistics.median(times["side_by_side"]),
           realtime_one_after_another=seconds / statistics.median(times["one_after_another"]),
           one_after_another_time_over_side_by_side=median_ratio(
               times, "one_after_another", "side_by_side"))
