"""WebRTC offers: malformed SDP is a 400, and a revoke or deletion mid-offer refuses it."""

from __future__ import annotations

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from test_rtc import Live
from test_rtc import live as live  # noqa: F401 - the fixture, registered here

from collab.tokens import Role
from dawserver.rtc import RTC

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


