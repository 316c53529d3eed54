"""Sample analysis on generated audio with known answers; what names say."""

from __future__ import annotations

import numpy as np
import pytest
import samples_audio as audio

from samples.analysis import analyse
from samples.errors import BadQuery
from samples.music import parse_key, relative, semitones_between
from samples.tags import parse_name

RATE = audio.RATE


@pytest.mark.parametrize("bpm", [90.0, 120.0, 128.0, 174.0])
def test_a_click_track_has_its_tempo_within_one_bpm(bpm: float) -> None:
    found = analyse(audio.click_track(bpm, 8.0), RATE)
    assert found.bpm is not None and abs(found.bpm - bpm) <= 1.0, found
    assert found.bpm_confidence > 0.5
    assert found.kind == "loop"


def test_a_click_track_not_on_whole_bars_still_measures_its_tempo() -> None:
    found = analyse(audio.click_track(120.0, 6.3), RATE)
    assert abs(found.bpm - 120.0) <= 1.0


def test_a_short_sample_gets_no_tempo_but_keeps_a_confidence() -> None:
    found = analyse(audio.click_track(120.0, 1.2), RATE)
    assert found.bpm is None
    assert 0.0 <= found.bpm_confidence <= 1.0


def test_noise_has_no_confident_tempo() -> None:
    noise = np.random.default_rng(3).standard_normal((1, RATE * 4)).astype(np.float32) * 0.1
    assert analyse(noise, RATE).bpm is None


def test_an_a_minor_chord_loop_is_in_a_minor() -> None:
    found = analyse(audio.am_chord(), RATE)
    assert found.key == (9, "minor"), found
    assert found.key_confidence >= 0.5
    assert found.kind == "loop" and abs(found.bpm - 120.0) <= 1.0


def test_a_c_major_pad_is_in_c_major_and_a_pad() -> None:
    found = analyse(audio.pad(), RATE)
    assert found.key == (0, "major")
    assert found.instrument == "pad"


def test_a_decaying_sine_is_a_one_shot_kick() -> None:
    found = analyse(audio.kick(), RATE)
    assert found.kind == "one-shot"
    assert found.instrument == "kick" and found.instrument_confidence >= 0.5
    assert found.bpm is None


@pytest.mark.parametrize(("make", "expected"), [(audio.hat, "hat"), (audio.snare, "snare")])
def test_noise_bursts_are_hats_or_snares_by_their_band(make, expected: str) -> None:  # noqa: ANN001
    found = analyse(make(), RATE)
    assert (found.kind, found.instrument) == ("one-shot", expected)
    assert found.key is None  # noise has no key


@pytest.mark.parametrize("frames", [1, 100, 500])
def test_a_very_short_sample_is_a_one_shot_without_tempo(frames: int) -> None:
    """Fewer onset frames than the flux's local-mean window (< ~41 ms) still analyse."""
    hit = np.random.default_rng(frames).standard_normal((2, frames)).astype(np.float32) * 0.3
    found = analyse(hit, 44100)
    assert found.duration == pytest.approx(frames / 44100)
    assert (found.kind, found.bpm) == ("one-shot", None)
    assert found.instrument in ("kick", "snare", "hat", "bass", "pad", "other")
    assert all(np.isfinite(v) for v in (found.peak_db, found.bpm_confidence,
                                        found.key_confidence, found.instrument_confidence))


def test_loudness_and_peak_follow_the_level() -> None:
    loud = analyse(audio.pad(), RATE)
    quiet = analyse(audio.pad() * np.float32(0.5), RATE)
    assert quiet.loudness_lufs == pytest.approx(loud.loudness_lufs - 6.02, abs=0.05)
    assert quiet.peak_db == pytest.approx(loud.peak_db - 6.02, abs=0.01)


def test_silence_has_no_loudness() -> None:
    found = analyse(np.zeros((1, RATE), np.float32), RATE)
    assert found.loudness_lufs is None and found.peak_db == -90.0


def test_names_give_words_tempo_key_kind_and_class() -> None:
    tags = parse_name("/lib/Packs/Trap Drums/Kick_120bpm_Am.wav", "/lib")
    assert {"trap", "drums", "kick"} <= set(tags.words)
    assert (tags.bpm, tags.key, tags.instrument) == (120.0, (9, "minor"), "kick")
    loop = parse_name("/lib/Loops/VocalChop 90 F#min.flac", "/lib")
    assert (loop.kind, loop.instrument, loop.bpm, loop.key) == ("loop", "vocal", 90.0,
                                                               (6, "minor"))
    assert parse_name("/lib/OneShots/808_C.wav", "/lib").kind == "one-shot"
    assert parse_name("/lib/a snare.wav", "/lib").key is None  # "a" is a word here


def test_keys_parse_and_relate() -> None:
    assert parse_key("Am") == parse_key("A minor") == (9, "minor")
    assert parse_key("Bb") == (10, "major")
    assert relative(9, "minor") == (0, "major")
    assert semitones_between((9, "minor"), (11, "minor")) == 2
    assert semitones_between((9, "minor"), (0, "major")) == 0  # relative keys fit as they are
    assert semitones_between((0, "major"), (10, "major")) == -2
    with pytest.raises(BadQuery, match="not a key"):
        parse_key("H minor")
