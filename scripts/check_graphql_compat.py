#!/usr/bin/env python3
"""Compare the GraphQL schema of /api/graphql with its committed snapshot (CI check).

    python3 scripts/check_graphql_compat.py            # exit 1 on a breaking change
    python3 scripts/check_graphql_compat.py --write    # refresh the snapshot (compatible only)

A breaking change (graphql-core's find_breaking_changes: a removed type or field, a
changed field type, a new required argument) fails unless the public API's major
version rose. A compatible difference also fails until the snapshot is refreshed with
--write, so that the snapshot is always the schema served. See
docs/public-api.md#graphql.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "docs" / "graphql-v1.graphql"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, default=SNAPSHOT)
    parser.add_argument("--write", action="store_true", help="refresh the snapshot")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # this checkout's packages, installed or not
    from dawserver.public_api.graphql.compat import WRITE, check, snapshot_text
    from dawserver.public_api.graphql.route import SDL
    from dawserver.public_api.openapi_v1 import VERSION

    new = snapshot_text(SDL, VERSION)
    if not args.snapshot.exists():
        if not args.write:
            print(f"no snapshot at {args.snapshot}; write it with {WRITE}", file=sys.stderr)
            return 1
        args.snapshot.write_text(new)
        print(f"wrote {args.snapshot}")
        return 0
    verdict = check(args.snapshot.read_text(), SDL, VERSION)
    for change in verdict.breaking:
        print(f"breaking: {change}")
    for change in verdict.dangerous:
        print(f"dangerous: {change}")
    if verdict.breaking:
        print(
            f"{len(verdict.breaking)} breaking change(s) to /api/graphql without a major "
            "version bump: keep the old field and mark it @deprecated (add the new shape "
            "under a new name), or make the change in a new major version",
            file=sys.stderr,
        )
        return 1
    if not verdict.stale:
        print("the /api/graphql schema matches its snapshot")
        return 0
    if args.write:
        args.snapshot.write_text(new)
        print(f"wrote {args.snapshot}")
        return 0
    print(
        f"the /api/graphql schema changed compatibly; refresh the snapshot with {WRITE}",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
