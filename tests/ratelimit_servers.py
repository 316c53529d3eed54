"""Real ``dawserver serve`` processes sharing one database and one Redis, a free-plan API
key made by the CLI, and paced load offered to them: what the rate limiter's smoke test
and benchmark share (``tests/test_accounts_ratelimit_servers.py``,
``benchmarks/bench_ratelimit.py``).

Each answer is kept with when its request was sent and when the answer came back: the
server decided it in between, so accepted requests that were both sent and answered
inside one second were certainly admitted inside it (:func:`most_certainly_within`).
Exactly when each was admitted is in Redis: the limiter's script pushes every admitted
request's ``TIME`` stamp onto the moving window's list, and :class:`WindowStamps` sees
each push through Redis's ``MONITOR``, which Redis queues for it however late it reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import redis
from loopback import free_port

from accounts.ratelimit import PLANS

ROOT = Path(__file__).resolve().parents[1]
#: A cheap route an ``account.read`` key may call: the key's projects (none), as JSON.
PATH = "/api/v1/projects"
#: Cheap password hashing for the CLI (the default costs ~0.4 s of one core).
HASHING = "1,1024,1"


@dataclass(frozen=True)
class Served:
    """The servers' base URLs and process ids, and the free-plan key they all count
    against (its secret, and its id: the rate limiter's key)."""

    urls: list[str]
    pids: list[int]
    secret: str
    key_id: str


@dataclass(frozen=True)
class Answer:
    """One request: seconds since the load began when sent and when answered."""

    server: int
    sent: float
    done: float
    status: int
    rate_limit: str
    retry_after: str | None

    @property
    def accepted(self) -> bool:
        return self.status == 200


def _cli(*args: str, stdin: str | None = None) -> tuple[str, str]:
    """``dawserver ARGS`` in this process (as an operator runs it); its standard output
    and error."""
    from click.testing import CliRunner

    from dawserver.cli import main

    result = CliRunner().invoke(main, list(args), input=stdin)
    if result.exit_code != 0:
        raise AssertionError(f"dawserver {' '.join(args)} failed: {result.output}"
                             f"{result.exception!r}")
    return result.stdout.strip(), result.stderr


def free_key(data: Path, database_url: str) -> tuple[str, str]:
    """A person on the free plan and an ``account.read`` key of theirs: its id and
    secret."""
    where = ["--data", str(data), "--database", database_url, "--hashing", HASHING]
    email = "limits@example.org"
    person, _ = _cli("users", "create", email, "--plan", "free", "--password-stdin", *where,
                     stdin="correct horse battery staple\n")
    secret, said = _cli("keys", "create", person.splitlines()[-1], "--name", "load",
                        "--scope", "account.read", "--by", email, *where)
    key_id = said.split("created key ", 1)[1].split()[0]
    return key_id, secret.splitlines()[-1]


async def _wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float
                          ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dawserver serve exited with {proc.returncode}: "
                                 f"{log.read_text()[-4000:]}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"dawserver serve did not listen on {port} within {timeout} s: "
                         f"{log.read_text()[-4000:]}")


def cpu_seconds(pids: Sequence[int]) -> float:
    """User and system CPU seconds the processes ``pids`` have used (Linux ``/proc``)."""
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def _until_idle(pids: Sequence[int], timeout: float, every_s: float = 0.5) -> None:
    """Wait until the servers are done starting (whatever they do in the background once
    they listen): under a fifth of a core each, twice running."""
    deadline, calm = time.monotonic() + timeout, 0
    before = cpu_seconds(pids)
    while calm < 2 and time.monotonic() < deadline:
        await asyncio.sleep(every_s)
        now = cpu_seconds(pids)
        calm = calm + 1 if now - before < 0.2 * every_s * len(pids) else 0
        before = now


@contextlib.asynccontextmanager
async def served(root: Path, database_url: str, redis_url: str | None, servers: int = 2,
                 start_timeout: float = 180.0) -> AsyncIterator[Served]:
    """``servers`` ``dawserver serve`` processes on ``database_url`` and ``redis_url``
    (one data directory under ``root``) and a free key; all stopped on the way out.
    Without ``redis_url`` each process counts the key's requests on its own."""
    data = root / "data"
    key_id, secret = await asyncio.to_thread(free_key, data, database_url)
    # no LV2 plug-ins: the catalogue a server loads in a thread as it starts would
    # otherwise take seconds of CPU (and the GIL) from the first requests
    (root / "no-lv2").mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LV2_PATH": str(root / "no-lv2")}
    procs: list[subprocess.Popen] = []
    ports = [free_port() for _ in range(servers)]
    try:
        for n, port in enumerate(ports):
            log = root / f"serve-{n}.log"
            with log.open("w") as out:  # a file: a full pipe would stall the server
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "dawserver", "serve", "--port", str(port),
                     "--data", str(data), "--database", database_url,
                     *(["--redis", redis_url] if redis_url else [])],
                    stdout=out, stderr=subprocess.STDOUT, env=env))
        await asyncio.gather(*(_wait_listening(port, proc, root / f"serve-{n}.log",
                                               start_timeout)
                               for n, (port, proc) in enumerate(zip(ports, procs,
                                                                    strict=True))))
        await _until_idle([proc.pid for proc in procs], start_timeout)
        yield Served([f"http://127.0.0.1:{port}" for port in ports],
                     [proc.pid for proc in procs], secret, key_id)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)


async def offer(urls: Sequence[str], secret: str, per_s: float, seconds: float
                ) -> list[Answer]:
    """``per_s`` requests a second for ``seconds``, evenly paced, dealt to ``urls`` in turn;
    every answer (each request is sent on time, whether earlier ones were answered)."""
    loop = asyncio.get_running_loop()
    headers = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        for url in urls:  # a connection to each first, without the key (not counted)
            async with http.get(url + "/") as response:
                await response.read()
        start = loop.time()

        async def one(n: int) -> Answer:
            sent = loop.time() - start
            async with http.get(urls[n % len(urls)] + PATH, headers=headers) as response:
                await response.read()
                return Answer(n % len(urls), sent, loop.time() - start, response.status,
                              response.headers.get("RateLimit", ""),
                              response.headers.get("Retry-After"))

        tasks = []
        for n in range(round(per_s * seconds)):
            delay = start + n / per_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        return list(await asyncio.gather(*tasks))


def busiest_second(answers: Sequence[Answer]) -> int:
    """Most accepted requests in any one-second interval, by the middle of each trip."""
    return _most_within(sorted((a.sent + a.done) / 2 for a in answers if a.accepted))


def most_certainly_within(answers: Sequence[Answer], span: float = 1.0) -> int:
    """Most accepted requests that were sent and answered inside one interval of ``span``
    seconds, so were certainly admitted inside it, whatever the machine's pace."""
    accepted = sorted((a for a in answers if a.accepted), key=lambda a: a.sent)
    return max((sum(1 for b in accepted[i:] if b.done <= a.sent + span)
                for i, a in enumerate(accepted)), default=0)


def summary(answers: Sequence[Answer], stamps: WindowStamps) -> dict[str, float]:
    """Admitted per second by Redis's stamps (mean, min, max, the busiest one-second
    interval), the same seen from here, and the round trips (p50, ms)."""
    per_second = stamps.per_second()
    trips = [(a.done - a.sent) * 1e3 for a in answers]
    return {"offered": len(answers), "accepted": sum(a.accepted for a in answers),
            "stamped": len(stamps.stamps),
            "per_s_mean": statistics.mean(per_second) if per_second else 0.0,
            "per_s_min": min(per_second, default=0), "per_s_max": max(per_second, default=0),
            "busiest_1s": stamps.busiest_second(),
            "busiest_1s_seen_here": busiest_second(answers),
            "certainly_within_1s": most_certainly_within(answers),
            "round_trip_p50_ms": statistics.median(trips)}


class WindowStamps:
    """Every request of API key ``key_id`` the servers admitted on ``plan``, as Redis
    stamped it (seconds, Redis's clock): each stamp the limiter's script pushes onto its
    list, seen by a thread through ``MONITOR`` (``with WindowStamps(...) as stamps:``; the
    set grows meanwhile).

    Redis queues every command for a monitor, so a stamp is never missed, however long
    the thread is kept from reading: the list itself drops a stamp a second after it was
    pushed, so reading the list would lose stamps whenever this process stalls that
    long.  On the way out a marker is echoed and the thread reads up to it, so every
    stamp pushed before the block ended is in :attr:`stamps`.
    """

    def __init__(self, redis_url: str, key_id: str, plan: str = "free") -> None:
        self.client = redis.Redis.from_url(redis_url)
        key = f"ratelimit:{PLANS[plan].key_for(key_id)}"  # the limiter's own key
        self._push = f"lpush {key} "  # as redis-py writes a monitored command
        self._marker = f"ECHO window-stamps-{uuid.uuid4().hex}"
        self.stamps: list[str] = []  # one per admitted request (a costed hit pushes more)
        self._failed: BaseException | None = None
        self._monitor = self.client.monitor()
        self._thread = threading.Thread(target=self._run, name="window-stamps", daemon=True)

    def _run(self) -> None:
        try:
            for command in self._monitor.listen():
                text = command["command"]
                if command["client_type"] == "lua" and text.startswith(self._push):
                    self.stamps.extend(text[len(self._push):].split())
                elif text == self._marker:
                    return
        except BaseException as exc:  # noqa: BLE001 - raised again by __exit__
            self._failed = exc

    def __enter__(self) -> WindowStamps:
        self._monitor.__enter__()  # MONITOR answered: every later command is queued
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.client.execute_command(*self._marker.split())
            self._thread.join(60)
        finally:
            self._monitor.__exit__()
            self.client.close()
        if self._failed is not None:
            raise AssertionError("reading the stamps through MONITOR failed") from self._failed
        if self._thread.is_alive():
            raise AssertionError("MONITOR did not bring the marker within 60 s")

    def times(self) -> list[float]:
        """The stamps in order, in seconds."""
        return sorted(float(stamp) for stamp in self.stamps)

    def per_second(self) -> list[int]:
        """Admitted in each whole second from the first admission (the last, partial
        second left out)."""
        times = self.times()
        if not times:
            return []
        per = Counter(int(t - times[0]) for t in times)
        return [per[s] for s in range(int(times[-1] - times[0]))]

    def busiest_second(self) -> int:
        """Most admissions in any one-second interval (Redis's clock)."""
        return _most_within(self.times())


def _most_within(times: Sequence[float], span: float = 1.0) -> int:
    """Most of the sorted ``times`` inside one interval of ``span`` seconds."""
    first = most = 0
    for last, t in enumerate(times):
        while t - times[first] > span:
            first += 1
        most = max(most, last - first + 1)
    return most
