#!/usr/bin/env python3
"""Compare the OpenAPI document of /api/v1 with its committed snapshot (CI check).

    python3 scripts/check_openapi_compat.py            # exit 1 on an incompatible change
    python3 scripts/check_openapi_compat.py --write    # update the snapshot (compatible only)

An incompatible change (a removed path, operation or answer field, a new required
request field) fails unless the document's major version rose (a new /api/vN path).
See docs/public-api.md#versioning.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "docs" / "openapi-v1.json"


def current_document() -> dict[str, Any]:
    """The /api/v1 document this checkout's server generates (nothing is started)."""
    sys.path.insert(0, str(ROOT))
    from dawserver.app import create_app
    from dawserver.config import ServerConfig
    from dawserver.openapi import openapi_document
    from dawserver.public_api.openapi_v1 import v1_document

    with tempfile.TemporaryDirectory() as data:
        app = create_app(ServerConfig(data_dir=Path(data)))
        return v1_document(openapi_document(app))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, default=SNAPSHOT)
    parser.add_argument("--write", action="store_true", help="update the snapshot")
    args = parser.parse_args(argv)
    from dawserver.public_api.compat import check

    new = current_document()
    old = json.loads(args.snapshot.read_text()) if args.snapshot.exists() else None
    problems = [] if old is None else check(old, new)
    for problem in problems:
        print(f"incompatible: {problem}")
    if problems:
        print(f"{len(problems)} incompatible change(s) to /api/v1 without a version bump: "
              "keep the old shape, or serve the change under a new major version "
              "(/api/v2, info.version 2.0.0)", file=sys.stderr)
        return 1
    if args.write:
        args.snapshot.write_text(json.dumps(new, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.snapshot}")
    elif old is not None and old != new:
        print("compatible changes only; run with --write to update the snapshot")
    else:
        print("the /api/v1 document matches its snapshot")
    return 0


if __name__ == "__main__":
    sys.exit(main())
