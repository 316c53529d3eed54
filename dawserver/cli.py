"""The ``dawserver`` command line.

Each sub-command lives in its own module under ``dawserver.commands`` and is
listed in :data:`COMMANDS`; it is imported only when the CLI starts, so a
command's heavy dependencies never slow the others.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from dawserver.log_format import FORMATS, configure_logging

#: ``"module:attribute"`` of every sub-command, relative to ``dawserver.commands``.
COMMANDS: list[str] = [
    "demo_project:demo_project",
    "render:render",
    "serve:serve",
    "import_project:import_project",
    "token:token",
    "plugins:plugins",
    "transcribe:transcribe",
    "models:models",
    "client:client",
    "users:users",
    "accounts:accounts",
    "orgs:orgs",
    "keys:keys",
    "samples:samples",
    "midi:midi",
    "immersive:immersive",
    "deploy:deploy",
    "tempo:tempo",
]


class CliError(click.ClickException):
    """One clear error line and exit status 1, never a traceback."""

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(f"error: {self.format_message()}", err=True, file=file)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("--log-format", type=click.Choice(FORMATS), envvar="DAW_LOG_FORMAT",
              default="text", show_default=True,
              help="json: one JSON object a line, with trace_id and span_id inside a span.")
def main(verbose: int, log_format: str) -> None:
    """Max Booster Studio: collaborative DAW server and tools."""
    configure_logging(logging.WARNING - 10 * min(verbose, 2), log_format)


def _register() -> None:
    for entry in COMMANDS:
        module_name, attribute = entry.split(":")
        module = importlib.import_module(f"dawserver.commands.{module_name}")
        main.add_command(getattr(module, attribute))


_register()

if __name__ == "__main__":
    sys.exit(main())
