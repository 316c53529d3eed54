"""Marketplace: the tagged preview's real-time factor, against ffmpeg encoding the same
audio alone; and a licence contract's PDF.

Each round renders one beat's preview (:func:`render_preview`: decode the WAV, mix the
voice tag every 30 s, LAME-encode 128 kbit/s MP3 through lameenc) and, as the same-run
baseline, has ffmpeg (libmp3lame, 128 kbit/s) encode the same WAV to MP3 with no mix.
Both are single-threaded. The figures are the real-time factor of each (seconds of audio
per second of work) and the median ratio over rounds of ffmpeg's time to ours (above 1:
ours is faster). The contract figure: a default contract rendered in the text sandbox
and laid out by fpdf2, per second, in this process (the render pool adds one hop to a
worker process).

Run: ``python -m pytest benchmarks/bench_marketplace_preview.py --benchmark-enable -s``.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import numpy as np
import pytest
import soundfile

from benchmarks.conftest import SMOKE, median_ratio, record, rounds_of
from business.marketplace.contract_pdf import (
    DEFAULT_CONTRACT,
    render_contract,
    sample_contract_data,
)
from business.marketplace.preview_audio import TagSettings, render_preview
from business.marketplace.sandbox import Sandbox

SECONDS = 10.0 if SMOKE else 180.0
RATE = 44_100


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_preview_real_time_factor_against_ffmpeg(benchmark, tmp_path) -> None:  # noqa: ANN001
    rng = np.random.default_rng(1)
    frames = int(SECONDS * RATE)
    t = np.arange(frames) / RATE
    beat = (0.2 * np.sin(2 * np.pi * 110 * t)[:, None] + rng.normal(0, 0.05, (frames, 2))
            ).astype(np.float32)
    tag = (0.4 * np.sin(2 * np.pi * 880 * t[: RATE]))[:, None].astype(np.float32)
    beat_path, tag_path = tmp_path / "beat.wav", tmp_path / "tag.wav"
    soundfile.write(beat_path, beat, RATE, subtype="PCM_16")
    soundfile.write(tag_path, tag, RATE, subtype="PCM_16")
    out = tmp_path / "ffmpeg.mp3"
    sizes: dict[str, int] = {}

    def ours() -> None:
        mp3, _ = render_preview(str(beat_path), str(tag_path), TagSettings(-3.0, 30.0, 0.0))
        sizes["ours"] = len(mp3)

    def ffmpeg() -> None:
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-threads", "1", "-i", str(beat_path),
                        "-codec:a", "libmp3lame", "-b:a", "128k", str(out)], check=True)

    times = rounds_of({"ours": ours, "ffmpeg": ffmpeg}, rounds=5)
    sandbox = Sandbox(autoescape=False)
    data = sample_contract_data()
    count = 5 if SMOKE else 50
    start = time.perf_counter()
    for _ in range(count):
        pdf = render_contract(sandbox, DEFAULT_CONTRACT, data)
    contracts_per_s = count / (time.perf_counter() - start)
    assert pdf.startswith(b"%PDF") and sizes["ours"] > 0
    record(benchmark, audio_s=SECONDS,
           ours_rtf=SECONDS / float(np.median(times["ours"])),
           ffmpeg_rtf=SECONDS / float(np.median(times["ffmpeg"])),
           ffmpeg_over_ours=median_ratio(times, "ffmpeg", "ours"),
           contracts_per_s=contracts_per_s, contract_bytes=len(pdf))
