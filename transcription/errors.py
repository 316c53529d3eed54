"""Exceptions of the transcription package."""

from __future__ import annotations


class TranscriptionError(Exception):
    """Base class: something about transcription or text editing went wrong."""


class ModelError(TranscriptionError):
    """The Whisper model directory is missing, incomplete or corrupt."""


class LanguageError(TranscriptionError):
    """A language code that Whisper does not know."""


class EditError(TranscriptionError):
    """A text edit that cannot be turned into clip edits."""


class JobCancelled(TranscriptionError):
    """A transcription job was cancelled while it ran."""


class JobError(TranscriptionError):
    """A transcription job does not exist or cannot change state."""


class TranscriptDataError(TranscriptionError):
    """Data that is not a transcript: a field missing or of the wrong type."""
