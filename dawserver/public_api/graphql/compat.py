"""Is the GraphQL schema compatible with its committed snapshot? The CI check of
``/api/graphql``, as :mod:`..compat` is ``/api/v1``'s.

The snapshot (``docs/graphql-v1.graphql``) is the SDL that ``GET
/api/graphql/schema.graphql`` serves, under a header naming the public API's major
version (:data:`..openapi_v1.VERSION`: REST and GraphQL are one API, one version).
Breaking changes are graphql-core's :func:`graphql.utilities.find_breaking_changes`
(a removed type or field, a changed field type, a new required argument...); they pass
only when the major version rose. Deprecating a field is not breaking; removing it is.
Any other difference (an added field, a description) is compatible, and the snapshot is
refreshed with ``python3 scripts/check_graphql_compat.py --write``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from graphql import build_schema, find_breaking_changes, find_dangerous_changes

HEADER = """\
# The GraphQL schema of /api/graphql (GET /api/graphql/schema.graphql).
# Checked by scripts/check_graphql_compat.py: a breaking change fails unless the
# public API's major version rose; refresh with --write after a compatible change.
# major version: {major}
"""
MAJOR = re.compile(r"^# major version: (\d+)$", re.MULTILINE)
WRITE = "python3 scripts/check_graphql_compat.py --write"


def major(version: str) -> int:
    """The major version of ``version`` (``"1.6.0"`` → 1)."""
    return int(version.split(".")[0])


def snapshot_text(sdl: str, version: str) -> str:
    """The snapshot of schema ``sdl`` at API version ``version``: the header, the SDL."""
    return HEADER.format(major=major(version)) + "\n" + sdl.strip() + "\n"


def snapshot_major(text: str) -> int:
    """The major version a snapshot was written at."""
    found = MAJOR.search(text)
    if found is None:
        raise ValueError(f"the snapshot has no '# major version: N' line; rewrite it with {WRITE}")
    return int(found.group(1))


def breaking_changes(old_sdl: str, new_sdl: str) -> list[str]:
    """What a client written against ``old_sdl`` would break on in ``new_sdl``."""
    changes = find_breaking_changes(build_schema(old_sdl), build_schema(new_sdl))
    return [f"{c.type.name}: {c.description}" for c in changes]


def dangerous_changes(old_sdl: str, new_sdl: str) -> list[str]:
    """Changes that may change what a client gets (a default value, an enum value)."""
    changes = find_dangerous_changes(build_schema(old_sdl), build_schema(new_sdl))
    return [f"{c.type.name}: {c.description}" for c in changes]


@dataclass
class Verdict:
    """The check of a snapshot against the current schema."""

    #: Breaking changes not allowed by a major version bump: the check fails.
    breaking: list[str] = field(default_factory=list)
    #: Compatible changes that may still surprise a client (reported, not failed).
    dangerous: list[str] = field(default_factory=list)
    #: Whether the snapshot differs from the current schema at all.
    stale: bool = False


def check(snapshot: str, sdl: str, version: str) -> Verdict:
    """Check schema ``sdl`` of API ``version`` against the committed ``snapshot``."""
    bumped = major(version) > snapshot_major(snapshot)
    return Verdict(
        breaking=[] if bumped else breaking_changes(snapshot, sdl),
        dangerous=dangerous_changes(snapshot, sdl),
        stale=snapshot != snapshot_text(sdl, version),
    )
