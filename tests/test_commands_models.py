"""``dawserver models install`` and ``dawserver models path``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from transcription.models import BASE_MODEL_SIZE, verify_base_model


def dawserver(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dawserver", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})


def test_install_assembles_the_base_model_where_asked(tmp_path: Path) -> None:
    result = dawserver("models", "install", "--dest", str(tmp_path / "base"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "base")
    assert "100%" in result.stderr
    assert verify_base_model(tmp_path / "base")


def test_install_and_path_use_the_models_directory(tmp_path: Path) -> None:
    env = {"DAW_MODELS_DIR": str(tmp_path), "DAW_WHISPER_MODEL": ""}
    assert dawserver("models", "path", **env).returncode == 1
    result = dawserver("models", "install", "--no-progress", **env)
    assert result.returncode == 0 and result.stderr == ""
    result = dawserver("models", "path", **env)
    assert result.returncode == 0
    assert result.stdout.split("\t") == [str(tmp_path / "whisper-base"), "multilingual",
                                         f"{BASE_MODEL_SIZE} bytes\n"]


def test_path_of_a_wrong_directory_is_one_error_line(tmp_path: Path) -> None:
    result = dawserver("models", "path", "--model", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "missing model.bin" in result.stderr
    assert len(result.stderr.splitlines()) == 1
