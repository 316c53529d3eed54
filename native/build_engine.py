"""cffi API-mode builder for the C mixing engine (``native._engine``).

The ``cdef`` is read from ``engine.h`` itself (preprocessor lines stripped), so
the header stays the single description of the C API.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
SOURCES = ("engine.c", "effects.c", "reverb.c", "modulation.c", "shaping.c", "eq.c",
           "convolution.c", "lanes.c", "plain.c", "pool.c", "instruments.c",
           "lookahead.c", "immersive.c")


def _cdef_from_header(text: str) -> str:
    """Keep declarations, turn ``#define NAME number`` into cffi constants."""
    lines = []
    for line in text.splitlines():
        match = re.match(r"#define\s+(DAW_\w+)\s+(-?\d+)\s*$", line.split("/*")[0].rstrip())
        if match:
            lines.append(f"#define {match.group(1)} {match.group(2)}")
        elif not line.startswith("#"):
            lines.append(line)
    return "\n".join(lines)


def _compile_args() -> list[str]:
    args = ["-O3", "-std=c11", "-pthread", "-fno-math-errno", "-fno-trapping-math", "-D_GNU_SOURCE",
            "-fno-semantic-interposition",
            "-ffp-contract=off"]  # no FMA: the numpy twins round every multiply and add
    if sys.platform != "win32" and os.environ.get("DAW_PORTABLE") != "1":
        args.append("-march=native")
    return args


def _relative(path: Path) -> str:
    """setuptools wants paths relative to the directory it runs in."""
    return os.path.relpath(path, Path.cwd())


ffibuilder = FFI()
ffibuilder.cdef(_cdef_from_header((HERE / "engine.h").read_text()))
ffibuilder.set_source(
    "native._engine",
    '#include "engine.h"',
    sources=[_relative(HERE / name) for name in SOURCES],
    include_dirs=[_relative(HERE)],
    extra_compile_args=_compile_args(),
    libraries=["m"],
    extra_link_args=["-pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE.parent), verbose=True)
