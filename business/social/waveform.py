"""Waveform videos: an MP4 (H.264 + AAC) drawn by ffmpeg from a project's audio.

No network publishes an audio file, so the composer offers a video of it instead: the
audio's waveform (``showwaves``) or spectrum (``showfreqs``) over a colour or a still
image, with an optional title, 1080x1080 or 1280x720, checked against the target
network's video rules before and after rendering. The job ``social.waveform`` renders
one from a platform asset (``context.asset_path``) into the plug-in's data directory;
the result is a media reference ``wf_<hex>`` that dispatch resolves like an asset.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from business.social.errors import SocialError
from business.social.networks.base import MediaItem
from business.social.validation import errors, rules_for, validate

#: Frame sizes by shape.
SHAPES = {"square": (1080, 1080), "landscape": (1280, 720)}
STYLES = ("waves", "freqs")
#: Media references of rendered videos: ``wf_`` and 24 hex digits.
PREFIX = "wf_"
_ID = re.compile(r"^wf_[0-9a-f]{24}$")
FPS = 30

Progress = Callable[[float], None]


class WaveformError(SocialError):
    """Audio that cannot become a video for the network (no audio stream, too long...)."""


@dataclass(frozen=True)
class Request:
    """What to render: the target network, shape, style, title and background image."""

    network: str
    shape: str = "square"
    style: str = "waves"
    title: str = ""
    image: str | None = None

    def __post_init__(self) -> None:
        rules_for(self.network)  # a ValueError naming the networks
        if self.shape not in SHAPES:
            raise WaveformError(f"unknown shape {self.shape!r}: use one of {sorted(SHAPES)}")
        if self.style not in STYLES:
            raise WaveformError(f"unknown style {self.style!r}: use one of {list(STYLES)}")
        if len(self.title) > 120:
            raise WaveformError(f"the title has {len(self.title)} characters; keep it to 120")


#: The longest an ffprobe run may take before the file is refused as unreadable.
PROBE_TIMEOUT_S = 30.0


async def _run(*args: str, timeout_s: float) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate()
    except (TimeoutError, asyncio.CancelledError):
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out, err


async def probe(path: str | Path) -> dict[str, Any]:
    """ffprobe's streams and format of ``path`` (a :class:`WaveformError` if unreadable
    or not read within :data:`PROBE_TIMEOUT_S`); the error names the file, never the
    folder it is kept in."""
    name = Path(path).name
    try:
        code, out, err = await _run("ffprobe", "-v", "error", "-print_format", "json",
                                    "-show_streams", "-show_format", str(path),
                                    timeout_s=PROBE_TIMEOUT_S)
    except TimeoutError:
        raise WaveformError(f"{name} could not be read within {PROBE_TIMEOUT_S:.0f} s"
                            ) from None
    if code != 0:
        said = err.decode(errors="replace").replace(str(path), name).strip()[-200:]
        raise WaveformError(f"{name} is not a readable audio file: {said}")
    return json.loads(out)


async def audio_duration(path: str | Path) -> float:
    """The length of ``path``'s audio stream in seconds; refused without one."""
    info = await probe(path)
    audio = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if not audio:
        raise WaveformError(f"{Path(path).name} has no audio stream to draw")
    value = audio[0].get("duration") or info.get("format", {}).get("duration")
    try:
        duration = float(value)
    except (TypeError, ValueError):
        raise WaveformError(f"{Path(path).name} has no known duration") from None
    if duration <= 0:
        raise WaveformError(f"{Path(path).name} is empty (0 s of audio)")
    return duration


def _graph(request: Request, title_file: str | None) -> str:
    width, height = SHAPES[request.shape]
    band = height // 2
    if request.style == "waves":
        draw = f"showwaves=s={width}x{band}:mode=cline:colors=0x35c4f0:r={FPS}"
    else:
        draw = f"showfreqs=s={width}x{band}:mode=bar:ascale=sqrt:colors=0x35c4f0"
    if request.image:
        back = (f"[1:v]scale={width}:{height}:force_original_aspect_ratio=increase,"
                f"crop={width}:{height},setsar=1,fps={FPS}[bg]")
    else:
        back = f"color=c=0x101820:s={width}x{height}:r={FPS}[bg]"
    graph = (f"{back};[0:a]{draw},format=rgba[w];"
             f"[bg][w]overlay=0:({height}-h)/2:shortest=1,format=yuv420p")
    if title_file:
        graph += (f",drawtext=textfile='{title_file}':fontcolor=white:fontsize="
                  f"{height // 18}:x=(w-text_w)/2:y=h/10")
    return graph + "[v]"


async def render(audio: str | Path, out: str | Path, request: Request, *,
                 progress: Progress | None = None) -> MediaItem:
    """Render ``audio`` to the MP4 ``out`` for ``request.network``; the video as the
    rules see it. Too long (or, rendered, too big) for the network: :class:`WaveformError`.
    """
    duration = await audio_duration(audio)
    rules = rules_for(request.network)
    if rules.max_video_s is not None and duration > rules.max_video_s:
        raise WaveformError(
            f"{Path(audio).name} lasts {duration:.1f} s; {rules.name} takes videos up to "
            f"{rules.max_video_s:g} s: cut the audio or choose another network")
    if rules.min_video_s is not None and duration < rules.min_video_s:
        raise WaveformError(
            f"{Path(audio).name} lasts {duration:.1f} s; {rules.name} needs videos of at "
            f"least {rules.min_video_s:g} s: choose a longer audio")
    if request.image and not Path(request.image).is_file():
        raise WaveformError(f"the background image {request.image!r} does not exist")
    width, height = SHAPES[request.shape]
    with tempfile.TemporaryDirectory() as tmp:
        title_file = None
        if request.title:
            title_file = str(Path(tmp) / "title.txt")
            Path(title_file).write_text(request.title, encoding="utf-8")
        args = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                "-i", str(audio)]
        if request.image:
            args += ["-loop", "1", "-i", request.image]
        args += ["-filter_complex", _graph(request, title_file), "-map", "[v]", "-map", "0:a",
                 "-t", f"{duration:.3f}", "-c:v", "libx264", "-preset", "veryfast",
                 "-pix_fmt", "yuv420p", "-r", str(FPS), "-c:a", "aac", "-b:a", "192k",
                 "-ar", "48000", "-movflags", "+faststart", "-progress", "pipe:1",
                 "-nostats", str(out)]
        await _ffmpeg(args, duration, progress)
    item = MediaItem("video", "video/mp4", Path(out).stat().st_size, str(out),
                     duration_s=await _video_duration(out), width=width, height=height)
    problems = [p for p in errors(validate(request.network, "", (item,)))
                if p.field.startswith("media")]
    if problems:
        Path(out).unlink(missing_ok=True)
        raise WaveformError("; ".join(p.message for p in problems))
    return item


async def _ffmpeg(args: list[str], duration: float, progress: Progress | None) -> None:
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    stderr = asyncio.ensure_future(proc.stderr.read())
    async for raw in proc.stdout:
        key, _, value = raw.decode(errors="replace").strip().partition("=")
        if key == "out_time_us" and progress is not None and value.isdigit():
            progress(min(1.0, int(value) / 1e6 / duration))
    code = await proc.wait()
    if code != 0:
        message = (await stderr).decode(errors="replace").strip()[-300:]
        raise WaveformError(f"ffmpeg could not render the video: {message}")
    await stderr
    if progress is not None:
        progress(1.0)


async def _video_duration(path: str | Path) -> float:
    info = await probe(path)
    return round(float(info["format"]["duration"]), 3)


def new_id() -> str:
    """A fresh media reference for a rendered video."""
    return PREFIX + secrets.token_hex(12)


def video_path(data_dir: str | Path, account_id: str, media_id: str) -> Path | None:
    """Where the rendered video ``media_id`` of ``account_id`` lives (None: not ours)."""
    if not _ID.match(media_id) or not re.fullmatch(r"[\w.-]+", account_id):
        return None
    return Path(data_dir) / "social" / "waveforms" / account_id / f"{media_id}.mp4"


def reference(media_id: str, item: MediaItem) -> dict[str, Any]:
    """The media reference the composer attaches (the shape of a project asset's)."""
    return {"asset_id": media_id, "kind": item.kind, "content_type": item.content_type,
            "size_bytes": item.size_bytes, "duration_s": item.duration_s,
            "width": item.width, "height": item.height}
