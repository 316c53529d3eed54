"""Reading tokens from requests and checking them against projects, roles, revocations."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from collab.errors import AuthError
from collab.protocol import CloseCode
from collab.store import open_store
from collab.tokens import Role, TokenSigner
from dawserver.access import AccessDenied, authorize, request_token
from dawserver.keys import STORE, TOKENS

pytestmark = pytest.mark.asyncio


async def test_the_token_comes_from_the_query_or_a_bearer_header() -> None:
    assert request_token(make_mocked_request("GET", "/collab/p?token=abc")) == "abc"
    request = make_mocked_request("GET", "/x", headers={"Authorization": "Bearer  xyz "})
    assert request_token(request) == "xyz"
    assert request_token(make_mocked_request("GET", "/x", headers={"Authorization": "Basic a"})
                         ) is None


async def test_authorize_checks_project_role_and_revocation(tmp_path: Path) -> None:
    signer = TokenSigner.from_data_dir(tmp_path)
    async with open_store(None, tmp_path) as store:
        app = {TOKENS: signer, STORE: store}
        grant = await authorize(app, "p", signer.issue("p", Role.EDITOR, "sam"), Role.EDITOR)
        assert grant.user == "sam"
        with pytest.raises(AccessDenied) as wrong:
            await authorize(app, "q", signer.issue("p", Role.OWNER))
        assert wrong.value.close_code == CloseCode.FORBIDDEN
        with pytest.raises(AccessDenied, match="needs owner"):
            await authorize(app, "p", signer.issue("p", Role.EDITOR), Role.OWNER)
        old = signer.issue("p", Role.EDITOR, "sam", now=time.time() - 10)
        await store.revoke("p", "sam", time.time() - 5)
        with pytest.raises(AccessDenied) as revoked:
            await authorize(app, "p", old)
        assert revoked.value.close_code == CloseCode.ROLE_REVOKED
        assert (await authorize(app, "p", signer.issue("p", Role.EDITOR, "sam"))).user == "sam"
        assert (await authorize(app, "anything", signer.issue("*", Role.OWNER))).is_admin
        with pytest.raises(AuthError, match="no token"):
            await authorize(app, "p", None)
