"""Exception hierarchy of the DSP core."""

from __future__ import annotations


class DspError(Exception):
    """Base class of every error raised by ``dsp_core``."""


class NativeError(DspError):
    """The C engine returned a non-zero status code."""

    def __init__(self, function: str, code: int, meaning: str) -> None:
        super().__init__(f"{function} failed with status {code}: {meaning}")
        self.function = function
        self.code = code


class ArrayError(DspError, ValueError):
    """An array handed to a kernel has the wrong dtype, layout or shape."""


class AudioFileError(DspError):
    """An audio file is missing, unreadable, corrupt or holds unusable samples."""


class ProjectError(DspError):
    """A project file or session is invalid (bad JSON, overlapping clips, ...)."""


class BackendUnavailable(DspError):
    """The requested backend cannot be used (e.g. the C extension was not built)."""
