"""A slow disk under a running server: its data directory (uploads, bounces) behind a FUSE
passthrough whose every write waits 30 ms (``tests/slow_disk.py``).

dm-delay is not available in this container (no device-mapper in the kernel) and cgroup
v1 io throttling does not slow buffered writes, so the delay is a FUSE passthrough run in
a process of its own. SQLite's WAL cannot live on it (its ``-shm`` file is memory-mapped
and FUSE answers that with SIGBUS here), so the document store stays on the fast disk.

While an upload and a bounce crawl through the slow disk, editors keep editing: every
edit reaches the other editor and the store, the upload and the bounce finish whole, and
the server's event loop is never held by a write (an upload's chunks are written off the
loop): the longest pause of a ticker on the loop stays below a third of the time the
upload takes (before the fix, a write on the loop held it for two thirds of it).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from fault_helpers import fuse_works, linked_servers, slow_disk, texts
from nodepeer import eventually
from project_helpers import tone

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180),
              pytest.mark.skipif(fuse_works() is not None, reason=str(fuse_works()))]


class Ticker:
    """Wakes every 5 ms on the event loop and remembers the longest gap between wakes."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    def __enter__(self) -> Ticker:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def test_a_slow_disk_slows_uploads_but_never_the_editors(tmp_path: Path) -> None:
    database = f"sqlite://{tmp_path / 'collab.sqlite3'}"
    audio = tone(510)  # 0.5 s of float WAV, about 96 KiB: several slow writes
    with slow_disk(tmp_path / "disk", tmp_path / "slow", delay_ms=30) as data:
        async with linked_servers(data, database, [None]) as dep, \
                dep.client(0, "ana") as ana, dep.client(0, "ben") as ben, \
                aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {dep.token()}"}
            base = f"{dep.configs[0].base_url}/projects/{dep.project_id}"
            written: list[str] = []

            async def edit() -> None:
                for i in range(40):
                    ana.document.add_comment("ana", f"slow {i}")
                    written.append(f"slow {i}")
                    await asyncio.sleep(0.02)

            async def upload() -> tuple[int, dict, float]:
                start = time.perf_counter()
                async with http.post(f"{base}/assets?name=s.wav", data=audio,
                                     headers=headers) as answer:
                    return answer.status, await answer.json(), time.perf_counter() - start

            with Ticker() as ticker:
                _, (status, asset, upload_s) = await asyncio.gather(edit(), upload())
            assert status == 201, asset
            await eventually(lambda: texts(ben.document) == sorted(written), timeout=30)
            assert texts(await dep.stored()) == sorted(written)
            print(f"upload {upload_s * 1000:.0f} ms, longest loop pause "
                  f"{ticker.longest * 1000:.0f} ms")
            assert ticker.longest < upload_s / 3, "a write held the event loop"
            stored = data / "assets" / "objects"
            assert any(p.stat().st_size >= len(audio) for p in stored.rglob("*") if p.is_file())
            assert not [p for p in (data / "assets" / "tmp").iterdir()]
