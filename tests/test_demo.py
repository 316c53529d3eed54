"""The synthetic demo project: loads, checks, renders, is deterministic."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dsp_core.demo import SOURCES, write_demo_project
from dsp_core.engine import Engine
from dsp_core.errors import ProjectError
from dsp_core.project import check_sources, load_project


def digest(directory: Path) -> dict[str, str]:
    """SHA-256 of every file under ``directory`` by relative path."""
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 8-track, 6-second demo project at 48 kHz."""
    return write_demo_project(tmp_path_factory.mktemp("demo"), tracks=8, seconds=6.0)


def test_demo_project_loads_and_its_sources_check(demo: Path) -> None:
    session = load_project(demo)
    check_sources(session)
    assert session.sample_rate == 48000 and len(session.tracks) == 8
    assert {t.channels for t in session.tracks} == {1, 2}
    assert all(t.clips for t in session.tracks)
    assert session.length <= 6 * 48000
    assert [b.id for b in session.buses] == ["verb", "echo"]
    assert [e.kind for e in session.master.effects][-1] == "limiter"
    assert any(t.sends for t in session.tracks)
    assert any(e.kind == "compressor" for t in session.tracks for e in t.effects)
    assert any(c.fade_in > 0 for t in session.tracks for c in t.clips)


def test_demo_sources_are_few_real_files_one_at_another_rate(demo: Path) -> None:
    session = load_project(demo)
    files = sorted((demo.parent / "audio").iterdir())
    assert len(files) == len(SOURCES)
    infos = {f.name: sf.info(str(f)) for f in files}
    assert all(i.format == "FLAC" and i.subtype == "PCM_24" for i in infos.values())
    assert {i.channels for i in infos.values()} == {1, 2}
    used = {Path(c.source).name for t in session.tracks for c in t.clips}
    assert any(infos[name].samplerate == 44100 for name in used)


def test_demo_sounds_are_where_they_belong_in_the_spectrum(demo: Path) -> None:
    def centroid(name: str) -> float:
        """Power-weighted mean frequency of the file's first channel."""
        data, rate = sf.read(demo.parent / "audio" / f"{name}.flac", always_2d=True)
        power = np.abs(np.fft.rfft(data[:, 0])) ** 2
        freqs = np.fft.rfftfreq(len(data), 1 / rate)
        return float(np.sum(freqs * power) / np.sum(power))

    assert centroid("kick") < 200 and centroid("bass_a") < 300
    assert 300 < centroid("pad_am") < 1000
    assert 1000 < centroid("snare") < centroid("hat_closed")
    assert centroid("hat_closed") > 10000


def test_demo_renders_to_a_finite_limited_mix(demo: Path) -> None:
    engine = Engine(load_project(demo))
    out = engine.render(0, engine.length)
    assert np.isfinite(out).all()
    peak = float(np.max(np.abs(out)))
    assert 0.05 < peak <= 10 ** (-0.5 / 20)  # limiter ceiling is -1 dBFS


def test_demo_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    first = write_demo_project(tmp_path / "a", tracks=5, seconds=3.0, seed=3).parent
    again = write_demo_project(tmp_path / "b", tracks=5, seconds=3.0, seed=3).parent
    other = write_demo_project(tmp_path / "c", tracks=5, seconds=3.0, seed=4).parent
    assert digest(first) == digest(again)
    changed = {k for k, v in digest(first).items() if digest(other)[k] != v}
    assert "project.json" in changed and "audio/hat_closed.flac" in changed


def test_demo_at_44100_resamples_its_other_sources_from_48k(tmp_path: Path) -> None:
    path = write_demo_project(tmp_path, tracks=8, seconds=4.0, sample_rate=44100)
    check_sources(load_project(path))
    assert sf.info(str(tmp_path / "audio" / "arp_44k.flac")).samplerate == 48000


def test_demo_reports_progress_up_to_its_total(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    write_demo_project(tmp_path, tracks=3, seconds=2.0,
                       progress=lambda done, total: calls.append((done, total)))
    total = len(SOURCES) + 3
    assert calls == [(done, total) for done in range(1, total + 1)]


def test_demo_refuses_to_overwrite_a_project(tmp_path: Path) -> None:
    (tmp_path / "project.json").write_text("mine")
    with pytest.raises(ProjectError, match="already exists"):
        write_demo_project(tmp_path, tracks=1, seconds=1.0)
    assert (tmp_path / "project.json").read_text() == "mine"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sample_rate": 12345}, "demo sample rate 12345 Hz is not supported"),
    ({"tracks": 0}, "tracks >= 1"),
    ({"seconds": 0.0}, "seconds > 0"),
])
def test_demo_refuses_bad_settings(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ProjectError, match=message):
        write_demo_project(tmp_path, **kwargs)
    assert not (tmp_path / "audio").exists()
