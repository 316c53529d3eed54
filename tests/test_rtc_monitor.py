"""Monitoring the live mix over WebRTC: the immersive mix for headphones or folded to
stereo (the offer's ``monitor``), beside the plain stereo mix."""

from __future__ import annotations

import io
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
from loopback import free_port
from nodepeer import eventually, running_server

from collab.tokens import Role
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import ROOMS, STORE, TOKENS
from dawserver.projects import import_session
from dawserver.rtc import RTC
from dawserver.rtc_client import RtcError, RtcListener
from dsp_core.immersive import ImmersiveRoute
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]
RATE = 48000
#: Seconds of noise the project plays: a mix starts at 0 when its first listener comes,
#: and a listener's connection may take many seconds on a loaded machine.
NOISE_S = 40


@pytest_asyncio.fixture
async def live(tmp_path: Path):
    """A playing project with one mono object at +90 degrees (the listener's left): noise,
    so the head's shadow shows (it is small at low frequencies), for :data:`NOISE_S`."""
    rng = np.random.default_rng(8)
    source = tmp_path / "noise.wav"
    sf.write(source, (0.1 * rng.standard_normal(NOISE_S * RATE)).astype(np.float32), RATE)
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    session = Session(name="Live", tracks=[
        Track("bird", clips=[Clip(str(source), 0, NOISE_S * RATE)],
              immersive=ImmersiveRoute("object", azimuth=90.0))])
    async with running_server(config) as app:
        info = await import_session(app[STORE], session, assets=app[ASSETS])
        async with app[ROOMS].use(info.project_id) as room:
            await room.edit(lambda d: d.update_transport(playing=True, position=0))
        yield app, config, info.project_id


def listener(live, **options) -> RtcListener:  # noqa: ANN001
    app, config, project_id = live
    token = app[TOKENS].issue(project_id, Role.VIEWER, "vic")
    return RtcListener(config.base_url, project_id, token, low_latency=False, **options)


def ears_db(received: np.ndarray) -> float:
    """Left against right, in dB, over the frames that carry sound."""
    left, right = (received[:, np.abs(received).max(axis=0) > 0].astype(np.float64) ** 2
                   ).sum(axis=1)
    return float(10 * np.log10((left + 1e-12) / (right + 1e-12)))


async def rendered(live, layout: str) -> np.ndarray:  # noqa: ANN001
    app, config, project_id = live
    token = app[TOKENS].issue(project_id, Role.VIEWER, "vic")
    url = f"{config.base_url}/projects/{project_id}/render/immersive"
    async with aiohttp.ClientSession() as http, http.get(
            url, params={"layout": layout, "frames": 2 * RATE},
            headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200, await response.text()
        data, _ = sf.read(io.BytesIO(await response.read()), dtype="float32")
    return data.T


async def test_binaural_monitoring_puts_the_object_in_the_left_ear(live) -> None:  # noqa: ANN001
    async with listener(live, monitor="binaural") as phones, listener(live) as mix:
        await phones.wait_frames(60)
        await mix.wait_frames(60)
        mixes = live[0][RTC].mixes.mixes
        assert set(mixes) == {live[2], f"{live[2]}#binaural"}  # two renders, one each
    heard = phones.audio(20)
    assert ears_db(heard) > 6.0  # the object at +90 degrees: the left ear
    assert abs(ears_db(mix.audio(20))) < 0.5  # the plain mix ignores the position (centre)
    # as loud as the offline binaural render of the same mix (Opus keeps the level)
    offline = await rendered(live, "binaural")
    level = np.sqrt(np.mean(heard[:, np.abs(heard).max(axis=0) > 0] ** 2) / np.mean(
        offline[:, RATE // 2:] ** 2))
    assert abs(20 * np.log10(level)) < 1.0


async def test_stereo_monitoring_folds_the_immersive_mix_and_bad_monitors_are_refused(
        live) -> None:  # noqa: ANN001
    async with listener(live, monitor="stereo") as speakers:
        await speakers.wait_frames(60)
    assert ears_db(speakers.audio(20)) > 10.0  # +90 degrees: folded onto the left speaker
    with pytest.raises(RtcError, match="HTTP 422.*monitor"):
        async with listener(live, monitor="7.1.4"):
            pass
    # every mix stopped with its last listener (once the server saw the connection close)
    await eventually(lambda: not live[0][RTC].mixes.mixes, timeout=20)
