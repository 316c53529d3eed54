"""ADM BWF export: a BW64 file (ITU-R BS.2088) with ITU-R BS.2076 ADM metadata.

The file holds the 7.1.4 bed (when the mix has one) as twelve DirectSpeakers channels,
then one Objects channel per object with its position, as 24-bit PCM (samples beyond
full scale are clipped, with a warning). The
``axml`` chunk carries the ADM XML (programme, content, objects, pack, channel, stream
and track formats, track UIDs) and the ``chna`` chunk ties each audio track to its
track UID, track format and pack format. Files past 4 GiB switch from ``RIFF`` to
``BW64`` with a ``ds64`` chunk in the space a ``JUNK`` chunk kept for it.

This is the open interchange format that Dolby Atmos tools import; Dolby's own formats
(``.atmos`` masters, Dolby Digital Plus JOC) need Dolby's proprietary encoders and are
not produced here.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bounce import BounceStats
from .errors import DspError
from .immersive import BED_714, LFE, nominal_position
from .immersive_render import Stems, render_stems
from .session import Session

ADM_VERSION = "ITU-R_BS.2076-2"
_DIRECT, _OBJECTS = "0001", "0003"
_PCM = 1
_BYTES = 3  # 24-bit
_FULL = 2**23 - 1  # the scale readers divide by (ear: 2**(bits - 1) - 1)
_BLOCK = 65536
_RIFF_LIMIT = 0xFFFFFFFF  # past this, BW64 with ds64

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Track:
    """One audio track of the file and the ADM ids that describe it."""

    index: int  # 1-based
    uid: str
    track_format: str
    pack: str


def _hex4(number: int) -> str:
    return f"{number:04x}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _channel(root: ET.Element, type_label: str, index: int, name: str,
             position: tuple[float, float, float], label: str | None) -> tuple[str, str]:
    """Write a channel format with one block, its stream and track formats; return
    (channel format id, track format id)."""
    code = f"{type_label}{_hex4(index)}"
    kind = "DirectSpeakers" if type_label == _DIRECT else "Objects"
    channel = _sub(root, "audioChannelFormat", audioChannelFormatID=f"AC_{code}",
                   audioChannelFormatName=name, typeLabel=type_label, typeDefinition=kind)
    if label == LFE:
        _sub(channel, "frequency", "120", typeDefinition="lowPass")
    block = _sub(channel, "audioBlockFormat", audioBlockFormatID=f"AB_{code}_00000001")
    if label is not None:
        _sub(block, "speakerLabel", label)
    for coordinate, value in zip(("azimuth", "elevation", "distance"), position, strict=True):
        _sub(block, "position", f"{value:.6g}", coordinate=coordinate)
    stream = _sub(root, "audioStreamFormat", audioStreamFormatID=f"AS_{code}",
                  audioStreamFormatName=f"PCM_{name}", formatLabel="0001",
                  formatDefinition="PCM")
    _sub(stream, "audioChannelFormatIDRef", f"AC_{code}")
    _sub(stream, "audioTrackFormatIDRef", f"AT_{code}_01")
    track = _sub(root, "audioTrackFormat", audioTrackFormatID=f"AT_{code}_01",
                 audioTrackFormatName=f"PCM_{name}", formatLabel="0001",
                 formatDefinition="PCM")
    _sub(track, "audioStreamFormatIDRef", f"AS_{code}")
    return f"AC_{code}", f"AT_{code}_01"


def adm_metadata(stems: Stems, title: str, include_bed: bool = True
                 ) -> tuple[bytes, list[_Track]]:
    """The ADM XML (``axml`` content) of ``stems`` and the file's tracks, in order."""
    root = ET.Element("ebuCoreMain", {
        "xmlns": "urn:ebu:metadata-schema:ebuCore_2014",
        "xmlns:dc": "http://purl.org/dc/elements/1.1/",
        "schema": "EBU_CORE_20140201.xsd", "xml:lang": "en"})
    extended = _sub(_sub(_sub(root, "coreMetadata"), "format"), "audioFormatExtended",
                    version=ADM_VERSION)
    programme = _sub(extended, "audioProgramme", audioProgrammeID="APR_1001",
                     audioProgrammeName=title)
    _sub(programme, "audioContentIDRef", "ACO_1001")
    content = _sub(extended, "audioContent", audioContentID="ACO_1001",
                   audioContentName=title)
    tracks: list[_Track] = []
    uids: list[tuple[str, str, str]] = []

    def add_object(number: int, name: str, pack: str, refs: list[tuple[str, str]]) -> None:
        object_id = f"AO_{_hex4(0x1000 + number)}"
        _sub(content, "audioObjectIDRef", object_id)
        element = _sub(extended, "audioObject", audioObjectID=object_id,
                       audioObjectName=name)
        _sub(element, "audioPackFormatIDRef", pack)
        for track_format, _ in refs:
            uid = f"ATU_{len(tracks) + 1:08x}"
            _sub(element, "audioTrackUIDRef", uid)
            tracks.append(_Track(len(tracks) + 1, uid, track_format, pack))
            uids.append((uid, track_format, pack))

    if include_bed:
        pack_id = f"AP_{_DIRECT}1001"
        pack = _sub(extended, "audioPackFormat", audioPackFormatID=pack_id,
                    audioPackFormatName="bed 7.1.4", typeLabel=_DIRECT,
                    typeDefinition="DirectSpeakers")
        refs = []
        for i, label in enumerate(BED_714):
            channel, track_format = _channel(extended, _DIRECT, 0x1001 + i, label,
                                             (*nominal_position(label), 1.0), label)
            _sub(pack, "audioChannelFormatIDRef", channel)
            refs.append((track_format, channel))
        add_object(1, "Bed", pack_id, refs)
    for n, obj in enumerate(stems.objects):
        index = 0x1001 + n
        pack_id = f"AP_{_OBJECTS}{_hex4(index)}"
        pack = _sub(extended, "audioPackFormat", audioPackFormatID=pack_id,
                    audioPackFormatName=obj.name, typeLabel=_OBJECTS, typeDefinition="Objects")
        route = obj.route
        channel, track_format = _channel(
            extended, _OBJECTS, index, obj.name,
            (route.azimuth, route.elevation, route.distance), None)
        _sub(pack, "audioChannelFormatIDRef", channel)
        add_object(2 + n, obj.name, pack_id, [(track_format, channel)])
    for uid, track_format, pack_id in uids:
        element = _sub(extended, "audioTrackUID", UID=uid, sampleRate=str(stems.sample_rate),
                       bitDepth="24")
        _sub(element, "audioTrackFormatIDRef", track_format)
        _sub(element, "audioPackFormatIDRef", pack_id)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True), tracks


def chna_chunk(tracks: list[_Track]) -> bytes:
    """The ``chna`` chunk body: counts, then (track index, UID, track format, pack)."""
    body = struct.pack("<HH", len({t.index for t in tracks}), len(tracks))
    for t in tracks:
        body += struct.pack("<H12s14s11sx", t.index, t.uid.encode(), t.track_format.encode(),
                            t.pack.encode())
    return body


def _chunk(tag: bytes, body: bytes) -> bytes:
    pad = b"\0" if len(body) % 2 else b""
    return struct.pack("<4sI", tag, len(body)) + body + pad


def _pcm24(block: np.ndarray) -> bytes:
    """Interleaved float frames to little-endian 24-bit PCM, clipped at full scale."""
    peak = float(np.abs(block).max(initial=0.0))
    if peak > 1.0:
        log.warning("ADM export: peak %.2f dBFS clipped at full scale", 20 * np.log10(peak))
    ints = np.rint(np.clip(block, -1.0, 1.0) * _FULL).astype("<i4")
    return ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def write_adm_bwf(path: str | os.PathLike[str], stems: Stems, title: str = "Untitled",
                  progress: Callable[[int, int], None] | None = None) -> Path:
    """Write ``stems`` as an ADM BWF file; returns the path written. ``progress(frames
    written, frames)`` is called after each block (it may raise to stop the write)."""
    include_bed = stems.has_bed
    channels = [*(stems.bed if include_bed else []), *(o.signal for o in stems.objects)]
    if not channels:
        raise DspError("nothing to export: the project has no tracks")
    axml, tracks = adm_metadata(stems, title, include_bed)
    n = len(channels)
    fmt = struct.pack("<HHIIHH", _PCM, n, stems.sample_rate,
                      stems.sample_rate * _BYTES * n, _BYTES * n, 8 * _BYTES)
    head = (_chunk(b"JUNK", bytes(28)) + _chunk(b"fmt ", fmt)
            + _chunk(b"chna", chna_chunk(tracks)) + _chunk(b"axml", axml))
    data_size = stems.frames * _BYTES * n
    target = Path(path)
    with target.open("wb") as out:
        out.write(b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + head)
        out.write(b"data" + struct.pack("<I", min(data_size, _RIFF_LIMIT)))
        for start in range(0, stems.frames, _BLOCK):
            block = np.stack([c[start:start + _BLOCK] for c in channels], axis=1)
            out.write(_pcm24(block))
            if progress is not None:
                progress(min(start + _BLOCK, stems.frames), stems.frames)
        if data_size % 2:
            out.write(b"\0")
        riff_size = out.tell() - 8
        if riff_size <= _RIFF_LIMIT:
            out.seek(4)
            out.write(struct.pack("<I", riff_size))
        else:  # BS.2088: BW64 with the sizes in ds64
            out.seek(0)
            out.write(b"BW64" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE")
            out.write(b"ds64" + struct.pack("<IQQQI", 28, riff_size, data_size, 0, 0))
            out.seek(12 + len(head))
            out.write(b"data" + struct.pack("<I", 0xFFFFFFFF))
    return target


def bounce_adm(session: Session, path: str | os.PathLike[str], sample_rate: int | None = None,
               tail: float = 0.0, progress: Callable[[int, int], None] | None = None
               ) -> BounceStats:
    """Render ``session``'s bed and objects and write them as ADM BWF (a bounce's figures:
    frames, time, peak, samples clipped at 24-bit full scale, plug-ins that failed)."""
    started = time.perf_counter()
    rendering = writing = None
    if progress is not None:  # the render, then the write (a cancel stops either)
        rendering = _part_of(progress, 0.0, RENDER_SHARE)
        writing = _part_of(progress, RENDER_SHARE, 1.0 - RENDER_SHARE)
    stems = render_stems(session, sample_rate, tail=tail, progress=rendering)
    write_adm_bwf(path, stems, session.name, writing)
    signals = [stems.bed if stems.has_bed else stems.bed[:0],
               *(o.signal[None, :] for o in stems.objects)]
    peak = max((float(np.abs(s).max(initial=0.0)) for s in signals), default=0.0)
    clipped = sum(int(np.count_nonzero(np.abs(s) > 1.0)) for s in signals)
    return BounceStats(stems.frames, stems.sample_rate, time.perf_counter() - started, peak,
                       clipped, stems.plugin_errors)


#: The share of an ADM bounce's progress its render takes (the file's write: the rest).
RENDER_SHARE = 0.9
#: The steps of an ADM bounce's progress, as ``progress(done, total)`` reports them.
PROGRESS_STEPS = 10_000


def _part_of(progress: Callable[[int, int], None], start: float, share: float
             ) -> Callable[[int, int], None]:
    """``progress`` of a step that fills ``share`` of the whole from ``start``."""
    def part(done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        progress(round(PROGRESS_STEPS * (start + share * fraction)), PROGRESS_STEPS)

    return part
