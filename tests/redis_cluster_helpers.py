"""Helpers for tests on the Redis Cluster of the ``redis_cluster_url`` fixture."""

from __future__ import annotations

import asyncio

import redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from database.redis_client import cluster_nodes, is_cluster_url


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
    cluster = RedisCluster(host=host, port=port)
    try:
        slot = cluster.keyslot(key)
        await cluster.initialize()
        master = cluster.nodes_manager.slots_cache[slot][0]
        old = int(master.port)
    finally:
        await cluster.aclose()
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
