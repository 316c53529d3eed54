"""Three ``dawserver serve`` nodes behind HAProxy, on one PostgreSQL through PgBouncer.

A real deployment on loopback, every port free-picked: PostgreSQL (``postgres_url``)
behind PgBouncer in transaction pooling mode, one Redis (``redis_url``), three server
processes reaching the database as ``...?pooler=transaction`` and HAProxy in front with
the configuration ``dawserver deploy haproxy`` writes.  Everything started here is
stopped even when a test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from loopback import free_port

from collab.client import SyncClient
from collab.store import open_store
from collab.tokens import Role, TokenSigner
from database import DatabaseError, open_database
from dawclient.channel import AiohttpChannel
from dawserver.commands.deploy import SERVED_BY_HEADER, haproxy_config
from dawserver.projects import import_session
from dsp_core.session import Session, Track
from jobs.queue import JobQueue

ROOT = Path(__file__).resolve().parents[1]
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

pytestmark = [
    pytest.mark.skipif(not Path(PGBOUNCER).exists(), reason="pgbouncer is not installed "
                       "(apt-get install pgbouncer; scripts/apt-packages.txt)"),
    pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy is not installed "
                       "(apt-get install haproxy; scripts/apt-packages.txt)"),
]


def _as_postgres(command: list[str]) -> list[str]:
    """PgBouncer refuses to run as root: run it as the PostgreSQL user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


async def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float,
                     log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = log.read_text()[-4000:] if log else proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"{what} exited with {proc.returncode}: {output}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not listen on {port} within {timeout} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass
class Pooler:
    """PgBouncer in transaction mode: ``url(db)`` is a database through it."""

    port: int
    server: str

    def url(self, database: str, pooler: bool = True) -> str:
        query = "?pooler=transaction" if pooler else ""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}{query}"


@pytest.fixture(scope="module")
def pgbouncer(postgres_url: str) -> Iterator[Pooler]:
    """PgBouncer (``pool_mode = transaction``) in front of the test PostgreSQL server.

    Database ``tiny`` is the same server's ``postgres`` database with one server
    connection, so two clients certainly share it; ``pair`` has two.
    """
    server = postgres_url.rsplit("@", 1)[1].split("/", 1)[0]
    host, port = server.split(":")
    root = Path(tempfile.mkdtemp(prefix="daw-pgb-"))
    listen = free_port()
    (root / "users.txt").write_text('"postgres" ""\n')
    (root / "pgbouncer.ini").write_text("\n".join([
        "[databases]",
        f"tiny = host={host} port={port} dbname=postgres pool_size=1",
        f"pair = host={host} port={port} dbname=postgres pool_size=2",
        f"* = host={host} port={port}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {listen}",
        f"unix_socket_dir = {root}",
        "auth_type = trust",
        f"auth_file = {root / 'users.txt'}",
        "pool_mode = transaction",
        "default_pool_size = 10",
        "max_client_conn = 500",
        "ignore_startup_parameters = extra_float_digits",
        "",
    ]))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        for path in root.iterdir():
            shutil.chown(path, "postgres")
    proc = subprocess.Popen(_as_postgres([PGBOUNCER, str(root / "pgbouncer.ini")]),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        asyncio.run(_wait_port(listen, proc, "pgbouncer", 20))
        yield Pooler(listen, postgres_url)
    finally:
        _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


async def _create_database(server: str) -> str:
    name = f"nodes_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


@dataclass
class Deployment:
    """Three nodes behind HAProxy: ``base`` is the balancer's URL."""

    data: Path
    database_url: str
    base: str
    nodes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def token(self, project_id: str, user: str = "ana") -> str:
        return TokenSigner.from_data_dir(self.data).issue(project_id, Role.EDITOR, user)

    @contextlib.asynccontextmanager
    async def client(self, project_id: str, document: object = None, user: str = "ana"
                     ) -> AsyncIterator[tuple[SyncClient, str]]:
        """A synced client through the balancer, and the node that took its WebSocket."""
        url = f"{self.base.replace('http', 'ws', 1)}/collab/{project_id}"
        async with aiohttp.ClientSession() as http, http.ws_connect(
                url, params={"token": self.token(project_id, user)}, max_msg_size=0,
                compress=0) as ws:
            node = ws._response.headers[SERVED_BY_HEADER]
            async with SyncClient(AiohttpChannel(ws), document) as client:
                await client.wait_synced(20)
                yield client, node

    async def served_by(self, path: str) -> str:
        async with aiohttp.ClientSession() as http, http.get(self.base + path) as response:
            return response.headers[SERVED_BY_HEADER]

    async def project(self, name: str = "p") -> str:
        async with open_store(self.database_url, self.data) as store:
            info = await import_session(store, Session(name=name, tracks=[Track("t1")]))
        return info.project_id


@pytest.fixture(scope="module")
def deployment(pgbouncer: Pooler, redis_url: str) -> Iterator[Deployment]:
    """Three ``dawserver serve`` processes on one database (through PgBouncer) and Redis,
    behind HAProxy configured by ``dawserver deploy haproxy``."""
    root = Path(tempfile.mkdtemp(prefix="daw-nodes-"))
    data = root / "data"
    database_url = pgbouncer.url(asyncio.run(_create_database(pgbouncer.server)))
    TokenSigner.from_data_dir(data)  # one secret for every node, made before they start
    ports = [free_port() for _ in range(3)]
    balancer = free_port()
    config = root / "haproxy.cfg"
    subprocess.run([sys.executable, "-m", "dawserver", "deploy", "haproxy",
                    *(f"--node=127.0.0.1:{port}" for port in ports),
                    f"--bind=127.0.0.1:{balancer}", "--check-interval-ms=200",
                    "--max-connections=1000", "-o", str(config)],
                   check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}

    def start(name: str, command: list[str]) -> None:
        # output to a file: a full pipe would stall a talkative process
        logs[name] = root / f"{name}.log"
        with logs[name].open("w") as log:
            procs[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                           env=env)

    try:
        for number, port in enumerate(ports, start=1):
            start(f"node{number}", [
                sys.executable, "-m", "dawserver", "serve", "--port", str(port), "--data",
                str(data), "--database", database_url, "--redis", redis_url])
        start("haproxy", [HAPROXY, "-db", "-f", str(config)])

        async def ready() -> None:
            for (name, proc), port in zip(procs.items(), [*ports, balancer], strict=True):
                await _wait_port(port, proc, name, 120, logs[name])
            await asyncio.sleep(1.0)  # HAProxy's first health checks (rise 2 x 200 ms)

        asyncio.run(ready())
        yield Deployment(data, database_url, f"http://127.0.0.1:{balancer}",
                         {name: proc for name, proc in procs.items() if name != "haproxy"})
    finally:
        for proc in procs.values():
            _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


# -- the database behind PgBouncer -----------------------------------------------------------

LOCK_KEY = "SELECT pg_advisory_xact_lock(711002, hashtext($1))"  # the store's append lock
TRY_LOCK = "SELECT pg_try_advisory_xact_lock(711002, hashtext(?)) AS got"


@pytest.mark.timeout(60)
@pytest.mark.asyncio
async def test_named_prepared_statements_break_under_transaction_pooling_but_not_with_the_switch(
        pgbouncer: Pooler) -> None:
    # asyncpg's default keeps each statement prepared on the server connection it was
    # prepared on; PgBouncer runs the client's next transaction on whichever is free.
    client = await asyncpg.connect(pgbouncer.url("pair", pooler=False))
    other = await asyncpg.connect(pgbouncer.url("pair", pooler=False))
    try:
        assert await client.fetchval("SELECT $1::int + 1", 1) == 2
        async with other.transaction():  # takes the server connection just used
            await other.execute("SELECT 1")
            with pytest.raises(asyncpg.PostgresError, match="prepared statement"):
                await client.fetchval("SELECT $1::int + 1", 1)
    finally:
        await client.close()
        await other.close()
    # ?pooler=transaction: the same pair, many statements at once, no error.
    async with open_database(pgbouncer.url("pair"), ".") as a, \
            open_database(pgbouncer.url("pair"), ".") as b:
        values = await asyncio.gather(*(db.fetchval("SELECT ?::int * 2", n)
                                        for n in range(40) for db in (a, b)))
        assert values == [n * 2 for n in range(40) for _ in range(2)]


@pytest.mark.timeout(60)
@pytest.mark.asyncio
async def test_the_store_lock_holds_between_two_nodes_through_pgbouncer(pgbouncer: Pooler
                                                                       ) -> None:
    name = await _create_database(pgbouncer.server)
    async with open_database(pgbouncer.url(name), ".") as node_a, \
            open_database(pgbouncer.url(name), ".") as node_b:
        order: list[str] = []
        async with node_a.transaction() as tx:
            await tx.execute(LOCK_KEY.replace("$1", "?"), "project-1")
            async with node_b.transaction() as other:
                assert (await other.fetch(TRY_LOCK, "project-1"))[0]["got"] is False
                assert (await other.fetch(TRY_LOCK, "project-2"))[0]["got"] is True

            async def contend() -> None:
                async with node_b.transaction() as other:
                    await other.execute(LOCK_KEY.replace("$1", "?"), "project-1")
                    order.append("b")

            waiter = asyncio.create_task(contend())
            await asyncio.sleep(0.5)
            assert not waiter.done(), "node b took the lock node a holds"
            order.append("a")
        async with asyncio.timeout(10):
            await waiter
        assert order == ["a", "b"]


@pytest.mark.timeout(60)
@pytest.mark.asyncio
async def test_a_session_lock_would_not_hold_through_transaction_pooling(pgbouncer: Pooler
                                                                         ) -> None:
    # Why the layer takes only transaction-level locks: PgBouncer hands the server
    # connection that holds a session lock to the next client, who then "holds" it too.
    async with open_database(pgbouncer.url("tiny"), ".") as a, \
            open_database(pgbouncer.url("tiny"), ".") as b:
        assert await a.fetchval("SELECT pg_try_advisory_lock(4242)") is True
        assert await b.fetchval("SELECT pg_try_advisory_lock(4242)") is True
        await a.execute("SELECT pg_advisory_unlock_all()")


@pytest.mark.timeout(90)
@pytest.mark.asyncio
async def test_two_nodes_through_pgbouncer_never_claim_the_same_job(pgbouncer: Pooler) -> None:
    name = await _create_database(pgbouncer.server)
    async with open_database(pgbouncer.url(name), ".") as db_a, \
            open_database(pgbouncer.url(name), ".") as db_b:
        queues = [JobQueue(db_a), JobQueue(db_b)]
        await queues[0].setup()
        await queues[1].setup()
        enqueued = {(await queues[0].enqueue("render", {"n": n}, account_id="acct")).id
                    for n in range(60)}
        claimed: dict[str, list[str]] = {"a": [], "b": []}

        async def drain(worker: str, queue: JobQueue) -> None:
            while jobs := await queue.claim("render", worker, limit=3):
                claimed[worker].extend(job.id for job in jobs)

        async with asyncio.timeout(60):
            await asyncio.gather(drain("a", queues[0]), drain("b", queues[1]),
                                 drain("a", queues[0]), drain("b", queues[1]))
        every = claimed["a"] + claimed["b"]
        assert len(every) == len(set(every)), "a job was claimed twice"
        assert set(every) == enqueued
        assert claimed["a"] and claimed["b"]


def test_the_pooler_parameter_is_checked_and_never_reaches_the_server() -> None:
    from database import parse_url

    parsed = parse_url("postgresql://u@h:6432/db?sslmode=disable&pooler=transaction")
    assert (parsed.target, parsed.pooler) == ("postgresql://u@h:6432/db?sslmode=disable",
                                              "transaction")
    assert parse_url("postgresql://u@h/db").pooler == "session"
    with pytest.raises(DatabaseError, match=r"pooler='statement'.*\?pooler=transaction"):
        parse_url("postgresql://u:secret@h/db?pooler=statement")
    with pytest.raises(DatabaseError) as refused:
        parse_url("postgresql://u:secret@h/db?pooler=statement")
    assert "secret" not in str(refused.value)


def test_the_haproxy_config_hashes_project_paths_consistently_and_refuses_bad_nodes() -> None:
    text = haproxy_config(["127.0.0.1:9001", "10.0.0.2:9002"], "0.0.0.0:80")
    assert "hash-type consistent" in text
    assert "server node1 127.0.0.1:9001 check" in text
    assert "server node2 10.0.0.2:9002 check" in text
    with pytest.raises(ValueError, match="HOST:PORT"):
        haproxy_config(["node-without-port"], "0.0.0.0:80")
    with pytest.raises(ValueError, match="at least one node"):
        haproxy_config([], "0.0.0.0:80")
    check = subprocess.run([HAPROXY, "-c", "-f", "/dev/stdin"], input=text, text=True,
                           capture_output=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


def test_deploy_haproxy_writes_the_file_or_says_what_to_give(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from dawserver.cli import main

    out = tmp_path / "haproxy.cfg"
    done = CliRunner().invoke(main, ["deploy", "haproxy", "--node", "127.0.0.1:8751",
                                     "--node", "127.0.0.1:8752", "--bind", "127.0.0.1:80",
                                     "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert out.read_text() == haproxy_config(["127.0.0.1:8751", "127.0.0.1:8752"],
                                             "127.0.0.1:80")
    refused = CliRunner().invoke(main, ["deploy", "haproxy", "--node", "8751"])
    assert refused.exit_code == 1
    assert "error: --node must be HOST:PORT such as 127.0.0.1:8750, not '8751'" in refused.output


@pytest.mark.timeout(60)
@pytest.mark.asyncio
async def test_a_node_behind_haproxy_sees_each_visitors_own_address(tmp_path: Path) -> None:
    # every request came from HAProxy: per-address limits counted all visitors as one
    from aiohttp import web

    from dawserver.forwarded import forwarded_middleware, trusted_networks

    async def who(request: web.Request) -> web.Response:
        return web.json_response({"remote": request.remote})

    app = web.Application(middlewares=[forwarded_middleware(trusted_networks(["127.0.0.1"]))])
    app.router.add_get("/who", who)
    app.router.add_get("/healthz", who)
    runner = web.AppRunner(app)
    await runner.setup()
    node, front = free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", node).start()
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config([f"127.0.0.1:{node}"], f"127.0.0.1:{front}",
                                     max_connections=100))
    proc = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)

    async def seen(visitor: str, port: int, forged: str | None = None) -> str:
        headers = {"X-Forwarded-For": forged} if forged else {}
        connector = aiohttp.TCPConnector(local_addr=(visitor, 0))
        async with aiohttp.ClientSession(connector=connector) as http, \
                http.get(f"http://127.0.0.1:{port}/who", headers=headers) as answer:
            assert answer.status == 200, await answer.text()
            return (await answer.json())["remote"]

    try:
        await _wait_port(front, proc, "haproxy", 20)
        for _ in range(100):  # until HAProxy's first check let the node in
            with contextlib.suppress(AssertionError):
                await seen("127.0.0.2", front)
                break
            await asyncio.sleep(0.1)
        assert [await seen(f"127.0.0.{n}", front) for n in (2, 3, 4)] == [
            "127.0.0.2", "127.0.0.3", "127.0.0.4"]
        # what a visitor writes into the header itself is never taken: HAProxy appends
        assert await seen("127.0.0.5", front, forged="203.0.113.9") == "127.0.0.5"
        # nor from a peer that is not a trusted proxy
        assert await seen("127.0.0.6", node, forged="203.0.113.9") == "127.0.0.6"
    finally:
        _stop(proc)
        await runner.cleanup()


def test_trusted_proxies_must_be_addresses_or_networks(tmp_path: Path) -> None:
    from dawserver.config import ServerConfig

    with pytest.raises(ValueError, match="trusted proxy 'haproxy'"):
        ServerConfig(data_dir=tmp_path, trusted_proxies=("10.0.0.0/8", "haproxy"))
    assert ServerConfig(data_dir=tmp_path, trusted_proxies=("10.0.0.0/8", "::1")
                        ).trusted_proxies == ("10.0.0.0/8", "::1")


# -- the nodes behind HAProxy ----------------------------------------------------------------


async def _converged(clients: list[SyncClient], timeout: float = 20.0) -> set[str]:
    """Wait until every client holds the same markers; return them."""
    async with asyncio.timeout(timeout):
        while True:
            names = [frozenset(m["name"] for m in c.document.markers()) for c in clients]
            if len(set(names)) == 1:
                return set(names[0])
            await asyncio.sleep(0.05)


@pytest.mark.timeout(240)
@pytest.mark.asyncio
async def test_every_client_of_one_project_lands_on_one_node(deployment: Deployment) -> None:
    project_id = await deployment.project()
    async with contextlib.AsyncExitStack() as stack:
        joined = [await stack.enter_async_context(deployment.client(project_id, user=f"u{i}"))
                  for i in range(4)]
        nodes = {node for _, node in joined}
        assert len(nodes) == 1, f"one project's WebSockets went to {nodes}"
        (node,) = nodes
        for path in (f"/projects/{project_id}", f"/projects/{project_id}/peaks",
                     f"/collab/{project_id}"):
            assert await deployment.served_by(path) == node, path
        clients = [client for client, _ in joined]
        for i, client in enumerate(clients):
            client.document.add_marker(i, f"from-{i}")
        assert await _converged(clients) == {f"from-{i}" for i in range(4)}


@pytest.mark.timeout(240)
@pytest.mark.asyncio
async def test_many_projects_spread_over_the_three_nodes(deployment: Deployment) -> None:
    ids = [uuid.uuid4().hex for _ in range(60)]
    first = {pid: await deployment.served_by(f"/projects/{pid}") for pid in ids}
    assert set(first.values()) == {"node1", "node2", "node3"}
    counts = {node: list(first.values()).count(node) for node in ("node1", "node2", "node3")}
    assert min(counts.values()) >= 5, f"a lopsided spread: {counts}"
    again = {pid: await deployment.served_by(f"/collab/{pid}") for pid in ids}
    assert again == first, "a project's requests went to different nodes"
    # real projects: their WebSockets go where their HTTP requests go
    for _ in range(6):
        project_id = await deployment.project()
        async with deployment.client(project_id) as (_, node):
            assert node == await deployment.served_by(f"/projects/{project_id}/peaks")


# Last of the deployment's tests: it leaves one node dead.
@pytest.mark.timeout(300)
@pytest.mark.asyncio
async def test_kill_9_of_a_node_moves_its_clients_to_another_with_nothing_acknowledged_lost(
        deployment: Deployment) -> None:
    project_id = await deployment.project()
    async with deployment.client(project_id, user="w") as (writer, node), \
            deployment.client(project_id, user="o") as (observer, observer_node):
        assert observer_node == node
        written = 0

        async def write() -> None:
            nonlocal written
            for i in itertools.count():
                writer.document.add_marker(i, f"m{i}")
                written += 1
                if i % 10 == 0:
                    await asyncio.sleep(0.005)

        task = asyncio.create_task(write())
        try:
            async with asyncio.timeout(60):
                while len(observer.document.markers()) < 100:
                    await asyncio.sleep(0.01)
            victim = deployment.nodes[node]
            os.kill(victim.pid, signal.SIGKILL)
            await asyncio.get_running_loop().run_in_executor(None, victim.wait, 10)
            assert not task.done(), "the kill must land in the middle of the burst"
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # what another client saw had been stored and relayed: acknowledged
        acknowledged = {m["name"] for m in observer.document.markers()}
        writer_doc, observer_doc = writer.document, observer.document
    assert 100 <= len(acknowledged) <= written

    async with contextlib.AsyncExitStack() as stack:
        for document, user in ((writer_doc, "w"), (observer_doc, "o")):
            await _join_through_the_balancer(stack, deployment, project_id, document, user)
        fresh, new_node = await _join_through_the_balancer(stack, deployment, project_id)
        assert new_node != node, "the balancer sent the project to the dead node"
        assert acknowledged <= {m["name"] for m in fresh.document.markers()}
        # the writer's edits the dead node never stored travel again from its document
        final = {m["name"] for m in writer_doc.markers()}
        async with asyncio.timeout(20):
            while not ({m["name"] for m in fresh.document.markers()} == final
                       == {m["name"] for m in observer_doc.markers()}):
                await asyncio.sleep(0.05)
        assert acknowledged <= final


async def _join_through_the_balancer(stack: contextlib.AsyncExitStack, deployment: Deployment,
                                     project_id: str, document: object = None,
                                     user: str = "ana") -> tuple[SyncClient, str]:
    """Join (again) as soon as the balancer finds a live node for the project."""
    async with asyncio.timeout(30):
        while True:
            try:
                return await stack.enter_async_context(
                    deployment.client(project_id, document, user=user))
            except (aiohttp.ClientError, KeyError, TimeoutError):
                await asyncio.sleep(0.2)
