"""The README's two opening commands stay true."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from loopback import free_port
from process_output import OutputLines

ROOT = Path(__file__).resolve().parent.parent


def _bash_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_opens_with_the_main_command_and_the_ci_test_command() -> None:
    main, tests = _bash_blocks()[:2]
    assert main == "python3 -m pip install -e . && dawserver serve --demo"
    assert tests == "bash scripts/test.sh"
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_main_command_serves_the_256_track_demo(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "dawserver", "serve", "--demo", "--data", str(tmp_path),
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        printed: dict[str, str] = {}
        output = OutputLines(server)
        deadline = time.monotonic() + 120
        while "browser" not in printed and time.monotonic() < deadline:
            line = output.next(max(deadline - time.monotonic(), 0.1))
            assert line, f"server exited early: {server.poll()}"
            key, _, value = line.partition(":")
            printed[key.strip()] = value.strip()
        project, token = printed["demo project"], printed["owner token"]
        assert printed["browser"].startswith(f"http://127.0.0.1:{port}/")
        url = f"http://127.0.0.1:{port}/projects/{project}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        for _ in range(100):
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    document = json.load(response)["document"]
                break
            except OSError:
                time.sleep(0.1)
        assert len(document["tracks"]) == 256
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_accounts_example_runs_as_written(tmp_path: Path) -> None:
    """The README's accounts block, run by bash in a fresh directory on a free port."""
    text = (ROOT / "README.md").read_text()
    block = next(b for b in _bash_blocks() if "dawserver users create" in b)
    assert block in text
    port = str(free_port())
    shim = tmp_path / "bin" / "dawserver"  # the console script, for this interpreter
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dawserver "$@"\n')
    shim.chmod(0o755)
    script = block.replace("8750", port) + '\nkill "$!"; wait\n'
    env = {"PATH": f"{shim.parent}:/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           "HOME": str(tmp_path)}
    bash = subprocess.Popen(["bash", "-e", "-c", script], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = bash.communicate(timeout=180)
    finally:  # the server it started in the background goes with it, whatever happened
        with contextlib.suppress(ProcessLookupError):
            os.killpg(bash.pid, signal.SIGKILL)
    assert bash.returncode == 0, err
    person, created, signed_in, projects = out.replace("}{", "}\n{").replace(
        "}[", "}\n[").splitlines()
    assert person.startswith("p_")
    project = json.loads(created)
    assert (project["name"], project["role"]) == ("First single", "owner")
    assert json.loads(signed_in)["person"]["email"] == "ana@example.com"
    assert [p["id"] for p in json.loads(projects)] == [project["id"]]
