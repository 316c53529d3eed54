"""Options shared by the commands that touch the server's data (``--data``, ``--database``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

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
