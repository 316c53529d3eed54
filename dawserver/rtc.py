"""WebRTC (aiortc): ``POST /projects/{id}/rtc`` signalling, the live mix out, takes in.

One offer/answer exchange over HTTP opens a peer connection.  The server
sends the project's live mix (:mod:`dawserver.live_mix`) as an Opus track
from the moment the connection is up (silence while the transport is
stopped).  An audio track the client sends is read by a
:class:`dawserver.recording.TakeRecorder` (editor role) and recorded into the
armed tracks while the transport records.  Only host candidates are
gathered: loopback and LAN, no STUN/TURN.

Access follows the member's role live (:meth:`RtcService.member_changed`): a
revoked member's connections are closed at once, and one lowered to viewer
keeps hearing the mix but is no longer recorded.

Request body: ``{"sdp": ..., "type": "offer"}`` and optionally ``"track"``
(record into this armed track only), ``"latency_ms"`` (the client's
round trip, subtracted from a take's position) and ``"monitor"``: ``"mix"`` (the
stereo mix, default), ``"binaural"`` or ``"stereo"`` (the immersive mix for headphones,
or folded to two loudspeakers; docs/immersive.md).  The answer names the connection;
``PATCH /projects/{id}/rtc/{connection}`` with ``{"latency_ms": ...}`` declares the
round trip again once the client has measured it on this very connection: every take
that ends from then on (the one under way included) starts that much earlier.
"""

from __future__ import annotations

import asyncio
import fractions
import functools
import logging
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Literal

from aiohttp import web
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidAccessError, OperationError
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, Packet
from pydantic import Field, field_validator

from collab.errors import CapacityError, ProjectBusy, ProjectNotFound
from collab.protocol import CloseCode
from collab.tokens import Grant, Role
from dsp_core.errors import DspError

from .access import AccessDenied, on_member_change
from .assets import assets_of
from .clip_sources import Resolver
from .keys import ROOMS
from .live_mix import STEREO_MIX, Listener, LiveMix, LiveMixes
from .lv2_faults import LV2_FAULTS
from .opus import packet as opus_packet
from .permissions import PROJECT_READ
from .plugin_api import (
    BadRequest,
    Conflict,
    Forbidden,
    Model,
    NotFound,
    Request,
    Route,
    Unavailable,
    Unprocessable,
)
from .recording import TakeRecorder

log = logging.getLogger(__name__)

TIME_BASE = fractions.Fraction(1, 48000)
#: What aiortc raises on an offer it cannot use: its SDP parser on bad lines, and
#: ``setRemoteDescription`` on an offer missing what it needs (``a=setup``, codecs).
UNUSABLE_OFFER = (ValueError, LookupError, AttributeError, TypeError, InvalidAccessError,
                  OperationError)


class MixTrack(MediaStreamTrack):
    """An outgoing audio track fed by one :class:`Listener` of a live mix."""

    kind = "audio"

    def __init__(self, mix: LiveMix, listener: Listener, *, packets: bool = False) -> None:
        super().__init__()
        self.mix = mix
        self.listener = listener
        self.packets = packets  # the peer speaks Opus: send the mix's shared packets
        self.first_index: int | None = None  # the mix frame this track began with

    async def recv(self) -> AudioFrame | Packet:
        """The next 20 ms of the mix: its Opus packet, or an s16 stereo frame to encode."""
        if self.readyState != "live":
            raise MediaStreamError
        try:
            mixed = await self.listener.get()
        except ConnectionError:
            self.stop()
            raise MediaStreamError from None
        if self.first_index is None:
            self.first_index = mixed.index
        if self.packets and mixed.opus is not None:
            return opus_packet(mixed.opus, mixed.index)
        frame = AudioFrame.from_ndarray(mixed.pcm.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = self.mix.sample_rate
        frame.pts = mixed.index * self.mix.frame
        frame.time_base = TIME_BASE
        return frame


@dataclass(eq=False)
class Connection:
    """One peer connection and what it holds."""

    project_id: str
    grant: Grant
    pc: RTCPeerConnection
    mix: LiveMix
    listener: Listener
    tasks: set[asyncio.Task] = field(default_factory=set)
    recorders: list[TakeRecorder] = field(default_factory=list)
    closed: bool = False
    monitor: str = STEREO_MIX
    latency_ms: float = 0.0  # the round trip the client declared; takes start this early
    id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    deadline: asyncio.Task | None = None  # closes it unless it connects in time

    def declare_latency(self, latency_ms: float) -> None:
        """Place the takes its recorders finish from now on ``latency_ms`` earlier."""
        self.latency_ms = latency_ms
        for recorder in self.recorders:
            recorder.latency_frames = latency_frames(latency_ms, self.mix)


def latency_frames(latency_ms: float, mix: LiveMix) -> int:
    """``latency_ms`` in frames of the project's session rate (take positions)."""
    return int(round(latency_ms * mix.playhead.session_rate / 1000))


@dataclass(eq=False)
class Opening:
    """An offer being answered: the member's grant as it changes meanwhile, and what
    refuses it (a revoke, the project's deletion) before it opens."""

    project_id: str
    grant: Grant
    refused: Exception | None = None


#: Seconds a new connection has to connect before it is closed: ICE waits for good for
#: candidates an offer never sent (a trickle-ICE offer, or a crafted one), and meanwhile
#: the connection holds its sockets and keeps the project's live mix rendering.
CONNECT_TIMEOUT_S = 30.0


class RtcService:
    """Every WebRTC connection of a server and the live mixes they listen to."""

    def __init__(self, app: web.Application, *,
                 connect_timeout: float = CONNECT_TIMEOUT_S) -> None:
        self.app = app
        self.connect_timeout = connect_timeout
        self._mixes: LiveMixes | None = None
        self.connections: set[Connection] = set()
        self.openings: set[Opening] = set()  # offers being answered

    @property
    def mixes(self) -> LiveMixes:
        """The live mixes (made on first use: the room registry starts with the app)."""
        if self._mixes is None:
            self._mixes = LiveMixes(self.app[ROOMS], resolver=Resolver(self.app).source,
                                    stores=functools.partial(assets_of, self.app),
                                    on_plugins=self._plugins_changed)
        return self._mixes

    def _plugins_changed(self, project_id: str) -> None:
        faults = self.app.get(LV2_FAULTS)
        if faults is not None:
            faults.changed(project_id)

    async def connect(self, project_id: str, grant: Grant, offer: RTCSessionDescription, *,
                      target_track: str | None = None, latency_ms: float = 0.0,
                      monitor: str = STEREO_MIX) -> tuple[Connection, RTCSessionDescription]:
        """Open a connection for ``offer``; returns it and the answer.

        A revoke of the member (AccessDenied) or the project's deletion
        (ProjectNotFound) while the offer is answered refuses it; a role change applies.
        """
        opening = Opening(project_id, grant)
        self.openings.add(opening)
        try:
            return await self._open(opening, offer, target_track=target_track,
                                    latency_ms=latency_ms, monitor=monitor)
        finally:
            self.openings.discard(opening)

    async def _open(self, opening: Opening, offer: RTCSessionDescription, *,
                    target_track: str | None, latency_ms: float,
                    monitor: str) -> tuple[Connection, RTCSessionDescription]:
        project_id = opening.project_id
        assets = await assets_of(self.app, project_id)
        mix = await self.mixes.acquire(project_id, monitor)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        conn = Connection(project_id, opening.grant, pc, mix, mix.add_listener(),
                          monitor=monitor, latency_ms=latency_ms)
        self.connections.add(conn)

        @pc.on("track")
        def on_track(track) -> None:
            if track.kind != "audio":
                return
            recorder = TakeRecorder(mix, track, assets, user=conn.grant.user,
                                    allowed=lambda: conn.grant.role.can_edit,
                                    target_track=target_track,
                                    latency_frames=latency_frames(conn.latency_ms, mix))
            conn.recorders.append(recorder)
            task = asyncio.create_task(recorder.run(), name="rtc recorder")
            conn.tasks.add(task)
            task.add_done_callback(conn.tasks.discard)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close(conn)

        try:
            try:
                await pc.setRemoteDescription(offer)
            except UNUSABLE_OFFER as exc:
                raise ValueError(f"the SDP is malformed or incomplete ({exc})") from exc
            opus = "opus/48000" in offer.sdp.lower()
            sender = pc.addTrack(MixTrack(mix, conn.listener, packets=opus))
            if opus:  # the shared packets are Opus: make sure Opus is what is negotiated
                transceiver = next(t for t in pc.getTransceivers() if t.sender is sender)
                transceiver.setCodecPreferences(
                    [c for c in RTCRtpSender.getCapabilities("audio").codecs
                     if c.mimeType.lower() == "audio/opus"])
            await pc.setLocalDescription(await pc.createAnswer())
        except BaseException as exc:
            await self.close(conn)
            if opening.refused is not None and isinstance(exc, Exception):
                raise opening.refused from None  # closed by it: not a fault of the offer
            raise
        if opening.refused is not None:
            await self.close(conn)
            raise opening.refused
        conn.deadline = asyncio.create_task(self._close_unless_connected(conn),
                                            name="rtc connect deadline")
        return conn, pc.localDescription

    async def _close_unless_connected(self, conn: Connection) -> None:
        await asyncio.sleep(self.connect_timeout)
        if conn.pc.connectionState != "connected":
            log.info("WebRTC connection %s to %s did not connect in %.0f s (%s): closed",
                     conn.id, conn.project_id, self.connect_timeout, conn.pc.connectionState)
            await self.close(conn)

    def connection(self, project_id: str, connection_id: str, user: str) -> Connection:
        """``user``'s open connection ``connection_id`` to ``project_id``; LookupError if
        there is none (another member's connection is not told apart from a closed one)."""
        for conn in self.connections:
            if (conn.id == connection_id and conn.project_id == project_id
                    and conn.grant.user == user and not conn.closed):
                return conn
        raise LookupError(f"no open WebRTC connection {connection_id!r} of yours to this "
                          "project (closed, or never opened: send a new offer)")

    async def close(self, conn: Connection) -> None:
        """Close one connection: its peer connection, recorders and share of the mix."""
        if conn.closed:
            return
        conn.closed = True
        self.connections.discard(conn)
        if conn.deadline is not None and conn.deadline is not asyncio.current_task():
            conn.deadline.cancel()
        conn.mix.remove_listener(conn.listener)
        await conn.pc.close()
        if conn.tasks:
            await asyncio.gather(*conn.tasks, return_exceptions=True)
        await self.mixes.release(conn.project_id, conn.monitor)

    async def member_changed(self, project_id: str, user: str, role: Role | None) -> int:
        """Close (``role`` None: revoked) or re-role ``user``'s connections to ``project_id``.

        A connection whose new role cannot edit keeps hearing the mix, but its
        microphone is no longer recorded (a take under way ends there).
        Returns how many connections were closed or changed.
        """
        for opening in self.openings:
            if opening.project_id == project_id and opening.grant.user == user:
                if role is None:
                    opening.refused = AccessDenied(
                        f"{user!r} was revoked from this project while the offer was answered",
                        CloseCode.ROLE_REVOKED)
                else:
                    opening.grant = replace(opening.grant, role=role)
        matches = [conn for conn in self.connections
                   if conn.project_id == project_id and conn.grant.user == user]
        for conn in matches:
            if role is None:
                await self.close(conn)
            else:
                conn.grant = replace(conn.grant, role=role)  # its recorders read it
        return len(matches)

    async def close_project(self, project_id: str) -> int:
        """Close every connection to ``project_id`` (it was deleted); how many."""
        for opening in self.openings:
            if opening.project_id == project_id:
                opening.refused = ProjectNotFound(f"project {project_id!r} was deleted")
        matches = [conn for conn in self.connections if conn.project_id == project_id]
        for conn in matches:
            await self.close(conn)
        return len(matches)

    async def close_all(self) -> None:
        """Close every connection (server shutdown)."""
        for conn in list(self.connections):
            await self.close(conn)
        if self._mixes is not None:
            await self._mixes.close()


RTC = web.AppKey("rtc", RtcService)


def setup_rtc(app: web.Application) -> None:
    """Add the WebRTC service to ``app`` (its route: :data:`ROUTES`)."""
    app[RTC] = RtcService(app)
    on_member_change(app, app[RTC].member_changed)

    async def shutdown(app: web.Application) -> None:
        await app[RTC].close_all()

    app.on_shutdown.append(shutdown)


OFFER_HINT = 'send {"type": "offer", "sdp": "..."} from RTCPeerConnection.createOffer()'


#: The longest round trip a client may declare (ms): more is a unit mistake, not a network.
MAX_LATENCY_MS = 10_000.0


class Offer(Model):
    """An SDP offer; ``track``: record into this armed track only; ``latency_ms``: the
    client's round trip, subtracted from a take's position."""

    type: str
    sdp: str
    track: str | None = None
    latency_ms: float = Field(0.0, ge=0.0, le=MAX_LATENCY_MS)
    monitor: Literal["mix", "binaural", "stereo"] = STEREO_MIX

    @field_validator("type")
    @classmethod
    def _an_offer(cls, value: str) -> str:
        if value != "offer":
            raise ValueError(OFFER_HINT)
        return value


class Answer(Model):
    """The server's SDP answer, the connection's id (to declare its round trip again), and
    what the mix leaves out (clips or ``ir``s naming audio that is not one of the project's
    assets, with the reason)."""

    type: str
    sdp: str
    connection: str
    skipped: list[str] = []


class LatencyUpdate(Model):
    """The round trip (ms) a client measured on its connection once it settled."""

    latency_ms: float = Field(ge=0.0, le=MAX_LATENCY_MS)


class DeclaredLatency(Model):
    """The round trip a connection's next takes start earlier by."""

    connection: str
    latency_ms: float


async def rtc_offer(request: Request) -> Answer:
    """Open a WebRTC connection: an SDP offer in, the SDP answer out (any role).

    The connection carries the project's live mix; an editor's microphone track is
    recorded into the armed tracks while the transport records.
    """
    project_id, offer = request.params["project_id"], request.body
    grant = Grant(project_id, Role.parse(request.role), request.user, time.time())
    try:
        conn, answer = await request.app[RTC].connect(
            project_id, grant, RTCSessionDescription(sdp=offer.sdp, type="offer"),
            target_track=offer.track or None, latency_ms=offer.latency_ms,
            monitor=offer.monitor)
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None
    except AccessDenied as exc:  # revoked while its offer was answered
        raise Forbidden(str(exc)) from None
    except ProjectBusy as exc:
        wait = str(max(1, round(exc.retry_after)))
        raise Conflict(str(exc), headers={"Retry-After": wait}) from None
    except CapacityError as exc:
        raise Unavailable(str(exc)) from None
    except DspError as exc:
        raise Unprocessable(f"cannot render the project: {exc}") from None
    except (ValueError, LookupError) as exc:  # aiortc's SDP parser on bad input
        raise BadRequest(f"cannot use this offer: {exc}") from None
    return Answer(sdp=answer.sdp, type=answer.type, connection=conn.id,
                  skipped=[str(refusal) for refusal in conn.mix.refused])


async def rtc_latency(request: Request) -> DeclaredLatency:
    """Declare the round trip of one of your connections again (any role).

    A client can only measure a connection's jitter buffer once the connection plays,
    after its offer was sent, and the buffer deepens when packets come late: this
    replaces the offer's ``latency_ms`` for every take that ends from now on, the one
    under way included (declare what was measured over the take before it stops).
    """
    project_id, connection_id = request.params["project_id"], request.params["connection_id"]
    try:
        conn = request.app[RTC].connection(project_id, connection_id, request.user)
    except LookupError as exc:
        raise NotFound(str(exc)) from None
    conn.declare_latency(request.body.latency_ms)
    return DeclaredLatency(connection=conn.id, latency_ms=conn.latency_ms)


ROUTES = [
    Route(method="POST", path="/projects/{project_id}/rtc", handler=rtc_offer,
          permission=PROJECT_READ, body=Offer, response=Answer),
    Route(method="PATCH", path="/projects/{project_id}/rtc/{connection_id}",
          handler=rtc_latency, permission=PROJECT_READ, body=LatencyUpdate,
          response=DeclaredLatency),
]
