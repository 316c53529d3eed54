"""Test helpers for the shared database: a fresh PostgreSQL schema per test."""

from __future__ import annotations


def postgres_schema_url(url: str, name: str) -> str:
    """``url`` pointing at a fresh, empty schema ``name`` (dropped first if present)."""
    import asyncio

    import asyncpg

    async def reset() -> None:
        conn = await asyncpg.connect(url)
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}")
        await conn.close()

    asyncio.run(reset())
    return f"{url}?options=-csearch_path%3D{name}"
