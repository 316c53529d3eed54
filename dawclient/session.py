"""The desktop client session: sync the document, render locally, play, record takes.

:class:`DesktopClient` joins ``ws://HOST/collab/PROJECT`` with the same Yjs
protocol as the browser (:class:`collab.client.SyncClient`, pycrdt), builds a
local ``dsp_core`` engine from the synced document (audio downloaded once,
see :mod:`.sources`), and plays it through :class:`.player.Player`.  Every
document change reaches the player (fader moves glide, transport
play/stop/seek/loop is followed).  A recorded take is uploaded
(``POST /projects/{id}/assets``) and placed as a clip on the armed tracks by
an edit of the local document, which syncs to everyone like any other edit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
import soundfile as sf

from collab.client import SyncClient
from collab.schema import ProjectDocument
from collab.takes import loop_passes, place_passes
from dsp_core.playhead import Playhead
from dsp_core.session import Session

from .channel import connect
from .controls import ControlError, Controls, parse_move
from .immersive_controls import apply_route_line, is_route_line
from .live_midi import LiveMidi, write_notes
from .midi_input import MidiInput, MidiInputError, watch
from .player import Player, StreamSettings, Take
from .sources import SourceCache

log = logging.getLogger(__name__)


class ClientError(Exception):
    """Something the user must fix (bad URL, token, device...); one clear message."""


@dataclass
class ClientOptions:
    """Everything :class:`DesktopClient` needs."""

    base_url: str
    project_id: str
    token: str
    stream: StreamSettings = field(default_factory=StreamSettings)
    track: str | None = None
    seconds: float | None = None
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "dawclient")
    backend: str | None = None
    #: Read fader moves from standard input (:mod:`.controls`): static values, and
    #: automation while playing in touch/latch/write.
    controls: bool = False
    #: Play and record from this MIDI input port (index or part of its name) into the
    #: selected MIDI track (``track``, else the first track with an instrument).
    midi_in: str | None = None
    #: RtMidi's API for ``midi_in``: ``alsa``, ``jack`` or None (its default).
    midi_api: str | None = None
    #: What is played: ``mix`` (the stereo mix) or the immersive mix, ``binaural`` for
    #: headphones or folded to ``stereo`` (dsp_core.immersive_live, docs/immersive.md).
    monitor: str = "mix"


@dataclass
class ClientReport:
    """What a session did."""

    frames_played: int = 0
    blocks_written: int = 0
    underflows: int = 0
    clips: list[str] = field(default_factory=list)
    sample_rate: int = 0
    #: PortAudio's (input, output) latency in seconds when recording; takes are placed
    #: their sum earlier.
    latency: tuple[float, float] | None = None
    #: Notes recorded from the MIDI input, and each note-on's latency in seconds from
    #: its arrival to its first audible sample rendered.
    midi_notes: int = 0
    midi_latency: list[float] = field(default_factory=list)


def armed_tracks(document: ProjectDocument, only: str | None = None) -> list[str]:
    """Ids of the armed tracks (just ``only`` when given and armed)."""
    armed = [t for t in document.track_ids() if document.track(t).get("arm")]
    return [t for t in armed if t == only] if only else armed


class DesktopClient:
    """One desktop client session (``await DesktopClient(options).run()``)."""

    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        base = options.base_url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ClientError(f"server URL {options.base_url!r} must start with http:// or "
                              "https://")
        self.base_url = base
        self.ws_url = f"{base.replace('http', 'ws', 1)}/collab/{options.project_id}"
        self.cache = SourceCache(base, options.project_id, options.token,
                                 Path(options.cache_dir) / options.project_id)
        self.report = ClientReport()
        self._uploads: set[asyncio.Task] = set()
        self._live: LiveMidi | None = None
        self._midi_port: MidiInput | None = None
        self._midi_clip: str | None = None

    async def run(self) -> ClientReport:
        """Join, play until ``seconds`` were played or Ctrl-C/SIGTERM, then leave.

        A take being recorded when the client is stopped is kept (uploaded and placed).
        """
        try:
            async with connect(self.ws_url, self.options.token) as channel, \
                    SyncClient(channel) as sync, aiohttp.ClientSession() as http:
                await self._wait_synced(sync)
                await self._play(sync, http)
        except aiohttp.ClientResponseError as exc:
            raise ClientError(f"the server refused the connection: HTTP {exc.status} "
                              f"{exc.message} (check --project and --token)") from None
        except aiohttp.ClientConnectionError as exc:
            raise ClientError(f"cannot reach {self.base_url}: {exc}") from None
        return self.report

    async def _wait_synced(self, sync: SyncClient) -> None:
        waiter = asyncio.create_task(sync.synced.wait())
        closed = asyncio.create_task(sync.closed.wait())
        done, _ = await asyncio.wait({waiter, closed}, timeout=15.0,
                                     return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        closed.cancel()
        if not sync.synced.is_set():
            code = getattr(sync.channel, "close_code", None)
            raise ClientError(f"the server closed the session (code {code}); check --project "
                              "and --token" if code else "no answer from the server in 15 s")

    async def _play(self, sync: SyncClient, http: aiohttp.ClientSession) -> None:
        from dsp_core.engine import Engine
        from dsp_core.immersive_live import ImmersiveLiveEngine

        loop = asyncio.get_running_loop()
        document = sync.document
        session = document.to_session()
        await self.cache.fetch(session, http)
        o = self.options
        engine = await loop.run_in_executor(None, lambda: Engine(
            session, block_size=o.stream.block_size, backend=o.backend,
            loader=self.cache.loader) if o.monitor == "mix" else ImmersiveLiveEngine(
            session, monitor=o.monitor, block_size=o.stream.block_size, backend=o.backend,
            loader=self.cache.loader))
        playhead = Playhead(session.sample_rate, session.sample_rate)
        playhead.follow(document.transport())
        self.report.sample_rate = session.sample_rate
        finished: asyncio.Future = loop.create_future()

        def finish(error: BaseException | None) -> None:
            loop.call_soon_threadsafe(lambda: finished.done() or finished.set_result(error))

        def take_ready(take: Take) -> None:
            loop.call_soon_threadsafe(self._keep_take_soon, take, document, http)

        stop_after = None if o.seconds is None else int(round(o.seconds * session.sample_rate))
        live = self._live = self._live_midi(session, playhead) if o.midi_in else None
        player = Player(engine, playhead, o.stream, armed=armed_tracks(document, o.track),
                        on_take=take_ready, stop_after=stop_after, on_finish=finish,
                        live=live)
        midi_port = None
        if live is not None:
            try:
                midi_port = self._midi_port = MidiInput(
                    o.midi_in or "", live.message, o.midi_api, on_close=live.panic).open()
            except MidiInputError as exc:
                raise ClientError(str(exc)) from None
        changed = asyncio.Event()
        subscription = sync.doc.observe(lambda _event: loop.call_soon_threadsafe(changed.set))
        controls = Controls(document, lambda: player.playhead.to_session(
            player.playhead.position)) if o.controls else None
        follower = asyncio.create_task(self._follow(document, http, player, changed, session,
                                                    controls))
        player.start()
        reader = asyncio.create_task(self._read_controls(controls)) if controls else None
        writer = asyncio.create_task(self._write_midi(document)) if live else None
        # a port that goes away lets its notes go (on_close), and is opened when back
        watcher = asyncio.create_task(watch(midi_port)) if midi_port is not None else None
        stoppers = []
        for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C: finish the take, then leave
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, player.stop)
                stoppers.append(signum)
        try:
            error = await finished
        finally:
            for signum in stoppers:
                loop.remove_signal_handler(signum)
            player.stop()
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if midi_port is not None:
                midi_port.close()  # (on_close: the notes still held are let go)
            await loop.run_in_executor(None, player.join)
            for task in (follower, reader, writer):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if controls is not None:
                controls.stop()
                await self._confirm_points(http, controls)
            sync.doc.unobserve(subscription)
        if live is not None:
            live.finish()
            self._keep_midi(document)
            self.report.midi_latency = [n.rendered - n.arrived for n in live.latencies]
            await self._confirm_midi(http, document)
        self.report.frames_played = player.frames_played
        self.report.blocks_written = player.blocks_written
        self.report.underflows = player.underflows
        self.report.latency = player.latency
        if self._uploads:  # every one ends (its take kept) before the first error is told
            failed = [r for r in await asyncio.gather(*self._uploads, return_exceptions=True)
                      if isinstance(r, BaseException)]
            if failed:
                raise failed[0]
        if error is not None:
            raise ClientError(f"audio device: {error}") from error

    async def _follow(self, document: ProjectDocument, http: aiohttp.ClientSession,
                      player: Player, changed: asyncio.Event, session: Session,
                      controls: Controls | None = None) -> None:
        last = session
        while True:
            await changed.wait()
            changed.clear()
            player.update(transport=document.transport(),
                          armed=armed_tracks(document, self.options.track))
            if controls is not None:
                controls.transport_changed()
            started = time.perf_counter()
            session = document.to_session()
            took = time.perf_counter() - started
            if session != last:
                await self.cache.fetch(session, http)
                last = session
                player.update(session=session)
                if self._live is not None:
                    self._live.follow(session)
            # a burst of edits (a fader drag) coalesces; big projects convert slowly
            await asyncio.sleep(min(0.5, max(0.02, 2 * took)))

    def _live_midi(self, session: Session, playhead: Playhead) -> LiveMidi:
        """The keyboard's path into the selected MIDI track (ClientError when none)."""
        o = self.options
        tracks = [t for t in session.tracks if t.instrument is not None
                  and (o.track is None or t.id == o.track)]
        if not tracks:
            which = f"track {o.track!r} has" if o.track else "no track has"
            raise ClientError(f"--midi-in plays a MIDI track, but {which} an instrument "
                              "(give one: PUT /projects/{id}/tracks/{track}/instrument)")
        track = tracks[0]
        assert track.instrument is not None
        return LiveMidi(track.id, track.instrument, playhead.render_rate,
                        o.stream.block_size, playhead.to_session, o.backend,
                        self.cache.loader)

    def _keep_midi(self, document: ProjectDocument) -> None:
        """Write the notes finished since the last call into the shared document."""
        live = self._live
        notes = live.take_notes() if live is not None else []
        if live is not None and notes:
            self._midi_clip = write_notes(document, live.track_id, notes, self._midi_clip)
            self.report.midi_notes += len(notes)
            log.info("%d MIDI note(s) recorded into %s", len(notes), self._midi_clip)

    async def _write_midi(self, document: ProjectDocument) -> None:
        while True:
            self._keep_midi(document)
            await asyncio.sleep(0.1)

    async def _confirm_midi(self, http: aiohttp.ClientSession,
                            document: ProjectDocument) -> None:
        """Wait until the server's document holds the recorded clip's notes."""
        if self._midi_clip is None:
            return
        wanted = set(document.notes(self._midi_clip))
        url = f"{self.base_url}/projects/{self.options.project_id}"
        headers = {"Authorization": f"Bearer {self.options.token}"}
        for _ in range(100):
            async with http.get(url, headers=headers) as response:
                if response.status == 200:
                    clips = (await response.json())["document"].get("midi_clips") or {}
                    stored = (clips.get(self._midi_clip) or {}).get("notes") or {}
                    if wanted <= set(stored):
                        return
            await asyncio.sleep(0.05)
        log.error("the server has not confirmed the recorded MIDI notes")

    async def _read_controls(self, controls: Controls) -> None:
        """Apply the control lines read from standard input, one per line."""
        import sys

        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            if not line.strip():
                continue
            text = line.decode(errors="replace")
            try:
                self._control_line(controls, text)
            except ControlError as exc:
                log.error("%s", exc)

    def _control_line(self, controls: Controls | None, text: str) -> None:
        """One control line: ``panic``, ``midi-in PORT``, an immersive route or a move
        (:class:`ControlError` says what was wrong)."""
        words = text.split()
        if words[:1] in (["panic"], ["midi-in"]):
            self._midi_line(text)
        elif controls is None:
            raise ControlError(f"control line {text.strip()!r}: no controls (give --controls)")
        elif is_route_line(text):
            apply_route_line(controls.document, text)
        else:
            controls.move(parse_move(text))

    def _midi_line(self, text: str) -> None:
        """``panic``: let every live note go; ``midi-in PORT``: play from another MIDI
        input (the notes held on the one closed are let go; one that does not open yet
        is opened when it appears)."""
        if self._live is None:
            raise ControlError(f"control line {text.strip()!r}: no MIDI input (give "
                               "--midi-in)")
        verb, _, port = text.strip().partition(" ")
        port = port.strip()  # a port's name may hold spaces ("USB Keyboard")
        if verb == "panic" and not port:
            self._live.panic()
            log.info("panic: every note of the MIDI input let go")
        elif verb == "midi-in" and port and self._midi_port is not None:
            try:
                self._midi_port.switch(port)
            except MidiInputError as exc:
                raise ControlError(f"control line {text.strip()!r}: {exc}") from None
        else:
            raise ControlError(f"control line {text.strip()!r}: expected 'panic' or "
                               "'midi-in PORT' (an index or part of a port's name)")

    async def _confirm_points(self, http: aiohttp.ClientSession, controls: Controls) -> None:
        """Wait until the server's document holds the points the passes wrote."""
        wanted = set().union(*controls.written.values()) if controls.written else set()
        if not wanted:
            return
        url = f"{self.base_url}/projects/{self.options.project_id}"
        headers = {"Authorization": f"Bearer {self.options.token}"}
        for _ in range(100):
            async with http.get(url, headers=headers) as response:
                if response.status == 200:
                    tracks = (await response.json())["document"]["tracks"]
                    stored = {point for track in tracks.values()
                              for lane in (track.get("automation") or {}).values()
                              for point in lane.get("points", {})}
                    if wanted <= stored:
                        return
            await asyncio.sleep(0.05)
        log.error("the server has not confirmed %d automation points", len(wanted))

    def _keep_take_soon(self, take: Take, document: ProjectDocument,
                        http: aiohttp.ClientSession) -> None:
        task = asyncio.create_task(self._keep_take(take, document, http))
        self._uploads.add(task)

    def _save_take(self, audio: np.ndarray, sample_rate: int) -> Path:
        """The take written to a file of its own in the cache first: the only copy of a
        performance must outlive a refused or failed upload."""
        folder = Path(self.options.cache_dir) / self.options.project_id / "takes"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        handle, name = tempfile.mkstemp(dir=folder, prefix=f"take-{stamp}-", suffix=".wav")
        with os.fdopen(handle, "wb") as out:
            sf.write(out, audio, sample_rate, format="WAV", subtype="FLOAT")
        return Path(name)

    async def _keep_take(self, take: Take, document: ProjectDocument,
                         http: aiohttp.ClientSession) -> None:
        """Upload a take and place it on its tracks through the shared document.

        The take is saved in the cache first and removed once the server holds it; a
        refused or failed upload raises :class:`ClientError` naming the saved file.
        """
        audio = take.audio
        saved = await asyncio.to_thread(self._save_take, audio, take.sample_rate)
        url = f"{self.base_url}/projects/{self.options.project_id}/assets"
        headers = {"Authorization": f"Bearer {self.options.token}",
                   "Content-Type": "audio/wav"}
        try:
            async with http.post(url, data=saved.read_bytes(), headers=headers,
                                 params={"name": "take.wav"}) as response:
                body = await response.json(content_type=None)
        except aiohttp.ClientError as exc:
            raise ClientError(f"take upload failed ({exc}); the take is kept in {saved}"
                              ) from None
        if response.status != 201:
            why = body.get("error", body) if isinstance(body, dict) else body
            raise ClientError(f"take upload refused: HTTP {response.status} {why}; the take "
                              f"is kept in {saved}")
        clips = []
        passes = loop_passes(take.position, len(audio), take.loop)  # a clip per loop pass
        with document.transaction():
            for track in take.tracks:
                if track in document.track_ids():
                    clips.extend(place_passes(document, track, body["source"], passes))
        self.report.clips.extend(clips)
        log.info("take of %d frames at %d added as %s", len(audio), take.position, clips)
        if await self._confirm(http, clips):
            saved.unlink(missing_ok=True)

    async def _confirm(self, http: aiohttp.ClientSession, clips: list[str]) -> bool:
        """Wait until the server's document holds ``clips`` (so leaving loses nothing);
        whether it does."""
        url = f"{self.base_url}/projects/{self.options.project_id}"
        headers = {"Authorization": f"Bearer {self.options.token}"}
        for _ in range(100):
            async with http.get(url, headers=headers) as response:
                if response.status == 200:
                    stored = (await response.json())["document"]["clips"]
                    if all(c in stored for c in clips):
                        return True
            await asyncio.sleep(0.05)
        log.error("the server has not confirmed clips %s", clips)
        return False
