"""Connected speech with known word spans, and how well text edits cut it.

espeak-ng reports where it starts each word while it speaks (word events of
libespeak-ng), so a sentence said without pauses comes with the true span of
every word.  :func:`cut_accuracy` compares the planner's cut points with those
spans: ``python -m transcription.evaluation --cuts`` prints the figures of
docs/transcription.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from .errors import TranscriptionError

#: Sentences for :func:`cut_accuracy`: common English, no pauses inside.  espeak-ng
#: reports a start for every word of these (it merges some pairs, e.g. "in the").
CONNECTED = (
    "please remove the purple elephant today",
    "the weather is very nice today we are going to the park with our friends",
    "we will move along the yellow river all morning",
    "my brother never really liked a warm summer evening",
    "at night we cook together and listen to music",
    "she sells fresh bread and cheese at the market on sunday",
    "our team finally won the big game last night",
    "please call me when you arrive at the station",
)


class _Event(ctypes.Structure):
    """``espeak_EVENT`` of espeak-ng's ``speak_lib.h`` (the union ``id`` as 8 bytes)."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_int64)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))
_END_OF_LIST, _WORD = 0, 1
_SYNCHRONOUS, _POSITION_CHARACTER, _CHARS_UTF8 = 2, 1, 1


def speak_with_word_events(text: str, voice: str, path: str | Path) -> list[tuple[int, float]]:
    """Speak ``text`` into a WAV at ``path``; ``(character, start s)`` of each word event.

    ``character`` counts from 1.  Call it once per process (see
    :func:`synthesize_words`): espeak-ng keeps state from one sentence to the
    next and hangs when it is initialised a second time.
    """
    import soundfile

    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    try:
        library = ctypes.CDLL(name)
    except OSError as exc:
        raise TranscriptionError(f"cannot load {name}: apt-get install espeak-ng") from exc
    rate = library.espeak_Initialize(_SYNCHRONOUS, 0, None, 0)
    if rate <= 0:
        raise TranscriptionError(f"espeak_Initialize failed with {rate}")
    chunks: list[np.ndarray] = []
    starts: list[tuple[int, int]] = []

    def collect(wav, count, events) -> int:  # noqa: ANN001 - ctypes pointers
        if count:
            chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
        index = 0
        while events[index].type != _END_OF_LIST:
            if events[index].type == _WORD:
                starts.append((events[index].text_position, events[index].sample))
            index += 1
        return 0

    callback = _CALLBACK(collect)  # referenced until synthesis is done
    library.espeak_SetSynthCallback(callback)
    library.espeak_SetVoiceByName(voice.encode())
    data = text.encode()
    status = library.espeak_Synth(data, len(data) + 1, 0, _POSITION_CHARACTER, 0, _CHARS_UTF8,
                                  None, None)
    library.espeak_Synchronize()
    if status != 0 or not chunks:
        raise TranscriptionError(f"espeak-ng could not say {text!r} (status {status})")
    soundfile.write(str(path), np.concatenate(chunks).astype(np.float32) / 32768.0, rate)
    return [(character, sample / rate) for character, sample in starts]


def synthesize_words(words: list[str], voice: str,
                     path: str | Path) -> list[tuple[float, float]]:
    """espeak-ng says ``words`` as one sentence into ``path``; each word's span in seconds.

    A word runs from its start to the next word's start (the last one to the
    end of the audio), so the spans tile the sentence.  The audio is what
    ``espeak-ng -v VOICE -w OUT "TEXT"`` writes, without its trailing silence.
    Runs espeak-ng in a child process so that every sentence comes out the same.
    """
    import soundfile

    script = ("import json, sys; from transcription.speech import speak_with_word_events as s; "
              "print(json.dumps(s(sys.argv[1], sys.argv[2], sys.argv[3])))")
    done = subprocess.run([sys.executable, "-c", script, " ".join(words), voice, str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise TranscriptionError(f"espeak-ng failed: {done.stderr.strip()[-300:]}")
    events = dict(json.loads(done.stdout))
    positions = np.cumsum([1] + [len(word) + 1 for word in words[:-1]])
    missing = [w for w, at in zip(words, positions, strict=True) if int(at) not in events]
    if missing:
        raise TranscriptionError(f"espeak-ng gave no start for {missing!r} in {words!r}")
    starts = [events[int(at)] for at in positions]
    ends = [*starts[1:], soundfile.info(str(path)).duration]
    return list(zip(starts, ends, strict=True))


@dataclass(frozen=True)
class CutAccuracy:
    """How the planner's cuts fall in connected speech (see :func:`cut_accuracy`)."""

    words: int
    boundary_error_ms: tuple[float, ...]
    removed: tuple[float, ...]
    neighbour_lost: tuple[float, ...]

    def summary(self) -> str:
        """The figures as one paragraph of text."""
        errors, removed = np.abs(self.boundary_error_ms), np.array(self.removed)
        lost = np.array(self.neighbour_lost)
        return (f"{self.words} words; |cut - word boundary|: median {np.median(errors):.0f} ms, "
                f"90th percentile {np.quantile(errors, 0.9):.0f} ms, max {errors.max():.0f} ms; "
                f"share of a deleted word's energy removed: mean {removed.mean():.2f}, "
                f"below 0.85 for {int(np.sum(removed < 0.85))} words; deleting a word takes "
                f"more than 0.15 of a neighbour's energy {int(np.sum(lost > 0.15))} times")


def _energy_share(energy: np.ndarray, span: tuple[int, int], low: int, high: int) -> float:
    """Share of the energy in ``span`` that lies in ``[low, high)`` (``energy``: cumulative)."""
    first, last = max(span[0], low), min(span[1], high)
    whole = energy[span[1]] - energy[span[0]]
    return float((energy[last] - energy[first]) / whole) if last > first and whole > 0 else 0.0


def cut_accuracy(transcriber, sentences: tuple[str, ...] = CONNECTED, *,  # noqa: ANN001
                 voice: str = "en-us", sample_rate: int = 48000) -> CutAccuracy:
    """Transcribe each sentence, plan its cuts, compare them with espeak-ng's word spans.

    For every word: where the cut before it lies relative to its true start,
    the share of its energy between its two cuts (what deleting it removes)
    and the share of each neighbour's energy that deleting it takes too.
    """
    import tempfile

    from dsp_core.audio_io import load_source
    from dsp_core.session import Clip

    from .editing import clip_words, cut_points

    errors, removed, lost, count = [], [], [], 0
    with tempfile.TemporaryDirectory(prefix="daw-cuts-") as tmp:
        for index, sentence in enumerate(sentences):
            words = sentence.split()
            path = Path(tmp) / f"{index}.wav"
            spans = synthesize_words(words, voice, path)
            audio = load_source(path, sample_rate)[0]
            clip = Clip(source=str(path), position=0, length=audio.size, id="sentence")
            heard = clip_words(transcriber.transcribe(path, language="en"), clip, sample_rate)
            if len(heard) != len(words):
                continue  # a word split or merged: no one-to-one comparison
            count += len(words)
            cuts = cut_points(audio, sample_rate, heard, clip)
            energy = np.concatenate([[0.0], np.cumsum(np.square(audio, dtype=np.float64))])
            frames = [(int(s * sample_rate), int(e * sample_rate)) for s, e in spans]
            share = partial(_energy_share, energy)
            errors += [(cut - start) / sample_rate * 1000
                       for cut, (start, _) in zip(cuts[1:-1], frames[1:], strict=True)]
            for i, span in enumerate(frames):
                removed.append(share(span, cuts[i], cuts[i + 1]))
                lost += [share(frames[j], cuts[i], cuts[i + 1])
                         for j in (i - 1, i + 1) if 0 <= j < len(frames)]
    return CutAccuracy(count, tuple(errors), tuple(removed), tuple(lost))
