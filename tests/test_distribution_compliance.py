"""The compliance gate over a table of good and bad releases (real audio and images)."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from distribution_helpers import TODAY, make_art, make_audio, release_dict

from business.distribution.compliance import check_release
from business.distribution.models import release_from_dict


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compliance")
    return {
        "good_art": make_art(root / "good.jpg"),
        "good_png": make_art(root / "good.png", fmt="PNG"),
        "small_art": make_art(root / "small.jpg", size=1400),
        "wide_art": make_art(root / "wide.jpg", width=2800),
        "cmyk_art": make_art(root / "cmyk.jpg", mode="CMYK"),
        "rgba_art": make_art(root / "rgba.png", mode="RGBA", fmt="PNG"),
        "gif_art": make_art(root / "cover.gif", size=3000, mode="P", fmt="GIF"),
        "upscaled_art": make_art(root / "upscaled.jpg", upscaled_from=750),
        "not_image": _write(root / "cover.txt", b"not an image"),
        "good_wav": make_audio(root / "good.wav"),
        "good_flac": make_audio(root / "good.flac", subtype="PCM_16"),
        "hires": make_audio(root / "hires.wav", rate=96_000),
        "low_rate": make_audio(root / "low.wav", rate=22_050),
        "float_wav": make_audio(root / "float.wav", subtype="FLOAT"),
        "ogg": make_audio(root / "song.ogg", subtype="VORBIS"),
        "clipped": make_audio(root / "clipped.wav", clip=True),
        "hot": make_audio(root / "hot.wav", amplitude=0.97),
        "long_lead": make_audio(root / "lead.wav", lead_s=6.0),
        "some_tail": make_audio(root / "tail.wav", tail_s=3.0),
        "silent": make_audio(root / "silent.wav", amplitude=0.0),
    }


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _base(files: dict[str, Path]) -> dict[str, Any]:
    return release_dict(files["good_art"].parent, art=files["good_art"],
                        audio=[files["good_wav"]])


Mutation = Callable[[dict[str, Any], dict[str, Path]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(release: dict[str, Any], files: dict[str, Path]) -> None:
        target: Any = release
        *parents, last = path.split(".")
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[last] = str(files[value[1:]]) if isinstance(value, str) and \
            value.startswith("@") else value
    return mutate


def _days(n: int) -> str:
    return (TODAY + dt.timedelta(days=n)).isoformat()


GOOD: list[tuple[str, list[Mutation]]] = [
    ("a plain single", []),
    ("PNG art and FLAC audio", [_set("artwork_path", "@good_png"),
                                _set("tracks.0.audio_path", "@good_flac")]),
    ("96 kHz audio", [_set("tracks.0.audio_path", "@hires")]),
    ("an EAN-13 and an ISWC", [_set("upc", "4006381333931"),
                               _set("tracks.0.iswc", "T-034.524.680-1")]),
    ("territories by country", [_set("territories", ["US", "DE", "JP"])]),
    ("a featured artist in the artists list",
     [_set("tracks.0.artists", [{"name": "Ada Lovelace", "role": "primary"},
                                {"name": "Grace Hopper", "role": "featuring"}])]),
]

BAD: list[tuple[str, list[Mutation], str, str]] = [
    ("no title", [_set("title", "")], "missing_field", "title"),
    ("no primary artist", [_set("artists", [{"name": "X", "role": "featuring"}])],
     "missing_field", "artists"),
    ("no label", [_set("label", " ")], "missing_field", "label"),
    ("no genre", [_set("genre", "")], "missing_field", "genre"),
    ("unknown language", [_set("language", "xx")], "language", "language"),
    ("UPC check digit", [_set("upc", "036000291453")], "upc", "upc"),
    ("UPC too short", [_set("upc", "12345")], "upc", "upc"),
    ("ISRC malformed", [_set("tracks.0.isrc", "US-123")], "isrc", "tracks[0].isrc"),
    ("no ISRC", [_set("tracks.0.isrc", "")], "missing_field", "tracks[0].isrc"),
    ("ISWC check digit", [_set("tracks.0.iswc", "T-034.524.680-2")], "iswc",
     "tracks[0].iswc"),
    ("P line without year", [_set("p_line", "Booster Records")], "line_year", "p_line"),
    ("no C line", [_set("c_line", "")], "missing_field", "c_line"),
    ("unknown territory", [_set("territories", ["US", "ZZ"])], "territory", "territories"),
    ("feat. in title", [_set("title", "Night Drive (feat. Grace)")], "feat_in_title",
     "title"),
    ("ft. in track title", [_set("tracks.0.title", "Night ft. Grace")], "feat_in_title",
     "tracks[0].title"),
    ("store name in title", [_set("title", "Night Drive (Spotify Edition)")], "store_name",
     "title"),
    ("price in title", [_set("tracks.0.title", "Night Drive $0.99")], "price_in_title",
     "tracks[0].title"),
    ("free in version", [_set("version", "Free Download")], "price_in_title", "version"),
    ("exclusive in title", [_set("title", "Night Drive Exclusive")], "exclusive_in_title",
     "title"),
    ("date in the past", [_set("release_date", _days(-1))], "release_date_past",
     "release_date"),
    ("date malformed", [_set("release_date", "25/12/2026")], "release_date", "release_date"),
    ("no composer", [_set("tracks.0.contributors", [])], "missing_field",
     "tracks[0].contributors"),
    ("explicit track, clean release", [_set("tracks.0.explicit", True)], "explicit",
     "explicit"),
    ("art too small", [_set("artwork_path", "@small_art")], "artwork_size", "artwork_path"),
    ("art not square", [_set("artwork_path", "@wide_art")], "artwork_square",
     "artwork_path"),
    ("art in CMYK", [_set("artwork_path", "@cmyk_art")], "artwork_mode", "artwork_path"),
    ("art with alpha", [_set("artwork_path", "@rgba_art")], "artwork_mode", "artwork_path"),
    ("art as GIF", [_set("artwork_path", "@gif_art")], "artwork_format", "artwork_path"),
    ("art upscaled", [_set("artwork_path", "@upscaled_art")], "artwork_upscaled",
     "artwork_path"),
    ("art not an image", [_set("artwork_path", "@not_image")], "artwork_unreadable",
     "artwork_path"),
    ("audio 22 kHz", [_set("tracks.0.audio_path", "@low_rate")], "audio_sample_rate",
     "tracks[0].audio_path"),
    ("audio float WAV", [_set("tracks.0.audio_path", "@float_wav")], "audio_bit_depth",
     "tracks[0].audio_path"),
    ("audio Ogg", [_set("tracks.0.audio_path", "@ogg")], "audio_format",
     "tracks[0].audio_path"),
    ("audio clipped", [_set("tracks.0.audio_path", "@clipped")], "audio_clipping",
     "tracks[0].audio_path"),
    ("audio 6 s leading silence", [_set("tracks.0.audio_path", "@long_lead")],
     "audio_leading_silence", "tracks[0].audio_path"),
    ("audio silent", [_set("tracks.0.audio_path", "@silent")], "audio_silent",
     "tracks[0].audio_path"),
    ("audio missing", [_set("tracks.0.audio_path", "/nonexistent/render.wav")],
     "audio_unreadable", "tracks[0].audio_path"),
]

WARNINGS: list[tuple[str, list[Mutation], str]] = [
    ("date in 3 days", [_set("release_date", _days(3))], "release_date_soon"),
    ("true peak above -1 dBTP", [_set("tracks.0.audio_path", "@hot")], "audio_true_peak"),
    ("3 s trailing silence", [_set("tracks.0.audio_path", "@some_tail")],
     "audio_trailing_silence"),
]


def _check(files: dict[str, Path], mutations: list[Mutation]) -> Any:
    release = copy.deepcopy(_base(files))
    for mutate in mutations:
        mutate(release, files)
    return check_release(release_from_dict(release), today=TODAY)


@pytest.mark.parametrize("name, mutations", GOOD, ids=[g[0] for g in GOOD])
def test_good_release_passes_with_no_issue(files: dict[str, Path], name: str,
                                           mutations: list[Mutation]) -> None:
    report = _check(files, mutations)
    assert report.passed, report.issues
    assert report.issues == []


@pytest.mark.parametrize("name, mutations, code, field", BAD, ids=[b[0] for b in BAD])
def test_bad_release_is_blocked_with_an_actionable_reason(
        files: dict[str, Path], name: str, mutations: list[Mutation], code: str,
        field: str) -> None:
    report = _check(files, mutations)
    assert not report.passed
    matching = [i for i in report.errors if i.code == code]
    assert matching, f"expected {code}, got {report.issues}"
    assert matching[0].field == field
    assert len(matching[0].message) > 20


@pytest.mark.parametrize("name, mutations, code", WARNINGS, ids=[w[0] for w in WARNINGS])
def test_warning_is_reported_but_does_not_block(files: dict[str, Path], name: str,
                                                mutations: list[Mutation], code: str) -> None:
    report = _check(files, mutations)
    assert report.passed, report.errors
    assert [i.code for i in report.warnings] == [code]


def test_every_problem_is_reported_at_once(files: dict[str, Path]) -> None:
    report = _check(files, [_set("title", "Hit feat. Bob"), _set("upc", "1"),
                            _set("artwork_path", "@small_art"),
                            _set("tracks.0.audio_path", "@clipped"),
                            _set("release_date", _days(-3))])
    assert {"feat_in_title", "upc", "artwork_size", "audio_clipping",
            "release_date_past"} <= report.codes()


def test_report_carries_loudness_and_true_peak_measurements(files: dict[str, Path]) -> None:
    report = _check(files, [])
    audio = report.audio["0"]
    # a 997 Hz stereo tone at amplitude 0.25 (-12.04 dBFS): BS.1770 gives about -12.0 LUFS
    assert audio["integrated_lufs"] == pytest.approx(-12.0, abs=0.3)
    assert audio["true_peak_dbtp"] == pytest.approx(-12.04, abs=0.1)
    assert report.artwork["width"] == 3000 and not report.artwork["looks_upscaled"]


def test_report_gives_the_checksum_of_the_bytes_it_measured(files: dict[str, Path]) -> None:
    report = _check(files, [])
    assert report.audio["0"]["sha256"] == hashlib.sha256(
        files["good_wav"].read_bytes()).hexdigest()
    assert report.artwork["sha256"] == hashlib.sha256(
        files["good_art"].read_bytes()).hexdigest()


def test_duplicate_isrc_across_tracks_is_refused(files: dict[str, Path]) -> None:
    release = release_dict(files["good_art"].parent, tracks=2, art=files["good_art"],
                           audio=[files["good_wav"], files["good_flac"]])
    release["tracks"][1]["isrc"] = release["tracks"][0]["isrc"]
    report = check_release(release_from_dict(release), today=TODAY, files=False)
    assert "isrc_duplicate" in report.codes()
