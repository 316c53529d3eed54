"""The faster-whisper wrapper: one loaded model, audio in, :class:`Transcript` out."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import JobCancelled, LanguageError, TranscriptionError
from .gating import SAMPLE_RATE, GateOptions, keep_segment, non_speech_passages, speech_regions
from .languages import normalize_language
from .models import check_model_dir, resolve_model_dir
from .transcript import Passage, Segment, Transcript, Word

log = logging.getLogger(__name__)

Progress = Callable[[float], None]

#: CPU kernels that every x86-64 CPU with AVX2 has, Intel or AMD: oneDNN, not MKL
#: (CTranslate2's default on Intel only), and no AVX-512 / VNNI code in CTranslate2 or
#: oneDNN.  By default each CPU gets its own kernels, and greedy decoding of espeak
#: speech flips words on their rounding: German scores WER 0.32 with MKL, 0.64 with
#: oneDNN's AVX-512 code and 0.23 with these (docs/transcription.md).  They cost speed
#: (~1.5x on an AVX-512 CPU), so only the tests and the evaluation use them.
REPRODUCIBLE_KERNELS = {"CT2_USE_MKL": "0", "CT2_FORCE_CPU_ISA": "AVX2",
                        "ONEDNN_MAX_CPU_ISA": "AVX2"}


def use_reproducible_kernels() -> None:
    """Decode with :data:`REPRODUCIBLE_KERNELS` from now on (before any model loads).

    The choice is made once per process, when the first model runs, and passes
    to child processes through the environment.  The tests and
    ``python -m transcription.evaluation`` use it so that the measured figures
    hold on any x86-64 machine with AVX2; the server keeps each CPU's fastest kernels.
    """
    os.environ.update(REPRODUCIBLE_KERNELS)


def load_audio(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode any audio file to 16 kHz mono float32 (soundfile, else FFmpeg via PyAV)."""
    import soundfile

    if not Path(path).is_file():
        raise TranscriptionError(f"audio file {str(path)!r} does not exist")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError):
        from faster_whisper.audio import decode_audio

        try:
            return decode_audio(str(path), sampling_rate=SAMPLE_RATE)
        except Exception as exc:  # PyAV raises many types; report one clear error
            raise TranscriptionError(f"cannot decode audio file {str(path)!r}: {exc}") from exc
    return to_whisper_rate(data.mean(axis=1), rate)


def to_whisper_rate(mono: np.ndarray, sample_rate: int) -> np.ndarray:
    """Resample mono audio to Whisper's 16 kHz float32."""
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if sample_rate == SAMPLE_RATE:
        return mono
    import soxr

    return soxr.resample(mono, sample_rate, SAMPLE_RATE).astype(np.float32, copy=False)


class Transcriber:
    """A Whisper model loaded once; :meth:`transcribe` may be called many times.

    Parameters
    ----------
    model_dir
        A faster-whisper model directory; ``None`` resolves it through
        :func:`transcription.models.resolve_model_dir`.
    cpu_threads
        CTranslate2 threads for this model (0: all cores).
    compute_type
        CTranslate2 quantisation; ``int8`` is fastest on CPU.
    beam_size
        Beam width of the decoder (1 is greedy and faster).
    gate
        Speech-gate thresholds.
    temperatures
        Decoding temperatures tried in turn when a decode fails Whisper's
        quality checks (fewer is faster on hard audio).
    """

    def __init__(self, model_dir: str | os.PathLike[str] | None = None, *,
                 cpu_threads: int = 0, compute_type: str = "int8", beam_size: int = 5,
                 gate: GateOptions | None = None,
                 temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)) -> None:
        from faster_whisper import WhisperModel

        path = resolve_model_dir(model_dir)
        self.info = check_model_dir(path)
        self.model_dir: Path = path
        self.beam_size = beam_size
        self.gate = gate or GateOptions()
        self.temperatures = list(temperatures)
        self._lock = threading.Lock()
        log.info("loading Whisper model %s (%s, %d threads)", path, compute_type, cpu_threads)
        self.model = WhisperModel(str(path), device="cpu", compute_type=compute_type,
                                  cpu_threads=cpu_threads, local_files_only=True)

    def transcribe(self, audio: str | os.PathLike[str] | np.ndarray, *,
                   language: str | None = None, start: float = 0.0, end: float | None = None,
                   progress: Progress | None = None,
                   cancel: threading.Event | None = None) -> Transcript:
        """Transcribe a file or 16 kHz mono float32 array.

        Only ``[start, end)`` seconds are transcribed; times in the result are
        seconds from the beginning of ``audio``.  ``language`` forces a
        language (``None`` detects it).  ``progress(fraction)`` is called as
        decoding advances; setting ``cancel`` stops the job with
        :class:`JobCancelled` at the next segment.
        """
        code = normalize_language(language)
        if code not in (None, "en") and not self.info.multilingual:
            raise LanguageError(
                f"model {str(self.model_dir)!r} is English-only; cannot transcribe {code!r}: "
                "use a multilingual model (`dawserver models install`)"
            )
        samples = load_audio(audio) if not isinstance(audio, np.ndarray) else audio
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        first = max(0, int(round(start * SAMPLE_RATE)))
        last = samples.size if end is None else min(samples.size, int(round(end * SAMPLE_RATE)))
        piece = samples[first:last]
        with self._lock:  # one decode at a time per loaded model
            return self._transcribe(piece, code, first / SAMPLE_RATE, progress, cancel)

    def detect_language(self, audio: str | os.PathLike[str] | np.ndarray) -> tuple[str, float]:
        """Detect the spoken language of the speech in ``audio``: ``(code, probability)``."""
        samples = load_audio(audio) if not isinstance(audio, np.ndarray) else audio
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        with self._lock:
            language, probability, _ = self.model.detect_language(
                samples, vad_filter=True, vad_parameters=self.gate.vad_options())
        return language, float(probability)

    def _transcribe(self, audio: np.ndarray, language: str | None, shift: float,
                    progress: Progress | None, cancel: threading.Event | None) -> Transcript:
        duration = audio.size / SAMPLE_RATE
        _check(cancel)
        regions = speech_regions(audio, self.gate)
        passages = tuple(Passage(p.start + shift, p.end + shift, p.kind)
                         for p in non_speech_passages(audio, regions, self.gate))
        if not regions:
            if progress:
                progress(1.0)
            return Transcript(language=language or "", passages=passages,
                              language_probability=0.0, duration=duration,
                              model=self.model_dir.name)
        segments_iter, info = self.model.transcribe(
            audio, language=language, beam_size=self.beam_size, word_timestamps=True,
            vad_filter=True, vad_parameters=self.gate.vad_options(),
            condition_on_previous_text=False, temperature=self.temperatures,
            no_speech_threshold=self.gate.no_speech_threshold,
            log_prob_threshold=self.gate.log_prob_threshold,
            compression_ratio_threshold=self.gate.compression_ratio_threshold,
        )
        segments: list[Segment] = []
        for raw in segments_iter:
            _check(cancel)
            if progress and duration > 0:
                progress(min(1.0, raw.end / duration))
            if not keep_segment(raw, regions, self.gate, language):
                log.debug("gated out segment %.2f-%.2f %r", raw.start, raw.end, raw.text)
                continue
            words = tuple(
                Word(w.word.strip(), float(w.start) + shift, float(w.end) + shift,
                     float(w.probability))
                for w in (raw.words or ()) if w.word.strip()
            )
            segments.append(Segment(float(raw.start) + shift, float(raw.end) + shift,
                                    raw.text.strip(), words))
        if progress:
            progress(1.0)
        return Transcript(language=info.language, segments=tuple(segments), passages=passages,
                          language_probability=float(info.language_probability),
                          duration=duration, model=self.model_dir.name)


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise JobCancelled("transcription cancelled")
