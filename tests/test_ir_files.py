"""4-channel (true-stereo) impulse responses from files and uploaded assets; clips still
refuse more than two channels (docs/engine.md, the convolution section)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dawserver.asset_store import AssetStore, InvalidAudio
from dsp_core import AudioFileError, Clip, EffectSpec, Engine, Session, Track
from dsp_core.audio_io import MAX_IR_CHANNELS, SourceCache, audio_info, read_audio
from dsp_core.project import FORMAT_NAME, FORMAT_VERSION, check_sources, load_project
from tests.helpers_audio import DictLoader

pytestmark = pytest.mark.timeout(120)

SR = 48000
FRAMES = SR // 4


def _noise(channels: int, frames: int, seed: int, decay: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = np.exp(-np.arange(frames) / decay) if decay else 1.0
    return (0.3 * rng.standard_normal((channels, frames)) * shape).astype(np.float32)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, np.ndarray]:
    """A stereo voice and a 4-channel hall IR (LL, LR, RL, RR) as float WAVs in tmp_path."""
    audio = {"voice.wav": _noise(2, FRAMES, 1), "hall.wav": _noise(4, 6000, 2, decay=900)}
    for name, data in audio.items():
        sf.write(tmp_path / name, data.T, SR, subtype="FLOAT")
    return audio


def _session(voice: str, ir: str) -> Session:
    return Session(sample_rate=SR, tracks=[Track(
        id="t", channels=2, clips=[Clip(source=voice, position=0, length=FRAMES)],
        effects=[EffectSpec("convolution", {"ir": ir, "mix": 0.7})])])


def _render(engine: Engine) -> np.ndarray:
    out = np.zeros((2, engine.length), np.float32)
    for offset, part in engine.blocks(0, engine.length):
        out[:, offset:offset + part.shape[1]] = part
    return out


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_a_four_channel_wav_ir_in_a_project_renders_like_the_array(
        tmp_path: Path, files: dict[str, np.ndarray], backend: str) -> None:
    direct = _render(Engine(_session("voice", "hall"), backend=backend, block_size=100,
                            loader=DictLoader({"voice": files["voice.wav"],
                                               "hall": files["hall.wav"]})))
    project = tmp_path / "project.json"
    project.write_text(json.dumps({
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "sample_rate": SR, "tracks": [{
        "id": "t", "channels": 2,
        "clips": [{"id": "c", "source": "voice.wav", "position": 0, "length": FRAMES}],
        "effects": [{"kind": "convolution", "params": {"ir": "hall.wav", "mix": 0.7}}]}]}))
    engine = Engine(load_project(project), backend=backend, block_size=100)
    assert engine.graph.tracks[0].effects[0].ir.true_stereo
    from_file = _render(engine)
    assert np.max(np.abs(direct)) > 0.1
    np.testing.assert_array_equal(from_file, direct)


def test_a_four_channel_clip_source_is_refused_with_a_clear_error(
        tmp_path: Path, files: dict[str, np.ndarray]) -> None:
    hall = str(tmp_path / "hall.wav")
    Engine(_session(str(tmp_path / "voice.wav"), hall))  # the IR is read (and cached)
    message = r"hall.wav: has 4 channels; only mono and stereo sources are supported for clips"
    with pytest.raises(AudioFileError, match=message):  # the cached IR is not a clip source
        Engine(_session(hall, hall))
    session = _session(hall, str(tmp_path / "voice.wav"))
    for decode in (True, False):
        with pytest.raises(AudioFileError, match=r"tracks\[0\]\.clips\[0\].*has 4 channels"):
            check_sources(session, decode=decode)


def test_the_reader_takes_up_to_the_channels_its_caller_asks_for(
        tmp_path: Path, files: dict[str, np.ndarray]) -> None:
    hall = tmp_path / "hall.wav"
    data, rate = read_audio(hall, MAX_IR_CHANNELS)
    np.testing.assert_array_equal(data, files["hall.wav"])
    assert rate == SR and audio_info(hall, MAX_IR_CHANNELS) == (4, 6000, SR)
    with pytest.raises(AudioFileError, match="has 4 channels; only mono and stereo"):
        read_audio(hall)
    cache = SourceCache()
    assert cache.load(hall, SR, MAX_IR_CHANNELS).shape == (4, 6000)
    with pytest.raises(AudioFileError, match="has 4 channels"):
        cache.load(hall, SR)  # a hit, checked again
    assert (cache.hits, cache.misses) == (1, 1)
    sf.write(tmp_path / "five.wav", np.zeros((100, 5), np.float32), SR, subtype="FLOAT")
    with pytest.raises(AudioFileError, match="five.wav: has 5 channels; at most 4"):
        read_audio(tmp_path / "five.wav", MAX_IR_CHANNELS)


def test_an_uploaded_four_channel_asset_serves_as_an_ir(
        tmp_path: Path, files: dict[str, np.ndarray]) -> None:
    store = AssetStore(tmp_path / "assets")
    asset = store.ingest_file(tmp_path / "hall.wav", project_id="p1", name="hall.wav")
    assert (asset.channels, asset.frames) == (4, 6000)
    assert store.peaks(asset.id).channels == 4
    voice = str(tmp_path / "voice.wav")
    direct = Engine(_session("voice", "hall"), loader=DictLoader(
        {"voice": files["voice.wav"], "hall": files["hall.wav"]})).render(0, 4096)
    np.testing.assert_array_equal(Engine(_session(voice, asset.path)).render(0, 4096), direct)
    for channels, message in ((5, "has 5 channels; at most 4"),
                              (3, r"has 3 channels; send mono or stereo audio, or a 4-channel")):
        name = f"c{channels}.wav"
        sf.write(tmp_path / name, np.zeros((100, channels), np.float32), SR, subtype="FLOAT")
        with pytest.raises(InvalidAudio, match=f"{name}: {message}"):
            store.ingest_file(tmp_path / name, project_id="p1", name=name)
    assert store.project_assets("p1") == [asset.id]
