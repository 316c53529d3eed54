"""Options shared by the commands that touch the server's data (``--data``, ``--database``,
``--data-region``, ``--region-storage``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from dawserver.config import RegionConfig, parse_regions

#: Where :func:`region_options` leave their values in the click context's ``meta``.
_META = "dawserver.regions"

DEFAULT_DATA = Path("data")


def data_options(command: Callable) -> Callable:
    """Add ``--data DIR`` and ``--database URL`` to a click command."""
    command = click.option(
        "--database", "database_url", metavar="URL", envvar="DAW_DATABASE_URL", default=None,
        help="postgresql://USER@HOST:PORT/DB or sqlite:///PATH (default: SQLite in --data).",
    )(command)
    return click.option(
        "--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
        envvar="DAW_DATA", default=DEFAULT_DATA, show_default=True,
        help="Server data directory (token secret, SQLite store, demo project).",
    )(command)


def _remember(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    ctx.meta.setdefault(_META, {})[param.name] = value


def region_options(command: Callable) -> Callable:
    """Add ``--data-region NAME=DATABASE_URL`` and ``--region-storage NAME=DIR_OR_URL``
    (repeatable); :func:`configured_regions` reads them, so commands take no argument."""
    command = click.option(
        "--region-storage", "region_storage", metavar="NAME=DIR_OR_URL", multiple=True,
        envvar="DAW_REGION_STORAGE", expose_value=False, callback=_remember,
        help="Where a data region's files go (a directory or s3://BUCKET/PREFIX).")(command)
    return click.option(
        "--data-region", "data_region", metavar="NAME=DATABASE_URL", multiple=True,
        envvar="DAW_DATA_REGIONS", expose_value=False, callback=_remember,
        help="A data region and its database (repeatable; the environment variable takes "
        "several, space-separated); accounts in it keep their rows there.")(command)


def configured_regions() -> dict[str, RegionConfig]:
    """The regions the current command was given; :class:`click.BadParameter` if malformed."""
    given = click.get_current_context().meta.get(_META, {})
    try:
        return parse_regions(given.get("data_region", ()), given.get("region_storage", ()))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--data-region") from None
