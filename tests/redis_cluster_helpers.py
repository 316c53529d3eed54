"""Helpers for tests on the Redis Cluster of the ``redis_cluster_url`` fixture."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from database.redis_client import cluster_nodes, is_cluster_url
from tests.loopback import free_port


class PortTaken(RuntimeError):
    """A node of the cluster could not bind a port found free a moment before."""


class RedisClusterServers:
    """A throw-away Redis Cluster on 127.0.0.1: ``masters`` masters with a replica each
    (``redis-server`` processes under ``root``, made with ``redis-cli --cluster create``)."""

    def __init__(self, root: Path, masters: int = 3) -> None:
        self.root, self.masters = root, masters
        self.ports = [free_port() for _ in range(2 * masters)]
        self.procs: dict[int, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        """``redis+cluster://`` naming the first masters as startup nodes."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def start(self, timeout: float = 60.0, tries: int = 3) -> None:
        """Start the servers, make the cluster, wait until every node says it is ok.

        A port :func:`free_port` found free can be taken by another process before its
        node binds it (the node then exits, and the port may even answer for someone
        else): such a start is stopped and made again on fresh ports, ``tries`` times."""
        for attempt in range(tries):
            try:
                self._start(timeout)
                return
            except PortTaken as exc:
                self.stop()
                if attempt == tries - 1:
                    raise RuntimeError(f"no Redis Cluster after {tries} tries: {exc}") from None
                self.ports = [free_port() for _ in range(2 * self.masters)]
                self.procs = {}

    def _start(self, timeout: float) -> None:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if not server or not cli:
            raise RuntimeError("redis-server and redis-cli are not installed")
        for port in self.ports:
            (self.root / str(port)).mkdir(exist_ok=True)  # a retry's ports are new
            self.procs[port] = subprocess.Popen(
                [server, "--bind", "127.0.0.1", "--port", str(port), "--cluster-enabled",
                 "yes", "--cluster-port", str(free_port()), "--cluster-config-file",
                 "nodes.conf", "--cluster-node-timeout", "2000", "--save", "",
                 "--appendonly", "no"],
                cwd=self.root / str(port), stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while True:
                if self.procs[port].poll() is not None:  # could not bind its ports
                    raise PortTaken(f"the Redis node for port {port} exited")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"Redis node on port {port} did not start") from None
                    time.sleep(0.05)
        time.sleep(0.2)  # a node whose cluster bus port was taken exits just after binding
        exited = [port for port in self.ports if self.procs[port].poll() is not None]
        if exited:
            raise PortTaken(f"the Redis nodes for ports {exited} exited")
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                        "--cluster-replicas", "1", "--cluster-yes"],
                       check=True, capture_output=True, timeout=timeout)
        while not self.ready(cli):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Redis Cluster did not become ready in {timeout} s")
            time.sleep(0.2)

    def ready(self, cli: str = "redis-cli") -> bool:
        """Every running node says the cluster is ok, every replica has synced with its
        master, and no node is failing or joining."""
        live = [p for p in self.ports if self.procs[p].poll() is None]
        for port in live:
            info = subprocess.run([cli, "-p", str(port), "cluster", "info"],
                                  capture_output=True, text=True, timeout=5).stdout
            if "cluster_state:ok" not in info:
                return False
            replication = subprocess.run([cli, "-p", str(port), "info", "replication"],
                                         capture_output=True, text=True, timeout=5).stdout
            # a replica that never synced cannot be elected when its master dies
            if "role:slave" in replication and "master_link_status:up" not in replication:
                return False
        nodes = subprocess.run([cli, "-p", str(live[0]), "cluster", "nodes"],
                               capture_output=True, text=True, timeout=5).stdout
        flags = [line.split()[2] for line in nodes.splitlines() if line.strip()]
        return (sum("master" in f and "fail" not in f for f in flags) == self.masters
                and not any("handshake" in f or "noaddr" in f for f in flags)
                and sum("fail" in f for f in flags) == len(self.ports) - len(live))

    def kill(self, port: int) -> None:
        """Kill the node on ``port`` outright (SIGKILL)."""
        self.procs[port].kill()
        self.procs[port].wait(timeout=10)

    def stop(self) -> None:
        """Stop every node (idempotent)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


async def master_of(url: str, key: str) -> int:
    """The port of the master that owns ``key``'s slot now."""
    cluster = RedisCluster(startup_nodes=[
        ClusterNode(host, port) for host, port in cluster_nodes(url)])
    try:
        await cluster.initialize()
        return int(cluster.nodes_manager.slots_cache[cluster.keyslot(key)][0].port)
    finally:
        await cluster.aclose()


def flush_all(url: str) -> None:
    """Empty the Redis (every master of a Redis Cluster) at ``url``."""
    if not is_cluster_url(url):
        with redis.from_url(url) as client:
            client.flushdb()
        return
    startup = [redis.cluster.ClusterNode(host, port) for host, port in cluster_nodes(url)]
    with redis.cluster.RedisCluster(startup_nodes=startup) as client:
        client.flushall(target_nodes=redis.cluster.RedisCluster.PRIMARIES)


async def fail_over(url: str, key: str, *, timeout: float = 30.0) -> tuple[int, int]:
    """Promote the replica of the master that owns ``key``'s slot (``CLUSTER FAILOVER``)
    and wait until every node agrees; ``(old master port, new master port)``."""
    host, port = cluster_nodes(url)[0]
    old = await master_of(url, key)
    async with asyncio.timeout(timeout):
        async with Redis(host=host, port=port, decode_responses=True) as any_node:
            lines = (await any_node.execute_command("CLUSTER", "NODES")).splitlines()
        master_id = next(line.split()[0] for line in lines if f":{old}@" in line)
        replica = next(int(line.split()[1].split("@")[0].rpartition(":")[2]) for line in lines
                       if line.split()[3] == master_id)
        async with Redis(host=host, port=replica, decode_responses=True) as promoted:
            await promoted.execute_command("CLUSTER", "FAILOVER")
            while (await promoted.execute_command("ROLE"))[0] != "master":
                await asyncio.sleep(0.05)
        async with Redis(host=host, port=old, decode_responses=True) as demoted:
            while (await demoted.execute_command("ROLE"))[0] != "slave":
                await asyncio.sleep(0.05)
            while "cluster_state:ok" not in await demoted.execute_command("CLUSTER", "INFO"):
                await asyncio.sleep(0.05)
    return old, replica
