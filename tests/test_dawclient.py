"""The desktop client package stands apart from the server: it never imports it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Imports every module of dawclient (and runs its command's help), then lists the
#: top-level packages of this project that ended up loaded.
PROBE = """
import importlib, json, pkgutil, sys
import dawclient
from dawclient.cli import client
for module in pkgutil.walk_packages(dawclient.__path__, "dawclient."):
    if module.name != "dawclient.__main__":
        importlib.import_module(module.name)
client.main(["--help"], prog_name="dawclient", standalone_mode=False)
ours = {"dawclient", "dawserver", "collab", "dsp_core", "native", "transcription", "business"}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ours)))
"""

#: The one transcript model, which the project document stores, and the language table it
#: joins words by: small and dependency-free.
TRANSCRIPT_MODEL = {"transcription", "transcription.errors", "transcription.transcript",
                    "transcription.languages"}


def test_the_client_imports_collab_and_dsp_core_but_never_the_server() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout.splitlines()[-1])) - TRANSCRIPT_MODEL
    loaded = {m.split(".")[0] for m in modules}
    assert loaded <= {"dawclient", "collab", "dsp_core", "native"}, sorted(modules)
    assert {"collab", "dsp_core"} <= loaded
