"""Every URL the server fetches for someone is checked by one rule
(dawserver.public_addresses): webhook targets and organisations' sign-in providers."""

from __future__ import annotations

import ipaddress

import pytest
from public_addresses_cases import NOT_PUBLIC

from dawserver.plugin_api import BadRequest
from dawserver.public_addresses import is_public
from dawserver.sso_routes import SsoSignIns

PUBLIC = ["8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8", "2002:808:808::1"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_an_address_that_is_not_on_the_internet_is_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_an_address_on_the_internet_is_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.asyncio
@pytest.mark.parametrize("address", ["5f00::1", "3fff::1", "::ffff:0:a00:1", "::ffff:0:7f00:1"])
async def test_a_sign_in_provider_on_a_reserved_or_translated_address_is_refused(
        address: str) -> None:
    """Python's ``is_global`` calls these global; the provider check must not."""
    sign_ins = SsoSignIns(sso=None, settings={"allow_private_issuers": False}, db=None)
    with pytest.raises(BadRequest, match="private address"):
        await sign_ins.check_issuer_host(f"https://[{address}]/")
