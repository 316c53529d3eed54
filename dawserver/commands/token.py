"""``dawserver token``: print a signed access token for local use."""

from __future__ import annotations

from pathlib import Path

import click

from collab.errors import CollabError
from collab.tokens import ALL_PROJECTS, Role, TokenSigner
from dawserver.cli import CliError

from ._server_options import DEFAULT_DATA


@click.command("token")
@click.argument("project_id")
@click.option("--role", type=click.Choice([r.value for r in Role]), default="editor",
              show_default=True, help="Role on the project.")
@click.option("--user", default="local", show_default=True, help="User name in the token.")
@click.option("--ttl", type=click.FloatRange(min=1), default=None,
              help="Seconds until the token expires (default: never).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="DAW_DATA", default=DEFAULT_DATA, show_default=True,
              help="Server data directory holding the token secret.")
def token(project_id: str, role: str, user: str, ttl: float | None, data_dir: Path) -> None:
    """Print a token giving USER the ROLE on PROJECT_ID ('*' for every project)."""
    if project_id == ALL_PROJECTS and role != Role.OWNER.value:
        raise CliError("a token for every project ('*') must have --role owner")
    try:
        signer = TokenSigner.from_data_dir(data_dir)
        click.echo(signer.issue(project_id, Role(role), user, ttl_seconds=ttl))
    except (CollabError, OSError) as exc:
        raise CliError(f"cannot issue a token with the secret in {data_dir}: {exc}") from exc
