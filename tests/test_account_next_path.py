"""The account pages' return path after sign-in never leaves the site (web/src/account/next.js).

Run in Node on the module the bundle is built from; browsers drop tabs and newlines from
URLs, so '/<TAB>/evil.example' would open '//evil.example' if it were let through.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parent.parent / "web" / "src" / "account" / "next.js"
SAME_SITE = ["/", "/projects", "/account/team?x=1#k", "/%09/literally"]
ELSEWHERE = ["//evil.example", "/\t/evil.example", "/\n/evil.example", "/\r//evil.example",
             "/\\evil.example", "https://evil.example/", "javascript:alert(1)", " /x",
             "/a b", "/\x7f/x", "", "evil.example"]


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_only_same_site_paths_are_kept() -> None:
    script = (f"import({json.dumps(MODULE.as_uri())}).then((m) => console.log(JSON.stringify("
              f"{json.dumps(SAME_SITE + ELSEWHERE)}.map((p) => m.safePath(p)))))")
    done = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True,
                          text=True, timeout=60, check=True)
    kept = dict(zip(SAME_SITE + ELSEWHERE, json.loads(done.stdout), strict=True))
    assert {p: kept[p] for p in SAME_SITE} == {p: p for p in SAME_SITE}
    assert {p: kept[p] for p in ELSEWHERE} == {p: "" for p in ELSEWHERE}
