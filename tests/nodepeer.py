"""Test helpers: run the collaboration server in-process and drive stock Node yjs clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from dawserver.app import create_app
from dawserver.config import ServerConfig

JS_DIR = Path(__file__).parent / "js"
#: How long a command's reply or an awaited event may take: the first command's includes
#: Node starting and loading yjs, y-websocket and ws, seconds on a loaded machine.
PATIENCE_S = 30.0


def node_ready() -> str | None:
    """Why the Node clients cannot run (None when they can)."""
    if shutil.which("node") is None:
        return "node is not installed (scripts/setup.sh installs it)"
    if not (JS_DIR / "node_modules" / "y-websocket").is_dir():
        return "tests/js/node_modules is missing: run scripts/setup.sh (npm ci)"
    return None


@contextlib.asynccontextmanager
async def running_server(config: ServerConfig) -> AsyncIterator[web.Application]:
    """Serve ``create_app(config)`` on ``config.host:config.port`` until the block ends."""
    app = create_app(config)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    try:
        yield app
    finally:
        await runner.cleanup()


class NodePeer:
    """One Node process running ``tests/js/peer.mjs`` (a y-websocket client)."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.events: list[dict[str, Any]] = []
        self._replies: dict[int, asyncio.Future] = {}
        self._next = 0
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task | None = None

    async def __aenter__(self) -> NodePeer:
        self.proc = await asyncio.create_subprocess_exec(
            "node", str(JS_DIR / "peer.mjs"), cwd=JS_DIR,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.proc is not None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.call("exit"), 2)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        await self.proc.wait()
        if self._reader:
            self._reader.cancel()

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            message = json.loads(line)
            if "id" in message and message["id"] in self._replies:
                self._replies.pop(message["id"]).set_result(message)
            else:
                async with self._changed:
                    self.events.append(message)
                    self._changed.notify_all()

    async def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Send one command and return its reply (raises on an error reply)."""
        assert self.proc is not None and self.proc.stdin is not None
        self._next += 1
        future = asyncio.get_running_loop().create_future()
        self._replies[self._next] = future
        self.proc.stdin.write((json.dumps({"id": self._next, "cmd": cmd, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        reply = await asyncio.wait_for(future, PATIENCE_S)
        if not reply["ok"]:
            raise RuntimeError(f"node peer: {cmd}: {reply['error']}")
        return reply

    async def wait_event(self, name: str, timeout: float = PATIENCE_S, after: int = 0
                         ) -> dict[str, Any]:
        """The first event called ``name`` (from index ``after`` on)."""
        async def find() -> dict[str, Any]:
            async with self._changed:
                while True:
                    for event in self.events[after:]:
                        if event.get("event") == name:
                            return event
                    await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)

    async def dump(self) -> dict[str, Any]:
        """The client's document as plain JSON."""
        return (await self.call("dump"))["doc"]


async def eventually(check, timeout: float = 10.0, interval: float = 0.02) -> None:
    """Poll the async or sync ``check()`` until it returns truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition {getattr(check, '__name__', check)} not met "
                                 f"within {timeout} s")
        await asyncio.sleep(interval)


def yjs_replay(job: dict) -> dict:
    """Run ``tests/js/replay.mjs`` (stock yjs) on ``job``: updates applied alone or in order."""
    done = subprocess.run(["node", str(JS_DIR / "replay.mjs")], cwd=JS_DIR, check=True,
                          input=json.dumps(job), capture_output=True, text=True, timeout=120)
    return json.loads(done.stdout)


def normalised(value):
    """JSON with JavaScript number semantics (Python reads ``3`` back as ``3.0``)."""
    def fix(v):
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v

    return json.dumps(fix(value), sort_keys=True)
