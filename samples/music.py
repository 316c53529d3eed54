"""Keys and tempi: parsing, naming, relative keys and the shift between two keys."""

from __future__ import annotations

import re

from .errors import BadQuery

NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E"}
_KEY = re.compile(r"^\s*([A-Ga-g])\s*([#b♯♭]?)\s*(major|maj|minor|min|m|M)?\s*$")


def parse_key(text: str) -> tuple[int, str]:
    """``(pitch class 0..11, "major" | "minor")`` of a key such as ``Am``, ``F# minor``, ``Bb``.

    Raises :class:`BadQuery` for anything else.
    """
    match = _KEY.match(text or "")
    if match is None:
        raise BadQuery(f"{text!r} is not a key; write it like 'A minor', 'Am', 'F#', 'Bb major'")
    letter, accidental, mode = match.groups()
    name = letter.upper() + accidental.replace("♯", "#").replace("♭", "b")
    name = _FLATS.get(name, name)
    if name.endswith("b"):  # Fb/Cb handled above; E#/B# style names are not keys we take
        raise BadQuery(f"{text!r} is not a key we know; use a sharp or flat spelling")
    if name not in NAMES:
        raise BadQuery(f"{text!r} is not a key; write it like 'A minor' or 'F#'")
    minor = mode is not None and mode.lower() in ("minor", "min", "m") and mode != "M"
    return NAMES.index(name), "minor" if minor else "major"


def key_name(tonic: int, mode: str) -> str:
    """The key's name as stored: ``"A minor"``, ``"C# major"``."""
    return f"{NAMES[tonic % 12]} {mode}"


def relative(tonic: int, mode: str) -> tuple[int, str]:
    """The relative key: A minor ↔ C major."""
    if mode == "minor":
        return (tonic + 3) % 12, "major"
    return (tonic + 9) % 12, "minor"


def semitones_between(source: tuple[int, str], target: tuple[int, str]) -> int:
    """The smallest shift (-5..+6 semitones) that takes ``source``'s tonic to ``target``'s.

    A minor sample into a major project (or the reverse) moves to the target's relative
    key instead, so the notes fit without changing mode.
    """
    tonic, mode = source
    goal_tonic, goal_mode = target
    if mode != goal_mode:
        goal_tonic, goal_mode = relative(goal_tonic, goal_mode)
    shift = (goal_tonic - tonic) % 12
    return shift - 12 if shift > 6 else shift
