#!/usr/bin/env python3
"""A bounded soak run: editors, uploads and bounces against a running server.

By default the script starts its own server (``python -m dawserver serve`` on a fresh
data directory, SQLite store) with a project holding one second of audio; ``--url`` with
``--project``, ``--token`` and ``--pid`` drives a server already running instead.

For ``--duration`` seconds it drives ``--editors`` Python editors over WebSockets (each
moves its own track's fader ``--edit-hz`` times a second and adds a comment every
``--comment-every`` seconds, 3 by default, 0 for none), uploads a new audio file every
``--upload-every`` seconds and asks for a bounce every ``--bounce-every`` seconds. Each
window (``--window`` seconds, a minute by default) it reports the server's resident
memory (RSS), the document's encoded size (its content: comments stay, fader moves
merge) and the edit latency (a fader move on one editor until another editor's
document holds it) as p50/p95/p99.

At the end it checks that nothing was lost: a fresh editor loads every comment written
(each exactly once) and every editor's last fader value, every upload is listed, every
bounce finished and its file downloads. It fails (exit 1) when something was lost, when
RSS grew by more than ``--max-rss-growth-mib`` from the first window to the last (plus
``--doc-memory-factor`` times the document's encoded growth: content is not a leak), or when
edit latency drifted: the median latency (p50) of the last third of the windows above
``--max-drift`` times that of the first third (and above it by more than
``--drift-floor-ms``).

    python3 scripts/soak.py --duration 1800 --editors 8          # 30 minutes by hand
    python3 scripts/soak.py --duration 120 --window 20 --json out.json   # the CI run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402 - after the repository is on the path
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from collab.client import SyncClient  # noqa: E402
from collab.store import open_store  # noqa: E402
from collab.tokens import Role, TokenSigner  # noqa: E402
from dawclient.channel import connect  # noqa: E402
from dawserver.asset_store import AssetStore  # noqa: E402
from dawserver.projects import import_project_file  # noqa: E402
from dsp_core.project import save_project  # noqa: E402
from dsp_core.session import Clip, Session, Track  # noqa: E402

RATE = 48000


def tone(hz: float, seconds: float = 0.5) -> bytes:
    """A quiet sine as WAV bytes (a new frequency is a new asset: its hash differs)."""
    t = np.arange(int(RATE * seconds)) / RATE
    buffer = io.BytesIO()
    sf.write(buffer, (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32), RATE,
             format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` (nearest rank); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Window:
    """What one window measured."""

    index: int
    seconds: float
    rss_mib: float
    edits: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    uploads: int
    bounces: int
    errors: int
    #: The document's encoded size (its full-state update) at the window's end, in KiB.
    doc_kib: float = 0.0

    def line(self) -> str:
        return (f"window {self.index:3d} t={self.seconds:7.1f}s  rss {self.rss_mib:7.1f} MiB  "
                f"edits {self.edits:6d}  latency p50 {self.p50_ms:6.2f} p95 {self.p95_ms:6.2f}"
                f" p99 {self.p99_ms:6.2f} ms  uploads {self.uploads:3d}  bounces "
                f"{self.bounces:3d}  errors {self.errors}  doc {self.doc_kib:7.1f} KiB")


@dataclass
class Tally:
    """Everything acknowledged so far, and this window's samples."""

    latencies: list[float] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    bounces: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    last_gain: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    window_uploads: int = 0
    window_bounces: int = 0


@dataclass
class Target:
    """The server being soaked."""

    base_url: str
    project: str
    token: str
    pid: int

    @property
    def collab_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + f"/collab/{self.project}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def import_project(project_dir: Path, data: Path) -> str:
    """Store the project in ``data`` as ``dawserver import`` does; its id."""
    async with open_store(None, data) as store:
        info = await import_project_file(store, project_dir,
                                         assets=AssetStore(data / "assets"))
    return info.project_id


@contextlib.contextmanager
def own_server(editors: int) -> Any:
    """A server of our own on a fresh data directory, with a project of ``editors`` tracks."""
    with tempfile.TemporaryDirectory(prefix="daw-soak-") as tmp:
        data, project_dir = Path(tmp) / "data", Path(tmp) / "project"
        project_dir.mkdir()
        (project_dir / "tone.wav").write_bytes(tone(220, 1.0))
        session = Session(name="Soak", tracks=[
            Track(f"t{i}", f"Editor {i}", clips=[
                Clip(str(project_dir / "tone.wav"), 0, RATE, id=f"c{i}")])
            for i in range(editors)])
        save_project(session, project_dir)
        data.mkdir()
        project = asyncio.run(import_project(project_dir, data))
        token = TokenSigner.from_data_dir(data).issue(project, Role.EDITOR, "soak")
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        log_path = Path(tmp) / "server.log"  # a file: a full pipe would stall the server
        log_file = log_path.open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "dawserver", "serve", "--port", str(port), "--data",
             str(data)], env=env, stdout=subprocess.DEVNULL, stderr=log_file)
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start: " + log_path.read_bytes()
                                       .decode(errors="replace")[-2000:])
                time.sleep(0.1)
            yield Target(f"http://127.0.0.1:{port}", project, token, server.pid)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log_file.close()


class Editors:
    """``count`` editors on one project; editor i moves track ``t{i}``, editor i+1 times it."""

    def __init__(self, target: Target, count: int, tally: Tally) -> None:
        self.target, self.count, self.tally = target, count, tally
        self.clients: list[SyncClient] = []
        self.pending: list[dict[float, float]] = [{} for _ in range(count)]
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Editors:
        self._loop = asyncio.get_running_loop()
        for _ in range(self.count):
            channel = await self._stack.enter_async_context(
                connect(self.target.collab_url, self.target.token))
            client = await self._stack.enter_async_context(SyncClient(channel))
            await client.wait_synced()
            self.clients.append(client)
        for i, client in enumerate(self.clients):  # client i watches editor i-1's track
            watched = (i - 1) % self.count
            client.doc.observe(lambda _event, w=watched, c=client: self._loop.call_soon(
                self._arrived, w, c, time.perf_counter()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def _arrived(self, writer: int, observer: SyncClient, at: float) -> None:
        """(Out of the transaction, whose document cannot be read.)"""
        pending = self.pending[writer]
        if not pending:
            return
        value = observer.document.track(f"t{writer}")["gain_db"]
        sent = pending.pop(value, None)
        if sent is not None:
            self.tally.latencies.append((at - sent) * 1000)
            for older in [v for v, t in pending.items() if t < sent]:
                del pending[older]  # overtaken: the later value won (not a loss)

    async def run(self, editor: int, hz: float, until: float, comment_every: float = 3.0
                  ) -> None:
        client, k = self.clients[editor], 0
        while time.monotonic() < until and not client.closed.is_set():
            k += 1
            value = -round((k % 4000) / 100, 2)
            self.pending[editor][value] = time.perf_counter()
            client.document.set_track_gain(f"t{editor}", value)
            self.tally.last_gain[f"t{editor}"] = value
            if comment_every > 0 and k % max(1, int(hz * comment_every)) == 0:
                text = f"editor {editor} note {k}"
                client.document.add_comment(f"e{editor}", text)
                self.tally.comments.append(text)
            await asyncio.sleep(1 / hz)
        if client.closed.is_set():
            self.tally.errors.append(f"editor {editor} was disconnected")


async def uploads(http: aiohttp.ClientSession, target: Target, tally: Tally, every: float,
                  until: float) -> None:
    n = 0
    while time.monotonic() + every < until:
        await asyncio.sleep(every)
        n += 1
        body = tone(300 + n * 7.0)
        async with http.post(f"{target.base_url}/projects/{target.project}/assets?name=u.wav",
                             data=body, headers=target.headers) as answer:
            if answer.status != 201:
                tally.errors.append(f"upload {n}: {answer.status} {await answer.text()}")
                continue
            tally.uploads.append((await answer.json())["id"])
            tally.window_uploads += 1


async def bounces(http: aiohttp.ClientSession, target: Target, tally: Tally, every: float,
                  until: float) -> None:
    base = f"{target.base_url}/projects/{target.project}/bounces"
    while time.monotonic() + every < until:
        await asyncio.sleep(every)
        async with http.post(base, json={}, headers=target.headers) as answer:
            job = await answer.json()
            if answer.status != 202:
                tally.errors.append(f"bounce: {answer.status} {job}")
                continue
        async with asyncio.timeout(120):
            while job["status"] not in ("done", "failed", "cancelled"):
                await asyncio.sleep(0.2)
                async with http.get(f"{base}/{job['id']}", headers=target.headers) as answer:
                    job = await answer.json()
        if job["status"] != "done":
            tally.errors.append(f"bounce {job['id']} ended {job['status']}: {job}")
            continue
        tally.bounces.append(job["id"])
        tally.window_bounces += 1


async def nothing_lost(http: aiohttp.ClientSession, target: Target, tally: Tally) -> list[str]:
    """What was acknowledged but is missing (or there twice) now; empty when all is there."""
    problems = []
    async with connect(target.collab_url, target.token) as channel, \
            SyncClient(channel) as fresh:
        await fresh.wait_synced()
        texts = [c["text"] for c in fresh.document.to_json()["comments"].values()]
        if sorted(texts) != sorted(tally.comments):
            missing = set(tally.comments) - set(texts)
            problems.append(f"comments: {len(tally.comments)} written, {len(texts)} loaded, "
                            f"{len(missing)} missing, {len(texts) - len(set(texts))} twice")
        for track, value in tally.last_gain.items():
            if fresh.document.track(track)["gain_db"] != value:
                problems.append(f"{track}: last fader value {value} not loaded")
    async with http.get(f"{target.base_url}/projects/{target.project}/assets",
                        headers=target.headers) as answer:
        listed = {asset["id"] for asset in await answer.json()}
    if lost := set(tally.uploads) - listed:
        problems.append(f"{len(lost)} uploads not listed: {sorted(lost)[:3]}")
    for job in tally.bounces:
        url = f"{target.base_url}/projects/{target.project}/bounces/{job}/audio"
        async with http.get(url, headers=target.headers) as answer:
            if answer.status != 200 or not await answer.read():
                problems.append(f"bounce {job}: audio answers {answer.status}")
    return problems


def verdict(windows: list[Window], args: argparse.Namespace) -> list[str]:
    """Why the run failed on memory or latency (empty: it passed)."""
    if len(windows) < 2:
        return ["too short: at least two windows are needed (lengthen --duration)"]
    problems = []
    growth = windows[-1].rss_mib - windows[0].rss_mib
    # Content is not a leak: the document's growth is allowed on top of the bound, at
    # what the server holds per encoded byte (the room's document and its trial copy).
    doc_growth = max(0.0, windows[-1].doc_kib - windows[0].doc_kib)
    allowed = args.max_rss_growth_mib + args.doc_memory_factor * doc_growth / 1024
    if growth > allowed:
        problems.append(f"RSS grew {growth:.1f} MiB (from {windows[0].rss_mib:.1f} to "
                        f"{windows[-1].rss_mib:.1f}), over the {allowed:.1f} MiB allowed: "
                        f"--max-rss-growth-mib {args.max_rss_growth_mib} plus "
                        f"{args.doc_memory_factor:g}x the document's growth, "
                        f"{doc_growth:.1f} KiB encoded")
    third = max(1, len(windows) // 3)
    # The median latency: a p95 follows whatever else the machine runs in that window.
    early = statistics.median(w.p50_ms for w in windows[:third])
    late = statistics.median(w.p50_ms for w in windows[-third:])
    if late > args.max_drift * early and late - early > args.drift_floor_ms:
        problems.append(f"edit latency drifted: p50 {early:.2f} ms early, {late:.2f} ms late "
                        f"(over {args.max_drift}x and {args.drift_floor_ms} ms)")
    return problems


async def soak(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    tally, windows = Tally(), []
    start = time.monotonic()
    until = start + args.duration
    async with aiohttp.ClientSession() as http, Editors(target, args.editors, tally) as eds:
        tasks = [asyncio.create_task(eds.run(i, args.edit_hz, until, args.comment_every))
                 for i in range(args.editors)]
        tasks.append(asyncio.create_task(uploads(http, target, tally, args.upload_every,
                                                 until)))
        tasks.append(asyncio.create_task(bounces(http, target, tally, args.bounce_every,
                                                 until)))
        errors_seen = 0
        while (now := time.monotonic()) < until - 0.5:
            await asyncio.sleep(min(args.window, until - now))
            samples, tally.latencies = tally.latencies, []
            window = Window(
                len(windows), round(time.monotonic() - start, 1), round(rss_mib(target.pid), 1),
                len(samples), round(percentile(samples, 50), 2),
                round(percentile(samples, 95), 2), round(percentile(samples, 99), 2),
                tally.window_uploads, tally.window_bounces, len(tally.errors) - errors_seen,
                round(len(eds.clients[0].doc.get_update()) / 1024, 1))
            errors_seen = len(tally.errors)
            tally.window_uploads = tally.window_bounces = 0
            windows.append(window)
            print(window.line(), flush=True)
        await asyncio.gather(*tasks)
        await asyncio.sleep(1.0)  # the last edits reach the store
        lost = await nothing_lost(http, target, tally)
    problems = [*tally.errors, *lost, *verdict(windows, args)]
    return {"windows": [w.__dict__ for w in windows], "edits": sum(w.edits for w in windows),
            "comments": len(tally.comments), "uploads": len(tally.uploads),
            "bounces": len(tally.bounces), "lost": lost, "errors": tally.errors,
            "problems": problems, "passed": not problems,
            "settings": {k: v for k, v in vars(args).items() if k not in ("token",)}}


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds (default 120)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds per report line")
    parser.add_argument("--editors", type=int, default=4)
    parser.add_argument("--edit-hz", type=float, default=5.0, help="fader moves a second, each")
    parser.add_argument("--comment-every", type=float, default=3.0,
                        help="seconds between one editor's comments (0: none)")
    parser.add_argument("--upload-every", type=float, default=10.0)
    parser.add_argument("--bounce-every", type=float, default=30.0)
    parser.add_argument("--max-rss-growth-mib", type=float, default=64.0)
    parser.add_argument("--doc-memory-factor", type=float, default=30.0,
                        help="server memory per encoded byte of document growth, allowed "
                             "on top of --max-rss-growth-mib (measured: about 30)")
    parser.add_argument("--max-drift", type=float, default=3.0)
    parser.add_argument("--drift-floor-ms", type=float, default=25.0)
    parser.add_argument("--url", help="a running server's base URL (default: start one)")
    parser.add_argument("--project", help="with --url: the project to edit")
    parser.add_argument("--token", help="with --url: an editor's token for it")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id (RSS)")
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args(argv)
    if args.url and not (args.project and args.token and args.pid):
        parser.error("--url needs --project, --token and --pid")
    if args.editors < 2:
        parser.error("--editors must be at least 2 (one editor times another's edits)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if args.url:
        report = asyncio.run(soak(Target(args.url.rstrip("/"), args.project, args.token,
                                         args.pid), args))
    else:
        with own_server(args.editors) as target:
            report = asyncio.run(soak(target, args))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    for problem in report["problems"]:
        print(f"FAIL: {problem}", file=sys.stderr)
    print(f"{'passed' if report['passed'] else 'FAILED'}: {report['edits']} timed edits, "
          f"{report['comments']} comments, {report['uploads']} uploads, "
          f"{report['bounces']} bounces")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
