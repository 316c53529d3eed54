"""Hosted LV2 plug-ins (dsp_core.lv2_host): another host agrees, misbehaviour is bypassed."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
from lv2_helpers import LSP_DELAY, MISBEHAVE, MODES, lv2_path, needs_plugin  # noqa: F401

from dsp_core import Clip, EffectSpec, Engine, Session, Track
from dsp_core.lv2_host import HostedPlugin
from tests.helpers_audio import DictLoader

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("lv2_path")]

RATE = 48000


def noise(frames: int, seed: int = 2) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal((1, frames))).astype(np.float32)


@pytest.mark.parametrize(("uri", "controls"), [
    ("http://plugin.org.uk/swh-plugins/amp", {"gain": -6.0}),
    ("http://plugin.org.uk/swh-plugins/sc1", {"threshold": -20.0, "ratio": 4.0}),  # stateful
])
def test_a_render_through_our_host_equals_lv2apply(tmp_path, uri: str, controls: dict) -> None:
    needs_plugin(uri)
    if shutil.which("lv2apply") is None:
        pytest.skip("lv2apply (lilv-utils) is not installed")
    x = noise(9600)
    sf.write(tmp_path / "in.wav", x[0], RATE, subtype="FLOAT")
    args = ["lv2apply", "-i", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.wav")]
    for symbol, value in controls.items():
        args += ["-c", symbol, repr(value)]
    subprocess.run([*args, uri], check=True, timeout=120, capture_output=True)
    theirs = sf.read(tmp_path / "out.wav", dtype="float32")[0]
    # a mono track panned hard left: the left output is the chain's output, unscaled
    session = Session(sample_rate=RATE, tracks=[Track(
        "t", pan=-1.0, clips=[Clip("x", 0, x.shape[1])],
        effects=[EffectSpec("lv2", {"uri": uri, **controls})])])
    with Engine(session, block_size=128, loader=DictLoader({"x": x})) as engine:
        ours = engine.render(0, x.shape[1])[0]
        assert engine.plugin_errors() == []
    assert np.abs(ours - x[0]).max() > 0.01  # the plug-in did something
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_an_lsp_plugin_that_needs_urid_map_runs_in_the_render() -> None:
    needs_plugin(LSP_DELAY)
    x = noise(4096)
    delay = {"uri": LSP_DELAY, "mode": 0.0, "samp": 10.0, "dry": 0.0, "wet": 1.0}
    session = Session(sample_rate=RATE, tracks=[Track(
        "t", pan=-1.0, clips=[Clip("x", 0, 4096)], effects=[EffectSpec("lv2", delay)])])
    with Engine(session, block_size=256, loader=DictLoader({"x": x})) as engine:
        out = engine.render(0, 4096)
        assert engine.plugin_errors() == []
    # LSP's compensation delay: 10 frames of deliberate delay (not reported as latency)
    np.testing.assert_allclose(out[0, 10:], x[0, :-10], atol=1e-6)
    assert np.abs(out[0, :10]).max() < 1e-6


@pytest.mark.parametrize(("mode", "says"), [
    ("hang", "hung while processing a block: no answer within 0.5 s"),
    ("crash", "crashed while processing a block"),
    ("nan", "produced a NaN or infinite sample"),
])
def test_a_misbehaving_plugin_is_bypassed_and_can_be_restarted(mode: str, says: str) -> None:
    fx = HostedPlugin({"uri": MISBEHAVE, "gain": 0.5}, 1, RATE, 256, deadline=0.5)
    try:
        fx.set_params({"uri": MISBEHAVE, "gain": 0.5, "mode": MODES[mode]})
        x = noise(256)
        block = x.copy()
        assert fx.process(block, 256) is False
        np.testing.assert_array_equal(block, x)  # the dry signal
        assert fx.failed is not None and says in fx.failed and "bypassed" in fx.failed
        later = noise(256, seed=5)
        again = later.copy()
        assert fx.process(again, 256) is False  # it stays bypassed, nothing blocks
        np.testing.assert_array_equal(again, later)
        fx.set_params({"uri": MISBEHAVE, "gain": 0.5, "mode": MODES["pass"]})
        fx.restart()
        assert fx.failed is None and fx.process(again, 256) is True
        np.testing.assert_allclose(again, later * np.float32(0.5), atol=0)
    finally:
        fx.close()


def test_subnormal_output_is_flushed_to_zero() -> None:
    fx = HostedPlugin({"uri": MISBEHAVE, "mode": MODES["denormal"]}, 1, RATE, 128)
    try:
        block = noise(128)
        assert fx.process(block, 128) is True and fx.failed is None
        np.testing.assert_array_equal(block, np.zeros_like(block))
    finally:
        fx.close()


def test_the_engine_keeps_rendering_around_a_crashing_plugin() -> None:
    x = noise(4096)
    params = {"uri": MISBEHAVE, "gain": 2.0, "delay": 16.0}
    session = Session(sample_rate=RATE, tracks=[Track(
        "t", pan=-1.0, clips=[Clip("x", 0, 4096)],
        effects=[EffectSpec("lv2", dict(params), id="fx-bad")])])
    with Engine(session, block_size=256, loader=DictLoader({"x": x})) as engine:
        assert engine.latency == 16
        first = engine.render(0, 2048)
        np.testing.assert_allclose(first[0], 2.0 * x[0, :2048], atol=1e-6)
        session.tracks[0].effects[0].params["mode"] = MODES["crash"]
        engine.apply(session)  # an automated parameter makes it crash
        second = engine.render(2048, 2048)
        errors = engine.plugin_errors()
        assert [(e.owner, e.effect, e.index) for e in errors] == [("t", "fx-bad", 0)]
        assert "crashed while processing a block" in errors[0].message
        # bypassed: the dry signal, still delayed by the plug-in's 16 frames, so the
        # timeline stays aligned; the wet frames already in the plug-in are lost
        np.testing.assert_allclose(second[0, 16:], x[0, 2048 + 16:], atol=1e-7)
        session.tracks[0].effects[0].params["mode"] = MODES["pass"]
        engine.apply(session)
        assert engine.restart_plugins() == 1 and engine.plugin_errors() == []
        third = engine.render(0, 2048)  # a seek: pre-rolls the fresh plug-in
        np.testing.assert_allclose(third[0], 2.0 * x[0, :2048], atol=1e-6)


def test_the_worker_gets_a_minimal_environment_and_resource_limits(monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://secret@db/x")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_secret")
    monkeypatch.setenv("DAW_LV2_MAX_MEMORY_MB", "3072")
    fx = HostedPlugin({"uri": MISBEHAVE, "gain": 1.0}, 1, RATE, 256)
    try:
        assert fx.alive
        pid = fx._process.pid
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
        assert b"DATABASE_URL" not in env and b"STRIPE_SECRET_KEY" not in env
        assert env[b"LV2_PATH"] and b"PYTHONPATH" in env
        with open(f"/proc/{pid}/limits") as f:
            limits = {line[:26].strip(): line[26:].split() for line in f}
        assert limits["Max address space"][:2] == [str(3072 << 20)] * 2
        assert limits["Max open files"][0] == "256"
        assert limits["Max core file size"][0] == "0"
        with open(f"/proc/{pid}/status") as f:
            assert "NoNewPrivs:\t1" in f.read()
        buffer = noise(256)
        expected = buffer.copy()
        assert fx.process(buffer, 256)  # it still runs under the limits
        np.testing.assert_allclose(buffer, expected, atol=1e-7)
    finally:
        fx.close()


def test_failures_are_asked_of_the_chains_without_walking_every_track(monkeypatch) -> None:
    """A live mix asks for failed plug-ins every 20 ms frame: the engine finds its hosted
    chains again only after a structural edit, and still sees a chain an edit adds."""
    from dsp_core import graph as graph_module

    walks = []
    walk = graph_module.Graph.hosted_chains
    monkeypatch.setattr(graph_module.Graph, "hosted_chains",
                        lambda self: walks.append(1) or walk(self))
    x = noise(1024)
    session = Session(sample_rate=RATE, tracks=[Track(f"t{i}", clips=[Clip("x", 0, 1024)])
                                                for i in range(64)])
    with Engine(session, block_size=256, loader=DictLoader({"x": x})) as engine:
        engine.render(0, 512)
        for _ in range(50):
            assert engine.plugin_errors() == []
        assert len(walks) == 1
        session.tracks[5].effects = [EffectSpec("lv2", {"uri": MISBEHAVE,
                                                        "mode": MODES["crash"]}, id="fx")]
        engine.apply(session)
        engine.render(512, 512)
        assert [(e.owner, e.effect) for e in engine.plugin_errors()] == [("t5", "fx")]
        after_edit = len(walks)
        for _ in range(50):
            assert [(e.owner, e.effect) for e in engine.plugin_errors()] == [("t5", "fx")]
        assert len(walks) == after_edit


@pytest.mark.parametrize("channels", [1, 2])  # a stereo track: two instances
def test_the_audio_rows_are_worked_out_once_and_a_new_value_still_arrives(
        channels: int) -> None:
    """Issue 17: the rows were rebuilt every block (about 15% of the engine's CPU with
    16 plug-ins); now once, and a parameter change still reaches the plug-in."""
    rng = np.random.default_rng(17)
    blocks = [(0.3 * rng.standard_normal((channels, 256))).astype(np.float32)
              for _ in range(100)]
    sizes = [256 if i % 3 else 100 for i in range(100)]  # short blocks too
    fx = HostedPlugin({"uri": MISBEHAVE, "gain": 0.5}, channels, RATE, 256)
    fresh = HostedPlugin({"uri": MISBEHAVE, "gain": 1.75}, channels, RATE, 256)
    try:
        for x, n in zip(blocks, sizes, strict=True):
            block = x.copy()
            assert fx.process(block, n) is True
            np.testing.assert_array_equal(block[:, :n], x[:, :n] * np.float32(0.5))
            np.testing.assert_array_equal(block[:, n:], x[:, n:])  # untouched past n
        assert fx.row_builds == 1
        fx.set_params({"uri": MISBEHAVE, "gain": 1.75})
        for x, n in zip(blocks, sizes, strict=True):
            ours, theirs = x.copy(), x.copy()
            assert fx.process(ours, n) is True and fresh.process(theirs, n) is True
            np.testing.assert_array_equal(ours, theirs)
            np.testing.assert_array_equal(ours[:, :n], x[:, :n] * np.float32(1.75))
        assert fx.row_builds == 1 and fx.failed is None
        fx.restart()  # a fresh worker, the same shared memory: the rows still hold
        block = blocks[0].copy()
        assert fx.process(block, 256) is True and fx.row_builds == 1
        np.testing.assert_array_equal(block, blocks[0] * np.float32(1.75))
    finally:
        fx.close()
        fresh.close()


def test_close_unmaps_the_shared_memory_after_blocks_were_processed() -> None:
    """Nothing of a closed plug-in keeps its memory map: the block rows' views go too."""
    fx = HostedPlugin({"uri": MISBEHAVE, "mode": MODES["pass"]}, 1, RATE, 128)
    block = noise(128)
    assert fx.process(block, 128) is True
    fx.close()
    assert fx._map.closed
