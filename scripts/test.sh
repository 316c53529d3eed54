#!/usr/bin/env bash
# Set up a fresh machine and run the whole test suite (the README's test command):
# ruff, the tests, and a quick smoke pass of every benchmark. A skipped test
# fails here (DAW_REQUIRE_ALL=1): set-up installed everything a test needs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m ruff check .
python3 scripts/check_openapi_compat.py
# Two pytest-xdist workers, each taking a whole test file at a time (module servers start
# once); tests marked `alone` (real-time timing, Chromium) run with no other test beside
# them (conftest.py). DAW_TEST_WORKERS=0 runs everything in one process. A worker a
# test's timeout ends is not replaced: a replacement reruns the test that killed its
# predecessor, and after one crash xdist's load-file scheduling left the run hanging
# with every test done; now the run ends, naming that test.
DAW_REQUIRE_ALL=1 DAW_BENCH_SMOKE=1 python3 -m pytest -n "${DAW_TEST_WORKERS:-2}" \
    --max-worker-restart=0 --dist loadfile tests benchmarks "$@"
