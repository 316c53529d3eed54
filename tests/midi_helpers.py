"""A JACK server for MIDI tests: RtMidi's JACK API gives virtual MIDI ports without a
sound card (this machine has no ``/dev/snd``, so no ALSA sequencer)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def jack_server(rate: int = 48000, period: int = 256) -> Iterator[str]:
    """Start ``jackd -d dummy`` under a fresh name (set ``JACK_DEFAULT_SERVER`` to it)."""
    if shutil.which("jackd") is None or shutil.which("jack_wait") is None:
        pytest.fail("jackd is not installed: apt-get install jackd2 (scripts/apt-packages.txt)")
    name = f"daw-midi-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r",
                             str(rate), "-p", str(period)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        subprocess.run(["jack_wait", "-s", name, "-w", "-t", "10"], check=True,
                       capture_output=True, timeout=15)
        yield name
    finally:
        proc.terminate()
        proc.wait(timeout=10)
