"""``dawserver plugins``: list the business plug-ins the server would load."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dawserver.cli import CliError
from dawserver.commands._server_options import DEFAULT_DATA
from dawserver.plugins import PluginError, describe, load_plugins


@click.command("plugins")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="DAW_DATA", default=DEFAULT_DATA, show_default=True,
              help="Server data directory (its plugins.json is read).")
@click.option("--disable", "disabled", multiple=True, metavar="NAME",
              help="Leave this plug-in out (as config plugins.NAME = false would).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(data_dir: Path, disabled: tuple[str, ...], as_json: bool) -> None:
    """List loaded plug-ins: name, version, source, hooks, routes and permissions."""
    try:
        manager = load_plugins({"data_dir": data_dir,
                                "plugins": dict.fromkeys(disabled, False)})
        infos = describe(manager)
    except PluginError as exc:
        raise CliError(str(exc)) from exc
    if as_json:
        click.echo(json.dumps([vars(i) | {"hooks": list(i.hooks),
                                         "permissions": list(i.permissions)} for i in infos],
                              indent=2))
        return
    if not infos:
        click.echo("no plug-ins loaded")
        return
    for info in infos:
        click.echo(f"{info.name} {info.version}  ({info.source})")
        if info.description:
            click.echo(f"    {info.description}")
        click.echo(f"    hooks: {', '.join(info.hooks)}")
        if info.routes:
            click.echo(f"    routes: {info.routes}")
        if info.permissions:
            click.echo(f"    permissions: {', '.join(info.permissions)}")
