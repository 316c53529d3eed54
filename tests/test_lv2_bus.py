"""LV2 plug-ins on aux buses and the master (dsp_core.lv2_bus): delay compensation, the
render equal to the plug-in run on the bus's signal, edits, bypass, automation, the
document; both backends."""

from __future__ import annotations

import numpy as np
import pytest
from lv2_helpers import MISBEHAVE, MODES, SWH_AMP, lv2_path  # noqa: F401
from pycrdt import Array, Map

from collab.schema import ProjectDocument
from dsp_core import Bus, Clip, EffectSpec, Engine, ProjectError, Send, Session, Track
from dsp_core.lv2_host import HostedPlugin
from dsp_core.session import AutomationLane, AutomationPoint
from tests.helpers_audio import DictLoader

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("lv2_path")]

RATE = 48000
SWH_SC1 = "http://plugin.org.uk/swh-plugins/sc1"  # swh-lv2: a compressor, stateful
BACKENDS = ["native", "reference"]


def noise(channels: int, frames: int, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal((channels, frames))).astype(np.float32)


def db(value: float) -> np.float32:
    return np.float32(10 ** (value / 20))


def run_directly(params: dict, signal: np.ndarray, block: int) -> np.ndarray:
    """``signal`` through the plug-in run by itself, block by block (no engine)."""
    out = signal.copy()
    plugin = HostedPlugin(dict(params), out.shape[0], RATE, block)
    try:
        buf = np.zeros((out.shape[0], block), dtype=np.float32)
        for start in range(0, out.shape[1], block):
            frames = min(block, out.shape[1] - start)
            buf[:, :frames] = out[:, start:start + frames]
            assert plugin.process(buf, frames)
            out[:, start:start + frames] = buf[:, :frames]
    finally:
        plugin.close()
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_copy_through_a_latency_reporting_plugin_on_a_bus_nulls(backend: str) -> None:
    """A track sent to a bus with a 37-frame plug-in, and its negated copy sent to a
    plain bus, cancel: delay compensation aligns the plain bus and the direct paths."""
    x = noise(2, 4800)
    def session(with_copy: bool) -> Session:
        tracks = [Track("a", channels=2, clips=[Clip("x", 0, 4800)], sends=[Send("fx", 0.0)])]
        if with_copy:
            tracks.append(Track("b", channels=2, clips=[Clip("minus_x", 0, 4800)],
                                sends=[Send("plain", 0.0)]))
        return Session(sample_rate=RATE, tracks=tracks, buses=[
            Bus("fx", effects=[EffectSpec("lv2", {"uri": MISBEHAVE, "delay": 37.0})]),
            Bus("plain")])
    loader = DictLoader({"x": x, "minus_x": -x})
    with Engine(session(True), block_size=128, backend=backend, loader=loader) as engine:
        assert engine.latency == 37
        out = engine.render(0, 4800)
        assert engine.plugin_errors() == []
    assert np.abs(out).max() < 1e-6
    with Engine(session(False), block_size=128, backend=backend, loader=loader) as engine:
        alone = engine.render(0, 4800)
    np.testing.assert_allclose(alone, 2.0 * x, atol=1e-6)  # the bus path is heard, in time


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bus_renders_as_the_plugin_run_directly_on_the_bus_signal(backend: str) -> None:
    x = noise(2, 9600)
    params = {"uri": SWH_SC1, "threshold": -20.0, "ratio": 4.0}
    session = Session(sample_rate=RATE, tracks=[
        Track("t", channels=2, gain_db=-144.0, clips=[Clip("x", 0, 9600)],
              sends=[Send("fx", -3.0, pre_fader=True)])],
        buses=[Bus("fx", gain_db=-2.0, effects=[EffectSpec("lv2", dict(params), id="c")])])
    with Engine(session, block_size=256, backend=backend,
                loader=DictLoader({"x": x})) as engine:
        assert engine.latency == 0
        ours = engine.render(0, 9600)
    expected = db(-2.0) * run_directly(params, db(-3.0) * x, 256)
    np.testing.assert_allclose(ours, expected, atol=2e-6)
    assert np.abs(expected - db(-2.0) * db(-3.0) * x).max() > 0.01  # it did compress


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_master_runs_its_plugin_between_built_ins(backend: str) -> None:
    """gain → lv2 amp → limiter on the master equals the same chain with a built-in gain
    in the plug-in's place (the limiter shows the order)."""
    x = noise(2, 6000) * np.float32(3.0)
    def session(middle: EffectSpec) -> Session:
        return Session(sample_rate=RATE, tracks=[
            Track("t", channels=2, clips=[Clip("x", 0, 6000)])],
            master=Bus("master", gain_db=-1.0, effects=[
                EffectSpec("gain", {"gain_db": 12.0}), middle,
                EffectSpec("limiter", {"ceiling_db": -6.0})]))
    loader = DictLoader({"x": x})
    with Engine(session(EffectSpec("lv2", {"uri": SWH_AMP, "gain": -12.0})), block_size=256,
                backend=backend, loader=loader) as engine:
        ours = engine.render(0, 6000)
    built_in = session(EffectSpec("gain", {"gain_db": -12.0}))
    expected = Engine(built_in, block_size=256, backend="reference", loader=loader).render(
        0, 6000)
    np.testing.assert_allclose(ours, expected, atol=2e-6)
    assert np.abs(ours).max() <= db(-7.0) + 1e-3


def test_render_and_live_blocks_agree_with_a_bus_plugin_and_automation() -> None:
    """A bounce (large blocks, native) and a live mix (small blocks, the twin) agree, with
    the bus's fader and the plug-in's gain port automated."""
    x = noise(2, 16000)
    bus = Bus("fx", pan=0.5, effects=[EffectSpec("lv2", {"uri": MISBEHAVE, "gain": 0.5,
                                                        "delay": 11.0}, id="p")])
    bus.automation["fx:p:gain"] = AutomationLane("read", [
        AutomationPoint(0, 0.5, "hold"), AutomationPoint(9600, 2.0, "hold")])
    bus.automation["gain_db"] = AutomationLane("read", [
        AutomationPoint(0, 0.0), AutomationPoint(12000, 0.0), AutomationPoint(16000, -12.0)])
    session = Session(sample_rate=RATE, tracks=[
        Track("t", channels=2, gain_db=-144.0, clips=[Clip("x", 0, 16000)],
              sends=[Send("fx", 0.0, pre_fader=True)])], buses=[bus])
    outs = []
    for backend, block in (("native", 1024), ("reference", 100)):
        with Engine(session, block_size=block, backend=backend,
                    loader=DictLoader({"x": x})) as engine:
            assert engine.latency == 11
            outs.append(engine.render(0, 16000))
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-6)
    left = outs[0][0]  # pan 0.5 leaves the left at half gain
    np.testing.assert_allclose(left[:9000], 0.5 * 0.5 * x[0, :9000], atol=1e-6)
    np.testing.assert_allclose(left[9700:11000], 0.5 * 2.0 * x[0, 9700:11000], atol=1e-6)
    ratio = np.abs(left[15900:]).sum() / np.abs(x[0, 15900:]).sum()  # the fader glides down
    assert db(-12.5) < ratio < db(-9.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bus_plugins_automation_meets_its_audio_when_another_bus_has_latency(
        backend: str) -> None:
    """A bus whose chain runs after the C call hears its input already delayed by its
    alignment (here 37 frames, for the other bus's plug-in): its port lane is read that
    much later, so a step at 2400 lands at the first tick from 2400, as on a bus in the
    call, never before it."""
    from dsp_core.effects import TICK

    x = noise(2, 4800)
    bus = Bus("fx", effects=[EffectSpec("lv2", {"uri": MISBEHAVE, "gain": 1.0}, id="p")])
    bus.automation["fx:p:gain"] = AutomationLane("read", [
        AutomationPoint(0, 1.0, "hold"), AutomationPoint(2400, 0.25, "hold")])
    session = Session(sample_rate=RATE, tracks=[
        Track("t", channels=2, gain_db=-144.0, clips=[Clip("x", 0, 4800)],
              sends=[Send("fx", 0.0, pre_fader=True)])], buses=[
        bus, Bus("late", effects=[EffectSpec("lv2", {"uri": MISBEHAVE, "delay": 37.0})])])
    with Engine(session, block_size=128, backend=backend,
                loader=DictLoader({"x": x})) as engine:
        assert engine.latency == 37
        out = engine.render(0, 4800)
    np.testing.assert_allclose(out[:, :2400], x[:, :2400], atol=1e-6)
    np.testing.assert_allclose(out[:, 2400 + TICK:], 0.25 * x[:, 2400 + TICK:], atol=1e-6)


def test_a_bus_plugin_edit_keeps_its_worker_and_a_crash_is_bypassed_in_time() -> None:
    x = noise(2, 4096)
    params = {"uri": MISBEHAVE, "gain": 2.0, "delay": 16.0}
    session = Session(sample_rate=RATE, tracks=[
        Track("t", channels=2, gain_db=-144.0, clips=[Clip("x", 0, 4096)],
              sends=[Send("fx", 0.0, pre_fader=True)])],
        buses=[Bus("fx", effects=[EffectSpec("lv2", dict(params), id="fx-bad")])])
    with Engine(session, block_size=256, loader=DictLoader({"x": x})) as engine:
        plugin = engine.graph.buses[0].hosted.elements[0]
        np.testing.assert_allclose(engine.render(0, 1024), 2.0 * x[:, :1024], atol=1e-6)
        session.buses[0].effects[0].params["gain"] = 0.5
        engine.apply(session)
        assert engine.graph.buses[0].hosted.elements[0] is plugin and plugin.alive
        np.testing.assert_allclose(engine.render(1024, 1024), 0.5 * x[:, 1024:2048],
                                   atol=1e-6)
        session.buses[0].effects[0].params["mode"] = MODES["crash"]
        engine.apply(session)
        second = engine.render(2048, 2048)
        errors = engine.plugin_errors()
        assert [(e.owner, e.effect, e.index) for e in errors] == [("fx", "fx-bad", 0)]
        assert "crashed while processing a block" in errors[0].message
        np.testing.assert_allclose(second[:, 16:], x[:, 2048 + 16:], atol=1e-7)  # dry, in time
    assert not plugin.alive  # closing the engine stopped the bus's worker


def test_a_sidechain_keyed_by_a_hosted_bus_is_refused_with_what_to_do() -> None:
    session = Session(sample_rate=RATE, tracks=[
        Track("t", effects=[EffectSpec("compressor", {}, sidechain="fx")])],
        buses=[Bus("fx", effects=[EffectSpec("lv2", {"uri": MISBEHAVE})])])
    with pytest.raises(ProjectError, match="keyed by bus 'fx'.*key it from a track"):
        Engine(session)


def test_a_document_plays_a_bus_plugin_and_caps_count_buses() -> None:
    from dsp_core.lv2_limits import MAX_LV2_PER_TRACK

    doc = ProjectDocument.from_session(Session(tracks=[Track("t")], buses=[Bus("fx")]))
    effects = doc.doc.get("buses", type=Map)["fx"]["effects"]
    assert isinstance(effects, Array)
    for i in range(MAX_LV2_PER_TRACK + 1):
        effects.append(Map({"id": f"fx-{i}", "kind": "lv2", "enabled": True,
                            "params": Map({"uri": MISBEHAVE})}))
    session = doc.to_session()
    assert [e.id for e in session.buses[0].effects] == [f"fx-{i}"
                                                         for i in range(MAX_LV2_PER_TRACK)]
    assert len(doc.bypassed) == 1 and "bus 'fx'" in doc.bypassed[0]
    session.buses[0].effects.append(EffectSpec("lv2", {"uri": MISBEHAVE}))
    with pytest.raises(ProjectError, match="bus 'fx' holds 5 lv2 plug-ins"):
        session.validate()
