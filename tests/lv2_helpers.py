"""LV2 test helpers: the misbehaving test plug-in, built with the C compiler into a
bundle on ``LV2_PATH``, and the installed plug-ins the tests use."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from dsp_core import lv2_catalog

SOURCE = Path(__file__).parent / "lv2_bundle"
MISBEHAVE = "urn:maxbooster:test:misbehave"
WORKER = "urn:maxbooster:test:worker"  # uses the Worker extension (lv2_bundle/worker.c)
INSTRUMENT = "urn:maxbooster:test:instrument"  # MIDI in, a DC step out (lv2_bundle/instrument.c)
#: The same, but a reset keeps its sounding note (as LSP's samplers keep their voices).
INSTRUMENT_KEEP = "urn:maxbooster:test:instrument-keep"
SWH_AMP = "http://plugin.org.uk/swh-plugins/amp"  # swh-lv2: gain in dB, mono
X42_EQ = "http://gareus.org/oss/lv2/fil4#mono"  # x42-plugins: parametric EQ, mono
LSP_DELAY = "http://lsp-plug.in/plugins/lv2/comp_delay_mono"  # lsp-plugins-lv2, needs urid:map
LSP_SAMPLER = "http://lsp-plug.in/plugins/lv2/sampler_mono"  # lsp-plugins-lv2, MIDI in
SYSTEM_LV2 = "/usr/lib/lv2:/usr/local/lib/lv2:/usr/lib/x86_64-linux-gnu/lv2"
MODES = {"pass": 0, "nan": 1, "hang": 2, "crash": 3, "denormal": 4}


def sampler_hit(folder: Path, rate: int = 48000, gain: float = 1.0, frames: int = 4800
                ) -> tuple[np.ndarray, str]:
    """A ``frames``-long sample (a click, a half click, then a step; times ``gain``)
    written in ``folder`` (made if missing), and LSP Sampler Mono's state naming its file
    (played unshifted by note 57)."""
    data = np.zeros(frames, dtype=np.float32)
    data[0], data[100], data[200:] = 1.0, 0.5, 0.25
    data *= np.float32(gain)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hit.wav"
    sf.write(path, data, rate, subtype="FLOAT")
    state = (
        "@prefix atom: <http://lv2plug.in/ns/ext/atom#> .\n"
        "@prefix lv2: <http://lv2plug.in/ns/lv2core#> .\n"
        "@prefix pset: <http://lv2plug.in/ns/ext/presets#> .\n"
        "@prefix state: <http://lv2plug.in/ns/ext/state#> .\n\n"
        f"<urn:maxbooster:lv2-state>\n\ta pset:Preset ;\n\tlv2:appliesTo <{LSP_SAMPLER}> ;\n"
        f'\tstate:state [\n\t\t<{LSP_SAMPLER}/ports#sf_0> "{path}"^^atom:Path\n\t] .\n')
    return data, state


async def live_mix_frames(folder: Path, song: Any, count: int = 10
                          ) -> tuple[list[Any], Any, int]:
    """Play ``song`` (a :class:`dsp_core.session.Session`) in a room's live mix from
    ``dawserver.live_mix.FRAME`` (960-frame blocks paced in real time): its first
    ``count`` frames on the timeline, the room's session then, and the mix's plug-in
    latency while it played."""
    import asyncio

    from room_helpers import project_room

    from collab.store import open_store
    from dawserver.live_mix import FRAME, LiveMix
    from dawserver.projects import import_session
    from dsp_core import Engine

    def factory(session: Any, rate: int) -> Engine:
        return Engine(session, sample_rate=rate)

    async with open_store(None, folder) as store:
        info = await import_session(store, song)
        async with project_room(info.project_id, store) as room:
            await room.edit(lambda d: d.update_transport(playing=True, position=FRAME))
            async with LiveMix(room, factory=factory) as mix:
                mix.document_changed()
                frames: list[Any] = []
                mix.taps.append(frames.append)
                async with asyncio.timeout(60):
                    while sum(f.timeline is not None for f in frames) < count:
                        await asyncio.sleep(0.02)
                mix.taps.remove(frames.append)
                latency = mix.plugin_latency
            played = room.document.to_session()
    return [f for f in frames if f.timeline is not None][:count], played, latency


def build_bundle(folder: Path) -> Path:
    """Compile the test plug-ins (misbehave, worker, instrument) into ``folder/misbehave.lv2``;
    return the bundle."""
    bundle = folder / "misbehave.lv2"
    bundle.mkdir(parents=True, exist_ok=True)
    shutil.copy(SOURCE / "manifest.ttl", bundle / "manifest.ttl")
    for name in ("misbehave", "worker", "instrument"):
        shutil.copy(SOURCE / f"{name}.ttl", bundle / f"{name}.ttl")
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(bundle / f"{name}.so"),
                        str(SOURCE / f"{name}.c"), "-lm"], check=True, timeout=120)
    return bundle


@pytest.fixture(scope="session")
def lv2_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``LV2_PATH`` with the test bundle first, then the system's folders."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler to build the test plug-in")
    folder = tmp_path_factory.mktemp("lv2")
    build_bundle(folder)
    before = os.environ.get("LV2_PATH")
    os.environ["LV2_PATH"] = f"{folder}:{before or SYSTEM_LV2}"
    lv2_catalog.reload()
    yield os.environ["LV2_PATH"]
    if before is None:
        os.environ.pop("LV2_PATH", None)
    else:
        os.environ["LV2_PATH"] = before
    lv2_catalog.reload()


def needs_plugin(uri: str) -> None:
    """Skip when an installed plug-in (a Debian package) is missing."""
    try:
        lv2_catalog.plugin(uri)
    except Exception as exc:  # noqa: BLE001 - lilv or the plug-in missing
        pytest.skip(f"{uri} is not installed ({exc}); see scripts/apt-packages.txt")
