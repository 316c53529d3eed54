"""A JACK server for MIDI tests: RtMidi's JACK API gives virtual MIDI ports without a
sound card (this machine has no ``/dev/snd``, so no ALSA sequencer)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def jack_server(rate: int = 48000, period: int = 256) -> Iterator[str]:
    """Start ``jackd -d dummy`` under a fresh name (set ``JACK_DEFAULT_SERVER`` to it).

    It runs synchronously (``-S``): each period waits for every client. Asynchronous, a
    client that a busy machine did not schedule in time skips the period, and the MIDI
    events sent in it are lost to it (a note of three went missing in CI)."""
    if shutil.which("jackd") is None or shutil.which("jack_wait") is None:
        pytest.fail("jackd is not installed: apt-get install jackd2 (scripts/apt-packages.txt)")
    name = f"daw-midi-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(["jackd", "-n", name, "--no-realtime", "-S", "-d", "dummy", "-r",
                             str(rate), "-p", str(period)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        subprocess.run(["jack_wait", "-s", name, "-w", "-t", "10"], check=True,
                       capture_output=True, timeout=15)
        yield name
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def client_connected(server: str) -> bool:
    """Whether a ``dawclient --midi-in`` on JACK server ``server`` has its MIDI input port
    open (it connects to ours as it opens)."""
    ports = subprocess.run(["jack_lsp", "-s", server], capture_output=True, text=True,
                           timeout=10).stdout
    return "dawclient in" in ports


async def playing_midi_client(app: Any, base_url: str, session: Any, server: str,
                              tmp_path: Path, saved: Path, *, rate: int = 48000,
                              block: int = 256, seconds: float = 4.0
                              ) -> tuple[str, asyncio.subprocess.Process]:
    """``session`` imported into the running server ``app`` and playing, and ``dawclient``
    started on it for ``seconds`` (output saved to ``saved``) taking MIDI from the JACK port
    ``keys``: its project id and process, once its MIDI port is open and its blocks
    reach ``saved``."""
    from nodepeer import eventually

    from collab.tokens import Role
    from dawserver.assets import ASSETS
    from dawserver.keys import ROOMS, STORE, TOKENS
    from dawserver.projects import import_session

    info = await import_session(app[STORE], session, assets=app[ASSETS])
    async with app[ROOMS].use(info.project_id) as room:
        await room.edit(lambda d: d.update_transport(playing=True, position=0))
    token = app[TOKENS].issue(info.project_id, Role.EDITOR, "ana")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dawclient", base_url, "--project", info.project_id,
        "--token", token, "--cache", str(tmp_path / "cache"), "--device", "system",
        "--block-size", str(block), "--latency", "low", "--seconds", str(seconds), "--save",
        str(saved), "--midi-in", "keys", "--midi-api", "jack",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    await eventually(lambda: client_connected(server), timeout=30)
    # playing: blocks reach the saved copy
    await eventually(lambda: saved.exists() and saved.stat().st_size > 8 * rate // 4,
                     timeout=30)
    return info.project_id, proc
