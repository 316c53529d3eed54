"""Hosted effect chains of different tracks (and aux buses) run side by side
(dsp_core.lv2_chain.run_side_by_side): every chain's next plug-in gets its block before
any worker is awaited, the output is bit for bit the one-after-another render, and hung
plug-ins are bypassed within one deadline, not one deadline each."""

from __future__ import annotations

import time

import numpy as np
import pytest
from lv2_helpers import MISBEHAVE, MODES, SWH_AMP, X42_EQ, lv2_path, needs_plugin  # noqa: F401

from dsp_core import Bus, Clip, EffectSpec, Engine, Send, Session, Track, lv2_host
from dsp_core.lv2_host import HostedPlugin
from tests.helpers_audio import DictLoader

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("lv2_path")]

RATE = 48000
FRAMES = 6000


def noise(channels: int, frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal((channels, frames))).astype(np.float32)


def misbehave(gain: float, delay: float = 0.0, mode: str = "pass") -> EffectSpec:
    return EffectSpec("lv2", {"uri": MISBEHAVE, "gain": gain, "delay": delay,
                              "mode": MODES[mode]})


def spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Record each block handed to a worker (``run``) and each answer awaited (``wait``)."""
    order: list[tuple[str, int]] = []
    send, wait = HostedPlugin._send, HostedPlugin._wait

    def spy_send(self: HostedPlugin, *args: object, **kwargs: object) -> None:
        order.append(("run", id(self)))
        send(self, *args, **kwargs)  # type: ignore[arg-type]

    def spy_wait(self: HostedPlugin, *args: object, **kwargs: object) -> object:
        order.append(("wait", id(self)))
        return wait(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(HostedPlugin, "_send", spy_send)
    monkeypatch.setattr(HostedPlugin, "_wait", spy_wait)
    return order


def test_every_tracks_plugin_has_its_block_before_any_answer_is_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Four tracks with one plug-in each and one with two (a built-in between): all five
    first plug-ins are running before the first answer is read; the second plug-in of a
    chain starts once its first has answered; the buses' chains run side by side too."""
    session = Session(sample_rate=RATE, tracks=[
        *(Track(f"t{i}", clips=[Clip(f"x{i}", 0, FRAMES)], sends=[Send("b0", -6.0)],
                effects=[misbehave(0.5 + 0.1 * i)]) for i in range(4)),
        Track("two", clips=[Clip("x4", 0, FRAMES)], sends=[Send("b1", -6.0)],
              effects=[misbehave(0.5), EffectSpec("gain", {"gain_db": -3.0}),
                       misbehave(0.25)]),
    ], buses=[Bus("b0", effects=[misbehave(0.7)]), Bus("b1", effects=[misbehave(0.8)])])
    loader = DictLoader({f"x{i}": noise(1, FRAMES, i) for i in range(5)})
    with Engine(session, block_size=256, loader=loader) as engine:
        engine.render(0, 256)
        order = spy(monkeypatch)
        engine.render(256, 256)
        assert engine.plugin_errors() == []
        tracks = [t.hosted.elements for t in engine.graph.tracks]
        firsts = [id(e[0]) for e in tracks]
        second = id(tracks[4][2])
        buses = [id(b.hosted.elements[0]) for b in engine.graph.buses]
    runs = [("run", p) for p in firsts]
    waits = [("wait", p) for p in firsts]
    assert order == [*runs, *waits, ("run", second), ("wait", second),
                     *(("run", p) for p in buses), *(("wait", p) for p in buses)]
    assert peak_in_flight(order) == 5


def peak_in_flight(order: list[tuple[str, int]]) -> int:
    """The most blocks handed to workers and not yet awaited at once."""
    in_flight = peak = 0
    for what, _ in order:
        in_flight += 1 if what == "run" else -1
        peak = max(peak, in_flight)
    return peak


def test_side_by_side_renders_bit_for_bit_what_one_after_another_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Tracks through the test plug-in (latency; a chain with built-ins between two
    plug-ins), swh's amp and x42's EQ (a mono plug-in on a stereo track: two instances),
    buses and the master with plug-ins: the same samples with both backends and 128-
    and 1000-frame blocks as the chains run one after another (the sequential way),
    although every track's and bus's plug-in had its block in flight at once."""
    needs_plugin(SWH_AMP)
    needs_plugin(X42_EQ)
    eq = {"uri": X42_EQ, "gain": -2.0, "freq1": 200.0, "gain1": 6.0, "freq2": 3000.0,
          "gain2": -4.0, "HighPass": 1.0, "HPfreq": 40.0}
    session = Session(sample_rate=RATE, tracks=[
        Track("delay", clips=[Clip("m0", 0, FRAMES)], sends=[Send("fx", -3.0)],
              effects=[misbehave(0.7, 37.0)]),
        Track("sandwich", channels=2, clips=[Clip("s0", 100, FRAMES - 100)],
              sends=[Send("fx2", -6.0)],
              effects=[misbehave(1.5, 5.0), EffectSpec("biquad", {"shape": "lowshelf",
                                                                 "gain_db": 3.0}),
                       EffectSpec("lv2", {"uri": SWH_AMP, "gain": -4.0}),
                       EffectSpec("limiter", {"ceiling_db": -3.0})]),
        Track("eq", channels=2, clips=[Clip("s1", 0, FRAMES)],
              effects=[EffectSpec("lv2", eq), misbehave(0.5)]),
        Track("plain", clips=[Clip("m1", 0, FRAMES)],
              effects=[EffectSpec("gain", {"gain_db": -2.0})]),
    ], buses=[Bus("fx", effects=[misbehave(0.6, 11.0)]),
              Bus("fx2", effects=[EffectSpec("lv2", {"uri": SWH_AMP, "gain": -6.0})])],
        master=Bus("master", effects=[EffectSpec("lv2", {"uri": SWH_AMP, "gain": -1.0}),
                                      EffectSpec("limiter", {"ceiling_db": -1.0})]))
    loader = DictLoader({"m0": noise(1, FRAMES, 10), "m1": noise(1, FRAMES, 11),
                         "s0": noise(2, FRAMES, 20), "s1": noise(2, FRAMES, 21)})
    order = spy(monkeypatch)
    for backend, block in (("native", 128), ("reference", 1000)):
        outs, peaks = [], []
        for side_by_side in (True, False):
            with Engine(session, block_size=block, backend=backend, loader=loader) as engine:
                engine.side_by_side = side_by_side
                order.clear()
                outs.append(engine.render(0, FRAMES))
                outs.append(engine.render(1234, 2000))  # a seek: pre-rolls the latency
                peaks.append(peak_in_flight(order))
                assert engine.plugin_errors() == []
        assert np.abs(outs[0]).max() > 0.05
        np.testing.assert_array_equal(outs[0], outs[2])
        np.testing.assert_array_equal(outs[1], outs[3])
        assert peaks == [3, 1]  # the three tracks' plug-ins (then the two buses') at once


def test_hung_plugins_are_bypassed_within_one_deadline_not_one_each(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Three tracks' plug-ins hang in the same block: all three are bypassed after one
    deadline (each counts from its own hand-off, and a hung worker is killed at once,
    not asked to quit), while a fourth track's plug-in plays on."""
    monkeypatch.setattr(lv2_host, "DEFAULT_DEADLINE", 1.0)
    x = {f"x{i}": noise(1, 1024, 30 + i) for i in range(4)}

    def session(mode: str) -> Session:
        return Session(sample_rate=RATE, tracks=[
            Track(f"t{i}", pan=-1.0 if i < 3 else 1.0, clips=[Clip(f"x{i}", 0, 1024)],
                  effects=[misbehave(0.5, mode=mode if i < 3 else "pass")])
            for i in range(4)])

    with Engine(session("pass"), block_size=256, loader=DictLoader(x)) as engine:
        engine.render(0, 256)
        engine.apply(session("hang"))  # a control edit: the workers stay, and hang
        began = time.monotonic()
        out = engine.render(256, 256)
        took = time.monotonic() - began
        errors = engine.plugin_errors()
    assert sorted(e.owner for e in errors) == ["t0", "t1", "t2"]
    assert all("hung while processing a block" in e.message for e in errors)
    # not a speed target: one after another, three deadlines take at least 3.0 s
    # whatever the load; side by side one deadline (1.0 s) and the kills
    assert took < 2.5, f"{took:.2f} s: the deadlines of hung plug-ins added up"
    dry = sum(x[f"x{i}"][0, 256:512] for i in range(3))
    np.testing.assert_allclose(out[0], dry, atol=1e-6)  # bypassed: the dry signal
    np.testing.assert_allclose(out[1], 0.5 * x["x3"][0, 256:512], atol=1e-6)
