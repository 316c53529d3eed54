"""Collaboration server under load, against the reference Node y-websocket server.

Both servers run as separate processes in the same run, under the identical
load from one Node process (``tests/js/bench_load.mjs``): a 256-track project
with 2,000 clips, 10 / 50 / 100 clients each moving a fader at 10 Hz.  Reported
per load: edit propagation latency (sender to every other client) p50/p99,
deliveries lost, late-joiner sync time, server CPU and the load generator's
own CPU and event-loop lag (to tell server time from harness time); once per
server: memory per loaded document.

Run by hand (figures in docs/benchmarks-collab.md)::

    python benchmarks/bench_collab.py --out docs/benchmarks-collab.json

``--smoke`` (or ``DAW_BENCH_SMOKE=1`` under pytest) runs a tiny version.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "tests" / "js"
REFERENCE = JS / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"


def bench_session(tracks: int, clips: int):
    """A session of ``tracks`` tracks with ``clips`` clips spread over them, EQ on each track."""
    from dsp_core.effects import three_band_eq
    from dsp_core.session import Clip, Session, Track

    session = Session(name="Bench", tracks=[
        Track(f"t{i:03d}", f"Track {i}", effects=three_band_eq(0.0, 0.0, 0.0))
        for i in range(tracks)])
    for k in range(clips):
        track = session.tracks[k % tracks]
        slot = k // tracks
        track.clips.append(Clip(f"/audio/take-{k}.flac", slot * 96000, 48000,
                                id=f"clip-{k:04d}"))
    return session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early: {proc.stdout.read() if proc.stdout else ''}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Server:
    """A server process under test: ours (``dawserver serve``) or the reference."""

    def __init__(self, name: str, proc: subprocess.Popen, port: int, token: str) -> None:
        self.name, self.proc, self.port, self.token = name, proc, port, token

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/collab"


@contextlib.contextmanager
def our_server(data: Path, seed: bytes, rooms: list[str], database_url: str | None = None
               ) -> Iterator[Server]:
    import asyncio

    from collab.store import open_store
    from collab.tokens import Role, TokenSigner

    async def create() -> None:
        async with open_store(database_url, data) as store:
            for room in rooms:
                await store.create_project(room, room, seed)

    asyncio.run(create())
    token = TokenSigner.from_data_dir(data).issue("*", Role.OWNER, "bench")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dawserver", "serve", "--port", str(port), "--data", str(data),
         "--idle-unload", "3600", "--max-documents", "1000",
         *(["--database", database_url] if database_url else [])],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_port(port, proc)
        yield Server("ours", proc, port, token)
    finally:
        proc.terminate()
        proc.wait(20)


@contextlib.contextmanager
def reference_server() -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    proc = subprocess.Popen(["node", str(REFERENCE)], cwd=JS, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_port(port, proc)
        yield Server("reference", proc, port, "")
    finally:
        proc.terminate()
        proc.wait(20)


def driver(config: dict, workdir: Path) -> subprocess.Popen:
    path = workdir / f"load-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(config))
    return subprocess.Popen(["node", str(JS / "bench_load.mjs"), str(path)], cwd=JS,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def memory_per_document(server: Server, seed: bytes, rooms: list[str], workdir: Path) -> dict:
    """RSS growth of the server when ``rooms`` (all holding the project) are loaded."""
    time.sleep(0.5)
    before = rss_bytes(server.proc.pid)
    proc = driver({"mode": "seed", "url": server.url, "token": server.token, "rooms": rooms,
                   "seed": base64.b64encode(seed).decode()}, workdir)
    line = json.loads(proc.stdout.readline())
    if "error" in line:
        raise RuntimeError(line["error"])
    time.sleep(1.0)
    after = rss_bytes(server.proc.pid)
    proc.stdin.close()
    proc.wait(30)
    return {"documents": len(rooms), "rss_before_mb": before / 2**20,
            "rss_after_mb": after / 2**20, "per_document_mb": (after - before) / len(rooms) / 2**20}


def run_load(server: Server, clients: int, args: argparse.Namespace, tracks: list[str],
             workdir: Path) -> dict:
    """One load run; the driver samples the server's CPU over exactly its measuring window."""
    proc = driver({"mode": "load", "url": server.url, "token": server.token, "rooms": ["bench"],
                   "clients": clients, "hz": args.hz, "seconds": args.seconds,
                   "warmup": args.warmup, "drain": args.drain, "late_joins": args.late_joins,
                   "late_join_timeout": 10.0, "tracks": tracks,
                   "deadline": 120 + args.seconds * 3 + clients,
                   "server_pid": server.proc.pid}, workdir)
    result = None
    for line in proc.stdout:
        message = json.loads(line)
        if "phase" not in message:
            result = message
    proc.wait(60)
    if result is None or "error" in result:
        raise RuntimeError(f"{server.name}: load driver failed: {result}")
    result["server_cpu_cores"] = result["server_cpu_s"] / result["measure_s"]
    result["harness_cpu_cores"] = result["harness_cpu_s"] / result["measure_s"]
    joined = [ms for ms in result["late_join_ms"] if ms is not None]
    result["late_join_timeouts"] = len(result["late_join_ms"]) - len(joined)
    result["late_join_ms_median"] = statistics.median(joined) if joined else None
    for part in ("arrive", "apply"):  # until the document arrived; the client applying it
        values = [ms for ms in result[f"late_join_{part}_ms"] if ms is not None]
        result[f"late_join_{part}_ms_median"] = statistics.median(values) if values else None
    return result


def store_name(database_url: str | None) -> str:
    """What our server stores in: ``sqlite``, ``sqlite (synchronous=normal)`` or ``postgresql``."""
    from database import FULL_SYNC, parse_url

    parsed = parse_url(database_url)
    if parsed.dialect == "sqlite" and parsed.synchronous != FULL_SYNC:
        return f"sqlite (synchronous={parsed.synchronous})"
    return parsed.dialect


def ratio(ours: float | None, reference: float | None) -> float | None:
    return None if not ours or not reference else ours / reference


def run(args: argparse.Namespace) -> dict:
    from collab.schema import ProjectDocument

    session = bench_session(args.tracks, args.clips)
    seed = ProjectDocument.from_session(session).doc.get_update()
    tracks = [t.id for t in session.tracks]
    memory_rooms = ["bench"] + [f"mem-{i}" for i in range(args.memory_docs)]
    report: dict = {"store": store_name(args.database),
                    "tracks": args.tracks, "clips": args.clips, "document_bytes": len(seed),
                    "hz": args.hz, "seconds": args.seconds, "cpus": os.cpu_count(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-collab-") as tmp:
        workdir = Path(tmp)
        with our_server(workdir / "data", seed, memory_rooms, args.database) as ours, \
                reference_server() as ref:
            servers = [s for s in (ours, ref) if s.name in args.servers]
            report["memory"] = {s.name: memory_per_document(s, seed, memory_rooms, workdir)
                                for s in servers}
            for clients in args.clients:
                pair: dict = {"clients": clients}
                report["runs"].append(pair)
                for server in servers if clients % 20 else servers[::-1]:
                    pair[server.name] = run_load(server, clients, args, tracks, workdir)
                    print(json.dumps({server.name: pair[server.name]}), file=sys.stderr)
                    print(f"{server.name:9s} {clients:3d} clients: "
                          f"p50 {pair[server.name]['latency_ms']['p50']:.1f} ms, "
                          f"p99 {pair[server.name]['latency_ms']['p99']:.1f} ms, "
                          f"lost {pair[server.name]['lost']}, "
                          f"server cpu {pair[server.name]['server_cpu_cores']:.2f}, "
                          f"harness cpu {pair[server.name]['harness_cpu_cores']:.2f}",
                          file=sys.stderr)
                if len(servers) < 2:
                    continue
                pair["ratio"] = {
                    "p50": ratio(pair["ours"]["latency_ms"]["p50"],
                                 pair["reference"]["latency_ms"]["p50"]),
                    "p99": ratio(pair["ours"]["latency_ms"]["p99"],
                                 pair["reference"]["latency_ms"]["p99"]),
                    "late_join": ratio(pair["ours"]["late_join_ms_median"],
                                       pair["reference"]["late_join_ms_median"]),
                    "late_join_arrive": ratio(pair["ours"]["late_join_arrive_ms_median"],
                                              pair["reference"]["late_join_arrive_ms_median"]),
                    "server_cpu": ratio(pair["ours"]["server_cpu_cores"],
                                        pair["reference"]["server_cpu_cores"]),
                }
    if len(report["memory"]) == 2:
        report["memory"]["ratio"] = ratio(report["memory"]["ours"]["per_document_mb"],
                                          report["memory"]["reference"]["per_document_mb"])
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="10,50,100")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--tracks", type=int, default=256)
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--memory-docs", type=int, default=10)
    parser.add_argument("--late-joins", type=int, default=5)
    parser.add_argument("--drain", type=float, default=3.0,
                        help="seconds after the load stops before undelivered edits count lost")
    parser.add_argument("--servers", default="ours,reference")
    parser.add_argument("--database", default=None,
                        help="run our server on this database URL (an empty PostgreSQL "
                        "database, or sqlite://?synchronous=normal for commits without fsync)")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that checks it works")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    args = parser.parse_args(argv)
    args.clients = [int(n) for n in str(args.clients).split(",")]
    args.servers = args.servers.split(",")
    if args.smoke:
        args.clients, args.seconds, args.warmup = [3], 1.0, 0.5
        args.tracks, args.clips, args.memory_docs, args.late_joins = 8, 20, 1, 1
    return args


def main(argv: list[str] | None = None) -> dict:
    report = run(parse_args(argv))
    text = json.dumps(report, indent=2)
    args = parse_args(argv)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return report


def test_collab_server_against_the_reference_server() -> None:
    """Pytest entry: smoke-sized with DAW_BENCH_SMOKE=1; no edit may be lost."""
    smoke = os.environ.get("DAW_BENCH_SMOKE") == "1"
    report = run(parse_args(["--smoke"] if smoke else []))
    for entry in report["runs"]:
        assert entry["ours"]["lost"] == 0
        assert entry["ours"]["deliveries_received"] > 0


if __name__ == "__main__":
    main()
