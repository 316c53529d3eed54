"""DDEX ERN 4.3 ``NewReleaseMessage`` for one release and one store.

We emit a subset of ERN 4.3 (audio releases: sound recordings, a front cover
image, one release, deals) and check every message against our own XML Schema
of that subset, ``ern43_subset.xsd``, which mirrors the element order and types
of the official schema for the elements we use. Updates are full messages sent
again (ERN 4 has no update flag); a takedown is a message whose deals end on
the takedown date (on the release date for a release taken down before it).
Beyond the schema, a deal may not end before it starts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lxml import etree

from business.distribution.errors import DistributionError
from business.distribution.identifiers import normalize_isrc, normalize_iswc, normalize_upc
from business.distribution.models import Release

ERN_NS = "http://ddex.net/xml/ern/43"
SCHEMA_PATH = Path(__file__).with_name("ern43_subset.xsd")
ACTIONS = ("new", "update", "takedown")
_ROLE = {"primary": "MainArtist", "featuring": "FeaturedArtist", "remixer": "Remixer",
         "producer": "Producer"}
_CONTRIBUTOR = {"composer": "Composer", "lyricist": "Lyricist", "arranger": "Arranger",
                "producer": "Producer"}
_RELEASE_TYPE = {"single": "Single", "ep": "EP", "album": "Album"}
_USES = (("SubscriptionModel", "OnDemandStream"), ("AdvertisementSupportedModel",
         "OnDemandStream"), ("PayAsYouGoModel", "PermanentDownload"))


class DdexError(DistributionError):
    """A message could not be built or does not match the schema."""


@dataclass(frozen=True)
class Party:
    """A message sender or recipient: DDEX party id (DPID) and name."""

    dpid: str
    name: str


@dataclass(frozen=True)
class TrackFile:
    """A delivered audio file: its name in the package, checksum and duration."""

    uri: str
    sha256: str
    duration_s: float
    codec: str  # "WAV" or "FLAC"


@dataclass(frozen=True)
class ImageFile:
    """The delivered cover image."""

    uri: str
    sha256: str
    width: int
    height: int
    codec: str  # "JPEG" or "PNG"


def _duration(seconds: float) -> str:
    whole = int(round(seconds))
    return f"PT{whole // 3600}H{whole % 3600 // 60}M{whole % 60}S"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str
         ) -> etree._Element:
    node = etree.SubElement(parent, tag, attrib)
    if text is not None:
        node.text = text
    return node


def _year(line: str, fallback: int) -> str:
    for token in line.replace("℗", " ").replace("©", " ").split():
        if token.isdigit() and len(token) == 4:
            return token
    return str(fallback)


def _header(root: etree._Element, message_id: str, thread_id: str, sender: Party,
            recipient: Party, created: dt.datetime, test: bool) -> None:
    header = _sub(root, "MessageHeader")
    _sub(header, "MessageThreadId", thread_id)
    _sub(header, "MessageId", message_id)
    for tag, party in (("MessageSender", sender), ("MessageRecipient", recipient)):
        node = _sub(header, tag)
        _sub(node, "PartyId", party.dpid)
        _sub(_sub(node, "PartyName"), "FullName", party.name)
    _sub(header, "MessageCreatedDateTime", created.isoformat(timespec="seconds"))
    _sub(header, "MessageControlType", "TestMessage" if test else "LiveMessage")


def _display_artists(node: etree._Element, names: list[tuple[str, str]],
                     refs: dict[str, str]) -> None:
    for i, (name, role) in enumerate(names, start=1):
        artist = _sub(node, "DisplayArtist", SequenceNumber=str(i))
        _sub(artist, "ArtistPartyReference", refs[name])
        _sub(artist, "DisplayArtistRole", _ROLE.get(role, "MainArtist"))


def build_message(release: Release, *, store: Party, sender: Party, message_id: str,
                  action: str, tracks: list[TrackFile], image: ImageFile,
                  created: dt.datetime | None = None, test: bool = False) -> bytes:
    """The ERN 4.3 NewReleaseMessage of ``release`` for ``store`` as UTF-8 XML bytes."""
    if action not in ACTIONS:
        raise DdexError(f"action {action!r} is unknown; use one of {list(ACTIONS)}")
    if len(tracks) != len(release.tracks):
        raise DdexError(f"{len(release.tracks)} tracks but {len(tracks)} delivery files")
    created = created or dt.datetime.now(dt.UTC)
    release_date = release.date() or created.date()
    root = etree.Element(f"{{{ERN_NS}}}NewReleaseMessage", nsmap={"ern": ERN_NS},
                         LanguageAndScriptCode=release.language or "en", AvsVersionId="4")
    _header(root, message_id, f"{release.release_id}-{store.dpid}", sender, store, created,
            test)

    refs: dict[str, str] = {}
    people = [a.name for a in release.artists]
    for track in release.tracks:
        people += [a.name for a in track.artists] + [c.name for c in track.contributors]
    people.append(release.label)
    party_list = _sub(root, "PartyList")
    for name in people:
        if name in refs:
            continue
        refs[name] = f"P{len(refs) + 1}"
        party = _sub(party_list, "Party")
        _sub(party, "PartyReference", refs[name])
        _sub(_sub(party, "PartyName"), "FullName", name)

    resources = _sub(root, "ResourceList")
    year = release_date.year
    for i, (track, delivery) in enumerate(zip(release.tracks, tracks, strict=True), start=1):
        artists = [(a.name, a.role) for a in (track.artists or release.artists)]
        recording = _sub(resources, "SoundRecording")
        _sub(recording, "ResourceReference", f"A{i}")
        _sub(recording, "Type", "MusicalWorkSoundRecording")
        edition = _sub(recording, "SoundRecordingEdition")
        _sub(_sub(edition, "ResourceId"), "ISRC", normalize_isrc(track.isrc))
        pline = _sub(edition, "PLine")
        _sub(pline, "Year", _year(release.p_line, year))
        _sub(pline, "PLineText", release.p_line)
        details = _sub(edition, "TechnicalDetails")
        _sub(details, "TechnicalResourceDetailsReference", f"T{i}")
        _file(details, "AudioFile", delivery.codec, delivery.uri, delivery.sha256)
        if track.iswc:
            work = _sub(recording, "WorkId")
            _sub(work, "ISWC", normalize_iswc(track.iswc))
        _sub(recording, "DisplayTitleText", track.title)
        title = _sub(recording, "DisplayTitle")
        _sub(title, "TitleText", track.title)
        if track.version:
            _sub(title, "SubTitle", track.version)
        _sub(recording, "DisplayArtistName", " & ".join(n for n, r in artists if r == "primary"))
        _display_artists(recording, artists, refs)
        for person in track.contributors:
            contributor = _sub(recording, "Contributor")
            _sub(contributor, "ContributorPartyReference", refs[person.name])
            _sub(contributor, "Role", _CONTRIBUTOR.get(person.role, "Composer"))
        _sub(recording, "Duration", _duration(delivery.duration_s))
        _sub(recording, "ParentalWarningType",
             "Explicit" if track.explicit else "NotExplicit")
        _sub(recording, "LanguageOfPerformance", track.language or release.language or "en")
    picture = _sub(resources, "Image")
    _sub(picture, "ResourceReference", "A0")
    _sub(picture, "Type", "FrontCoverImage")
    image_edition = _sub(picture, "ImageEdition")
    _sub(_sub(image_edition, "ResourceId"), "ProprietaryId", f"{release.release_id}-cover",
         Namespace=sender.dpid)
    image_details = _sub(image_edition, "TechnicalDetails")
    _sub(image_details, "TechnicalResourceDetailsReference", "T0")
    _sub(image_details, "ImageHeight", str(image.height))
    _sub(image_details, "ImageWidth", str(image.width))
    _file(image_details, "Image", image.codec, image.uri, image.sha256)

    releases = _sub(root, "ReleaseList")
    main = _sub(releases, "Release")
    _sub(main, "ReleaseReference", "R0")
    _sub(main, "ReleaseType", _RELEASE_TYPE.get(release.release_type, "Single"))
    _sub(_sub(main, "ReleaseId"), "ICPN", normalize_upc(release.upc))
    _sub(main, "DisplayTitleText", release.title)
    title = _sub(main, "DisplayTitle")
    _sub(title, "TitleText", release.title)
    if release.version:
        _sub(title, "SubTitle", release.version)
    _sub(main, "DisplayArtistName", " & ".join(release.primary_artists()))
    _display_artists(main, [(a.name, a.role) for a in release.artists], refs)
    _sub(main, "ReleaseLabelReference", refs[release.label])
    pline = _sub(main, "PLine")
    _sub(pline, "Year", _year(release.p_line, year))
    _sub(pline, "PLineText", release.p_line)
    cline = _sub(main, "CLine")
    _sub(cline, "Year", _year(release.c_line, year))
    _sub(cline, "CLineText", release.c_line)
    _sub(main, "Duration", _duration(sum(t.duration_s for t in tracks)))
    _sub(_sub(main, "Genre"), "GenreText", release.genre)
    _sub(main, "OriginalReleaseDate", release_date.isoformat())
    _sub(main, "ParentalWarningType", "Explicit" if release.explicit else "NotExplicit")
    group = _sub(main, "ResourceGroup")
    for i in range(1, len(tracks) + 1):
        item = _sub(group, "ResourceGroupContentItem")
        _sub(item, "SequenceNumber", str(i))
        _sub(item, "ReleaseResourceReference", f"A{i}")
    linked = _sub(group, "LinkedReleaseResourceReference", "A0")
    linked.set("LinkDescription", "FrontCoverImage")

    deals = _sub(_sub(root, "DealList"), "ReleaseDeal")
    _sub(deals, "DealReleaseReference", "R0")
    for commercial, use in _USES:
        terms = _sub(_sub(deals, "Deal"), "DealTerms")
        for territory in release.territories:
            _sub(terms, "TerritoryCode", territory)
        period = _sub(terms, "ValidityPeriod")
        _sub(period, "StartDate", release_date.isoformat())
        if action == "takedown":  # a release taken down before its date ends on it
            _sub(period, "EndDate", max(created.date(), release_date).isoformat())
        _sub(terms, "CommercialModelType", commercial)
        _sub(terms, "UseType", use)
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    validate_message(xml)
    return xml


def _file(parent: etree._Element, kind: str, codec: str, uri: str, sha256: str) -> None:
    delivery = _sub(parent, "DeliveryFile")
    _sub(delivery, "Type", kind)
    if kind == "AudioFile":
        _sub(delivery, "AudioCodecType", codec)
    else:
        _sub(delivery, "ImageCodecType", codec)
    file = _sub(delivery, "File")
    _sub(file, "URI", uri)
    hashsum = _sub(file, "HashSum")
    _sub(hashsum, "Algorithm", "SHA256")
    _sub(hashsum, "HashSumValue", sha256)


@cache
def schema() -> etree.XMLSchema:
    """Our XML Schema of the ERN 4.3 subset we emit."""
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))


def validate_message(xml: bytes) -> None:
    """DdexError listing every schema violation of ``xml`` (well-formedness first)."""
    try:
        document = etree.fromstring(xml)
    except etree.XMLSyntaxError as exc:
        raise DdexError(f"message is not well-formed XML: {exc}") from exc
    checker = schema()
    if not checker.validate(document):
        problems = "; ".join(f"line {e.line}: {e.message}" for e in checker.error_log)
        raise DdexError(f"message does not match the ERN 4.3 subset schema: {problems}")
    backwards = [f"line {period.sourceline}: EndDate before StartDate"
                 for period in document.iter("ValidityPeriod") if _ends_first(period)]
    if backwards:
        raise DdexError(f"message has deals that end before they start: {'; '.join(backwards)}")


def _ends_first(period: etree._Element) -> bool:
    """Whether a (schema-valid) ValidityPeriod's EndDate is before its StartDate."""
    start, end = period.findtext("StartDate"), period.findtext("EndDate")
    return bool(start and end) and (
        dt.date.fromisoformat(end[:10]) < dt.date.fromisoformat(start[:10]))
