"""The server's sample library: the ``samples.index`` queue and the providers searched.

``setup_samples(app)`` puts a :class:`SampleService` at ``app[SAMPLES]``, serves the
``samples.index`` queue of the one job queue with it, and adds a ``cleanup_ctx`` that
migrates the ``samples`` table and rebuilds the in-memory search index from it when the
server starts. Folders an account may index over HTTP lie under the roots in
``$DAW_SAMPLE_ROOTS`` (``os.pathsep``-separated; none by default) or in the account's
own upload folder (``DATA/samples/<account>/``); the CLI indexes any folder of the
server's disk. The HTTP routes are in :mod:`dawserver.sample_routes`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from jobs import JobContext, Permanent, QueueSettings
from samples.errors import BadQuery, SampleNotFound
from samples.library import SampleLibrary
from samples.providers import LocalProvider, SampleProvider
from samples.records import Sample

from .keys import BACKGROUND, CONFIG, DATABASE

QUEUE = "samples.index"
ENV_ROOTS = "DAW_SAMPLE_ROOTS"


class SampleService:
    """The library, its providers (local first) and the indexing jobs."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.library = SampleLibrary(app[DATABASE])
        self.providers: list[SampleProvider] = [LocalProvider(self.library)]
        self.uploads = Path(app[CONFIG].data_dir) / "samples"

    def provider(self, name: str) -> SampleProvider:
        """The provider called ``name`` (:class:`BadQuery` if none)."""
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise BadQuery(f"no sample provider {name!r}; use one of "
                       f"{', '.join(p.name for p in self.providers)}")

    async def find(self, account_id: str, sample_id: str) -> tuple[SampleProvider, Sample]:
        """The sample ``sample_id`` of the account, from whichever provider has it."""
        for provider in self.providers:
            try:
                return provider, await provider.get(account_id, sample_id)
            except SampleNotFound:
                continue
        raise SampleNotFound(f"no sample {sample_id!r} in this account's libraries")

    def upload_folder(self, account_id: str) -> Path:
        """The folder an account's uploaded samples are kept and indexed in."""
        folder = self.uploads / account_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def allowed_folder(self, account_id: str, folder: str) -> Path:
        """``folder`` when the account may index it over HTTP, else :class:`BadQuery`."""
        path = Path(folder).resolve()
        roots = [Path(r).resolve() for r in os.environ.get(ENV_ROOTS, "").split(os.pathsep)
                 if r]
        roots.append(self.upload_folder(account_id).resolve())
        if not any(path == root or root in path.parents for root in roots):
            raise BadQuery(f"{folder!r} is outside the sample folders this server lets "
                           f"accounts index; ask its administrator to add it to ${ENV_ROOTS} "
                           "or upload the samples (POST /samples/uploads)")
        if not path.is_dir():
            raise BadQuery(f"{folder!r} is not a folder on the server")
        return path

    async def forget_account(self, account_id: str) -> int:
        """Drop an account's samples and delete its uploaded files (its erasure)."""
        dropped = await self.library.forget_account(account_id)
        folder = self.uploads / account_id
        if folder.is_dir():
            await asyncio.to_thread(shutil.rmtree, folder)
        return dropped

    async def enqueue_index(self, account_id: str, folder: Path) -> Any:
        """Queue the indexing of ``folder`` for ``account_id``; the job record."""
        return await self.app[BACKGROUND].queue.enqueue(
            QUEUE, {"account_id": account_id, "folder": str(folder)}, account_id=account_id)

    async def run(self, ctx: JobContext) -> dict[str, Any]:
        """The queue's handler: index the folder, reporting progress per file."""
        account_id, folder = ctx.payload["account_id"], ctx.payload["folder"]
        if ctx.job.account_id != account_id:
            raise Permanent("the job's account does not match its payload")

        def progress(done: int, total: int, path: str) -> None:
            ctx.progress(done / total if total else 1.0, f"{done}/{total} {Path(path).name}")

        try:
            report = await self.library.index_folder(account_id, folder, progress=progress)
        except BadQuery as exc:
            raise Permanent(str(exc)) from None
        return report.to_dict()


SAMPLES = web.AppKey("samples", SampleService)


def setup_samples(app: web.Application) -> None:
    """Serve the ``samples.index`` queue; load the search index in a context."""
    service = SampleService(app)
    app[SAMPLES] = service
    app[BACKGROUND].register(QUEUE, service.run, QueueSettings(max_attempts=2,
                                                               concurrency=1, lease_s=120.0))
    app.cleanup_ctx.append(samples_context)


async def samples_context(app: web.Application) -> AsyncIterator[None]:
    """Migrate the ``samples`` table and rebuild the search index from it."""
    await app[SAMPLES].library.load()
    yield
