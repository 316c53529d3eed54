"""LV2 plug-ins in the render (dsp_core.lv2_chain): chain order, delay compensation,
live edits, channel mapping; both backends."""

from __future__ import annotations

import math

import numpy as np
import pytest
from lv2_helpers import MISBEHAVE, SWH_AMP, lv2_path, needs_plugin  # noqa: F401

from dsp_core import Bus, Clip, EffectSpec, Engine, ProjectError, Session, Track
from tests.helpers_audio import DictLoader

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("lv2_path")]

RATE = 48000


def noise(channels: int, frames: int, seed: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal((channels, frames))).astype(np.float32)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_a_copy_through_a_latency_reporting_plugin_nulls_with_the_track(backend: str) -> None:
    x = noise(1, 4800)
    session = Session(sample_rate=RATE, tracks=[
        Track("dry", clips=[Clip("x", 0, 4800)]),
        Track("copy", clips=[Clip("minus_x", 0, 4800)], effects=[
            EffectSpec("gain", {"gain_db": 0.0}),
            EffectSpec("lv2", {"uri": MISBEHAVE, "delay": 37.0}),
            EffectSpec("lookahead_limiter", {"ceiling_db": 0.0, "lookahead_ms": 1.0})]),
    ])
    with Engine(session, block_size=128, backend=backend,
                loader=DictLoader({"x": x, "minus_x": -x})) as engine:
        assert engine.latency == 37 + 48  # the plug-in's report plus the limiter's lookahead
        out = engine.render(0, 4800)
        assert engine.plugin_errors() == []
    assert np.abs(out).max() < 1e-6  # -120 dBFS: the two paths line up to the frame


def test_the_plugin_runs_at_its_place_in_the_chain() -> None:
    x = noise(1, 6000) * np.float32(3.0)
    quarter_db = 20.0 * math.log10(0.25)
    def chain(middle: EffectSpec) -> list[EffectSpec]:
        return [EffectSpec("gain", {"gain_db": 12.0}), middle,
                EffectSpec("limiter", {"ceiling_db": -6.0})]
    hosted = Session(sample_rate=RATE, tracks=[Track("t", pan=-1.0, clips=[Clip("x", 0, 6000)],
        effects=chain(EffectSpec("lv2", {"uri": MISBEHAVE, "gain": 0.25})))])
    built_in = Session(sample_rate=RATE, tracks=[Track("t", pan=-1.0, clips=[Clip("x", 0, 6000)],
        effects=chain(EffectSpec("gain", {"gain_db": quarter_db})))])
    loader = DictLoader({"x": x})
    with Engine(hosted, block_size=256, loader=loader) as engine:
        ours = engine.render(0, 6000)
    expected = Engine(built_in, block_size=256, backend="reference", loader=loader).render(0, 6000)
    np.testing.assert_allclose(ours, expected, atol=2e-6)
    # the limiter after the plug-in matters: the gain before it drove the peak to 12x
    assert np.abs(ours[0]).max() <= 10 ** (-6 / 20) + 1e-3


def test_a_control_edit_keeps_the_worker_and_a_new_uri_replaces_it() -> None:
    needs_plugin(SWH_AMP)
    x = noise(1, 2048)
    session = Session(sample_rate=RATE, tracks=[Track(
        "t", pan=-1.0, clips=[Clip("x", 0, 2048)],
        effects=[EffectSpec("lv2", {"uri": MISBEHAVE, "gain": 0.5})])])
    with Engine(session, block_size=256, loader=DictLoader({"x": x})) as engine:
        first = engine.graph.tracks[0].hosted.elements[0]
        np.testing.assert_allclose(engine.render(0, 1024)[0], 0.5 * x[0, :1024], atol=1e-7)
        session.tracks[0].effects[0].params["gain"] = 2.0
        engine.apply(session)
        assert engine.graph.tracks[0].hosted.elements[0] is first and first.alive
        np.testing.assert_allclose(engine.render(1024, 1024)[0], 2.0 * x[0, 1024:], atol=1e-6)
        session.tracks[0].effects[0] = EffectSpec("lv2", {"uri": SWH_AMP, "gain": -6.0})
        engine.apply(session)
        assert not first.alive and first._process is None  # its worker was stopped
        np.testing.assert_allclose(engine.render(0, 1024)[0],
                                   x[0, :1024] * np.float32(10 ** (-6 / 20)), atol=1e-6)


def test_a_mono_plugin_on_a_stereo_track_runs_once_per_channel() -> None:
    x = noise(2, 2048)
    session = Session(sample_rate=RATE, tracks=[Track(
        "t", channels=2, clips=[Clip("x", 0, 2048)],
        effects=[EffectSpec("lv2", {"uri": MISBEHAVE, "gain": 0.5, "delay": 3.0})])])
    with Engine(session, block_size=512, loader=DictLoader({"x": x})) as engine:
        assert engine.graph.tracks[0].hosted.elements[0].instances == 2
        np.testing.assert_allclose(engine.render(0, 2048), 0.5 * x, atol=1e-7)


def test_a_keyed_effect_beside_a_plugin_on_the_master_is_refused_with_what_to_do() -> None:
    """A bus's plug-in moves the master's chain after the C call, where keys are not
    heard yet (plug-ins on buses: tests/test_lv2_bus.py)."""
    session = Session(sample_rate=RATE, tracks=[Track("t")], buses=[Bus("fx", effects=[
        EffectSpec("lv2", {"uri": MISBEHAVE})])], master=Bus("master", effects=[
            EffectSpec("compressor", {}, sidechain="t")]))
    with pytest.raises(ProjectError, match="bus 'master' .*keyed compressor.*clear its"):
        Engine(session)


def test_a_control_edit_does_not_start_a_worker_to_measure_latency(monkeypatch) -> None:
    from dsp_core import lv2_host
    from dsp_core.effects import latency

    started: list[dict] = []

    class Counting(lv2_host.HostedPlugin):
        def __init__(self, params, *args, **kwargs) -> None:
            started.append(dict(params))
            super().__init__(params, *args, **kwargs)

    monkeypatch.setattr(lv2_host, "HostedPlugin", Counting)
    monkeypatch.setattr(lv2_host, "_MEASURED", {})
    monkeypatch.setattr(lv2_host, "_BY_PLUGIN", {})
    assert latency(EffectSpec("lv2", {"uri": MISBEHAVE, "delay": 37.0}), RATE) == 37
    assert len(started) == 1  # the first figure needs a probe
    for gain in (0.5, 0.25, 2.0):  # each a new (controls) key: none starts a worker
        assert latency(EffectSpec("lv2", {"uri": MISBEHAVE, "delay": 37.0, "gain": gain}),
                       RATE) == 37
    assert len(started) == 1


@pytest.mark.asyncio
async def test_closing_a_project_engine_stops_its_workers_at_once(tmp_path) -> None:
    import soundfile as sf
    from room_helpers import project_room

    from collab.store import open_store
    from dawserver.project_engine import ProjectEngine
    from dawserver.projects import import_session

    path = tmp_path / "x.wav"
    sf.write(path, noise(1, 4096)[0], RATE)
    session = Session(sample_rate=RATE, tracks=[Track("t", clips=[Clip(str(path), 0, 4096)],
                                                      effects=[EffectSpec("lv2", {
                                                          "uri": MISBEHAVE, "gain": 0.5})])])
    async with open_store(None, tmp_path) as store:
        info = await import_session(store, session)
        async with project_room(info.project_id, store) as room:
            engine = ProjectEngine(room, debounce=0.0)
            await engine.render(0, 1024)
            plugin = engine._engine.graph.tracks[0].hosted.elements[0]
            process = plugin._process
            assert plugin.alive and process.poll() is None
            engine.close()
            assert process.poll() is not None and not plugin.alive  # no GC needed
