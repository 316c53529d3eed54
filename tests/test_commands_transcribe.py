"""``dawserver transcribe`` end to end: formats, stdout or -o, progress bar, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from transcription.evaluation import SAMPLES, synthesize, word_error_rate


def dawserver(*args: str, model: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if model is not None:
        env["DAW_WHISPER_MODEL"] = str(model)
    return subprocess.run([sys.executable, "-m", "dawserver", *args], capture_output=True,
                          text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def german(tmp_path_factory: pytest.TempPathFactory) -> Path:
    voice, text = SAMPLES["de"]
    return synthesize(text, voice, tmp_path_factory.mktemp("cli") / "de.wav")


def test_json_on_stdout_with_detected_language_and_a_progress_bar(
        german: Path, whisper_model_dir: Path) -> None:
    result = dawserver("transcribe", str(german), "--threads", "2", model=whisper_model_dir)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["language"] == "de"
    words = data["segments"][0]["words"][0]
    assert set(words) == {"word", "start", "end", "probability"}
    text = " ".join(s["text"] for s in data["segments"])
    assert word_error_rate(SAMPLES["de"][1], text, "de") <= 0.45
    assert "100%" in result.stderr and "de.wav" in result.stderr


@pytest.mark.parametrize(("fmt", "start"), [("srt", "1\n00:00:00,"), ("vtt", "WEBVTT\n"),
                                            ("txt", "")])
def test_subtitle_and_text_formats_go_to_the_output_file(
        german: Path, whisper_model_dir: Path, tmp_path: Path, fmt: str, start: str) -> None:
    out = tmp_path / f"out.{fmt}"
    result = dawserver("transcribe", str(german), "-l", "de", "-f", fmt, "-o", str(out),
                       "--no-progress", "--threads", "2", model=whisper_model_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    text = out.read_text(encoding="utf-8")
    assert text.startswith(start) and "Park" in text


def test_list_languages_names_every_whisper_language() -> None:
    result = dawserver("transcribe", "--list-languages")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 100 and "de\tGerman" in lines and "yue\tCantonese" in lines


@pytest.mark.parametrize(("args", "message"), [
    (["transcribe"], "missing FILE"),
    (["transcribe", "/no/such.wav"], "does not exist"),
    (["transcribe", "{wav}", "-l", "xx"], "unknown language 'xx'"),
    (["transcribe", "{wav}", "--model", "/tmp"], "is not a faster-whisper model directory"),
])
def test_bad_input_is_one_error_line(german: Path, whisper_model_dir: Path, args: list[str],
                                     message: str) -> None:
    result = dawserver(*[a.format(wav=german) for a in args], model=whisper_model_dir)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
