"""Faults for tests: private PostgreSQL and Redis servers that restart, a network cut,
a full disk.

Every server here is this test's own (its own port, its own data directory), so
restarting or cutting it never disturbs another test or another person's run.

- :class:`OwnRedis` and :class:`OwnPostgres` start, stop and restart a real server.
- :class:`RedisBehindCut` runs Redis in its own network namespace, reached through one
  veth pair per client node: :meth:`~RedisBehindCut.cut` takes one node's link down
  (packets vanish, as in a real partition: no reset, no refusal), :meth:`~RedisBehindCut.heal`
  brings it back.
- :func:`small_disk` mounts a tmpfs of a few MiB: writes past it fail with ``ENOSPC``.
- :func:`slow_disk` shows a directory through a FUSE passthrough whose writes wait.
- :func:`linked_servers` runs server processes (apps) of one deployment on one store.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
from loopback import free_port
from nodepeer import running_server

from collab.client import SyncClient
from collab.schema import ProjectDocument
from dawclient.channel import connect
from dawserver.config import ServerConfig
from dawserver.keys import RELAY, STORE, TOKENS
from dawserver.projects import import_session
from dsp_core.session import Clip, Session, Track


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    """Return once ``host:port`` accepts a connection (:class:`RuntimeError` if never)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            socket.create_connection((host, port), timeout=0.2).close()
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout} s")


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=30)


class OwnRedis:
    """A Redis server of the caller's own on 127.0.0.1, which it may kill and restart."""

    def __init__(self, *, prefix: list[str] | None = None, host: str = "127.0.0.1") -> None:
        server = shutil.which("redis-server")
        if not server:
            raise RuntimeError("Redis is not installed: run scripts/setup.sh")
        self.host, self.port = host, free_port()
        self.prefix = prefix or []
        self.command = [*self.prefix, server, "--bind", host, "--port", str(self.port),
                        "--save", "", "--appendonly", "no", "--protected-mode", "no"]
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        if self.prefix:  # in a namespace: probe it from inside
            deadline = time.monotonic() + 15
            while subprocess.run([*self.prefix, "redis-cli", "-h", self.host, "-p",
                                  str(self.port), "ping"], capture_output=True
                                 ).stdout.strip() != b"PONG":
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start in its namespace")
                time.sleep(0.05)
        else:
            wait_for_port(self.host, self.port)

    def kill(self) -> None:
        """Kill -9: every connection drops, every subscription is forgotten."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def __enter__(self) -> OwnRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise RuntimeError("PostgreSQL is not installed: run scripts/setup.sh")
    return path


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class OwnPostgres:
    """A PostgreSQL server of the caller's own on 127.0.0.1 that it may stop and start."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="daw-faults-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self.data, self.port = self.root / "data", free_port()
        _run(_as_postgres([_pg_bin("initdb"), "-D", str(self.data), "-A", "trust",
                           "-U", "postgres"]))

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        _run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), *args]))

    def start(self) -> None:
        options = f"-k {self.root} -p {self.port} -c listen_addresses=127.0.0.1"
        self._ctl("-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` ends every session; ``immediate`` is a crash)."""
        self._ctl("-m", mode, "-w", "stop")

    def __enter__(self) -> OwnPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class RedisBehindCut:
    """Redis in a network namespace of its own, one veth link per client node.

    Node ``i`` reaches Redis at ``10.X.i.2`` through the link ``fc<tag><i>``; cutting the
    link drops that node's packets both ways while the other nodes carry on.
    """

    def __init__(self, nodes: int = 2) -> None:
        self.tag = secrets.token_hex(3)
        self.namespace = f"daw-faults-{self.tag}"
        self.net = 10 + secrets.randbelow(200)  # the second octet: 10.N.i.0/24 per node
        self.nodes = nodes
        self.redis: OwnRedis | None = None

    def link(self, node: int) -> str:
        return f"fc{self.tag}{node}"

    def url(self, node: int) -> str:
        assert self.redis is not None
        return f"redis://10.{self.net}.{node}.2:{self.redis.port}/0"

    def __enter__(self) -> RedisBehindCut:
        _run(["ip", "netns", "add", self.namespace])
        inside = ["ip", "netns", "exec", self.namespace]
        try:
            _run([*inside, "ip", "link", "set", "lo", "up"])
            for node in range(self.nodes):
                outer, inner = self.link(node), f"fi{self.tag}{node}"
                _run(["ip", "link", "add", outer, "type", "veth", "peer", "name", inner])
                _run(["ip", "link", "set", inner, "netns", self.namespace])
                _run(["ip", "addr", "add", f"10.{self.net}.{node}.1/24", "dev", outer])
                _run(["ip", "link", "set", outer, "up"])
                _run([*inside, "ip", "addr", "add", f"10.{self.net}.{node}.2/24", "dev", inner])
                _run([*inside, "ip", "link", "set", inner, "up"])
            self.redis = OwnRedis(prefix=inside, host="0.0.0.0")
            self.redis.start()
            for node in range(self.nodes):
                wait_for_port(f"10.{self.net}.{node}.2", self.redis.port)
        except BaseException:
            self.__exit__()
            raise
        return self

    def cut(self, node: int) -> None:
        """Take node ``node``'s link down: its packets to and from Redis vanish."""
        _run(["ip", "link", "set", self.link(node), "down"])

    def heal(self, node: int) -> None:
        """Bring node ``node``'s link back (its address stays)."""
        _run(["ip", "link", "set", self.link(node), "up"])

    def __exit__(self, *exc: object) -> None:
        if self.redis is not None:
            self.redis.kill()
        for node in range(self.nodes):
            subprocess.run(["ip", "link", "del", self.link(node)], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)


def namespaces_work() -> str | None:
    """None where ``ip netns`` and veth pairs work here, else why not."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        return "network namespaces need root and iproute2"
    name = f"daw-faults-probe-{secrets.token_hex(3)}"
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True)
    if probe.returncode:
        return f"ip netns add failed: {probe.stderr.decode().strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


@contextlib.contextmanager
def small_disk(path: Path, size_kib: int) -> Iterator[Path]:
    """A tmpfs of ``size_kib`` KiB mounted at ``path`` for the block (root only)."""
    path.mkdir(parents=True, exist_ok=True)
    _run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(path)])
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path: Path, leave_bytes: int = 0) -> Path:
    """Fill the filesystem of ``path`` until at most ``leave_bytes`` are free; the filler."""
    filler = path / "filler"
    free = shutil.disk_usage(path).free - leave_bytes
    with open(filler, "wb", buffering=0) as out, contextlib.suppress(OSError):
        while free > 0:
            free -= out.write(b"\0" * min(free, 1 << 20))
    return filler


# -- servers under faults -------------------------------------------------------------


class Linked:
    """Server processes of one deployment (apps in one Python process) and one project."""

    def __init__(self, apps: list[Any], configs: list[Any], project_id: str) -> None:
        self.apps, self.configs, self.project_id = apps, configs, project_id

    def token(self, role: str = "editor", user: str = "ana") -> str:
        return self.apps[0][TOKENS].issue(self.project_id, role, user)

    def url(self, node: int) -> str:
        return f"{self.configs[node].collab_url}/{self.project_id}"

    @contextlib.asynccontextmanager
    async def client(self, node: int, user: str = "ana", role: str = "editor",
                     document: ProjectDocument | None = None) -> AsyncIterator[SyncClient]:
        """A Python editor on node ``node``, synced (optionally holding ``document``)."""
        async with connect(self.url(node), self.token(role, user)) as channel, \
                SyncClient(channel, document) as client:
            client.channel = channel
            await client.wait_synced()
            yield client

    async def stored(self) -> dict:
        """The project as a restart would load it from the shared store (no gap allowed)."""
        return await stored_json(self.apps[0], self.project_id)

    async def revoke(self, node: int, user: str) -> None:
        """Remove ``user`` from the project through node ``node``'s HTTP API."""
        owner = self.token("owner", "olga")
        async with aiohttp.ClientSession() as http, http.delete(
                f"{self.configs[node].base_url}/projects/{self.project_id}/members/{user}",
                headers={"Authorization": f"Bearer {owner}"}) as response:
            assert response.status == 200, await response.text()


async def stored_json(app: Any, project_id: str) -> dict:
    """``project_id`` as loaded from ``app``'s store; fails on a gap in the log."""
    stored = await app[STORE].load(project_id)
    document = ProjectDocument()
    if stored.snapshot:
        document.doc.apply_update(stored.snapshot)
    for update in stored.updates:
        document.doc.apply_update(update)
    assert stored.last_seq - stored.snapshot_seq == len(stored.updates), "a gap in the log"
    return document.to_json()


def small_project() -> Session:
    """Four tracks with one clip each (the audio need not exist: no engine runs)."""
    return Session(name="Faults", tracks=[
        Track(f"t{i}", f"Track {i}", clips=[Clip("/audio/x.wav", 0, 48000, id=f"c{i}")])
        for i in range(4)])


@contextlib.asynccontextmanager
async def linked_servers(data_dir: Path, database_url: str, redis_urls: list[str | None],
                         **options: Any) -> AsyncIterator[Linked]:
    """One server per entry of ``redis_urls`` on one store and data directory."""
    configs = [ServerConfig(port=free_port(), data_dir=data_dir, engine=False,
                            database_url=database_url, redis_url=url, **options)
               for url in redis_urls]
    async with contextlib.AsyncExitStack() as stack:
        apps = [await stack.enter_async_context(running_server(c)) for c in configs]
        info = await import_session(apps[0][STORE], small_project())
        for app in apps:
            if app.get(RELAY) is not None:
                app[RELAY].poll_seconds = 0.3
        yield Linked(apps, configs, info.project_id)


def texts(document: ProjectDocument | dict) -> list[str]:
    """The comments' texts of a document (sorted; a duplicate shows twice)."""
    data = document.to_json() if isinstance(document, ProjectDocument) else document
    return sorted(comment["text"] for comment in data["comments"].values())


@contextlib.contextmanager
def slow_disk(source: Path, mountpoint: Path, delay_ms: float) -> Iterator[Path]:
    """``source`` seen through ``mountpoint``, every write waiting ``delay_ms`` first
    (``tests/slow_disk.py``, a FUSE passthrough in a process of its own)."""
    source.mkdir(parents=True, exist_ok=True)
    mountpoint.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("slow_disk.py")),
                             str(source), str(mountpoint), "--delay-ms", str(delay_ms)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not os.path.ismount(mountpoint):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the slow disk did not mount: {proc.stderr.read()!r}")
            time.sleep(0.05)
        yield mountpoint
    finally:
        subprocess.run(["fusermount", "-u", "-z", str(mountpoint)], capture_output=True)
        proc.terminate()
        proc.wait(timeout=10)


def fuse_works() -> str | None:
    """None where a FUSE passthrough can be mounted here, else why not."""
    if not Path("/dev/fuse").exists() or not shutil.which("fusermount"):
        return "no /dev/fuse or fusermount (apt-get install fuse libfuse2)"
    try:
        import fuse  # noqa: F401 - fusepy
    except (ImportError, OSError) as exc:
        return f"fusepy cannot load libfuse: {exc}"
    return None
