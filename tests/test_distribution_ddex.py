"""ERN 4.3 NewReleaseMessage: well-formed, valid against our subset schema, correct content."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from distribution_helpers import release_dict
from lxml import etree

from business.distribution.ddex import (
    ERN_NS,
    DdexError,
    ImageFile,
    Party,
    TrackFile,
    build_message,
    validate_message,
)
from business.distribution.models import release_from_dict

STORE = Party("PADPIDA2014101001U", "Fake Store")
SENDER = Party("PADPIDA2026MAXBOOSTR", "Max Booster Studio")
SHA = "ab" * 32


def _message(tmp_path: Path, action: str = "new", tracks: int = 2,
             created: dt.date = dt.date(2026, 11, 25)) -> etree._Element:
    raw = release_dict(tmp_path, tracks=tracks, art=tmp_path / "x.jpg",
                       audio=[tmp_path / f"{i}.wav" for i in range(tracks)])
    raw["tracks"][0]["artists"] = [{"name": "Ada Lovelace", "role": "primary"},
                                   {"name": "Grace Hopper", "role": "featuring"}]
    raw["tracks"][0]["iswc"] = "T-034.524.680-1"
    raw["tracks"][-1]["explicit"] = True
    raw["explicit"] = True
    release = release_from_dict(raw)
    xml = build_message(
        release, store=STORE, sender=SENDER, message_id="msg-1", action=action,
        tracks=[TrackFile(f"t{i}.flac", SHA, 200.4, "FLAC") for i in range(tracks)],
        image=ImageFile("cover.jpg", SHA, 3000, 3000, "JPEG"),
        created=dt.datetime.combine(created, dt.time(10), tzinfo=dt.UTC))
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    return etree.fromstring(xml)


def test_message_carries_the_release_metadata(tmp_path: Path) -> None:
    root = _message(tmp_path)
    assert root.tag == f"{{{ERN_NS}}}NewReleaseMessage"
    assert root.findtext("MessageHeader/MessageId") == "msg-1"
    assert root.findtext("MessageHeader/MessageRecipient/PartyId") == STORE.dpid
    release = root.find("ReleaseList/Release")
    assert release.findtext("ReleaseId/ICPN") == release_dict(tmp_path)["upc"]
    assert release.findtext("ParentalWarningType") == "Explicit"
    assert release.findtext("Duration") == "PT0H6M41S"
    assert [i.findtext("ReleaseResourceReference")
            for i in release.iter("ResourceGroupContentItem")] == ["A1", "A2"]
    first, second = root.findall("ResourceList/SoundRecording")
    assert first.findtext("SoundRecordingEdition/ResourceId/ISRC") == "QZABC2600100"
    assert first.findtext("WorkId/ISWC") == "T0345246801"
    assert [r.text for r in first.iter("DisplayArtistRole")] == ["MainArtist", "FeaturedArtist"]
    assert first.findtext("Contributor/Role") == "Composer"
    assert second.findtext("ParentalWarningType") == "Explicit"
    assert root.findtext("DealList/ReleaseDeal/Deal/DealTerms/TerritoryCode") == "Worldwide"
    assert root.find("DealList/ReleaseDeal/Deal/DealTerms/ValidityPeriod/EndDate") is None


def test_takedown_ends_every_deal_on_the_takedown_date(tmp_path: Path) -> None:
    root = _message(tmp_path, "takedown", tracks=1, created=dt.date(2027, 1, 10))
    periods = [(p.findtext("StartDate"), p.findtext("EndDate"))
               for p in root.iter("ValidityPeriod")]
    assert periods == [("2026-12-16", "2027-01-10")] * 3


def test_a_takedown_before_the_release_date_ends_no_deal_before_it_starts(
        tmp_path: Path) -> None:
    root = _message(tmp_path, "takedown", tracks=1)  # on 2026-11-25, released 2026-12-16
    periods = [(p.findtext("StartDate"), p.findtext("EndDate"))
               for p in root.iter("ValidityPeriod")]
    assert periods == [("2026-12-16", "2026-12-16")] * 3


def test_consistency_check_rejects_a_deal_that_ends_before_it_starts(
        tmp_path: Path) -> None:
    root = _message(tmp_path, "takedown", tracks=1)
    root.find("DealList/ReleaseDeal/Deal/DealTerms/ValidityPeriod/EndDate").text = "2026-12-15"
    with pytest.raises(DdexError, match="EndDate before StartDate"):
        validate_message(etree.tostring(root))


def test_schema_rejects_a_message_outside_the_subset(tmp_path: Path) -> None:
    root = _message(tmp_path, tracks=1)
    root.find("ReleaseList/Release/ReleaseId/ICPN").text = "12AB"
    with pytest.raises(DdexError, match="ICPN"):
        validate_message(etree.tostring(root))
    with pytest.raises(DdexError, match="not well-formed"):
        validate_message(b"<ern:NewReleaseMessage")


def test_unknown_action_is_refused(tmp_path: Path) -> None:
    release = release_from_dict(release_dict(tmp_path, art=tmp_path / "x.jpg",
                                             audio=[tmp_path / "a.wav"]))
    with pytest.raises(DdexError, match="action 'purge' is unknown"):
        build_message(release, store=STORE, sender=SENDER, message_id="m", action="purge",
                      tracks=[TrackFile("a", SHA, 1.0, "WAV")],
                      image=ImageFile("c", SHA, 3000, 3000, "JPEG"))
