"""Tagged previews: the seller's voice tag mixed into each beat's streaming preview at its
intervals and gain, encoded to MP3 by a job with progress, rendered again when the tag
changes; the preview decoded and the tag found by cross-correlation where it belongs;
the untagged files never served in its place."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import soxr
from marketplace_helpers import Market, market, who
from scipy import signal

from business.marketplace.preview_audio import TagSettings, mix_tag, tag_times

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

M = "/api/marketplace"
RATE = 44_100
TAG_RATE = 22_050


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    soundfile.write(out, audio, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def beat_audio(seconds: float = 13.0) -> np.ndarray:
    """Quiet stereo noise with a steady kick: something to hide a tag in."""
    rng = np.random.default_rng(7)
    frames = int(seconds * RATE)
    noise = rng.normal(0.0, 0.05, (frames, 2)).astype(np.float32)
    t = np.arange(frames) / RATE
    kick = (0.3 * np.sin(2 * np.pi * 55 * t) * np.exp(-((t % 0.5) * 12))).astype(np.float32)
    return noise + kick[:, None]


def tag_audio() -> np.ndarray:
    """A 0.4 s chirp, mono at 22.05 kHz (resampled and spread to stereo by the mix)."""
    t = np.arange(int(0.4 * TAG_RATE)) / TAG_RATE
    return (0.5 * signal.chirp(t, 600, t[-1], 4000) * np.hanning(t.size)).astype(
        np.float32)[:, None]


def tag_positions(preview: np.ndarray, rate: int, count: int) -> tuple[list[float], float]:
    """Where the tag is found in ``preview`` (the ``count`` strongest correlation peaks,
    at least 1 s apart, in seconds) and how far the weakest of them stands above the
    correlation's typical level."""
    tag = soxr.resample(tag_audio(), TAG_RATE, rate)[:, 0]
    mono = preview.mean(axis=1)
    corr = np.abs(signal.correlate(mono, tag, mode="valid", method="fft"))
    peaks, _ = signal.find_peaks(corr, distance=rate)
    best = sorted(peaks[np.argsort(corr[peaks])[::-1][:count]])
    typical = float(np.median(corr)) or 1e-9
    return [p / rate for p in best], float(min(corr[best]) / typical)


async def wait_preview(m: Market, beat_id: str, *, not_sha: str | None = None
                       ) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            status, body = await m.call("GET", f"{M}/beats/{beat_id}/preview", who("seller"))
            assert status == 200, body
            if body["status"] == "failed" and body["job_state"] == "dead":
                return body
            if (body["status"] == "ready" and body["current"] and body["sha256"] != not_sha
                    and body["job_state"] == "done"):
                return body
            await asyncio.sleep(0.1)


async def new_beat(m: Market, source: bytes) -> dict[str, Any]:
    wav = m.assets.add("seller", f"wav-{len(m.assets.files)}", source)
    mp3 = m.assets.add("seller", f"mp3-{len(m.assets.files)}", source)
    status, beat = await m.call("POST", f"{M}/beats", who("seller"), {
        "title": "Night Drive", "bpm": 120, "key": "A minor", "currency": "usd",
        "files": [{"kind": "wav", "asset_id": wav}, {"kind": "mp3", "asset_id": mp3}]})
    assert status == 201, beat
    return beat


async def fetch(m: Market, url: str) -> tuple[int, bytes, dict[str, str]]:
    answer = await m.client.get(url)
    return answer.status, await answer.read(), dict(answer.headers)


async def test_the_preview_carries_the_tag_at_its_intervals(tmp_path: Path) -> None:
    source = wav_bytes(beat_audio(), RATE)
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        # no voice tag: no rendered preview, and nothing else served in its place
        plain = await new_beat(m, source)
        status, body = await m.call("GET", f"{M}/beats/{plain['beat_id']}/preview",
                                    who("seller"))
        assert status == 200 and body["status"] == "none"
        assert (await fetch(m, f"{M}/previews/seller/{plain['beat_id']}"))[0] == 404

        m.assets.add("seller", "voice", wav_bytes(tag_audio(), TAG_RATE))
        status, body = await m.call("PUT", f"{M}/voice-tag", who("seller"), {
            "asset_id": "voice", "gain_db": 0.0, "interval_s": 4.0, "first_s": 1.0})
        assert status == 200, body
        assert len(body["jobs"]) == 1  # the beat already on sale is rendered again
        beat = await new_beat(m, source)
        ready = await wait_preview(m, beat["beat_id"])
        assert ready["status"] == "ready", ready
        assert ready["progress"] == 1.0 and ready["job_state"] == "done"
        assert ready["duration_s"] == pytest.approx(13.0, abs=0.01)

        status, mp3, headers = await fetch(m, ready["url"])
        assert status == 200 and headers["Content-Type"] == "audio/mpeg"
        assert hashlib.sha256(mp3).hexdigest() == ready["sha256"]
        assert mp3 != source and (mp3[:3] == b"ID3" or mp3[0] == 0xFF)
        decoded, rate = soundfile.read(io.BytesIO(mp3), dtype="float32", always_2d=True)
        assert rate == RATE and decoded.shape[1] == 2
        found, strength = tag_positions(decoded, rate, 3)
        # tags at 1, 5 and 9 s (the MP3 codec's delay is a few ms)
        assert found == pytest.approx([1.0, 5.0, 9.0], abs=0.06), found
        assert strength > 8, strength
        # the control: the untagged source has no such peaks
        untagged, _ = soundfile.read(io.BytesIO(source), dtype="float32", always_2d=True)
        assert tag_positions(untagged, RATE, 3)[1] < strength / 4

        # the listing shows the rendered preview; the beat's own files are never served
        status, page = await m.call("GET", f"{M}/catalogue")
        listed = next(b for b in page["items"] if b["beat_id"] == beat["beat_id"])
        assert listed["preview_url"] == ready["url"]
        for f in beat["files"]:
            status, _, _ = await fetch(m, f"/store/nightshop/media/{f['asset_id']}")
            assert status == 404

        # in the storefront too
        status, _ = await m.call("PUT", f"{M}/storefront", who("seller"),
                                 {"handle": "nightshop", "name": "Nightshop"})
        assert status == 200
        status, html, _ = await fetch(m, f"/store/nightshop/beats/{beat['beat_id']}")
        assert f"/store/nightshop/preview/{beat['beat_id']}?v=".encode() in html
        status, served, _ = await fetch(m, f"/store/nightshop/preview/{beat['beat_id']}")
        assert status == 200 and served == mp3
        for f in beat["files"]:
            assert (await fetch(m, f"/store/nightshop/media/{f['asset_id']}"))[0] == 404


async def test_a_changed_tag_renders_the_previews_again(tmp_path: Path) -> None:
    source = wav_bytes(beat_audio(9.0), RATE)
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        m.assets.add("seller", "voice", wav_bytes(tag_audio(), TAG_RATE))
        tag = {"asset_id": "voice", "gain_db": 0.0, "interval_s": 3.0, "first_s": 0.5}
        assert (await m.call("PUT", f"{M}/voice-tag", who("seller"), tag))[0] == 200
        beat = await new_beat(m, source)
        first = await wait_preview(m, beat["beat_id"])
        loud = soundfile.read(io.BytesIO((await fetch(m, first["url"]))[1]),
                              dtype="float32", always_2d=True)[0]
        # the same settings again queue nothing new
        status, body = await m.call("PUT", f"{M}/voice-tag", who("seller"), tag)
        assert body["jobs"] == [first["job_id"]]
        status, body = await m.call("PUT", f"{M}/voice-tag", who("seller"),
                                    {**tag, "gain_db": -12.0, "first_s": 1.5})
        assert status == 200 and body["jobs"] and body["jobs"] != [first["job_id"]]
        second = await wait_preview(m, beat["beat_id"], not_sha=first["sha256"])
        assert second["status"] == "ready" and second["sha256"] != first["sha256"]
        quiet = soundfile.read(io.BytesIO((await fetch(m, second["url"]))[1]),
                               dtype="float32", always_2d=True)[0]
        found, _ = tag_positions(quiet, RATE, 3)
        assert found == pytest.approx([1.5, 4.5, 7.5], abs=0.06), found
        # the tag 12 dB down: its correlation peaks a quarter as high
        assert peak_height(quiet) / peak_height(loud) == pytest.approx(10 ** (-12 / 20),
                                                                        rel=0.15)


def peak_height(preview: np.ndarray) -> float:
    """The median height of the three strongest correlation peaks with the tag."""
    tag = soxr.resample(tag_audio(), TAG_RATE, RATE)[:, 0]
    corr = np.abs(signal.correlate(preview.mean(axis=1), tag, mode="valid", method="fft"))
    peaks, _ = signal.find_peaks(corr, distance=RATE)
    return float(np.median(np.sort(corr[peaks])[-3:]))


async def test_bad_tags_are_refused_and_unreadable_audio_is_reported(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        m.assets.add("other", "their-voice", wav_bytes(tag_audio(), TAG_RATE))
        status, body = await m.call("PUT", f"{M}/voice-tag", who("seller"),
                                    {"asset_id": "their-voice"})
        assert status == 422 and "not one of this account's" in body["error"]
        for bad in ({"asset_id": "v", "gain_db": 20}, {"asset_id": "v", "interval_s": 0.5}):
            assert (await m.call("PUT", f"{M}/voice-tag", who("seller"), bad))[0] == 422
        status, _ = await m.call("PUT", f"{M}/voice-tag", who("seller", "vi", "viewer"),
                                 {"asset_id": "v"})
        assert status == 403
        m.assets.add("seller", "voice", b"this is not audio")
        status, body = await m.call("PUT", f"{M}/voice-tag", who("seller"),
                                    {"asset_id": "voice"})
        assert status == 200 and body["voice_tag"]["gain_db"] == -3.0
        beat = await new_beat(m, wav_bytes(beat_audio(3.0), RATE))
        failed = await wait_preview(m, beat["beat_id"])
        assert failed["status"] == "failed" and "voice tag is not audio" in failed["error"]
        assert (await fetch(m, f"{M}/previews/seller/{beat['beat_id']}"))[0] == 404
        # another account's beat: 404 like a missing one
        status, _ = await m.call("GET", f"{M}/beats/{beat['beat_id']}/preview", who("other"))
        assert status == 404


async def test_the_mix_places_and_scales_the_tag() -> None:
    beat = np.zeros((10 * 1000, 2), np.float32)
    tag = np.ones((100, 1), np.float32)
    settings = TagSettings(gain_db=-6.0, interval_s=3.0, first_s=0.5)
    assert tag_times(10.0, settings) == [0.5, 3.5, 6.5, 9.5]
    mixed = mix_tag(beat, 1000, tag, 1000, settings)
    assert mixed.shape == beat.shape
    on = np.flatnonzero(mixed[:, 0])
    assert list(on[::100]) == [500, 3500, 6500, 9500]
    assert mixed[500, 1] == pytest.approx(10 ** (-6 / 20), rel=1e-6)
    assert np.abs(mixed).max() <= 1.0
    loud = mix_tag(np.full_like(beat, 0.9), 1000, tag, 1000, TagSettings(6.0, 3.0, 0.0))
    assert loud.max() == 1.0  # clipped at full scale
