"""What ``tests/`` and ``benchmarks/`` share: real servers on loopback, and a skip policy.

``postgres_url`` and ``redis_url`` start a throw-away PostgreSQL or Redis server
(installed by ``scripts/setup.sh``) once per run, on a free port of 127.0.0.1;
``redis_cluster_url`` a Redis Cluster of three masters with a replica each.

``scripts/test.sh`` installs every prerequisite (PostgreSQL, Redis, Node clients,
Chromium, PortAudio, the Whisper model) and sets ``DAW_REQUIRE_ALL=1``: under it a
skipped test counts as a failure, because a skip can then only mean a broken set-up.

Every test runs under pytest-timeout's thread method (pyproject.toml): a hung test
ends the run with the stacks of its threads and, here, of its unfinished asyncio
tasks (a hung event loop shows only ``select`` in its thread's stack); the servers
and processes the run started are stopped before it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("DAW_REQUIRE_ALL") != "1" or not report.skipped:
        return
    if hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"skipped under DAW_REQUIRE_ALL=1, where scripts/setup.sh has installed "
                       f"everything, so the set-up is broken: {reason}")


#: What must not outlive a run that a timeout ends with ``os._exit``, beyond the
#: processes it started (a PostgreSQL server leaves its pg_ctl parent: its stopper).
_STOP_ON_TIMEOUT: list[Callable[[], object]] = []


def _children() -> list[int]:
    """Process ids of this process's children (servers, peers and browsers of tests)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == os.getpid():
            pids.append(int(stat.parent.name))
    return pids


def _await_chain(task: asyncio.Task) -> list[traceback.FrameSummary]:
    """Where ``task`` waits: its coroutine and every coroutine it awaits, outermost first."""
    frames, coro = [], task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        frames.append(traceback.FrameSummary(frame.f_code.co_filename, frame.f_lineno,
                                             frame.f_code.co_name))
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames


def _timed_out(item: pytest.Item, settings: Any) -> None:
    """pytest-timeout's thread method, plus asyncio tasks and stopping our servers."""
    import pytest_timeout

    if not settings.disable_debugger_detection and pytest_timeout.is_debugging():
        return
    capman = item.config.pluginmanager.getplugin("capturemanager")
    if capman:
        capman.suspend_global_capture(item)
    terminal = item.config.get_terminal_writer()
    terminal.sep("+", title=f"Timeout of {item.nodeid} after {settings.timeout} s")
    for task in [o for o in gc.get_objects() if isinstance(o, asyncio.Task) and not o.done()]:
        terminal.sep("~", title=f"Unfinished asyncio task {task.get_name()}")
        terminal.write("".join(traceback.format_list(_await_chain(task))))
    for stop in _STOP_ON_TIMEOUT:
        try:
            stop()
        except Exception:
            traceback.print_exc()
    for pid in _children():
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    pytest_timeout.timeout_timer(item, settings)  # dumps the threads, then os._exit(1)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    """Start the thread method's timer with :func:`_timed_out` as what it runs."""
    if settings.method != "thread":
        return None
    timer = threading.Timer(settings.timeout, _timed_out, (item, settings))
    timer.name = f"timeout {item.nodeid}"
    timer.daemon = True

    def cancel() -> None:
        timer.cancel()
        timer.join()

    item.cancel_timeout = cancel  # what pytest-timeout's own cancel hook calls
    timer.start()
    return True


def _lock(path: Path, mode: int) -> int:
    """A file descriptor of ``path`` holding an ``flock`` of ``mode``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, mode)
    return fd


@contextlib.contextmanager
def _turn(item: pytest.Item) -> Iterator[None]:
    """Under pytest-xdist, take a turn to run ``item``: with the other workers (a shared
    lock) or, for a test marked ``alone`` (one that times something in real time, where
    another worker's load would be its error), by itself. A gate taken first gives a
    waiting ``alone`` test the next turn rather than letting shared ones run on."""
    worker = getattr(item.config, "workerinput", None)  # not the environment: a pytest
    if worker is None:  # a test starts inherits it, and must not wait for its own turn
        yield
        return
    run_id = worker["testrunuid"]
    turns = Path(tempfile.gettempdir()) / f"daw-test-turns-{run_id}"
    turns.mkdir(exist_ok=True)
    alone = item.get_closest_marker("alone") is not None
    gate = _lock(turns / "gate", fcntl.LOCK_EX)
    try:
        held = [gate, _lock(turns / "run", fcntl.LOCK_EX if alone else fcntl.LOCK_SH)]
    except BaseException:
        os.close(gate)
        raise
    if not alone:
        os.close(held.pop(0))  # let the next test in
    try:
        yield
    finally:
        for fd in held:
            os.close(fd)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Run each test in its turn (:func:`_turn`), waiting for it before its timeout's
    timer starts."""
    with _turn(item):
        yield


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (``tests/loopback.py``: not one an
    outgoing connection or the other worker can take before its server binds it)."""
    from tests.loopback import free_port as pick

    return pick()


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a throw-away PostgreSQL server on 127.0.0.1 (installed by scripts/setup.sh)."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.fail("PostgreSQL is not installed: run scripts/setup.sh")
    root = Path(tempfile.mkdtemp(prefix="daw-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True, capture_output=True,
    )
    options = f"-k {root} -p {port} -c listen_addresses=127.0.0.1 -c fsync=on"
    subprocess.run(
        _as_postgres([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w",
                      "start"]),
        check=True, capture_output=True,
    )

    def stop() -> None:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)

    _STOP_ON_TIMEOUT.append(stop)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        _STOP_ON_TIMEOUT.remove(stop)
        stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a throw-away Redis server on 127.0.0.1 (installed by scripts/setup.sh)."""
    server = shutil.which("redis-server")
    if not server:
        pytest.fail("Redis is not installed: run scripts/setup.sh")
    port = free_port()
    proc = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL (``redis+cluster://``) of a throw-away Redis Cluster on 127.0.0.1: three
    masters, each with one replica (so a test can fail a master over)."""
    from tests.redis_cluster_helpers import RedisClusterServers

    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        pytest.skip("redis-server and redis-cli are not installed (Debian redis-server 7): "
                    "run scripts/setup.sh")
    cluster = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster"))
    _STOP_ON_TIMEOUT.append(cluster.stop)
    try:
        cluster.start()
        yield cluster.url
    finally:
        _STOP_ON_TIMEOUT.remove(cluster.stop)
        cluster.stop()
