"""``dawserver token``: prints a token the server accepts; bad input is one error line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from collab.tokens import Role, TokenSigner
from dawserver.cli import main


def test_token_prints_a_verifiable_token_for_the_role_and_user(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["token", "song-1", "--role", "viewer", "--user", "vic",
                                       "--data", str(tmp_path)])
    assert result.exit_code == 0, result.output
    grant = TokenSigner.from_data_dir(tmp_path).verify(result.output.strip())
    assert (grant.project_id, grant.role, grant.user) == ("song-1", Role.VIEWER, "vic")


def test_an_all_projects_token_must_be_an_owner_token(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["token", "*", "--role", "editor", "--data", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip() == "error: a token for every project ('*') must have --role owner"


def test_an_unknown_role_is_refused_by_name(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["token", "x", "--role", "boss", "--data", str(tmp_path)])
    assert result.exit_code == 2 and "'boss' is not one of" in result.output
