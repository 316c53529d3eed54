"""Signed tokens: issue, verify, refuse forgeries and expired tokens, keep the secret."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from collab.errors import AuthError
from collab.tokens import Role, TokenSigner


@pytest.fixture
def signer(tmp_path: Path) -> TokenSigner:
    return TokenSigner.from_data_dir(tmp_path)


def test_issued_token_verifies_to_its_grant(signer: TokenSigner) -> None:
    grant = signer.verify(signer.issue("song-1", Role.EDITOR, "ana", now=1000.0), now=1001.0)
    assert (grant.project_id, grant.role, grant.user, grant.issued_at) == (
        "song-1", Role.EDITOR, "ana", 1000.0)
    assert grant.allows("song-1") and not grant.allows("song-2")
    assert grant.role.can_edit and not grant.role.can_manage


def test_a_role_is_at_least_itself_and_every_earlier_role() -> None:
    assert Role.OWNER.at_least(Role.EDITOR) and Role.EDITOR.at_least(Role.EDITOR)
    assert Role.EDITOR.at_least(Role.VIEWER) and Role.VIEWER.at_least(Role.VIEWER)
    assert not Role.VIEWER.at_least(Role.EDITOR) and not Role.EDITOR.at_least(Role.OWNER)


def test_admin_token_allows_every_project(signer: TokenSigner) -> None:
    grant = signer.verify(signer.issue("*", "owner"))
    assert grant.is_admin and grant.allows("anything")


def test_a_token_from_another_secret_is_refused(tmp_path: Path, signer: TokenSigner) -> None:
    other = TokenSigner(b"x" * 32).issue("song-1", "owner")
    with pytest.raises(AuthError, match="signature is invalid"):
        signer.verify(other)


def test_an_altered_token_is_refused(signer: TokenSigner) -> None:
    token = signer.issue("song-1", Role.VIEWER)
    body, signature = token.split(".")
    forged = signer.issue("song-1", Role.OWNER).split(".")[0] + "." + signature
    with pytest.raises(AuthError, match="signature"):
        signer.verify(forged)
    with pytest.raises(AuthError, match="no token"):
        signer.verify("")


def test_a_token_with_non_ascii_characters_is_refused_as_altered(signer: TokenSigner) -> None:
    token = signer.issue("p", Role.OWNER)
    with pytest.raises(AuthError, match="signature is invalid"):
        signer.verify(token[:-1] + "é")
    with pytest.raises(AuthError, match="signature is invalid"):
        signer.verify("Î¹.\u00a0")


def test_expired_token_is_refused(signer: TokenSigner) -> None:
    token = signer.issue("song-1", Role.EDITOR, ttl_seconds=10, now=100.0)
    assert signer.verify(token, now=105.0).role is Role.EDITOR
    with pytest.raises(AuthError, match="expired"):
        signer.verify(token, now=111.0)


def test_unknown_role_names_the_valid_ones(signer: TokenSigner) -> None:
    with pytest.raises(AuthError, match="viewer, editor, owner"):
        signer.issue("song-1", "admin")


def test_secret_is_created_private_and_reused(tmp_path: Path) -> None:
    token = TokenSigner.from_data_dir(tmp_path).issue("song-1", Role.OWNER)
    mode = stat.S_IMODE((tmp_path / "secret.key").stat().st_mode)
    assert mode == 0o600
    assert TokenSigner.from_data_dir(tmp_path).verify(token).role is Role.OWNER
