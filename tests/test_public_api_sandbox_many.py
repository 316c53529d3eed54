"""Asking which of many objects are sandbox ones: a list longer than a query may bind
(SQLite takes at most 32,766 parameters) is asked in parts, never a database error."""

from __future__ import annotations

import asyncio
from pathlib import Path

from database import open_database
from dawserver.public_api.idempotency import MIGRATIONS
from dawserver.public_api.sandbox import Sandbox

MANY = 40_000


def test_marks_of_more_ids_than_one_query_binds_are_found(tmp_path: Path) -> None:
    async def go() -> None:
        async with asyncio.timeout(60), \
                open_database(f"sqlite://{tmp_path / 'api.sqlite3'}") as db:
            await db.migrate(MIGRATIONS)
            sandbox = Sandbox(db)
            await sandbox.add_object("acc", "social", "p39999")
            await sandbox.add("acc", "proj-7", "project")
            posts = [f"social:p{n}" for n in range(MANY)]
            assert await sandbox.marked("acc", posts) == {"social:p39999"}
            assert await sandbox.marked("", posts) == set()  # by account, even an empty one
            async with db.transaction() as tx:
                assert await sandbox.marked("acc", posts, tx=tx) == {"social:p39999"}
            fresh = Sandbox(db)  # nothing known in memory: every id is asked
            projects = [f"proj-{n}" for n in range(MANY)]
            assert await fresh.sandboxed(projects) == {"proj-7"}

    asyncio.run(go())
