"""Data regions in the server: the regions' databases, and where a project's data lives.

With ``config.regions`` (docs/accounts.md, "Data regions") :func:`regions_context`
opens every region's database once, right after the main one, for the accounts and
the documents (``app[REGION_DATABASES]``, the main database as ``default``), and
:func:`collab_store` is then a :class:`~collab.regional_store.RegionalCollabStore`
over one collaboration store per region. Without regions nothing changes: one store
on the main database, files under the data directory.

A project made for an account lives in that account's region (the account id names
it, :func:`accounts.regions.region_of`): its document rows in the region's database and
its files (assets, bounces) under the region's storage directory
(:meth:`~dawserver.config.ServerConfig.storage_of`); a person's export archives go to
their region's directory.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from accounts.models import DEFAULT_REGION
from accounts.regions import open_regions, region_of
from collab.regional_store import RegionalCollabStore
from collab.store import Store, store_for
from database import Database

from .keys import ACCOUNTS, CONFIG, DATABASE, STORE

log = logging.getLogger(__name__)

#: Every region's database, the main one as ``default`` (open while the app runs).
REGION_DATABASES = web.AppKey("region_databases", dict[str, Database])


async def regions_context(app: web.Application) -> AsyncIterator[None]:
    """Open the configured regions' databases (after the main one, before the store)."""
    config = app[CONFIG]
    urls = {name: region.database_url for name, region in config.regions.items()}
    async with open_regions(app[DATABASE], config.database_url, urls,
                            config.data_dir) as databases:
        app[REGION_DATABASES] = databases
        if urls:
            log.info("data regions ready: %s", ", ".join(databases))
        yield


def collab_store(app: web.Application) -> Store:
    """The collaboration store: on the main database, or one per region (not started)."""
    databases = app[REGION_DATABASES]
    if len(databases) == 1:
        return store_for(app[DATABASE])
    return RegionalCollabStore({name: store_for(database)
                                for name, database in databases.items()},
                               main=DEFAULT_REGION)


def account_region(app: web.Application, account_id: str) -> str:
    """The data region ``account_id`` lives in: the account store's answer, which knows
    moved accounts (:mod:`accounts.moving`); before it started, the region its id names."""
    accounts = app.get(ACCOUNTS)
    if accounts is not None:
        return accounts.store.region_of(account_id)
    return region_of(account_id, (DEFAULT_REGION, *app[CONFIG].regions))


async def project_region(app: web.Application, project_id: str) -> str:
    """The data region of ``project_id``'s document (``default`` without regions)."""
    store = app[STORE]
    if isinstance(store, RegionalCollabStore):
        return await store.region_of(project_id)
    return DEFAULT_REGION


def account_storage(app: web.Application, account_id: str) -> Path:
    """The directory of the files of ``account_id``'s region."""
    return app[CONFIG].storage_of(account_region(app, account_id))


async def project_storage(app: web.Application, project_id: str) -> Path:
    """The directory of the files of ``project_id``'s region."""
    return app[CONFIG].storage_of(await project_region(app, project_id))
