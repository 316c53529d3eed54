"""The ``dawclient`` entry point: the same command as ``dawserver client``."""

from __future__ import annotations

import logging


def main() -> None:
    """Run ``dawserver client`` as ``dawclient``."""
    import dawserver.cli  # noqa: F401 - registers the commands (and defines CliError) first
    from dawserver.commands.client import client

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    client(prog_name="dawclient")
