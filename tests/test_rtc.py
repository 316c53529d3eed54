"""WebRTC end to end: a Python aiortc client hears the live mix and records takes."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
from aiortc import RTCConfiguration, RTCPeerConnection
from loopback import free_port
from nodepeer import eventually, running_server

from collab.tokens import Role
from dawserver.assets import ASSETS
from dawserver.config import ServerConfig
from dawserver.keys import ROOMS, STORE, TOKENS
from dawserver.projects import import_session
from dawserver.rtc import RTC
from dawserver.rtc_client import RtcError, RtcListener, ToneTrack
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]
RATE = 48000
FRAME = 960


def music(seconds: float) -> np.ndarray:
    """A tonal, moving test signal that Opus keeps close to the waveform."""
    t = np.arange(int(RATE * seconds)) / RATE
    tone = sum(np.sin(2 * np.pi * f * t + k) / (k + 1) for k, f in enumerate((220, 330, 550)))
    return (0.25 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t))).astype(np.float32)


class Live:
    def __init__(self, app, config: ServerConfig, project_id: str) -> None:
        self.app, self.config, self.project_id = app, config, project_id

    def token(self, role: Role = Role.EDITOR, user: str = "ana") -> str:
        return self.app[TOKENS].issue(self.project_id, role, user)

    def listener(self, role: Role = Role.EDITOR, **options) -> RtcListener:
        return RtcListener(self.config.base_url, self.project_id, self.token(role), **options)

    async def edit(self, change) -> None:
        async with self.app[ROOMS].use(self.project_id) as room:
            await room.edit(change)

    async def member(self, method: str, user: str, **body) -> dict:
        """``DELETE`` (revoke) or ``PUT`` (new role) ``/projects/{id}/members/{user}`` as owner."""
        url = f"{self.config.base_url}/projects/{self.project_id}/members/{user}"
        headers = {"Authorization": f"Bearer {self.token(Role.OWNER, 'olga')}"}
        async with aiohttp.ClientSession() as http, http.request(
                method, url, headers=headers, json=body or None) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def vox_clips(self) -> list[dict]:
        return [c for c in (await self.document())["clips"].values() if c["track"] == "vox"]

    async def document(self) -> dict:
        async with self.app[ROOMS].use(self.project_id) as room:
            return room.document.to_json()

    async def render(self, start: int, frames: int) -> np.ndarray:
        url = f"{self.config.base_url}/projects/{self.project_id}/render"
        params = {"start": start, "frames": frames, "token": self.token(Role.VIEWER)}
        async with aiohttp.ClientSession() as http, http.get(url, params=params) as response:
            assert response.status == 200, await response.text()
            data, _ = sf.read(io.BytesIO(await response.read()), dtype="float32")
        return data.T


@pytest_asyncio.fixture
async def live(tmp_path: Path):
    source = tmp_path / "music.wav"
    sf.write(source, music(6.0), RATE, subtype="FLOAT")
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    session = Session(name="Live", tracks=[
        Track("band", clips=[Clip(str(source), 0, 6 * RATE, id="c0")], gain_db=-3.0),
        Track("vox", channels=1),
    ])
    async with running_server(config) as app:
        info = await import_session(app[STORE], session, assets=app[ASSETS])
        yield Live(app, config, info.project_id)


def heard(received: np.ndarray) -> np.ndarray:
    """Samples of frames that arrived, and not just after a lost one.

    Lost frames are silence on a loaded machine; the frame after a loss is decoded
    without its predecessor.
    """
    blocks = np.abs(received).max(axis=0)
    whole = len(blocks) // FRAME * FRAME
    arrived = blocks[:whole].reshape(-1, FRAME).max(axis=1) > 0
    arrived[1:] &= arrived[:-1]
    mask = np.zeros(len(blocks), bool)
    mask[:whole] = np.repeat(arrived, FRAME)
    return mask


def align(received: np.ndarray, reference: np.ndarray) -> tuple[int, float, float]:
    """Best lag of ``received`` in ``reference`` (mono sums), its correlation and SNR in dB."""
    rx, ref = received.mean(axis=0), reference.mean(axis=0)
    n = 1 << int(np.ceil(np.log2(len(rx) + len(ref))))
    xc = np.fft.irfft(np.fft.rfft(ref, n) * np.conj(np.fft.rfft(rx, n)), n)
    energy = np.concatenate([[0.0], np.cumsum(ref.astype(np.float64) ** 2)])
    lags = len(ref) - len(rx) + 1
    local = energy[len(rx):len(rx) + lags] - energy[:lags]
    lag = int(np.argmax(xc[:lags] / np.sqrt(np.maximum(local, 1e-12))))
    part = ref[lag:lag + len(rx)]
    rx = rx[: len(part)]
    mask = heard(received)[: len(part)]
    rx, part = rx[mask], part[mask]
    corr = float(np.corrcoef(rx, part)[0, 1])
    snr = 10 * np.log10(np.sum(part ** 2) / np.sum((rx - part) ** 2))
    return lag, corr, snr


async def test_a_listener_hears_the_live_mix_as_rendered_offline(live: Live) -> None:
    await live.edit(lambda d: d.update_transport(playing=True, position=0))
    async with live.listener(low_latency=False) as listener:
        await listener.wait_frames(120)
    received = listener.audio(20)[:, : RATE]
    reference = await live.render(0, 5 * RATE)
    lag, corr, snr = align(received, reference)
    assert corr > 0.99, (lag, corr, snr)  # Opus 128 kbit/s music mode: ~0.9999, 36 dB
    assert snr > 20.0, (lag, corr, snr)
    level = np.sqrt(np.mean(received ** 2) / np.mean(reference[:, lag:lag + RATE] ** 2))
    assert abs(20 * np.log10(level)) < 1.0


async def test_a_peer_without_opus_gets_the_mix_encoded_for_it(live: Live) -> None:
    await live.edit(lambda d: d.update_transport(playing=True, position=0))
    async with live.listener(low_latency=False, codec="audio/PCMU") as listener:
        await listener.wait_frames(60)
        conn = next(iter(live.app[RTC].connections))
        assert conn.pc.getSenders()[0].track.packets is False
    received = listener.audio(20)[:, : RATE // 2]
    lag, corr, snr = align(received, await live.render(0, 5 * RATE))
    assert corr > 0.95, (lag, corr, snr)  # mu-law at 8 kHz, the mix is below 2 kHz


async def test_a_take_sent_without_opus_is_recorded_at_the_mix_rate(live: Live) -> None:
    # PCMU frames are 8 kHz: they were written as if 48 kHz, six times short and high
    await live.edit(lambda d: d.update_track("vox", arm=True))
    async with live.listener(send=ToneTrack(440.0, 0.5), codec="audio/PCMU") as musician:
        await musician.wait_frames(10)
        await live.edit(lambda d: d.update_transport(playing=True, position=RATE,
                                                     recording=True))
        await asyncio.sleep(1.5)
        await live.edit(lambda d: d.update_transport(recording=False))
        await eventually(live.vox_clips)
    [clip] = await live.vox_clips()
    take, rate = sf.read(live.app[ASSETS].asset(clip["source"]).path, dtype="float32")
    assert rate == RATE and int(clip["length"]) == len(take) > RATE // 2
    tone = take[len(take) // 4: 3 * len(take) // 4]  # past the codec's start
    peak_hz = np.argmax(np.abs(np.fft.rfft(tone))) * rate / len(tone)
    assert abs(peak_hz - 440.0) < 10.0, peak_hz


async def test_a_take_recorded_over_a_loop_stays_inside_the_loop(live: Live) -> None:
    # the take was laid out straight from where it began, past the loop's end, cutting
    # away the verse the singer never recorded over
    band = next(c for c in (await live.document())["clips"].values() if c["track"] == "band")
    await live.edit(lambda d: d.add_clip("vox", Clip(band["source"], 3 * RATE, 2 * RATE,
                                                     id="verse")))
    await live.edit(lambda d: d.update_track("vox", arm=True))
    await live.edit(lambda d: d.update_transport(loop_start=RATE, loop_end=2 * RATE,
                                                 loop_enabled=True))
    async with live.listener(send=ToneTrack(1000.0, 0.5)) as musician:
        await musician.wait_frames(10)
        await live.edit(lambda d: d.update_transport(playing=True, position=RATE,
                                                     recording=True))
        [recorder] = next(iter(live.app[RTC].connections)).recorders

        def recorded() -> int:
            take = recorder._take  # noqa: SLF001 - how much the take holds so far
            return take.frames if take is not None else 0

        await eventually(lambda: recorded() > 1.5 * RATE, timeout=20)  # into a 2nd pass
        await live.edit(lambda d: d.update_transport(recording=False))

        async def takes() -> list[dict]:
            return [c for c in await live.vox_clips() if c["source"] != band["source"]]

        await eventually(takes)
    assert [(c["position"], c["length"], c["offset"]) for c in await live.vox_clips()
            if c["id"] == "verse"] == [(3 * RATE, 2 * RATE, 0)]
    passes = await takes()
    assert len(passes) >= 2, passes  # more than one pass of the loop was recorded
    for clip in passes:
        assert clip["position"] >= RATE and clip["position"] + clip["length"] <= 2 * RATE


async def test_a_take_that_cannot_be_placed_does_not_stop_the_next(
        live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    # any fault but three kinds left the recorder's loop: the microphone was no longer
    # recorded for the rest of the connection
    import dawserver.recording as recording

    placed = recording.place_passes
    faults = [ValueError("a clip a peer wrote badly")]

    def place_passes(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if faults:
            raise faults.pop()
        return placed(*args, **kwargs)

    monkeypatch.setattr(recording, "place_passes", place_passes)
    await live.edit(lambda d: d.update_track("vox", arm=True))
    async with live.listener(send=ToneTrack(440.0, 0.5)) as musician:
        await musician.wait_frames(10)
        [recorder] = next(iter(live.app[RTC].connections)).recorders
        for start in (0, 3 * RATE):
            await live.edit(lambda d, at=start: d.update_transport(
                playing=True, position=at, recording=True))
            await eventually(lambda: recorder._take is not None  # noqa: SLF001
                             and recorder._take.frames > RATE // 4)  # noqa: SLF001
            await live.edit(lambda d: d.update_transport(playing=False, recording=False))
            await eventually(lambda: recorder._take is None)  # noqa: SLF001
        await eventually(live.vox_clips)
    assert not faults
    [clip] = await live.vox_clips()  # the second take, placed after the first failed
    assert clip["position"] >= 3 * RATE


async def test_stop_gives_silence_and_a_fader_move_changes_the_level(live: Live) -> None:
    async def level_against_render() -> float:
        """dB of the last 200 ms received against the same span of an offline render."""
        received = listener.audio(len(listener.frames) - 10)
        reference = (await live.render(0, 6 * RATE))[:, RATE:]  # past any fader glide
        lag, corr, _ = align(received, reference)
        assert corr > 0.8, corr
        part = reference[:, lag:lag + received.shape[1]]
        mask = heard(received)[: part.shape[1]]
        return 10 * np.log10(np.mean(received[:, : part.shape[1]][:, mask] ** 2)
                             / np.mean(part[:, mask] ** 2))

    async with live.listener(low_latency=False) as listener:
        await listener.wait_frames(10)
        assert np.abs(listener.audio()).max() == 0.0
        await live.edit(lambda d: d.update_transport(playing=True, position=0))
        await eventually(lambda: np.abs(listener.audio(len(listener.frames) - 5)).max() > 0.1)
        await asyncio.sleep(0.3)
        loud = np.sqrt(np.mean(listener.audio(len(listener.frames) - 10) ** 2))
        assert abs(await level_against_render()) < 2.0
        await live.edit(lambda d: d.set_track_gain("band", -23.0))
        await asyncio.sleep(0.4)
        quiet = np.sqrt(np.mean(listener.audio(len(listener.frames) - 10) ** 2))
        assert quiet < loud / 2
        assert abs(await level_against_render()) < 2.0
        await live.edit(lambda d: d.update_transport(playing=False))
        # silence arrives once the frames already on their way have played out; on a
        # loaded machine that takes longer than any fixed sleep
        await eventually(lambda: np.abs(listener.audio(len(listener.frames) - 5)).max() < 1e-3)


async def test_listeners_share_one_render_and_a_stalled_one_holds_nobody_back(live: Live
                                                                              ) -> None:
    await live.edit(lambda d: d.update_transport(playing=True, position=0))
    async with live.listener() as first, live.listener(Role.VIEWER) as second:
        await first.wait_frames(5)
        mixes = live.app[RTC].mixes.mixes
        assert list(mixes) == [live.project_id]
        mix = mixes[live.project_id]
        stalled = mix.add_listener()
        began, before, got = time.monotonic(), mix.frames_made, len(second.frames)
        await eventually(lambda: mix.frames_made - before >= 50, timeout=20)  # a second's
        took, made = time.monotonic() - began, mix.frames_made - before
        # one render in real time (50/s, at most 0.2 s of it caught up after a stall),
        # not one per listener (150/s), however fast this machine runs
        assert made <= 50 * took + 12
        assert len(second.frames) - got >= made // 2  # the stalled one holds nobody back
        assert len(stalled.frames) == stalled.frames.maxlen
        assert stalled.dropped >= made - stalled.frames.maxlen - 2
        assert len(mix.listeners) == 3
    await eventually(lambda: not live.app[RTC].mixes.mixes)


async def test_a_recorded_tone_becomes_a_clip_at_the_playhead_less_the_latency(live: Live) -> None:
    await live.edit(lambda d: d.update_track("vox", arm=True))
    tone = ToneTrack(1000.0, 0.5)
    async with live.listener(send=tone, latency_ms=50.0) as musician:
        await musician.wait_frames(10)
        await live.edit(lambda d: d.update_transport(playing=True, position=RATE,
                                                     recording=True))
        await asyncio.sleep(1.0)
        await live.edit(lambda d: d.update_transport(recording=False))

        async def clip_added() -> bool:
            return bool([c for c in (await live.document())["clips"].values()
                         if c["track"] == "vox"])

        await eventually(clip_added)
    clip = next(c for c in (await live.document())["clips"].values() if c["track"] == "vox")
    position, length = int(clip["position"]), int(clip["length"])
    early = int(0.05 * RATE)  # the declared 50 ms round trip
    assert RATE - early <= position < RATE - early + 0.15 * RATE
    assert 0.2 * RATE < length < 1.3 * RATE  # ~1 s; a starved machine loses frames
    take, rate = sf.read(live.app[ASSETS].asset(clip["source"]).path, dtype="float32")
    assert rate == RATE and take.dtype == np.float32 and len(take) == length
    assert 0.3 < np.sqrt(np.mean(take[RATE // 10:-RATE // 10] ** 2)) < 0.4  # 0.5 sine: 0.354
    await live.edit(lambda d: d.update_track("band", mute=True))
    mix = await live.render(position, length)
    spectrum = np.abs(np.fft.rfft(mix[0]))
    assert abs(np.argmax(spectrum) * RATE / len(mix[0]) - 1000.0) < 5.0
    assert np.sqrt(np.mean(mix[0, RATE // 10:-RATE // 10] ** 2)) > 0.1


async def test_a_round_trip_declared_during_a_take_places_it(
        live: Live) -> None:
    await live.edit(lambda d: d.update_track("vox", arm=True))
    async with live.listener(send=ToneTrack(1000.0, 0.5)) as musician:
        await musician.wait_frames(10)
        await live.edit(lambda d: d.update_transport(playing=True, position=RATE,
                                                     recording=True))
        await asyncio.sleep(0.3)
        # measured over the take, declared before it stops: 120 ms, not the offer's 0
        await musician.declare_latency(120.0)
        await asyncio.sleep(0.3)
        await live.edit(lambda d: d.update_transport(recording=False))
        await eventually(live.vox_clips)
        clip = (await live.vox_clips())[0]
        url = f"{live.config.base_url}/projects/{live.project_id}/rtc"
        async with aiohttp.ClientSession() as http:
            # another member cannot tell the connection from a closed one
            async with http.patch(f"{url}/{musician.connection}", json={"latency_ms": 5},
                                  params={"token": live.token(user="ben")}) as response:
                assert response.status == 404, await response.text()
            async with http.patch(f"{url}/nonsense", json={"latency_ms": 5},
                                  params={"token": live.token()}) as response:
                assert response.status == 404
                assert "send a new offer" in (await response.json())["error"]
            for bad in (-1, 1e9, "fast"):
                async with http.patch(f"{url}/{musician.connection}", json={"latency_ms": bad},
                                      params={"token": live.token()}) as response:
                    assert response.status == 422, bad
        conn = next(iter(live.app[RTC].connections))
        assert conn.latency_ms == 120.0  # refused updates changed nothing
    early = int(0.12 * RATE)
    assert RATE - early <= int(clip["position"]) < RATE - early + 0.15 * RATE
    # a closed connection takes no more updates
    with pytest.raises(RtcError, match="HTTP 404"):
        await musician.declare_latency(10.0)


async def test_a_viewer_is_heard_but_never_recorded(live: Live) -> None:
    await live.edit(lambda d: d.update_track("vox", arm=True))
    async with live.listener(Role.VIEWER, send=ToneTrack()) as viewer:
        await live.edit(lambda d: d.update_transport(playing=True, recording=True))
        await viewer.wait_frames(25)
        await live.edit(lambda d: d.update_transport(recording=False))
        await asyncio.sleep(0.2)
        conn = next(iter(live.app[RTC].connections))
        assert conn.recorders and conn.recorders[0].frames_received > 10
    assert not [c for c in (await live.document())["clips"].values() if c["track"] == "vox"]


async def test_bad_offers_and_tokens_are_refused_clearly(live: Live) -> None:
    url = f"{live.config.base_url}/projects/{live.project_id}/rtc"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"type": "answer"},
                             params={"token": live.token()}) as response:
            assert response.status == 422
            assert "createOffer" in (await response.json())["error"]
        async with http.post(url, json={"type": "offer", "sdp": "v=0 nonsense"},
                             params={"token": live.token()}) as response:
            assert response.status == 400
    with pytest.raises(RtcError, match="HTTP 401"):
        async with RtcListener(live.config.base_url, live.project_id, "forged"):
            pass


async def test_a_connection_that_never_connects_is_closed_and_its_mix_released(
        live: Live) -> None:
    # an offer without candidates (a trickle-ICE browser posting before gathering ends, or a
    # crafted one): ICE waited for them for good, and the live mix kept rendering for it
    live.app[RTC].connect_timeout = 0.5
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = "\r\n".join(line for line in pc.localDescription.sdp.split("\r\n")
                       if not line.startswith(("a=candidate", "a=end-of-candidates")))
    await pc.close()
    url = f"{live.config.base_url}/projects/{live.project_id}/rtc"
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.post(url, json={"type": "offer", "sdp": sdp},
                                 params={"token": live.token(Role.VIEWER)}) as response:
                assert response.status == 200
    service = live.app[RTC]
    assert len(service.connections) == 3 and service.mixes.mixes
    await eventually(lambda: not service.connections and not service.mixes.mixes,
                     timeout=20)


async def test_revoking_a_member_closes_their_audio_at_once(live: Live) -> None:
    await live.edit(lambda d: d.update_track("vox", arm=True))
    await live.edit(lambda d: d.update_transport(playing=True, position=0))
    async with live.listener(send=ToneTrack()) as ana, \
            RtcListener(live.config.base_url, live.project_id, live.token(Role.VIEWER, "ben"),
                        low_latency=False) as ben:
        await ana.wait_frames(10)
        await ben.wait_frames(10)
        assert (await live.member("DELETE", "ana")) == {"revoked": "ana", "disconnected": 1}
        assert [c.grant.user for c in live.app[RTC].connections] == ["ben"]
        await eventually(lambda: ana.pc.connectionState == "closed")
        heard_by_ana = len(ana.frames)
        await live.edit(lambda d: d.update_transport(recording=True))
        await ben.wait_frames(len(ben.frames) + 25)  # ben still hears the mix
        await live.edit(lambda d: d.update_transport(recording=False))
        assert len(ana.frames) == heard_by_ana
    assert not await live.vox_clips()  # ana's microphone was not recorded after the revoke


async def test_a_member_lowered_to_viewer_keeps_listening_but_is_no_longer_recorded(
        live: Live) -> None:
    await live.edit(lambda d: d.update_track("vox", arm=True))
    async with live.listener(send=ToneTrack()) as ana:
        await ana.wait_frames(10)
        await live.edit(lambda d: d.update_transport(playing=True, position=0, recording=True))
        conn = next(iter(live.app[RTC].connections))
        await eventually(lambda: conn.recorders and conn.recorders[0]._take is not None
                         and conn.recorders[0]._take.frames >= RATE // 4)
        body = await live.member("PUT", "ana", role="viewer")
        assert (body["role"], body["changed"]) == ("viewer", 1)
        assert live.app[TOKENS].verify(body["token"]).role is Role.VIEWER
        recorder = conn.recorders[0]
        assert conn.grant.role is Role.VIEWER and not recorder.can_record

        async def take_ended() -> bool:
            return bool(await live.vox_clips())

        await eventually(take_ended)  # the take ends while the transport still records
        assert live.app[RTC].mixes.mixes[live.project_id].playhead.recording
        received, heard_by_ana = recorder.frames_received, len(ana.frames)
        await ana.wait_frames(heard_by_ana + 25)  # ana still hears the mix ...
        await live.edit(lambda d: d.update_transport(recording=False))
        assert recorder.frames_received > received  # ... and her microphone still arrives
        assert conn in live.app[RTC].connections
    assert len(await live.vox_clips()) == 1  # but nothing after the change was recorded


class LossyToneTrack(ToneTrack):
    """A tone some of whose frames never arrive, as packets lost on the way: the next
    frame comes when it is due, with its own timestamp."""

    def __init__(self) -> None:
        super().__init__(1000.0, 0.5)
        self.lost = range(0)

    def lose(self, start_in: int, count: int) -> range:
        """Lose ``count`` frames from ``start_in`` frames from now on."""
        self.lost = range(self.sent + start_in, self.sent + start_in + count)
        return self.lost

    async def recv(self):  # noqa: ANN201 - an av.AudioFrame
        while self.sent in self.lost:
            self.sent += 1
        return await super().recv()


async def test_audio_lost_on_the_way_leaves_silence_and_keeps_the_rest_in_place(
        live: Live) -> None:
    # lost packets shortened the take: everything after them was placed early by the loss
    await live.edit(lambda d: d.update_track("vox", arm=True))
    tone = LossyToneTrack()
    async with live.listener(send=tone) as musician:
        await musician.wait_frames(10)
        await live.edit(lambda d: d.update_transport(playing=True, position=RATE,
                                                     recording=True))
        [recorder] = next(iter(live.app[RTC].connections)).recorders
        await eventually(lambda: recorder._take is not None)  # noqa: SLF001 - it began
        lost = tone.lose(20, 25)  # 0.5 s, 0.4 s into the take
        await eventually(lambda: tone.sent > lost.stop + 40, timeout=20)  # 0.8 s past it
        await live.edit(lambda d: d.update_transport(recording=False))
        await eventually(live.vox_clips)
    [clip] = await live.vox_clips()
    take, _ = sf.read(live.app[ASSETS].asset(clip["source"]).path, dtype="float32")
    level = np.sqrt(np.convolve(take ** 2, np.ones(480) / 480, mode="same"))
    quiet = np.concatenate([[0], (level[RATE // 20:-RATE // 20] < 0.01).astype(np.int8), [0]])
    runs = np.flatnonzero(np.diff(quiet)).reshape(-1, 2)  # [start, end) of each quiet run
    assert runs.size, "the lost half second left no silence"
    gap = int(np.max(runs[:, 1] - runs[:, 0]))  # a loaded machine may lose more, apart
    assert 0.4 * RATE < gap < 0.6 * RATE, gap / RATE
