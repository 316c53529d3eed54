"""The GraphQL compatibility check: the served schema against docs/graphql-v1.graphql."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dawserver.public_api.graphql.compat import (
    WRITE,
    check,
    major,
    snapshot_major,
    snapshot_text,
)
from dawserver.public_api.graphql.route import SDL
from dawserver.public_api.openapi_v1 import VERSION

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_graphql_compat.py"
SNAPSHOT = ROOT / "docs" / "graphql-v1.graphql"
#: v1's whole list of transcripts, and what 2cd1840 made of it.
WHOLE_TRANSCRIPTS = "  transcripts: [Transcript!]! @deprecated("
PAGED_TRANSCRIPTS = "  transcripts(first: Int! = 50, after: String = null): TranscriptConnection!"


def snapshot() -> str:
    return SNAPSHOT.read_text()


def edited(text: str, old: str, new: str) -> str:
    """``text`` with the one line starting with ``old`` replaced by ``new`` (None: cut;
    only a line without a description above it)."""
    lines = text.splitlines(keepends=True)
    [at] = [i for i, line in enumerate(lines) if line.startswith(old)]
    lines[at : at + 1] = [] if new is None else [new + "\n"]
    return "".join(lines)


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


def test_the_served_schema_is_its_committed_snapshot() -> None:
    verdict = check(snapshot(), SDL, VERSION)
    assert verdict.breaking == [], (
        "breaking changes to /api/graphql without a major version bump (keep the old "
        "field, @deprecated, and add the new shape under a new name):\n"
        + "\n".join(verdict.breaking)
    )
    assert not verdict.stale, f"the schema changed compatibly; refresh the snapshot: {WRITE}"


def test_the_snapshot_is_of_the_apis_major_version_and_keeps_v1_fields() -> None:
    assert snapshot_major(snapshot()) == major(VERSION) == 1
    assert snapshot_text(SDL, VERSION) == snapshot()
    # the lists of v1 are there, deprecated, beside their pages
    assert WHOLE_TRANSCRIPTS in snapshot()
    assert "  words: [Word!]! @deprecated(" in snapshot()
    assert (
        "  transcriptsConnection(first: Int! = 50, after: String = null): "
        "TranscriptConnection!\n" in snapshot()
    )
    assert (
        "  wordsConnection(first: Int! = 50, after: String = null): WordConnection!\n" in snapshot()
    )


def test_a_removed_field_a_retyped_field_or_a_new_required_argument_is_breaking() -> None:
    old = snapshot()
    new = edited(old, "  wordCount: Int!", None)
    # a deprecated field stays in v1: renaming (removing) it breaks its clients too
    new = edited(new, "  words: [Word!]! @deprecated(", "  spokenWords: [Word!]!")
    new = edited(new, WHOLE_TRANSCRIPTS, PAGED_TRANSCRIPTS)  # 2cd1840's break
    new = edited(
        new,
        "  transcriptionJobs(status: String = null)",
        "  transcriptionJobs(status: String = null, kind: String!): [TranscriptionJob!]!",
    )
    verdict = check(old, new, VERSION)
    assert sorted(verdict.breaking) == [
        "FIELD_CHANGED_KIND: Field Project.transcripts changed type from [Transcript!]! to "
        "TranscriptConnection!.",
        "FIELD_REMOVED: Field Transcript.wordCount was removed.",
        "FIELD_REMOVED: Field Transcript.words was removed.",
        "REQUIRED_ARG_ADDED: A required argument Project.transcriptionJobs(kind:) was added.",
    ]
    assert verdict.stale


def test_a_major_version_bump_allows_breaking_changes() -> None:
    old = snapshot()
    new = edited(old, WHOLE_TRANSCRIPTS, PAGED_TRANSCRIPTS)
    assert check(old, new, "1.7.0").breaking
    bumped = check(old, new, "2.0.0")
    assert bumped.breaking == [] and bumped.stale


def test_additions_are_compatible_and_ask_for_a_refresh() -> None:
    old = snapshot()
    new = edited(old, "  wordCount: Int!", "  wordCount: Int!\n  speakers: Int!")
    verdict = check(old, new, VERSION)
    assert verdict.breaking == [] and verdict.dangerous == [] and verdict.stale
    # a new default page size breaks nothing, but is reported
    new = edited(
        old,
        PAGED_TRANSCRIPTS.replace("transcripts", "transcriptsConnection"),
        PAGED_TRANSCRIPTS.replace("transcripts", "transcriptsConnection").replace("50", "10"),
    )
    verdict = check(old, new, VERSION)
    assert verdict.breaking == [] and verdict.stale
    assert verdict.dangerous == [
        "ARG_DEFAULT_VALUE_CHANGE: Project.transcriptsConnection"
        "(first:) has changed defaultValue from 50 to 10."
    ]


def test_the_script_fails_on_a_break_and_refreshes_on_an_addition(tmp_path: Path) -> None:
    path = tmp_path / "graphql-v1.graphql"
    # a snapshot with a field the server no longer serves: the server "removed" it
    path.write_text(edited(snapshot(), "  wordCount: Int!", "  wordCount: Int!\n  colour: String"))
    for args in ((), ("--write",)):
        done = run_script("--snapshot", str(path), *args)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "breaking: FIELD_REMOVED: Field Transcript.colour was removed." in done.stdout
        assert "without a major version bump" in done.stderr
    assert "colour" in path.read_text()  # not written
    # a snapshot missing a field the server now serves: an addition, to refresh
    path.write_text(edited(snapshot(), "  wordCount: Int!", None))
    done = run_script("--snapshot", str(path))
    assert done.returncode == 1 and WRITE in done.stderr, done.stdout + done.stderr
    done = run_script("--snapshot", str(path), "--write")
    assert done.returncode == 0, done.stdout + done.stderr
    assert path.read_text() == snapshot()
    done = run_script("--snapshot", str(path))
    assert done.returncode == 0 and "matches its snapshot" in done.stdout
