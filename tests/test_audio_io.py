"""Reading, resampling, caching and exporting real audio files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dsp_core import audio_io
from dsp_core.audio_io import (
    EXPORT_RATES,
    AudioWriter,
    SourceCache,
    audio_info,
    load_source,
    read_audio,
    resample,
    resampled_length,
    write_audio,
)
from dsp_core.errors import ArrayError, AudioFileError

# (suffix, libsndfile subtype, largest allowed round-trip error)
SOURCE_FORMATS = [
    (".wav", "PCM_16", 2.0**-15),
    (".wav", "PCM_24", 2.0**-23),
    (".wav", "PCM_32", 2.0**-23),
    (".wav", "FLOAT", 0.0),
    (".flac", "PCM_16", 2.0**-15),
    (".flac", "PCM_24", 2.0**-23),
    (".aiff", "PCM_16", 2.0**-15),
    (".aiff", "PCM_24", 2.0**-23),
    (".aiff", "PCM_32", 2.0**-23),
    (".aiff", "FLOAT", 0.0),
]


def noise(channels: int, frames: int, seed: int = 0, level: float = 0.5) -> np.ndarray:
    """Planar float32 uniform noise in [-level, level)."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(-level, level, (channels, frames))).astype(np.float32)


def sine(freq: float, rate: int, frames: int, amplitude: float = 0.5) -> np.ndarray:
    """Planar mono float32 sine."""
    t = np.arange(frames) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)[np.newaxis]


def write_source(path: Path, data: np.ndarray, rate: int, subtype: str = "FLOAT") -> Path:
    """Write a test source with libsndfile directly (not through the code under test)."""
    sf.write(path, data.T, rate, subtype=subtype)
    return path


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 192000])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize(("suffix", "subtype", "tolerance"), SOURCE_FORMATS)
def test_read_audio_returns_planar_float32_of_every_format(
    tmp_path: Path, suffix: str, subtype: str, tolerance: float, channels: int, rate: int
) -> None:
    original = noise(channels, 1000)
    path = write_source(tmp_path / f"src{suffix}", original, rate, subtype)
    data, got_rate = read_audio(path)
    assert got_rate == rate
    assert data.dtype == np.float32 and data.flags.c_contiguous
    assert data.shape == (channels, 1000)
    assert np.max(np.abs(data - original)) <= tolerance


@pytest.mark.parametrize("rate", EXPORT_RATES)
@pytest.mark.parametrize(("suffix", "bit_depth"), [
    (".wav", "32f"), (".wav", "24"), (".wav", "16"),
    (".flac", "24"), (".flac", "16"), (".aiff", "32f"), (".aiff", "24"),
])
def test_exported_file_reads_back(tmp_path: Path, suffix: str, bit_depth: str, rate: int) -> None:
    original = noise(2, 2000, level=0.9)
    path = tmp_path / f"mix{suffix}"
    clipped = write_audio(path, original, rate, bit_depth=bit_depth, seed=1)
    data, got_rate = read_audio(path)
    assert (got_rate, data.shape, clipped) == (rate, original.shape, 0)
    lsb = {"32f": 0.0, "24": 2.0**-23, "16": 2.0**-15}[bit_depth]
    assert np.max(np.abs(data - original)) <= 1.5 * lsb


def test_float_export_is_bit_exact_and_never_clips(tmp_path: Path) -> None:
    original = noise(2, 4000, level=3.0)
    clipped = write_audio(tmp_path / "hot.wav", original, 48000, bit_depth="32f")
    data, _ = read_audio(tmp_path / "hot.wav")
    assert clipped == 0
    np.testing.assert_array_equal(data, original)


def test_24_bit_export_without_dither_keeps_24_bit_precision(tmp_path: Path) -> None:
    original = noise(2, 50_000, seed=3)
    write_audio(tmp_path / "a.wav", original, 96000, bit_depth="24", dither=False)
    data, _ = read_audio(tmp_path / "a.wav")
    error = (data.astype(np.float64) - original) * 2.0**23
    assert np.max(np.abs(error)) <= 0.5 + 1e-6
    # A 24-bit file must carry more than 16 bits: the error is far below a 16-bit LSB.
    assert np.max(np.abs(error)) < 2.0**8 / 100


def test_tpdf_dither_error_has_the_expected_statistics(tmp_path: Path) -> None:
    original = noise(2, 100_000, seed=4)
    write_audio(tmp_path / "d.wav", original, 48000, bit_depth="16", seed=7)
    data, _ = read_audio(tmp_path / "d.wav")
    error = (data.astype(np.float64) - original) * 2.0**15
    # TPDF of +-1 LSB (variance 1/6) plus rounding (1/12) gives 1/4 LSB^2, within +-1.5 LSB.
    assert np.max(np.abs(error)) <= 1.5 + 1e-9
    assert abs(error.mean()) < 0.01
    assert error.var() == pytest.approx(0.25, abs=0.01)


def test_undithered_rounding_error_is_half_an_lsb(tmp_path: Path) -> None:
    original = noise(1, 100_000, seed=4)
    write_audio(tmp_path / "r.wav", original, 48000, bit_depth="16", dither=False)
    data, _ = read_audio(tmp_path / "r.wav")
    error = (data.astype(np.float64) - original) * 2.0**15
    assert np.max(np.abs(error)) <= 0.5 + 1e-9
    assert error.var() == pytest.approx(1 / 12, abs=0.005)


def test_dither_keeps_a_signal_quieter_than_one_lsb(tmp_path: Path) -> None:
    rate, frames, amplitude = 48000, 96000, 0.4 * 2.0**-15
    quiet = sine(1000.0, rate, frames, amplitude)
    write_audio(tmp_path / "plain.wav", quiet, rate, bit_depth="16", dither=False)
    write_audio(tmp_path / "dith.wav", quiet, rate, bit_depth="16", seed=0)
    plain, _ = read_audio(tmp_path / "plain.wav")
    dithered, _ = read_audio(tmp_path / "dith.wav")
    assert not plain.any()
    # Project onto the sine: the dithered file still carries it at the right level.
    reference = quiet[0].astype(np.float64) / amplitude
    recovered = 2 * np.dot(dithered[0], reference) / frames
    assert recovered == pytest.approx(amplitude, rel=0.1)


def test_dither_is_reproducible_for_a_seed(tmp_path: Path) -> None:
    original = noise(2, 10_000)
    runs = []
    for name, seed in [("a.wav", 5), ("b.wav", 5), ("c.wav", 6)]:
        write_audio(tmp_path / name, original, 44100, bit_depth="16", seed=seed)
        runs.append(read_audio(tmp_path / name)[0])
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


@pytest.mark.parametrize("bit_depth", ["16", "24"])
def test_pcm_export_clips_at_full_scale_and_counts_it(tmp_path: Path, bit_depth: str) -> None:
    block = np.array([[1.5, -2.0, 0.25, 1.0], [0.0, -1.0, 0.5, -0.999]], dtype=np.float32)
    clipped = write_audio(tmp_path / "c.wav", block, 48000, bit_depth=bit_depth, dither=False)
    data, _ = read_audio(tmp_path / "c.wav")
    # 1.5, -2.0 and +1.0 (one LSB above the largest positive code) are beyond full scale.
    assert clipped == 3
    full = 1.0 - 2.0 ** -(int(bit_depth) - 1)
    np.testing.assert_array_equal(data[0], np.float32([full, -1.0, 0.25, full]))


def test_writing_in_blocks_equals_writing_at_once(tmp_path: Path) -> None:
    original = noise(2, 10_000)
    with AudioWriter(tmp_path / "blocks.wav", 48000, bit_depth="24", seed=3) as writer:
        for start in range(0, 10_000, 1024):
            writer.write(original[:, start : start + 1024])
    write_audio(tmp_path / "once.wav", original, 48000, bit_depth="24", seed=3)
    assert writer.frames == 10_000
    np.testing.assert_array_equal(read_audio(tmp_path / "blocks.wav")[0],
                                  read_audio(tmp_path / "once.wav")[0])


def test_failed_export_leaves_the_existing_file_untouched(tmp_path: Path) -> None:
    target = tmp_path / "mix.wav"
    target.write_bytes(b"previous mix")
    with pytest.raises(RuntimeError), AudioWriter(target, 48000) as writer:
        writer.write(noise(2, 100))
        raise RuntimeError("render failed")
    assert target.read_bytes() == b"previous mix"
    assert os.listdir(tmp_path) == ["mix.wav"]


def test_non_finite_block_is_refused(tmp_path: Path) -> None:
    block = noise(2, 100)
    block[1, 50] = np.nan
    with AudioWriter(tmp_path / "x.wav", 48000) as writer:
        with pytest.raises(AudioFileError, match="1 NaN/Inf"):
            writer.write(block)
        writer.write(noise(2, 10))
    assert read_audio(tmp_path / "x.wav")[0].shape == (2, 10)


def test_block_of_the_wrong_shape_or_dtype_is_refused(tmp_path: Path) -> None:
    with AudioWriter(tmp_path / "x.wav", 48000, channels=2) as writer:
        with pytest.raises(ArrayError):
            writer.write(noise(1, 100))
        with pytest.raises(ArrayError):
            writer.write(noise(2, 100).astype(np.float64))


@pytest.mark.parametrize(("name", "rate", "bit_depth", "message"), [
    ("a.wav", 22050, "24", "export sample rate 22050"),
    ("a.wav", 384000, "24", "export sample rate 384000"),
    ("a.flac", 48000, "32f", "FLAC cannot hold 32-bit float"),
    ("a.mp3", 48000, "16", "unknown export format"),
    ("a.wav", 48000, "8", "bit depth '8'"),
])
def test_bad_export_settings_are_refused(
    tmp_path: Path, name: str, rate: int, bit_depth: str, message: str
) -> None:
    with pytest.raises(AudioFileError, match=message):
        AudioWriter(tmp_path / name, rate, bit_depth=bit_depth)
    assert os.listdir(tmp_path) == []


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match=r"nope\.wav: no such audio file"):
        read_audio(tmp_path / "nope.wav")


def test_random_bytes_are_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "garbage.wav"
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(AudioFileError, match="garbage.wav: not a readable"):
        read_audio(path)


@pytest.mark.parametrize("suffix", [".wav", ".aiff", ".flac"])
@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_file_is_refused(tmp_path: Path, suffix: str, keep: float) -> None:
    path = write_source(tmp_path / f"t{suffix}", noise(2, 48000), 48000, "PCM_24")
    content = path.read_bytes()
    path.write_bytes(content[: int(len(content) * keep)])
    with pytest.raises(AudioFileError, match=f"t\\{suffix}: "):
        read_audio(path)


def test_a_flac_claiming_2_to_the_36_samples_is_refused_without_taking_the_memory(
        tmp_path: Path) -> None:
    """STREAMINFO's 36-bit sample count said 2^36 - 1 frames of a 1,000-frame file: the
    read took 512 GiB on its word (a MemoryError, a 500 on upload). Memory now follows
    what is decoded, and the lie ends as a refused file."""
    path = write_source(tmp_path / "lie.flac", noise(2, 1000), 48000, "PCM_16")
    data = bytearray(path.read_bytes())
    fields = int.from_bytes(data[18:26], "big")  # STREAMINFO: rate, channels, bits, total
    data[18:26] = ((fields & ~((1 << 36) - 1)) | ((1 << 36) - 1)).to_bytes(8, "big")
    path.write_bytes(bytes(data))
    with pytest.raises(AudioFileError, match="lie.flac"):
        read_audio(path)


def silent_flac(path: Path, frames: int, counted: bool = True) -> Path:
    """A stereo 48 kHz FLAC of digital silence (a few bytes per 1,000 frames); ``counted``
    False zeroes STREAMINFO's sample count, as a stream written without seeking does."""
    with sf.SoundFile(path, "w", 48000, 2, "PCM_16", format="FLAC") as f:
        block = np.zeros((min(frames, 1 << 20), 2), np.int16)
        for start in range(0, frames, len(block)):
            f.write(block[:frames - start])
    if not counted:
        data = bytearray(path.read_bytes())
        fields = int.from_bytes(data[18:26], "big")  # STREAMINFO: rate, channels, bits, total
        data[18:26] = (fields & ~((1 << 36) - 1)).to_bytes(8, "big")
        path.write_bytes(bytes(data))
    return path


def test_a_file_over_the_decoded_limit_is_refused_from_its_header(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """64 KB of FLAC silence says 2^24 stereo frames (128 MiB of float32): refused over a
    16 MiB limit before a sample is decoded."""
    path = silent_flac(tmp_path / "bomb.flac", 1 << 24)

    def no_decoding(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("decoded a file its header already put over the limit")

    monkeypatch.setattr(sf.SoundFile, "read", no_decoding)
    with pytest.raises(audio_io.AudioTooLong,
                       match=r"bomb\.flac: its header declares 16777216 frames; the server "
                             r"decodes at most 16 MiB of audio \(0\.01 h of 2-channel"):
        read_audio(path, max_bytes=16 << 20)
    monkeypatch.setattr(audio_io, "MAX_DECODED_BYTES", 16 << 20)  # the default limit
    with pytest.raises(audio_io.AudioTooLong, match="decodes at most 16 MiB"):
        read_audio(path)


def test_a_file_without_a_frame_count_stops_decoding_at_the_limit(tmp_path: Path) -> None:
    """A FLAC whose header gives no count is decoded only up to the limit, never whole."""
    path = silent_flac(tmp_path / "uncounted.flac", 200_000, counted=False)
    with pytest.raises(audio_io.AudioTooLong,
                       match=r"uncounted\.flac: decodes to more than 10000 frames"):
        read_audio(path, max_bytes=4 * 2 * 10_000)
    with sf.SoundFile(path) as f:
        with pytest.raises(audio_io.AudioTooLong):
            audio_io._read_planar(str(path), f, 4 * 2 * 10_000)
        assert f.tell() <= 10_000 + audio_io.READ_BLOCK < 200_000


def test_a_file_at_the_decoded_limit_reads_whole(tmp_path: Path) -> None:
    source = noise(2, 5_000)
    path = write_source(tmp_path / "edge.wav", source, 48000, "FLOAT")
    data, _ = read_audio(path, max_bytes=4 * 2 * 5_000)
    np.testing.assert_array_equal(data, source)
    with pytest.raises(audio_io.AudioTooLong, match="declares 5000 frames"):
        read_audio(path, max_bytes=4 * 2 * 5_000 - 1)


def test_a_source_longer_than_the_first_allocation_reads_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio_io, "FIRST_FRAMES", 1000)
    monkeypatch.setattr(audio_io, "READ_BLOCK", 700)
    source = noise(2, 5_123)
    path = write_source(tmp_path / "long.wav", source, 48000, "FLOAT")
    data, rate = read_audio(path)
    assert rate == 48000 and data.shape == (2, 5_123) and data.flags.c_contiguous
    np.testing.assert_array_equal(data, source)


def test_nan_samples_are_reported_with_count_and_first_frame(tmp_path: Path) -> None:
    data = noise(2, 200_000)
    data[0, 150_000] = np.nan
    data[1, 150_001] = np.inf
    data[1, 199_999] = -np.inf
    path = write_source(tmp_path / "nan.wav", data, 48000)
    with pytest.raises(AudioFileError, match=r"nan\.wav: holds 3 NaN/Inf samples "
                                             r"\(first at frame 150000\)"):
        read_audio(path)


@pytest.mark.parametrize("rate", [4000, 7999, 192001, 384000])
def test_unsupported_source_rate_is_refused(tmp_path: Path, rate: int) -> None:
    path = write_source(tmp_path / "odd.wav", noise(1, 100), rate)
    with pytest.raises(AudioFileError, match=f"sample rate {rate} Hz is not supported"):
        read_audio(path)


def test_more_than_two_channels_are_refused(tmp_path: Path) -> None:
    path = write_source(tmp_path / "surround.wav", noise(6, 100), 48000)
    with pytest.raises(AudioFileError, match="has 6 channels; only mono and stereo"):
        read_audio(path)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = write_source(tmp_path / "empty.wav", np.zeros((2, 0), np.float32), 48000)
    with pytest.raises(AudioFileError, match="no audio frames"):
        read_audio(path)


def sine_fit(signal: np.ndarray, freq: float, rate: int) -> tuple[float, float]:
    """Least-squares amplitude of a sine at ``freq`` and the SNR (dB) of the residual."""
    t = np.arange(len(signal)) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, signal.astype(np.float64), rcond=None)
    residual = signal - basis @ coef
    amplitude = float(np.hypot(*coef))
    return amplitude, 10 * np.log10((amplitude**2 / 2) / np.mean(residual**2))


@pytest.mark.parametrize(("from_rate", "to_rate", "freq"), [
    (44100, 48000, 997.0), (48000, 192000, 5000.0), (48000, 44100, 15000.0),
])
def test_resampled_sine_keeps_frequency_amplitude_and_purity(
    from_rate: int, to_rate: int, freq: float
) -> None:
    frames = from_rate  # one second
    stereo = np.concatenate([sine(freq, from_rate, frames), sine(freq, from_rate, frames, 0.25)])
    out = resample(stereo, from_rate, to_rate)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert out.shape == (2, resampled_length(frames, from_rate, to_rate))
    spectrum = np.abs(np.fft.rfft(out[0]))
    peak_hz = np.argmax(spectrum) * to_rate / out.shape[1]
    assert abs(peak_hz - freq) <= to_rate / out.shape[1]
    # Ignore the filter's start-up and tail; the steady state is a pure sine.
    middle = slice(to_rate // 10, -to_rate // 10)
    for channel, expected in [(0, 0.5), (1, 0.25)]:
        amplitude, snr = sine_fit(out[channel, middle], freq, to_rate)
        assert amplitude == pytest.approx(expected, rel=1e-4)
        assert snr > 140.0  # measured about 151 dB: float32 output is the limit


@pytest.mark.parametrize(("from_rate", "to_rate", "frames"), [
    (48000, 44100, 48080), (48000, 44100, 240), (48000, 176400, 100), (48000, 44100, 80),
])
@pytest.mark.parametrize("channels", [1, 2])
def test_resample_gives_resampled_length_when_the_exact_length_ends_in_a_half(
    from_rate: int, to_rate: int, frames: int, channels: int
) -> None:
    # soxr rounds these halves down, resampled_length up: a clip sized by the one ran one
    # frame past the audio the other decoded, and the project failed its source check
    out = resample(noise(channels, frames), from_rate, to_rate)
    assert out.shape == (channels, resampled_length(frames, from_rate, to_rate))
    assert out.dtype == np.float32 and out.flags.c_contiguous


@pytest.mark.parametrize(("bit_depth", "frames", "kind"), [
    ("32f", 536_862_719, "WAV"), ("32f", 536_862_720, "RF64"), ("16", 1_073_725_439, "WAV"),
    ("24", 1 << 30, "RF64"), ("32f", None, "WAV"),
])
def test_a_wav_past_what_riff_counts_is_written_as_rf64(
    tmp_path: Path, bit_depth: str, frames: int | None, kind: str
) -> None:
    # a bounce of over 4 GiB (32-bit float stereo: about 3 h at 48 kHz) was a RIFF WAV
    # whose sizes read 0xFFFFFFFF: it read back 536,870,911 frames, the rest lost
    path = tmp_path / "long.wav"
    block = noise(2, 4800)
    with AudioWriter(path, 48000, 2, bit_depth, seed=1, frames=frames) as writer:
        writer.write(block)  # the header's choice is made before any frame is written
    assert sf.info(str(path)).format == kind
    data, rate = read_audio(path)
    assert rate == 48000 and data.shape == block.shape


def test_resample_returns_the_input_when_rates_match() -> None:
    data = noise(2, 100)
    assert resample(data, 48000, 48000) is data


def test_resample_handles_mono_and_empty_input() -> None:
    assert resample(noise(1, 441), 44100, 48000).shape == (1, 480)
    assert resample(np.zeros((2, 0), np.float32), 44100, 48000).shape == (2, 0)


def test_load_source_resamples_and_caches(tmp_path: Path) -> None:
    path = write_source(tmp_path / "s.flac", noise(2, 44100), 44100, "PCM_24")
    first = load_source(path, 48000)
    assert first.shape == (2, 48000) and not first.flags.writeable
    assert load_source(tmp_path / "." / "s.flac", 48000) is first
    assert load_source(path, 96000).shape == (2, 96000)


def test_source_cache_reloads_an_edited_file(tmp_path: Path) -> None:
    cache = SourceCache()
    path = write_source(tmp_path / "s.wav", noise(1, 1000, seed=1), 48000)
    before = cache.load(path, 48000)
    write_source(path, noise(1, 2000, seed=2), 48000)
    os.utime(path, ns=(1, 1))
    after = cache.load(path, 48000)
    assert after.shape == (1, 2000) and cache.misses == 2
    assert before.shape == (1, 1000)


def test_source_cache_evicts_least_recently_used_beyond_its_byte_budget(tmp_path: Path) -> None:
    paths = [write_source(tmp_path / f"s{i}.wav", noise(1, 1000, seed=i), 48000)
             for i in range(3)]
    cache = SourceCache(max_bytes=2 * 4000)
    cache.load(paths[0], 48000)
    cache.load(paths[1], 48000)
    cache.load(paths[0], 48000)  # paths[0] is now the most recent
    cache.load(paths[2], 48000)  # evicts paths[1]
    assert (len(cache), cache.bytes, cache.hits, cache.misses) == (2, 8000, 1, 3)
    cache.load(paths[0], 48000)
    cache.load(paths[1], 48000)
    assert (cache.hits, cache.misses) == (2, 4)


def test_source_larger_than_the_cache_is_returned_but_not_kept(tmp_path: Path) -> None:
    cache = SourceCache(max_bytes=1000)
    path = write_source(tmp_path / "big.wav", noise(2, 1000), 48000)
    assert cache.load(path, 48000).shape == (2, 1000)
    assert (len(cache), cache.bytes) == (0, 0)


def test_audio_info_reads_the_header_only(tmp_path: Path) -> None:
    path = write_source(tmp_path / "i.flac", noise(2, 1234), 22050, "PCM_16")
    assert audio_info(path) == (2, 1234, 22050)
    with pytest.raises(AudioFileError, match="sample rate 4000 Hz"):
        audio_info(write_source(tmp_path / "low.wav", noise(1, 10), 4000))
    with pytest.raises(AudioFileError, match="no such audio file"):
        audio_info(tmp_path / "missing.wav")
