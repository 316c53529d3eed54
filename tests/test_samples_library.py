"""The sample library: incremental indexing, the search index, providers, previews."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import samples_audio as audio
import soundfile as sf

from database import open_database
from samples.errors import BadQuery, SampleNotFound
from samples.library import SampleLibrary
from samples.preview import plan, render
from samples.providers import LocalProvider, SampleProvider
from samples.records import Sample
from samples.search import COMPACT_MIN, SampleQuery, SearchIndex, SearchResult

pytestmark = pytest.mark.timeout(120)
RATE = audio.RATE


def write(path: Path, data: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data.T, RATE)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "Library"
    write(root / "Drums" / "Kick_Hard.wav", audio.kick())
    write(root / "Drums" / "Hat_Closed.flac", audio.hat())
    write(root / "Loops" / "Click Loop 120.wav", audio.click_track(120.0, 8.0))
    write(root / "Loops" / "Chords_Am 120bpm.ogg", audio.am_chord())
    return root


@pytest_asyncio.fixture
async def library(collab_database_url: str, tmp_path: Path):
    database = open_database(collab_database_url, tmp_path)
    await database.start()
    try:
        library = SampleLibrary(database)
        await library.load(wait=True)
        yield library
    finally:
        await database.stop()


@pytest.mark.asyncio
async def test_reindexing_skips_unchanged_files_and_drops_removed_ones(
        library: SampleLibrary, folder: Path) -> None:
    seen: list[tuple[int, int]] = []
    first = await library.index_folder("acc", folder, progress=lambda d, t, _: seen.append((d, t)))
    assert (first.added, first.failed) == (4, 0)
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    again = await library.index_folder("acc", folder)
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 4, 0)
    kick = folder / "Drums" / "Kick_Hard.wav"
    os.utime(kick, ns=(1, 1))  # touched, same bytes: re-hashed, not re-analysed
    write(folder / "Loops" / "Click Loop 120.wav", audio.click_track(128.0, 8.0))
    (folder / "Drums" / "Hat_Closed.flac").unlink()
    write(folder / "New" / "Snare Tight.wav", audio.snare())
    third = await library.index_folder("acc", folder)
    assert (third.added, third.updated, third.unchanged, third.removed) == (1, 1, 2, 1)
    loop = library.index.search("acc", SampleQuery(text="click")).samples[0]
    assert abs(loop.bpm - 128.0) <= 1.0
    assert library.index.search("acc", SampleQuery(text="hat")).total == 0
    # a server restart rebuilds the same index from the table
    restarted = SampleLibrary(library.database)
    assert await restarted.load(wait=True) == 4
    assert [s.id for s in restarted.index.search("acc", SampleQuery()).samples] == \
        [s.id for s in library.index.search("acc", SampleQuery()).samples]


@pytest.mark.asyncio
async def test_an_unreadable_file_is_counted_and_skipped(library: SampleLibrary,
                                                         folder: Path) -> None:
    (folder / "broken.wav").write_bytes(b"RIFF not really")
    report = await library.index_folder("acc", folder)
    assert (report.added, report.failed) == (4, 1)
    with pytest.raises(BadQuery, match="not a folder"):
        await library.index_folder("acc", folder / "missing")


@pytest.mark.asyncio
async def test_a_very_short_file_between_others_is_indexed_with_them(
        library: SampleLibrary, tmp_path: Path) -> None:
    pack = tmp_path / "Pack"
    write(pack / "A_Kick.wav", audio.kick())
    write(pack / "B_Click.wav", np.full((1, 600), 0.5, np.float32))  # 12.5 ms
    write(pack / "C_Hat.wav", audio.hat())
    report = await library.index_folder("acc", pack)
    assert (report.added, report.failed) == (3, 0)
    found = {s.name: s for s in library.index.search("acc", SampleQuery(limit=10)).samples}
    assert set(found) == {"A_Kick.wav", "B_Click.wav", "C_Hat.wav"}
    assert (found["B_Click.wav"].kind, found["B_Click.wav"].bpm) == ("one-shot", None)


@pytest.mark.asyncio
async def test_a_file_whose_analysis_fails_is_counted_and_the_rest_indexed(
        library: SampleLibrary, folder: Path, monkeypatch) -> None:  # noqa: ANN001
    import samples.library as library_module

    real = library_module.analyse

    def analyse(data, rate: int):  # noqa: ANN001, ANN202 - planar float32
        if data.shape[-1] == audio.hat().shape[-1]:
            raise ValueError("an analysis fault")
        return real(data, rate)

    monkeypatch.setattr(library_module, "analyse", analyse)
    report = await library.index_folder("acc", folder)
    assert (report.added, report.failed) == (3, 1)
    names = {s.name for s in library.index.search("acc", SampleQuery(limit=10)).samples}
    assert "Hat_Closed.flac" not in names and len(names) == 3
    with pytest.raises(BadQuery, match="Hat_Closed.flac: could not be indexed"):
        await library.index_file("acc", folder, folder / "Drums" / "Hat_Closed.flac")


@pytest.mark.asyncio
async def test_analysis_and_names_land_in_the_library(library: SampleLibrary,
                                                      folder: Path) -> None:
    await library.index_folder("acc", folder)
    found = {s.name: s for s in library.index.search("acc", SampleQuery(limit=10)).samples}
    kick, chords = found["Kick_Hard.wav"], found["Chords_Am 120bpm.ogg"]
    assert (kick.kind, kick.instrument) == ("one-shot", "kick")
    assert chords.key == (9, "minor") and abs(chords.bpm - 120) <= 1
    assert chords.analysis["name_bpm"] == 120.0 and chords.analysis["name_key"] == [9, "minor"]
    assert (await library.get("acc", kick.id)).path == str(folder / "Drums" / "Kick_Hard.wav")
    with pytest.raises(SampleNotFound):
        await library.get("other", kick.id)


def entry(n: int, account: str = "acc", **fields) -> Sample:  # noqa: ANN003 - Sample fields
    base = Sample(account_id=account, id=f"s{n}", folder="/f", path=f"/f/{n}.wav",
                  name=f"{n}.wav", content_hash="h", size=1, mtime_ns=1, words=(),
                  duration=1.0, loudness_lufs=-14.0, peak_db=-1.0, bpm=None, bpm_confidence=0,
                  key=None, key_confidence=0, kind="one-shot", instrument="other",
                  instrument_confidence=0.5, analysis={}, indexed_at=0.0)
    return replace(base, **fields)


def ids(result: SearchResult) -> list[str]:
    return [s.id for s in result.samples]


def test_filters_select_by_tempo_key_type_class_and_tags() -> None:
    index = SearchIndex()
    index.add_many([
        entry(1, bpm=120.0, kind="loop", key=(9, "minor"), words=("dark", "piano")),
        entry(2, bpm=60.0, kind="loop", key=(0, "major"), words=("piano",)),
        entry(3, bpm=240.0, kind="loop", key=(2, "minor")),
        entry(4, instrument="kick", words=("punchy", "kick")),
        entry(5, account="other", bpm=120.0, kind="loop", key=(9, "minor")),
    ])
    assert ids(index.search("acc", SampleQuery(bpm_min=118, bpm_max=122))) == ["s1"]
    assert sorted(ids(index.search("acc", SampleQuery(bpm_min=118, bpm_max=122,
                                                      tempo_multiples=True)))) == \
        ["s1", "s2", "s3"]
    # the exact tempo ranks above its half and double
    assert ids(index.search("acc", SampleQuery(bpm_min=118, bpm_max=122,
                                               tempo_multiples=True)))[0] == "s1"
    assert ids(index.search("acc", SampleQuery(key="Am"))) == ["s1"]
    assert sorted(ids(index.search("acc", SampleQuery(key="Am", relative_key=True)))) == \
        ["s1", "s2"]
    assert ids(index.search("acc", SampleQuery(instrument="kick"))) == ["s4"]
    assert sorted(ids(index.search("acc", SampleQuery(kind="loop")))) == ["s1", "s2", "s3"]
    assert sorted(ids(index.search("acc", SampleQuery(tags=("piano",))))) == ["s1", "s2"]
    assert ids(index.search("nobody", SampleQuery())) == []
    with pytest.raises(BadQuery, match="unknown"):
        index.search("acc", SampleQuery(instrument="tuba"))
    with pytest.raises(BadQuery, match="swap"):
        index.search("acc", SampleQuery(bpm_min=130, bpm_max=120))


def test_text_ranks_exact_over_prefix_over_fuzzy_and_needs_every_word() -> None:
    index = SearchIndex()
    index.add_many([entry(1, words=("kicks",)), entry(2, words=("kick", "hard")),
                    entry(3, words=("kik",)), entry(4, words=("snare",)),
                    entry(5, words=("kick", "soft"))])
    assert ids(index.search("acc", SampleQuery(text="kick")))[:3] == ["s2", "s5", "s1"]
    assert "s3" in ids(index.search("acc", SampleQuery(text="kick")))  # fuzzy: one letter off
    assert ids(index.search("acc", SampleQuery(text="kick hard"))) == ["s2"]
    assert ids(index.search("acc", SampleQuery(text="snre"))) == ["s4"]


def test_replacing_samples_again_and_again_never_grows_the_index() -> None:
    index = SearchIndex()
    live = 3 * COMPACT_MIN
    index.add_many(entry(n, words=("loop", f"w{n % 7}"), bpm=float(90 + n % 60),
                         kind="loop") for n in range(live))
    for round_ in range(4):  # every file re-indexed, as a folder re-scan would
        for n in range(live):
            index.add(entry(n, words=("loop", f"r{round_}"), bpm=float(90 + n % 60),
                            kind="loop"))
        assert index.tombstones * 4 <= len(index._rows) or index.tombstones < COMPACT_MIN
        assert len(index._rows) < 2 * live
    assert len(index) == live
    assert index.search("acc", SampleQuery(text="loop", limit=1)).total == live
    assert index.search("acc", SampleQuery(text="r3", limit=1)).total == live
    assert index.search("acc", SampleQuery(text="r2", limit=1)).total == 0
    hits = index.search("acc", SampleQuery(bpm_min=100, bpm_max=100, limit=200))
    assert sorted(ids(hits)) == sorted(f"s{n}" for n in range(live) if n % 60 == 10)
    for n in range(live - 10):
        index.remove(f"s{n}")
    assert ids(index.search("acc", SampleQuery(text="loop"))) and len(index) == 10
    assert sorted(ids(index.search("acc", SampleQuery(text="loop")))) == sorted(
        f"s{n}" for n in range(live - 10, live))


@pytest.mark.asyncio
async def test_the_index_is_built_lazily_and_keeps_changes_made_meanwhile(
        library: SampleLibrary, folder: Path) -> None:
    await library.index_folder("acc", folder)
    await library.index_folder("keep", folder)
    restarted = SampleLibrary(library.database)
    assert await restarted.load() == 8  # returns at once: the build runs off the loop
    with pytest.raises(RuntimeError, match="still being built"):
        restarted.index.search("acc", SampleQuery())
    assert await restarted.forget_account("acc") == 4  # during the build
    async with asyncio.timeout(30):
        index = await restarted.searchable()
    assert index.search("acc", SampleQuery()).total == 0
    assert index.search("keep", SampleQuery()).total == 4
    assert restarted.index is index


def test_pages_follow_the_ranking_and_a_removed_sample_is_gone() -> None:
    index = SearchIndex()
    index.add_many(entry(n, words=("loop",)) for n in range(5))
    first = index.search("acc", SampleQuery(text="loop", limit=2))
    second = index.search("acc", SampleQuery(text="loop", limit=2, offset=first.next_offset))
    last = index.search("acc", SampleQuery(text="loop", limit=2, offset=second.next_offset))
    assert first.total == 5 and last.next_offset is None
    assert len({*ids(first), *ids(second), *ids(last)}) == 5
    index.remove("s0")
    assert index.search("acc", SampleQuery(text="loop")).total == 4
    index.add(entry(1, words=("renamed",)))  # a new version replaces the old one
    assert index.search("acc", SampleQuery(text="loop")).total == 3
    assert len(index) == 4


class CatalogueProvider(SampleProvider):
    """A fake remote catalogue: samples it "downloads" into a cache folder on fetch."""

    name = "remote"

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.index = SearchIndex()
        self.index.add(entry(1, account="acc", words=("remote", "kick"), instrument="kick"))
        self.fetched: list[str] = []

    async def search(self, account_id: str, query: SampleQuery) -> SearchResult:
        return self.index.search(account_id, query)

    async def get(self, account_id: str, sample_id: str) -> Sample:
        for sample in self.index.search(account_id, SampleQuery(limit=200)).samples:
            if sample.id == sample_id:
                return sample
        raise SampleNotFound(f"no sample {sample_id!r}")

    async def fetch(self, account_id: str, sample_id: str) -> str:
        await self.get(account_id, sample_id)
        self.fetched.append(sample_id)
        return str(write(self.cache / f"{sample_id}.wav", audio.kick()))


@pytest.mark.asyncio
async def test_a_remote_provider_plugs_in_beside_the_local_one(library: SampleLibrary,
                                                                folder: Path,
                                                                tmp_path: Path) -> None:
    await library.index_folder("acc", folder)
    providers: list[SampleProvider] = [LocalProvider(library), CatalogueProvider(tmp_path)]
    hits = {p.name: ids(await p.search("acc", SampleQuery(text="kick"))) for p in providers}
    assert hits["remote"] == ["s1"] and len(hits["local"]) == 1
    remote = providers[1]
    assert sf.info(await remote.fetch("acc", "s1")).frames == audio.kick().shape[1]
    with pytest.raises(SampleNotFound):
        await remote.get("other", "s1")
    local_kick = hits["local"][0]
    assert Path(await providers[0].fetch("acc", local_kick)).name == "Kick_Hard.wav"


def test_a_preview_at_another_tempo_is_as_much_longer_as_the_tempo_ratio() -> None:
    loop = audio.click_track(120.0, 4.0)
    sample = entry(1, bpm=120.0, key=(9, "minor"), kind="loop")
    ratio, shift = plan(sample, 100.0, "B minor")
    assert (ratio, shift) == (pytest.approx(100 / 120), 2)
    made = render(loop, RATE, ratio, shift)
    assert made.method == "rubberband"
    expected = loop.shape[1] / ratio
    assert abs(made.audio.shape[1] - expected) / expected < 0.01
    assert render(loop, RATE, 1.0, 0).audio is loop
    with pytest.raises(BadQuery, match="nearer tempo"):
        plan(sample, 25.0, None)


def test_without_rubber_band_the_preview_shifts_pitch_by_resampling(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr("samples.preview.rubberband_available", lambda: False)
    tone = np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE).astype(np.float32)[None]
    made = render(tone, RATE, 1.0, 12)
    assert made.method == "resample" and made.tempo_ratio == 1.0
    spectrum = np.abs(np.fft.rfft(made.audio[0]))
    peak_hz = np.argmax(spectrum) * RATE / made.audio.shape[1]
    assert peak_hz == pytest.approx(880, rel=0.01)


@pytest.mark.asyncio
async def test_forgetting_an_account_drops_its_samples_only(library: SampleLibrary,
                                                           folder: Path) -> None:
    await library.index_folder("acc", folder)
    await library.index_folder("keep", folder)
    assert await library.forget_account("acc") == 4
    assert library.index.search("acc", SampleQuery()).total == 0
    assert library.index.search("keep", SampleQuery()).total == 4
    assert await SampleLibrary(library.database).load() == 4


@pytest.mark.asyncio
async def test_a_second_load_replaces_the_first_build(library: SampleLibrary,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from samples import library as module

    release, built = threading.Event(), module._index_of

    def held(rows):  # noqa: ANN001, ANN202 - the first build stays under way until released
        release.wait(10)
        return built(rows)

    monkeypatch.setattr(module, "_index_of", held)
    await library.load()
    first = library._build
    waiting = asyncio.create_task(library.searchable())  # waits on the first build
    await asyncio.sleep(0.05)
    monkeypatch.setattr(module, "_index_of", built)
    await library.load()
    release.set()
    async with asyncio.timeout(30):
        index = await waiting
    assert first is not None and first.cancelled()  # not left to replay and assign
    assert index is library.index and library._build is not first
