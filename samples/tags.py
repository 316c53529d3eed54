"""What a sample's file name and folders say: words, BPM, key, loop or one-shot, class.

``Kick_120bpm_Am.wav`` in ``Packs/Trap Drums/`` gives the words ``kick``, ``trap``,
``drums``, BPM 120, key A minor and class ``kick``. Names are trusted over audio
analysis only for the class and the loop/one-shot kind (a producer named them); the
measured BPM and key stay what they are, and the name's values are kept beside them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePath

from .errors import BadQuery
from .music import parse_key

_SPLIT = re.compile(r"[^0-9a-z#♯♭]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_BPM = re.compile(r"^(\d{2,3})(?:bpm)?$")
_KEY_WORD = re.compile(r"^([a-g][#b]?)(m|min|minor|maj|major)?$")
#: Words that name a class (singular and the usual plurals/abbreviations).
CLASS_WORDS = {
    "kick": "kick", "kicks": "kick", "kik": "kick", "bd": "kick",
    "snare": "snare", "snares": "snare", "snr": "snare", "clap": "snare", "claps": "snare",
    "rim": "snare",
    "hat": "hat", "hats": "hat", "hihat": "hat", "hihats": "hat", "hh": "hat", "oh": "hat",
    "ch": "hat", "cymbal": "hat", "ride": "hat", "shaker": "hat",
    "bass": "bass", "808": "bass", "sub": "bass", "reese": "bass",
    "pad": "pad", "pads": "pad", "atmosphere": "pad", "drone": "pad",
    "vocal": "vocal", "vocals": "vocal", "vox": "vocal", "acapella": "vocal",
    "chant": "vocal", "adlib": "vocal",
}
LOOP_WORDS = {"loop", "loops"}
ONE_SHOT_WORDS = {"oneshot", "oneshots", "shot", "shots", "hit", "hits"}


@dataclass(frozen=True)
class NameTags:
    """What a path's names say."""

    words: tuple[str, ...] = field(default_factory=tuple)
    bpm: float | None = None
    key: tuple[int, str] | None = None
    kind: str | None = None
    instrument: str | None = None


def words_of(text: str) -> list[str]:
    """Lower-case words of ``text``, split at punctuation and camelCase."""
    return [w for w in _SPLIT.split(_CAMEL.sub(" ", text).lower()) if w]


def parse_name(path: str, root: str = "") -> NameTags:
    """Tags from the file name and the folders below ``root`` (the indexed folder)."""
    pure = PurePath(path)
    folders = pure.parent.parts
    if root:
        base = PurePath(root).parts
        if folders[: len(base)] == base:
            folders = folders[len(base):]
    words: list[str] = []
    bpm = key = kind = instrument = None
    for part in [*folders, pure.stem]:  # folders first, the file name last (it wins)
        for word in words_of(part.replace("_", " ")):
            words.append(word)
            if (match := _BPM.match(word)) and (word.endswith("bpm") or 60 <= int(
                    match.group(1)) <= 200):
                bpm = float(match.group(1))
            elif (match := _KEY_WORD.match(word)) and _looks_like_key(word, part):
                try:
                    note = match.group(1)
                    key = parse_key(note[0].upper() + note[1:] + (match.group(2) or ""))
                except BadQuery:
                    pass
            if word in LOOP_WORDS:
                kind = "loop"
            elif word in ONE_SHOT_WORDS:
                kind = "one-shot"
            if word in CLASS_WORDS:
                instrument = CLASS_WORDS[word]
    unique = tuple(dict.fromkeys(words))
    return NameTags(words=unique, bpm=bpm, key=key, kind=kind, instrument=instrument)


def _looks_like_key(word: str, part: str) -> bool:
    """A single letter is a key only with a mode or beside a BPM-like token ("Am", "C#")."""
    return len(word) > 1 or bool(re.search(r"\d", part))
