"""``dawserver plugins``: list the business plug-ins the server would load."""

from __future__ import annotations

import json

import click

from dawserver.cli import CliError
from dawserver.plugins import PluginError, describe, load_plugins


@click.command("plugins")
@click.option("--disable", "disabled", multiple=True, metavar="NAME",
              help="Leave this plug-in out (as config plugins.NAME = false would).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(disabled: tuple[str, ...], as_json: bool) -> None:
    """List loaded plug-ins: name, version, source, hooks, routes and permissions."""
    try:
        manager = load_plugins({"plugins": dict.fromkeys(disabled, False)})
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
