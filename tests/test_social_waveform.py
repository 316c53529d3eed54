"""Waveform videos: a tone bounce rendered by ffmpeg through the ``social.waveform`` job,
probed with ffprobe, attached to a post and published through the fake X; bad audio
(corrupt, no audio stream, too long for the network) refused with a clear error."""

from __future__ import annotations

import asyncio
import json
import math
import struct
import subprocess
import wave
from pathlib import Path
from typing import Any

import pluggy
import pytest
from social_fakes import dispatching, until

from business.social.posts import media_items
from business.social.validation import errors, validate
from business.social.waveform import Request, WaveformError, audio_duration, render
from business.social.waveform_jobs import (
    WAVEFORM,
    WaveformRun,
    erase_videos,
    media_file,
    queue_settings,
    render_waveform,
)
from dawserver.plugin_api import PluginContext
from jobs import JobContext, JobWorker

pytestmark = pytest.mark.timeout(120)


def tone(path: Path, seconds: float, rate: int = 48_000, hz: float = 440.0) -> Path:
    """A stereo 16-bit sine bounce, as the engine writes its WAV bounces."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = bytearray()
        for n in range(int(seconds * rate)):
            value = int(12_000 * math.sin(2 * math.pi * hz * n / rate))
            frames += struct.pack("<hh", value, value)
        out.writeframes(bytes(frames))
    return path


def ffprobe(path: Path) -> dict[str, Any]:
    answer = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json",
                             "-show_streams", "-show_format", str(path)],
                            check=True, capture_output=True, text=True)
    return json.loads(answer.stdout)


def plugin_context(tmp_path: Path, assets: dict[str, Path]) -> PluginContext:
    """The plug-in's context with an asset store holding ``assets`` for account "acc"."""
    async def asset_file(account_id: str, asset_id: str) -> str | None:
        path = assets.get(asset_id) if account_id == "acc" else None
        return None if path is None else str(path)

    return PluginContext(manager=pluggy.PluginManager("maxbooster"),
                         data_dir=tmp_path / "data", asset_file=asset_file)


def waveform_worker(queue: Any, context: PluginContext) -> JobWorker:
    """A job worker serving the waveform queue, as the server's does."""
    async def handle(job: JobContext) -> Any:
        return await render_waveform(context, WaveformRun(**job.payload), job)

    queue.configure(WAVEFORM, queue_settings())
    return JobWorker(queue, {WAVEFORM: handle}, poll_s=0.02)


async def rendered(queue: Any, context: PluginContext, payload: dict[str, Any]) -> Any:
    """Run one waveform job to its end; the job as stored."""
    record = await queue.enqueue(WAVEFORM, payload, account_id="acc")

    async def ended() -> bool:
        return (await queue.get("acc", record.id)).finished

    async with waveform_worker(queue, context):
        await until(ended, timeout=90)
    return await queue.get("acc", record.id)


def test_a_tone_bounce_becomes_a_video_published_on_x(tmp_path: Path) -> None:
    bounce = tone(tmp_path / "bounce.wav", 2.5)
    context = plugin_context(tmp_path, {"a_bounce": bounce})

    async def go() -> None:
        async with dispatching(f"sqlite://{tmp_path / 's.sqlite3'}", ["x"], tmp_path) as h:
            job = await rendered(h.queue, context, {
                "asset_id": "a_bounce", "network": "x", "shape": "square",
                "title": "Ada — Tone study"})
            assert job.state == "done", job.last_error
            assert job.progress == 1.0
            ref = job.result
            assert ref["asset_id"].startswith("wf_") and ref["kind"] == "video"
            path = Path(await media_file(context, "acc", ref["asset_id"]))
            assert await media_file(context, "other", ref["asset_id"]) is None
            info = ffprobe(path)
            video = [s for s in info["streams"] if s["codec_type"] == "video"]
            audio = [s for s in info["streams"] if s["codec_type"] == "audio"]
            assert [s["codec_name"] for s in video] == ["h264"]
            assert [s["codec_name"] for s in audio] == ["aac"]
            assert (video[0]["width"], video[0]["height"]) == (1080, 1080)
            assert abs(float(info["format"]["duration"]) - 2.5) <= 0.1
            assert abs(ref["duration_s"] - 2.5) <= 0.1
            assert ref["size_bytes"] == path.stat().st_size > 10_000
            assert errors(validate("x", "", media_items([ref]))) == []

            async def resolve(account: str, asset: str) -> str | None:
                return await media_file(context, account, asset)

            h.dispatcher.media_file = resolve
            channel = await h.channel("x")
            post = await h.due_post([channel], "New single, hear it", media=[ref])

            async def published() -> bool:
                stored = await h.store.post("acc", post.post_id)
                return stored is not None and stored.state in ("published", "failed")

            async with h.worker():
                await until(published)
            stored = await h.store.post("acc", post.post_id)
            assert stored.state == "published", [t.error for t in stored.targets]
            [tweet] = h.fake("x").posts
            [media_id] = tweet["media"]
            upload = h.fake("x").media[media_id]
            assert upload["category"] == "tweet_video" and upload["type"] == "video/mp4"
            sent = b"".join(upload["chunks"][i] for i in sorted(upload["chunks"]))
            assert sent == path.read_bytes()
            # an erased account's videos go with it
            assert erase_videos(context.data_dir, "acc") == 1
            assert not path.exists() and await media_file(context, "acc", ref["asset_id"]) is None

    asyncio.run(go())


def test_a_landscape_spectrum_over_an_image(tmp_path: Path) -> None:
    bounce = tone(tmp_path / "bounce.wav", 3.5, hz=880.0)
    image = tmp_path / "cover.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=s=640x640:d=1", "-frames:v", "1", str(image)], check=True)
    seen: list[float] = []
    item = asyncio.run(render(bounce, tmp_path / "out.mp4",
                              Request("instagram", "landscape", "freqs", "", str(image)),
                              progress=seen.append))
    assert (item.width, item.height) == (1280, 720)
    info = ffprobe(tmp_path / "out.mp4")
    assert [s["codec_type"] for s in info["streams"]] == ["video", "audio"]
    assert abs(float(info["format"]["duration"]) - 3.5) <= 0.1
    assert seen[-1] == 1.0 and seen == sorted(seen)


def test_bad_audio_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "broken.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 8)
    silent_video = tmp_path / "picture.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=64x64:d=1",
                    "-c:v", "libx264", str(silent_video)], check=True)
    long_bounce = tone(tmp_path / "long.wav", 141.0, rate=8_000)
    context = plugin_context(tmp_path, {"a_broken": corrupt, "a_long": long_bounce})

    with pytest.raises(WaveformError, match="no audio stream"):
        asyncio.run(audio_duration(silent_video))
    with pytest.raises(WaveformError, match=r"up to 140 s"):
        asyncio.run(render(long_bounce, tmp_path / "x.mp4", Request("x")))
    with pytest.raises(WaveformError, match="unknown shape"):
        Request("x", shape="portrait")
    with pytest.raises(WaveformError, match=r"Instagram needs videos of at least 3 s"):
        asyncio.run(render(tone(tmp_path / "short.wav", 1.0), tmp_path / "x.mp4",
                           Request("instagram")))
    assert not (tmp_path / "x.mp4").exists()

    async def go() -> None:
        async with dispatching(f"sqlite://{tmp_path / 's.sqlite3'}", ["x"], tmp_path) as h:
            broken = await rendered(h.queue, context, {"asset_id": "a_broken", "network": "x"})
            assert broken.state == "dead" and broken.attempts == 1
            assert "broken.wav is not a readable audio file" in broken.last_error
            long = await rendered(h.queue, context, {"asset_id": "a_long", "network": "x"})
            assert long.state == "dead"
            assert "X takes videos up to 140 s" in long.last_error
            missing = await rendered(h.queue, context, {"asset_id": "a_none", "network": "x"})
            assert "there is no audio asset 'a_none'" in missing.last_error
        assert not list((tmp_path / "data").rglob("*.mp4"))

    asyncio.run(go())


def test_the_routes_render_an_accounts_own_audio_only(tmp_path: Path) -> None:
    from social_helpers import social_app, who

    bounce = tone(tmp_path / "bounce.wav", 2.0)
    corrupt = tmp_path / "broken.wav"
    corrupt.write_bytes(b"not audio at all" * 64)

    async def go() -> None:
        async with social_app(tmp_path, f"sqlite://{tmp_path / 's.sqlite3'}") as (client, ctx):
            assets = {"a_bounce": bounce, "a_broken": corrupt}

            async def asset_file(account_id: str, asset_id: str) -> str | None:
                path = assets.get(asset_id) if account_id == "acc" else None
                return None if path is None else str(path)

            ctx.asset_file = asset_file
            ada, bo = who("acc", "p_ada"), who("other", "p_bo")
            url = "/api/social/waveforms"
            answer = await client.post(url, json={"asset_id": "a_bounce", "network": "x",
                                                  "shape": "landscape"}, headers=ada)
            assert answer.status == 202, await answer.text()
            job = await answer.json()
            assert answer.headers["Location"] == f"{url}/{job['job_id']}"

            async def done() -> bool:
                got = await client.get(f"{url}/{job['job_id']}", headers=ada)
                return (await got.json())["state"] in ("done", "dead")

            await until(done, timeout=90)
            shown = await (await client.get(f"{url}/{job['job_id']}", headers=ada)).json()
            assert shown["state"] == "done" and shown["progress"] == 1.0, shown
            media = shown["media"]
            assert (media["width"], media["height"]) == (1280, 720)
            assert abs(media["duration_s"] - 2.0) <= 0.1
            assert errors(validate("x", "hear it", media_items([media]))) == []
            # another account sees neither the render nor the asset
            assert (await client.get(f"{url}/{job['job_id']}", headers=bo)).status == 404
            refused = await client.post(url, json={"asset_id": "a_bounce", "network": "x"},
                                        headers=bo)
            assert refused.status == 404
            bad = await client.post(url, json={"asset_id": "a_broken", "network": "x"},
                                    headers=ada)
            assert bad.status == 422
            assert "broken.wav is not a readable audio file" in await bad.text()
            odd = await client.post(url, json={"asset_id": "a_bounce", "network": "myspace"},
                                    headers=ada)
            assert odd.status == 422 and "unknown network" in await odd.text()
            short = await client.post(url, json={"asset_id": "a_bounce",
                                                 "network": "instagram"}, headers=ada)
            assert short.status == 422 and "at least 3 s" in await short.text()

    asyncio.run(go())
