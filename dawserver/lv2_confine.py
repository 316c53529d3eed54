"""Where the files a plug-in's saved state names may lie, for one server (docs/lv2.md).

An editor may write a state naming any path, and the plug-in reads it inside the server;
so a server confines those files to its own asset directories
(:func:`dsp_core.lv2_state.confined`), in its own context only: around every request it
serves (and the tasks those start), and from its start-up (the rooms, relays and
workers it starts then) until it stops. Two servers in one process each confine to
their own directories; a render outside any server (a benchmark, ``dawserver render``)
is not confined.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

from aiohttp import web

from dsp_core import lv2_state

#: The directories this app's states may name files under (its asset stores' roots).
FILE_ROOTS = web.AppKey("lv2_file_roots", frozenset)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def confine_states(app: web.Application, roots: Iterable[str | os.PathLike[str]]) -> None:
    """Confine the files states name to under ``roots`` in everything ``app`` runs
    (call it before the app starts)."""
    app[FILE_ROOTS] = frozenset(os.path.realpath(root) for root in roots)
    app.middlewares.append(_confined_request)
    # first, so the components started after it (rooms, relays, workers) inherit it
    app.cleanup_ctx.insert(0, _confined_lifetime)


@web.middleware
async def _confined_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    with lv2_state.confined(request.app[FILE_ROOTS]):
        return await handler(request)


async def _confined_lifetime(app: web.Application) -> AsyncIterator[None]:
    before = lv2_state.file_roots()
    lv2_state.confine(app[FILE_ROOTS])
    yield
    lv2_state.confine(before)  # the starting task's confinement, as it was
