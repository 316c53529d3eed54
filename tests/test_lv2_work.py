"""The LV2 Worker extension (dsp_core.lv2_work): a plug-in's scheduled work is done
between its blocks, in order and reproducibly; what a plug-in loads through it is
heard; its queue is bounded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lv2_helpers import WORKER, lv2_path, needs_plugin  # noqa: F401

from dsp_core import Clip, EffectSpec, Engine, Session, Track, lv2_catalog
from dsp_core.lv2_host import HostedPlugin
from dsp_core.lv2_lilv import WORKER_SCHEDULE
from dsp_core.lv2_work import MAX_BYTES, MAX_ITEMS, MAX_ROUNDS
from tests.helpers_audio import DictLoader

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("lv2_path")]

RATE = 48000
#: x42's IR convolver (x42-plugins): requires worker:schedule; its IR file is state.
ZC = "http://gareus.org/oss/lv2/zeroconvolv#CfgMono"
ZC_IR = "http://gareus.org/oss/lv2/zeroconvolv#ir"
#: LSP's Impulse Responses: uses the worker when given it to load its file.
LSP_IR = "http://lsp-plug.in/plugins/lv2/impulse_responses_mono"
LSP_FILE = "http://lsp-plug.in/plugins/lv2/impulse_responses_mono/ports#ifn"
#: Port indices of the worker test plug-in (tests/lv2_bundle/worker.c).
ACCEPTED, REFUSED, RESPONSES, CORRUPT, ENDED = 5, 6, 7, 8, 9
FRAMES = 8192


def noise(frames: int = FRAMES) -> np.ndarray:
    return (0.3 * np.random.default_rng(5).standard_normal((1, frames))).astype(np.float32)


def impulse_file(folder: Path, at: int = 10, gain: float = 0.5) -> Path:
    """A 64-frame impulse response: ``gain`` at frame ``at`` (a delay and a gain)."""
    ir = np.zeros(64, dtype=np.float32)
    ir[at] = gain
    path = folder / "ir.wav"
    sf.write(path, ir, RATE, subtype="FLOAT")
    return path


def state_naming(uri: str, key: str, path: Path) -> str:
    """A saved state's text holding just the file ``path`` under ``key``."""
    return (
        "@prefix atom: <http://lv2plug.in/ns/ext/atom#> .\n"
        "@prefix lv2: <http://lv2plug.in/ns/lv2core#> .\n"
        "@prefix pset: <http://lv2plug.in/ns/ext/presets#> .\n"
        "@prefix state: <http://lv2plug.in/ns/ext/state#> .\n\n"
        f"<urn:maxbooster:lv2-state>\n\ta pset:Preset ;\n\tlv2:appliesTo <{uri}> ;\n"
        f'\tstate:state [\n\t\t<{key}> "{path}"^^atom:Path\n\t] .\n'
    )


def render(params: dict, x: np.ndarray, block: int = 256) -> np.ndarray:
    """The left output of a mono track (panned hard left) through one ``lv2`` effect."""
    session = Session(sample_rate=RATE, tracks=[Track(
        "t", pan=-1.0, clips=[Clip("x", 0, x.shape[1])], effects=[EffectSpec("lv2", params)])])
    with Engine(session, block_size=block, loader=DictLoader({"x": x})) as engine:
        out = engine.render(0, x.shape[1])[0]
        assert engine.plugin_errors() == []
    assert np.isfinite(out).all()
    return out


def test_plugins_that_require_the_worker_are_listed_and_others_keep_their_reason() -> None:
    needs_plugin(ZC)
    requiring = [p for p in lv2_catalog.plugins() if WORKER_SCHEDULE in p.required_features]
    supported = {p.uri for p in requiring if p.supported}
    assert {ZC, "http://gareus.org/oss/lv2/zeroconvolv#CfgStereo",
            "http://gareus.org/oss/lv2/convoLV2#Mono", WORKER} <= supported
    for info in requiring:  # what still refuses one is something other than the worker
        assert not any("worker" in problem for problem in info.problems), info.problems
    refused = {p.uri: p.problems for p in requiring if not p.supported}
    assert all("not an effect" in " ".join(why) for why in refused.values()), refused


def test_an_impulse_response_loaded_through_the_worker_is_heard(tmp_path) -> None:
    """x42's convolver loads its IR when the state is restored and puts it in use in
    work_response(): the render is the input through that IR (0.5, 10 frames late)."""
    needs_plugin(ZC)
    x = noise()
    state = state_naming(ZC, ZC_IR, impulse_file(tmp_path))
    out = render({"uri": ZC, "state": state}, x)
    np.testing.assert_allclose(out[10:], 0.5 * x[0, :-10], rtol=0, atol=1e-5)
    assert np.abs(out[:10]).max() < 1e-6
    np.testing.assert_array_equal(render({"uri": ZC, "state": state}, x), out)  # reproducible
    # without a file it is silent (its dry signal is off by default): the wet is the file's
    assert np.abs(render({"uri": ZC}, x)).max() == 0.0
    plugin = HostedPlugin({"uri": ZC, "state": state}, 1, RATE, 256)
    try:  # the convolver in use (swapped in by work_response) names the file
        assert f"<{ZC_IR}> <file://{tmp_path / 'ir.wav'}>" in plugin.save_state()
    finally:
        plugin.close()


def test_a_file_lsp_loads_through_the_worker_is_heard(tmp_path) -> None:
    """LSP's Impulse Responses loads the file its state names with the worker it is
    given: its wet signal (dry off, the file's left channel) is the input through it."""
    needs_plugin(LSP_IR)
    x = noise()
    state = state_naming(LSP_IR, LSP_FILE, impulse_file(tmp_path))
    out = render({"uri": LSP_IR, "state": state, "cs": 1.0, "dry": 0.0}, x)
    np.testing.assert_allclose(out[10:], 0.5 * x[0, :-10], rtol=0, atol=1e-5)
    assert np.abs(out[:10]).max() < 1e-6


def _port(plugin: HostedPlugin, index: int, instance: int = 0) -> float:
    return float(plugin.area[plugin.layout.control(instance, index)])


def _blocks(plugin: HostedPlugin, count: int) -> None:
    for _ in range(count):
        plugin.process(np.zeros((plugin.channels, 256), dtype=np.float32), 256)
        assert plugin.alive, plugin.failed


@pytest.mark.parametrize("channels", [1, 2])  # 2: two instances, each its own queue
def test_work_is_done_after_a_block_and_answered_before_the_next(channels: int) -> None:
    plugin = HostedPlugin({"uri": WORKER, "requests": 1, "size": 1000}, channels, RATE, 256)
    try:
        for block in range(1, 4):
            _blocks(plugin, 1)
            for instance in range(plugin.instances):
                # read at the start of each run: the earlier blocks' work, all answered
                assert _port(plugin, ACCEPTED, instance) == 1
                assert _port(plugin, RESPONSES, instance) == block - 1
                assert _port(plugin, ENDED, instance) == block - 1
                # each request was copied (the plug-in overwrites its buffer at once)
                assert _port(plugin, CORRUPT, instance) == 0
    finally:
        plugin.close()


def test_requests_past_the_queue_bound_get_no_space() -> None:
    params = {"uri": WORKER, "requests": MAX_ITEMS + 100}
    plugin = HostedPlugin(params, 1, RATE, 256)
    try:
        _blocks(plugin, 1)
        assert (_port(plugin, ACCEPTED), _port(plugin, REFUSED)) == (MAX_ITEMS, 100)
        _blocks(plugin, 1)  # the queue drained after the first block: room again
        assert (_port(plugin, ACCEPTED), _port(plugin, REFUSED)) == (MAX_ITEMS, 100)
        assert _port(plugin, RESPONSES) == MAX_ITEMS
        half = MAX_BYTES // 2 + 1  # two of these do not fit together
        plugin.set_params({**params, "requests": 3, "size": half})
        _blocks(plugin, 1)
        assert (_port(plugin, ACCEPTED), _port(plugin, REFUSED)) == (1, 2)
        plugin.set_params({**params, "requests": 1, "size": MAX_BYTES + 4})
        _blocks(plugin, 1)
        assert (_port(plugin, ACCEPTED), _port(plugin, REFUSED)) == (0, 1)
        assert _port(plugin, CORRUPT) == 0
    finally:
        plugin.close()


def test_a_plugin_that_always_schedules_more_work_still_answers_each_block() -> None:
    """Each response schedules another request: the host does MAX_ROUNDS rounds after
    a block and leaves the rest for the next one, so the block is answered."""
    plugin = HostedPlugin({"uri": WORKER, "requests": 1, "chain": 1}, 1, RATE, 256)
    try:
        _blocks(plugin, 1)
        plugin.set_params({"uri": WORKER, "requests": 0, "chain": 1})
        for block in range(1, 4):  # the responses counted at the start of each run
            _blocks(plugin, 1)
            assert _port(plugin, RESPONSES) == block * MAX_ROUNDS
    finally:
        plugin.close()
