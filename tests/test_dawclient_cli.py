"""``dawclient`` end to end: real PortAudio (ALSA file/null device), real server.

The client runs as a subprocess whose HOME holds an ``.asoundrc`` that makes
ALSA's default device a ``file`` plugin: what PortAudio plays is written to a
raw float32 file, and what it records is read from one, with no sound card.
For real-time playback the tests start a JACK server with its dummy driver and
the client plays through PortAudio's JACK host API.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
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
from dsp_core import Bus, EffectSpec, Send, three_band_eq
from dsp_core.immersive import ImmersiveRoute
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]
RATE = 48000
BLOCK = 1024
ROOT = Path(__file__).resolve().parents[1]


def music(seconds: float, f0: float = 220.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    tone = sum(np.sin(2 * np.pi * f * t + k) / (k + 1) for k, f in enumerate((f0, 1.5 * f0)))
    return (0.25 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t))).astype(np.float32)


class Studio:
    def __init__(self, app, config: ServerConfig, project_id: str, root: Path) -> None:
        self.app, self.config, self.project_id, self.root = app, config, project_id, root
        self.home = root / "home"
        self.home.mkdir()
        self.played = root / "played.raw"
        self.mic = root / "mic.raw"
        (self.home / ".asoundrc").write_text(
            f'pcm.!default {{ type file; slave.pcm "null"; file "{self.played}"; '
            f'infile "{self.mic}"; format "raw" }}\n')
        self.mic.write_bytes(b"")

    def token(self, role: Role = Role.EDITOR) -> str:
        return self.app[TOKENS].issue(self.project_id, role, "ana")

    async def edit(self, change) -> None:
        async with self.app[ROOMS].use(self.project_id) as room:
            await room.edit(change)

    async def document(self) -> dict:
        async with self.app[ROOMS].use(self.project_id) as room:
            return room.document.to_json()

    async def client(self, *args: str, token: str | None = None, env: dict | None = None,
                     stdin: int | None = None) -> asyncio.subprocess.Process:
        env = {**os.environ, "HOME": str(self.home), "PYTHONPATH": str(ROOT), **(env or {})}
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dawclient", self.config.base_url,
            "--project", self.project_id, "--token", token or self.token(),
            "--cache", str(self.root / "cache"), *args, env=env, stdin=stdin,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    async def run_client(self, *args: str, token: str | None = None) -> tuple[int, str, str]:
        proc = await self.client(*args, token=token)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode, out.decode(), err.decode()

    def played_audio(self) -> np.ndarray:
        return np.fromfile(self.played, dtype="<f4").reshape(-1, 2).T

    async def render(self, start: int, frames: int) -> np.ndarray:
        url = f"{self.config.base_url}/projects/{self.project_id}/render"
        params = {"start": start, "frames": frames, "token": self.token()}
        async with aiohttp.ClientSession() as http, http.get(url, params=params) as response:
            assert response.status == 200, await response.text()
            data, _ = sf.read(io.BytesIO(await response.read()), dtype="float32")
        return data.T


@pytest_asyncio.fixture
async def studio(tmp_path: Path):
    band, keys = tmp_path / "band.wav", tmp_path / "keys.flac"
    sf.write(band, np.stack([music(4.0), music(4.0, 330.0)], axis=1), RATE, subtype="FLOAT")
    sf.write(keys, music(3.0, 440.0), RATE, subtype="PCM_24")
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    session = Session(
        name="Desk",
        tracks=[
            Track("band", channels=2, clips=[Clip(str(band), 0, 4 * RATE, id="c0")],
                  gain_db=-2.0, pan=0.3, effects=three_band_eq(3.0, -2.0, 1.0),
                  sends=[Send("echo", -9.0)]),
            Track("keys", clips=[Clip(str(keys), 1000, 2 * RATE, offset=500, fade_in=300,
                                      id="c1")],
                  effects=[EffectSpec("compressor", {"threshold_db": -20.0, "ratio": 3.0})]),
            Track("vox"),
        ],
        buses=[Bus("echo", effects=[EffectSpec("delay", {"time_ms": 40.0, "feedback": 0.3})])],
    )
    async with running_server(config) as app:
        info = await import_session(app[STORE], session, assets=app[ASSETS])
        yield Studio(app, config, info.project_id, tmp_path)


async def test_the_client_plays_exactly_the_servers_offline_render(studio: Studio) -> None:
    await studio.edit(lambda d: d.update_transport(playing=True, position=0))
    code, out, err = await studio.run_client("--seconds", "1.5", "--block-size", str(BLOCK))
    assert code == 0, err
    assert "played 1.5" in out
    played = studio.played_audio()
    blocks = -(-int(1.5 * RATE) // BLOCK)
    assert played.shape[1] >= blocks * BLOCK
    reference = await studio.render(0, blocks * BLOCK)
    assert np.abs(reference).max() > 0.1
    np.testing.assert_array_equal(played[:, : blocks * BLOCK], reference)
    assert len(list((studio.root / "cache").rglob("*.*"))) == 2


async def test_the_client_monitors_the_immersive_mix_as_the_server_renders_it(
        studio: Studio) -> None:
    await studio.edit(lambda d: d.set_immersive("keys", ImmersiveRoute("object", azimuth=90.0)))
    await studio.edit(lambda d: d.update_transport(playing=True, position=0))
    code, out, err = await studio.run_client("--seconds", "1.5", "--block-size", str(BLOCK),
                                             "--monitor", "stereo")
    assert code == 0, err
    blocks = -(-int(1.5 * RATE) // BLOCK)
    played = studio.played_audio()[:, : blocks * BLOCK]
    url = f"{studio.config.base_url}/projects/{studio.project_id}/render/immersive"
    params = {"layout": "stereo", "frames": blocks * BLOCK, "token": studio.token()}
    async with aiohttp.ClientSession() as http, http.get(url, params=params) as response:
        assert response.status == 200, await response.text()
        reference = sf.read(io.BytesIO(await response.read()), dtype="float32")[0].T
    assert np.abs(reference).max() > 0.1
    np.testing.assert_allclose(played, reference, atol=2e-6)
    # the keys object sits at the left: the plain mix has it in the centre
    plain = await studio.render(0, blocks * BLOCK)
    assert not np.allclose(played, plain, atol=1e-3)


async def test_the_client_follows_the_transport_from_stopped_to_playing(studio: Studio
                                                                        ) -> None:
    proc = await studio.client("--seconds", "0.5")
    await eventually(lambda: studio.played.exists() and studio.played.stat().st_size > 0,
                     timeout=30)
    await asyncio.sleep(0.3)
    assert np.abs(studio.played_audio()).max() == 0.0
    await studio.edit(lambda d: d.update_transport(playing=True, position=2 * BLOCK))
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    played = studio.played_audio()
    first = int(np.argmax(np.abs(played).max(axis=0) > 0))
    assert first % BLOCK == 0
    heard = played[:, first:first + 24 * BLOCK]
    np.testing.assert_array_equal(heard, await studio.render(2 * BLOCK, heard.shape[1]))


def latency_frames(out: str) -> int:
    """The take compensation the client printed (input + output latency), in frames."""
    found = re.search(r"takes placed (\d+) frames early: input [\d.]+ ms \+ output", out)
    assert found, out
    return int(found[1])


async def test_the_client_records_a_take_into_the_armed_track(studio: Studio) -> None:
    t = np.arange(2 * RATE) / RATE
    (0.5 * np.sin(2 * np.pi * 1000 * t)).astype("<f4").tofile(studio.mic)
    keys = hashlib.sha256((studio.root / "keys.flac").read_bytes()).hexdigest()  # its asset id
    await studio.edit(lambda d: d.add_clip("vox", Clip(keys, 0, 2 * RATE, id="old")))
    await studio.edit(lambda d: d.update_track("vox", arm=True))
    await studio.edit(lambda d: d.update_transport(playing=True, position=RATE,
                                                   recording=True))
    code, out, err = await studio.run_client("--record", "--seconds", "1.0")
    assert code == 0, err
    assert "takes: 1 clip(s)" in out
    # The take is placed earlier by the stream's input + output latency. ALSA's file
    # device reports its buffer (two 1024-frame periods) each way.
    early = latency_frames(out)
    assert early == 4 * BLOCK
    clips = [c for c in (await studio.document())["clips"].values() if c["track"] == "vox"]
    blocks = -(-RATE // BLOCK)
    old = next(c for c in clips if c["id"] == "old")
    assert (old["position"], old["length"]) == (0, RATE - early)  # cut short by the take
    clip = next(c for c in clips if c["source"] != keys)
    assert (clip["position"], clip["length"]) == (RATE - early, blocks * BLOCK)
    [rest] = [c for c in clips if c["source"] == keys and c["id"] != "old"]  # after the take
    assert rest["position"] == RATE - early + blocks * BLOCK == rest["offset"]
    take, rate = sf.read(studio.app[ASSETS].asset(clip["source"]).path, dtype="float32")
    np.testing.assert_array_equal(take, np.fromfile(studio.mic, "<f4")[: blocks * BLOCK])
    assert not list((studio.root / "cache").rglob("take-*.wav"))  # the server holds it now
    await studio.edit(lambda d: [d.update_track(t, mute=True) for t in ("band", "keys")])
    mix = await studio.render(RATE - early, blocks * BLOCK)
    spectrum = np.abs(np.fft.rfft(mix[0]))
    assert abs(np.argmax(spectrum) * RATE / mix.shape[1] - 1000.0) < 2.0


async def test_a_take_recorded_over_a_loop_is_placed_pass_by_pass(studio: Studio) -> None:
    # the take was laid out straight from its start, running past the loop's end and
    # cutting away the verse after it, which nobody recorded over
    (0.5 * np.sin(2 * np.pi * 1000 * np.arange(3 * RATE) / RATE)).astype("<f4").tofile(
        studio.mic)
    keys = hashlib.sha256((studio.root / "keys.flac").read_bytes()).hexdigest()
    await studio.edit(lambda d: d.add_clip("vox", Clip(keys, 3 * RATE, 2 * RATE,
                                                       id="verse")))
    await studio.edit(lambda d: d.update_track("vox", arm=True))
    await studio.edit(lambda d: d.update_transport(loop_start=RATE, loop_end=2 * RATE,
                                                   loop_enabled=True, playing=True,
                                                   position=RATE, recording=True))
    code, out, err = await studio.run_client("--record", "--seconds", "2.5")
    assert code == 0, err
    clips = [c for c in (await studio.document())["clips"].values() if c["track"] == "vox"]
    assert [(c["position"], c["length"]) for c in clips if c["id"] == "verse"] == [
        (3 * RATE, 2 * RATE)]
    passes = sorted((c for c in clips if c["source"] != keys), key=lambda c: c["position"])
    early = latency_frames(out)
    # the first pass's start (heard before the loop's start, the input's latency), the
    # third pass over the second's start, the second's end up to the loop's end
    first, third, second = passes
    assert (first["position"], first["offset"], first["length"]) == (RATE - early, 0, early)
    assert (third["position"], third["offset"]) == (RATE, 2 * RATE + early)
    assert second["position"] == third["position"] + third["length"]
    assert second["offset"] == second["position"] + early  # one loop on from the first
    assert second["position"] + second["length"] == 2 * RATE


async def test_a_refused_take_is_kept_in_the_cache_and_the_client_fails(
        studio: Studio) -> None:
    # the server's upload limit stands here for a take longer than its 512 MiB: the take
    # was logged and dropped, and the client still exited 0
    (0.5 * np.sin(2 * np.pi * 1000 * np.arange(2 * RATE) / RATE)).astype("<f4").tofile(
        studio.mic)
    studio.app[ASSETS].max_bytes = 100_000
    await studio.edit(lambda d: d.update_track("vox", arm=True))
    await studio.edit(lambda d: d.update_transport(playing=True, position=RATE,
                                                   recording=True))
    code, out, err = await studio.run_client("--record", "--seconds", "1.0")
    assert code == 1 and "HTTP 413" in err and "Traceback" not in err, err
    [kept] = (studio.root / "cache").rglob("take-*.wav")
    assert str(kept) in err
    take, rate = sf.read(kept, dtype="float32")
    assert rate == RATE and len(take) >= RATE
    np.testing.assert_array_equal(take, np.fromfile(studio.mic, "<f4")[: len(take)])


async def test_a_bad_token_is_one_clear_line_and_exit_status_1(studio: Studio) -> None:
    code, out, err = await studio.run_client("--seconds", "0.1", token="forged")
    assert code == 1
    assert err.startswith("error: ") and "token" in err and "Traceback" not in err


@pytest.mark.parametrize("command", [["dawclient"], ["dawserver", "client"]])
async def test_list_devices_shows_portaudio_devices_under_either_command(
        studio: Studio, command: list[str]) -> None:
    env = {**os.environ, "HOME": str(studio.home), "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", *command, "--list-devices", env=env,
        stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0 and "default" in out.decode()


@pytest.fixture
def jack_server():
    """A JACK server with the dummy driver (real-time pacing, no sound card); its name."""
    if shutil.which("jackd") is None or shutil.which("jack_wait") is None:
        pytest.fail("jackd is not installed: run scripts/setup.sh (package jackd2)")
    name = f"daw-test-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r",
                             str(RATE), "-p", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        subprocess.run(["jack_wait", "-s", name, "-w", "-t", "10"], check=True,
                       capture_output=True, timeout=15)
        yield name
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_in_real_time_the_client_follows_live_edits_and_new_audio(
        studio: Studio, jack_server: str) -> None:
    tone = studio.root / "tone.wav"
    t = np.arange(4 * RATE) / RATE
    sf.write(tone, (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), RATE,
             subtype="FLOAT")
    await studio.edit(lambda d: [d.update_track(x, mute=True) for x in ("keys",)])
    await studio.edit(lambda d: d.update_transport(playing=True, position=0))
    saved = studio.root / "heard.wav"
    proc = await studio.client("--seconds", "3", "--device", "system", "--save", str(saved),
                               env={"JACK_DEFAULT_SERVER": jack_server})
    await eventually(lambda: saved.exists() and saved.stat().st_size > RATE * 8 // 4,
                     timeout=30)
    headers = {"Authorization": f"Bearer {studio.token()}"}
    url = f"{studio.config.base_url}/projects/{studio.project_id}/assets"
    async with aiohttp.ClientSession() as http, http.post(
            url, data=tone.read_bytes(), headers=headers) as response:
        assert response.status == 201
        source = (await response.json())["source"]
    await studio.edit(lambda d: [d.update_track("band", mute=True),
                                 d.add_clip("vox", Clip(source, 0, 4 * RATE))])
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    heard, _ = sf.read(saved, dtype="float32")
    assert len(heard) >= 3 * RATE

    def level_at(audio: np.ndarray, hz: float) -> float:
        spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
        return float(spectrum[int(round(hz * len(audio) / RATE))] / len(audio))

    start, end = heard[: RATE // 4, 0], heard[-RATE // 4:, 0]
    assert level_at(start, 220.0) > 10 * level_at(start, 1000.0)
    assert level_at(end, 1000.0) > 100 * level_at(end, 220.0)
    assert len(list((studio.root / "cache").rglob("*.audio"))) == 3  # band, keys, the tone


async def test_ctrl_c_while_recording_keeps_the_take(studio: Studio) -> None:
    (0.25 * np.ones(10 * RATE)).astype("<f4").tofile(studio.mic)
    await studio.edit(lambda d: d.update_track("vox", arm=True))
    await studio.edit(lambda d: d.update_transport(playing=True, position=0, recording=True))
    started = asyncio.get_running_loop().time()
    proc = await studio.client("--record")
    await eventually(lambda: studio.played.exists() and studio.played.stat().st_size > RATE * 8,
                     timeout=30)
    proc.send_signal(signal.SIGINT)
    elapsed = asyncio.get_running_loop().time() - started
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert "takes: 1 clip(s)" in out.decode()
    played = studio.played.stat().st_size // 8
    clips = [c for c in (await studio.document())["clips"].values() if c["track"] == "vox"]
    # It started at 0: the latency's worth of its start lies before the timeline, dropped.
    assert len(clips) == 1 and clips[0]["position"] == 0
    early = latency_frames(out.decode())
    assert RATE - early <= clips[0]["length"] <= played - early
    assert played < (elapsed + 1.0) * RATE  # an unclocked device is paced, not flooded
    take, _ = sf.read(studio.app[ASSETS].asset(clips[0]["source"]).path, dtype="float32")
    assert np.all(take == np.float32(0.25))


async def test_fader_moves_while_playing_write_touch_automation_the_server_plays(
        studio: Studio) -> None:
    await studio.edit(lambda d: (d.set_automation_mode("keys", "gain_db", "touch"),
                                 d.update_transport(playing=True, position=0)))
    proc = await studio.client("--seconds", "2.5", "--controls", stdin=subprocess.PIPE)
    await eventually(lambda: studio.played.exists() and studio.played.stat().st_size > 0,
                     timeout=30)
    await asyncio.sleep(0.4)
    for db in (-3.0, -9.0, -15.0, -21.0, -27.0):
        proc.stdin.write(f"keys gain_db {db} hold\n".encode())
        await proc.stdin.drain()
        await asyncio.sleep(0.06)
    proc.stdin.write(b"keys gain_db -27 release\nkeys pan 2 nonsense\n")
    await proc.stdin.drain()
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert "expected 'TRACK PARAM VALUE [hold|release]'" in err.decode()
    lane = (await studio.document())["tracks"]["keys"]["automation"]["gain_db"]
    points = sorted(((p["frame"], k, p["value"]) for k, p in lane["points"].items()))
    assert points and all(k.startswith("d") for _, k, _ in points)
    anchor, back = points[0], points[-1]
    assert anchor[1].endswith(".a") and back[1].endswith(".c") and back[2] == anchor[2] == 0.0
    assert min(v for _, _, v in points) == -27.0 and back[0] - points[-2][0] == RATE // 4
    assert 0 < anchor[0] < back[0] < int(2.5 * RATE) + RATE // 4
    # the server's mix plays the written lane: the keys 27 dB down at the release (the keys'
    # compressor comes before the fader; the live engine keeps its state between renders,
    # settled a second in)
    release, length = int(points[-2][0]), int(back[0]) + 100
    await studio.edit(lambda d: d.update_track("band", solo=False, mute=True))
    await studio.render(0, 4800)  # the server's engine glides the band out first
    wet = await studio.render(0, length)
    await studio.edit(lambda d: d.set_automation_mode("keys", "gain_db", "off"))
    await studio.render(0, 4800)  # the server's engine glides to the static fader first
    dry = await studio.render(0, length)
    np.testing.assert_allclose(wet[:, release], dry[:, release] * 10 ** (-27 / 20), rtol=1e-4)
