"""WebRTC offers: malformed SDP is a 400, and a revoke or deletion mid-offer refuses it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from test_rtc import Live
from test_rtc import live as live  # noqa: F401 - the fixture, registered here

from collab.tokens import Role
from dawserver.rtc import RTC
from dawserver.rtc_client import RtcError, RtcListener

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def an_offer() -> str:
    """A listener's real SDP offer, as aiortc makes it."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


@pytest.mark.parametrize("missing", ["a=setup:", "a=rtpmap:"])
async def test_an_offer_missing_its_setup_or_codecs_is_a_bad_request(
        live: Live, missing: str) -> None:
    # aiortc raises AttributeError / OperationError on these: they were answered with a 500
    sdp = "\r\n".join(line for line in (await an_offer()).split("\r\n")
                      if not line.startswith(missing))
    url = f"{live.config.base_url}/projects/{live.project_id}/rtc"
    async with aiohttp.ClientSession() as http, http.post(
            url, json={"type": "offer", "sdp": sdp},
            params={"token": live.token(Role.VIEWER)}) as response:
        assert response.status == 400, await response.text()
        assert "cannot use this offer" in (await response.json())["error"]
    service = live.app[RTC]
    assert not service.connections and not service.mixes.mixes


async def offer_while(live: Live, meanwhile: Callable[[], Awaitable[object]]
                      ) -> RtcListener:
    """Send ana's offer and run ``meanwhile`` while the server starts its live mix; her
    open listener (the caller stops it)."""
    mixes = live.app[RTC].mixes
    starting, go = asyncio.Event(), asyncio.Event()
    acquire = mixes.acquire

    async def slow_start(*args: object, **kwargs: object):  # noqa: ANN202 - a LiveMix
        starting.set()
        await go.wait()
        return await acquire(*args, **kwargs)

    mixes.acquire = slow_start
    listener = live.listener(Role.EDITOR)
    opening = asyncio.create_task(listener.start())
    await starting.wait()
    await meanwhile()
    go.set()
    await opening
    return listener


async def test_a_member_revoked_while_their_offer_is_answered_is_refused(live: Live) -> None:
    # the revoke found no connection yet, and the connection then opened and played on
    with pytest.raises(RtcError, match="HTTP 403"):
        await offer_while(live, lambda: live.member("DELETE", "ana"))
    service = live.app[RTC]
    assert not service.connections and not service.openings and not service.mixes.mixes


async def test_an_offer_answered_as_the_project_is_deleted_is_refused(live: Live) -> None:
    service = live.app[RTC]
    with pytest.raises(RtcError, match="HTTP 404"):
        await offer_while(live, lambda: service.close_project(live.project_id))
    assert not service.connections and not service.openings and not service.mixes.mixes


async def test_a_role_lowered_while_the_offer_is_answered_applies_to_it(live: Live) -> None:
    listener = await offer_while(live, lambda: live.member("PUT", "ana", role="viewer"))
    try:
        [conn] = live.app[RTC].connections
        assert conn.grant.role is Role.VIEWER  # her microphone is not recorded
    finally:
        await listener.stop()
