"""Stretched clips' renders made ready for offline renders: the live mix's keys, reused
from memory or the derived audio, rendered once, errors that name the clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers_audio import DictLoader
from stretch_helpers import RubberBandRuns, needs_rubberband, restart

import dsp_core.stretch as stretch_module
from dawserver import clip_renders, derived_audio
from dawserver.asset_store import AssetStore
from dsp_core.engine import Engine
from dsp_core.errors import AudioFileError
from dsp_core.session import Clip, Session, Track
from dsp_core.stretch import StretchError, StretchSpec
from dsp_core.tempo import TempoChange, TempoMap

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]
RATE = 48000
ASSET = "ab" + "1" * 62
SOURCES = {ASSET: (0.3 * np.sin(2 * np.pi * 330 * np.arange(RATE) / RATE)
                   ).astype(np.float32)[None, :]}
SOURCES["/home/me/tone.wav"] = SOURCES[ASSET]


@pytest.fixture
def rubberband_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RubberBandRuns:
    return RubberBandRuns.on_path(tmp_path / "counted", monkeypatch)


@pytest.fixture
def fresh_stretch_cache(monkeypatch: pytest.MonkeyPatch) -> stretch_module.StretchCache:
    return restart(monkeypatch)


def session(**time_keys: object) -> Session:
    clip = Clip(ASSET, 0, RATE * 3 // 2, id="c1", **time_keys)
    return Session(name="s", tracks=[Track("t0", clips=[clip, Clip(ASSET, RATE * 2, RATE)])])


@needs_rubberband
async def test_a_render_is_kept_and_a_restart_reuses_it_without_rubber_band(
        tmp_path: Path, rubberband_runs: RubberBandRuns, fresh_stretch_cache,
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = AssetStore(tmp_path / "assets")
    project = session(stretch=1.5)
    with await clip_renders.prepare(project, RATE, store=store, project_id="p1",
                                    load=DictLoader(SOURCES)) as prepared:
        [render] = prepared.renders  # the plain clip needs none
        assert (render.clip, render.found, rubberband_runs.count) == ("c1", "rendered", 1)
        assert render.key == StretchSpec(1.5).key(ASSET, RATE)  # what the engine looks up
        assert render.derived == derived_audio.derived_key(ASSET, StretchSpec(1.5), RATE)
        assert render.audio.shape == (1, RATE * 3 // 2)
        assert stretch_module.CACHE.get(render.key) is render.audio
    assert await derived_audio.used_by(store, "p1") == [render.derived]

    again = await clip_renders.prepare(project, RATE, store=store, project_id="p1",
                                       load=DictLoader(SOURCES))
    assert again.count("memory") == 1 and rubberband_runs.count == 1
    again.release()

    restart(monkeypatch)  # nothing in memory: the kept derived audio, not Rubber Band
    with await clip_renders.prepare(project, RATE, store=store, project_id="p2",
                                    load=DictLoader(SOURCES)) as prepared:
        [kept] = prepared.renders
        assert kept.found == "derived" and rubberband_runs.count == 1
        np.testing.assert_array_equal(kept.audio, render.audio)
    assert await derived_audio.used_by(store, "p2") == [render.derived]


@needs_rubberband
@pytest.mark.parametrize("time_keys,length", [
    ({"stretch": 0.75}, RATE * 3 // 4),
    ({"semitones": -5.0}, RATE),
    ({"warp": [(0, 0), (RATE // 2, RATE), (RATE, RATE * 5 // 4)]}, RATE * 5 // 4),
    ({"follow_tempo": True, "source_bpm": 100.0}, RATE * 5 // 6),
])
async def test_the_engine_plays_the_prepared_renders_without_rendering_again(
        time_keys: dict, length: int, fresh_stretch_cache,
        monkeypatch: pytest.MonkeyPatch) -> None:
    clip = Clip(ASSET, 0, length, id="c1", **time_keys)
    project = Session(name="s", tracks=[Track("t0", clips=[clip])],
                      tempo=TempoMap([TempoChange(0, 120, "a"), TempoChange(1, 90, "b")]))
    with await clip_renders.prepare(project, RATE, load=DictLoader(SOURCES)) as prepared:
        [render] = prepared.renders
        monkeypatch.setattr(stretch_module.shutil, "which", lambda name: None)
        # a miss would need Rubber Band, which is gone: the engine uses the same key
        out = Engine(project, loader=DictLoader(SOURCES)).render(0, length)
    assert np.abs(out).max() > 0.05 and render.audio.shape[1] >= length


@needs_rubberband
async def test_held_renders_survive_a_full_cache_until_released(
        fresh_stretch_cache: stretch_module.StretchCache) -> None:
    prepared = await clip_renders.prepare(session(semitones=3.0), RATE,
                                          load=DictLoader(SOURCES))
    [render] = prepared.renders
    fresh_stretch_cache.max_bytes = 1
    fresh_stretch_cache.put("another render", np.zeros((2, 1000), np.float32))
    fresh_stretch_cache.put("and another", np.zeros((2, 1000), np.float32))
    assert fresh_stretch_cache.get(render.key) is render.audio
    prepared.release()
    assert fresh_stretch_cache.get(render.key) is None


@needs_rubberband
async def test_a_local_path_is_rendered_but_never_kept(
        tmp_path: Path, rubberband_runs: RubberBandRuns, fresh_stretch_cache) -> None:
    store = AssetStore(tmp_path / "assets")
    clip = Clip("/home/me/tone.wav", 0, RATE * 3 // 2, id="c1", stretch=1.5)
    project = Session(name="s", tracks=[Track("t0", clips=[clip])])
    with await clip_renders.prepare(project, RATE, store=store, project_id="p1",
                                    load=DictLoader(SOURCES)) as prepared:
        assert prepared.count("rendered") == 1 and rubberband_runs.count == 1
    # the file behind a path may change under the same name: nothing is kept for it
    assert await derived_audio.used_by(store, "p1") == []
    assert not list((store.root / "objects").rglob(f"*.{derived_audio.SUFFIX}"))


async def test_without_rubber_band_the_error_names_the_clip(
        fresh_stretch_cache: stretch_module.StretchCache,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stretch_module.shutil, "which", lambda name: None)
    done: list[int] = []
    with pytest.raises(StretchError, match=r"clip 'c1' cannot be stretched: .*rubberband-cli"):
        await clip_renders.prepare(session(stretch=1.5), RATE, load=DictLoader(SOURCES),
                                   progress=lambda n, total: done.append(n))
    assert done == [] and fresh_stretch_cache._pins == {}


async def test_a_source_that_is_not_audio_names_the_clip(fresh_stretch_cache) -> None:
    def corrupt(source: str, rate: int) -> np.ndarray:
        raise AudioFileError(f"{source}: not a WAV, FLAC or AIFF file")

    with pytest.raises(StretchError, match=rf"clip 'c1' cannot be stretched: {ASSET}: not a"):
        await clip_renders.prepare(session(stretch=1.5), RATE, load=corrupt)
