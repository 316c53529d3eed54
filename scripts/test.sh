#!/usr/bin/env bash
# Set up a fresh machine and run the whole test suite (the README's test command):
# ruff, the tests, and a quick smoke pass of every benchmark. A skipped test
# fails here (DAW_REQUIRE_ALL=1): set-up installed everything a test needs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m ruff check .
python3 scripts/check_openapi_compat.py
# One process by default. DAW_TEST_WORKERS=2 runs two pytest-xdist workers, each taking a
# whole test file at a time (module servers start once), tests marked `alone` by themselves
# (conftest.py): faster, but some browser tests still time out when two run on two cores.
DAW_REQUIRE_ALL=1 DAW_BENCH_SMOKE=1 python3 -m pytest -n "${DAW_TEST_WORKERS:-0}" \
    --dist loadfile tests benchmarks "$@"
