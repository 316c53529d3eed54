"""Choose the kernel backend: ``native`` (C engine) or ``reference`` (numpy twins).

The choice is made here only.  ``DAW_BACKEND=reference`` forces the twins;
without the variable the C engine is used when it was built, and the package
falls back to the twins (slowly) when it was not.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from types import ModuleType

from .errors import BackendUnavailable, DspError

log = logging.getLogger(__name__)

BACKENDS = ("native", "reference")
_MODULES = {"native": "dsp_core.native_backend", "reference": "dsp_core.reference"}


@functools.cache
def native_available() -> bool:
    """True when the C extension imports (asked once: a build does not appear later)."""
    try:
        importlib.import_module(_MODULES["native"])
    except BackendUnavailable:
        return False
    return True


def default_backend() -> str:
    """The backend used when none is named: ``$DAW_BACKEND`` or the best available."""
    name = os.environ.get("DAW_BACKEND", "").strip().lower()
    if name:
        return name
    if native_available():
        return "native"
    log.warning("C engine not built: using the slow numpy reference backend")
    return "reference"


def get_backend(name: str | None = None) -> ModuleType:
    """Return the backend module: both expose ``mix``, ``render``, ``effect_process``."""
    name = (name or default_backend()).lower()
    if name not in BACKENDS:
        raise DspError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return importlib.import_module(_MODULES[name])
