"""The catalogue of identities: platform ids resolved across sources by ids, ISRC and UPC,
then by normalised names and durations (rapidfuzz) with a confidence; one ISRC on several
tracks kept; manual merges and splits audited and kept through re-ingestion."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from analytics_helpers import migrated

from business.analytics.catalog import Catalog, CatalogError, EntityNotFound, normalise
from business.analytics.sources.records import Identity

pytestmark = pytest.mark.timeout(120)


def run(coro, timeout: float = 60.0):  # noqa: ANN001, ANN201
    async def bounded():  # noqa: ANN202
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(bounded())


def track(source: str, pid: str, name: str, isrc: str | None = None, ms: int | None = None,
          artist: str | None = "Ada", external: tuple = ()) -> Identity:
    return Identity(source, "track", pid, name, isrc=isrc, duration_ms=ms, artist_name=artist,
                    external_ids=external)


def test_names_are_normalised_before_they_are_compared() -> None:
    assert normalise("Night Drive (feat. Bo) - 2019 Remastered") == "night drive"
    assert normalise("Café Ñoño [Radio Edit]") == "cafe nono"
    assert normalise("Neon  Tide ft. Someone") == "neon tide"
    assert normalise("Static!") == "static"


def test_platform_ids_resolve_across_sources_with_a_confidence(db_url: str) -> None:
    async def go() -> None:
        async with migrated(db_url) as db:
            catalog = Catalog(db)
            found = await catalog.resolve("acct", [
                track("spotify", "sp1", "Night Drive", "qzes62400001", 201_000),
                track("apple_music", "am1", "Night Drive", "QZES62400001", 201_500),
                track("musicbrainz", "mb1", "Night Drive", None, 200_900,
                      external=(("apple_music", "am1"),)),
                track("deezer", "dz1", "Night Drive (feat. Bo) - Remastered", None, 202_000),
                track("soundcloud", "sc1", "Night Drive", None, 260_000),  # another length
                track("lastfm", "lf1", "Night Drive", "QZES62400099", 201_000),  # other ISRC
                track("youtube", "yt1", "Velvet Orbit", None, 180_000)])
            methods = {key[0]: (m.method, m.confidence) for key, m in found.items()}
            assert methods["spotify"] == ("new", 1.0)
            assert methods["apple_music"] == ("isrc", 1.0)
            assert methods["musicbrainz"] == ("platform_id", 1.0)
            assert methods["deezer"][0] == "fuzzy" and 0.88 <= methods["deezer"][1] <= 1.0
            assert methods["soundcloud"] == ("new", 1.0)
            assert methods["lastfm"] == ("new", 1.0)
            night = found[("spotify", "track", "sp1")].entity_id
            same = {s for (s, _, _), m in found.items() if m.entity_id == night}
            assert same == {"spotify", "apple_music", "musicbrainz", "deezer"}
            [entity] = [e for e in await catalog.entities("acct", "recording")
                        if e.entity_id == night]
            assert entity.isrc == "QZES62400001" and entity.duration_ms == 201_000
            assert len(entity.links) == 4
            assert await catalog.entities("other") == []
            again = await catalog.resolve("acct", [track("spotify", "sp1", "Renamed")])
            assert again[("spotify", "track", "sp1")] .entity_id == night
            assert again[("spotify", "track", "sp1")].method == "existing"

    run(go())


def test_one_isrc_on_several_tracks_is_kept_not_blacklisted(db_url: str) -> None:
    async def go() -> None:
        async with migrated(db_url) as db:
            catalog = Catalog(db)
            first = await catalog.resolve("acct", [
                track("spotify", "single", "Glass Echo", "QZES62400005", 190_000),
                track("spotify", "album", "Glass Echo", "QZES62400005", 190_000)])
            ids = {m.entity_id for m in first.values()}
            assert len(ids) == 1   # the single and the album track: one recording, two ids
            recording = ids.pop()
            # a person splits the live version off; it keeps the same (misused) ISRC
            live = await catalog.split("acct", recording, [("spotify", "track", "album")],
                                       "ada", name="Glass Echo (Live)")
            assert live.isrc == "QZES62400005"
            later = await catalog.resolve("acct", [
                track("apple_music", "am-live", "Glass Echo (Live)", "QZES62400005", 190_000),
                track("apple_music", "am-studio", "Glass Echo", "QZES62400005", 190_000)])
            assert later[("apple_music", "track", "am-live")].entity_id == live.entity_id
            assert later[("apple_music", "track", "am-studio")].entity_id == recording
            assert {m.confidence for m in later.values()} == {0.95}
            both = {e.entity_id for e in await catalog.entities("acct")
                    if e.isrc == "QZES62400005"}
            assert both == {recording, live.entity_id}

    run(go())


def test_a_manual_merge_is_audited_and_survives_reingestion(db_url: str) -> None:
    async def go() -> None:
        async with migrated(db_url) as db:
            catalog = Catalog(db)
            batch = [Identity("spotify", "artist", "sp-ada", "Ada Lovelace"),
                     Identity("youtube", "artist", "UC-ada", "ADA LVLC Official"),
                     Identity("tiktok", "artist", "tt-ada", "ada.music")]
            found = await catalog.resolve("acct", batch)
            ids = [found[(i.source, "artist", i.entity_id)].entity_id for i in batch]
            assert len(set(ids)) == 3   # the names are too far apart to match alone
            merged = await catalog.merge("acct", ids[0], ids[1:], "ada@example.org")
            assert {(link["source"], link["manual"]) for link in merged.links} == {
                ("spotify", True), ("youtube", True), ("tiktok", True)}
            again = await catalog.resolve("acct", batch)   # a re-ingest of all three
            assert {m.entity_id for m in again.values()} == {ids[0]}
            assert [e.entity_id for e in await catalog.entities("acct", "artist")] == [ids[0]]
            # a later platform id matching a merged-away entity lands on the survivor
            late = await catalog.resolve("acct", [
                Identity("instagram", "artist", "ig-ada", "ada.music")])
            assert late[("instagram", "artist", "ig-ada")].entity_id == ids[0]
            [entry] = await catalog.audit("acct")
            assert (entry["action"], entry["actor"], entry["entity_id"]) == (
                "merge", "ada@example.org", ids[0])
            assert sorted(entry["detail"]["merged"]) == sorted(ids[1:])
            assert await catalog.audit("other") == []
            with pytest.raises(CatalogError, match="merged into"):
                await catalog.merge("acct", ids[1], [ids[2]], "ada")
            with pytest.raises(EntityNotFound):
                await catalog.merge("other", ids[0], ids[1:], "bo")

    run(go())


def test_a_manual_split_is_audited_and_survives_reingestion(db_url: str) -> None:
    async def go() -> None:
        async with migrated(db_url) as db:
            catalog = Catalog(db)
            batch = [track("spotify", "sp2", "Tide Bloom", "QZES62400002", 210_000),
                     track("apple_music", "am2", "Tide Bloom", "QZES62400002", 210_000),
                     track("deezer", "dz2", "Tide Bloom", None, 210_000)]
            found = await catalog.resolve("acct", batch)
            [entity_id] = {m.entity_id for m in found.values()}
            new = await catalog.split("acct", entity_id, [("deezer", "track", "dz2")], "bo")
            again = await catalog.resolve("acct", batch)
            assert again[("deezer", "track", "dz2")].entity_id == new.entity_id
            assert again[("spotify", "track", "sp2")].entity_id == entity_id
            kept = await catalog.get("acct", entity_id)
            assert all(link["manual"] for link in kept.links) and len(kept.links) == 2
            [entry] = await catalog.audit("acct")
            assert entry["action"] == "split" and entry["actor"] == "bo"
            assert entry["detail"]["links"] == [["deezer", "track", "dz2"]]
            with pytest.raises(CatalogError, match="not none or all"):
                await catalog.split("acct", new.entity_id, [("deezer", "track", "dz2")], "bo")
            with pytest.raises(EntityNotFound, match="has no link"):
                await catalog.split("acct", entity_id, [("tidal", "track", "x")], "bo")

    run(go())


def test_merging_different_kinds_is_refused(tmp_path: Path) -> None:
    async def go() -> None:
        async with migrated(f"sqlite://{tmp_path / 'k.sqlite3'}") as db:
            catalog = Catalog(db)
            found = await catalog.resolve("acct", [
                Identity("spotify", "artist", "a", "Ada"),
                Identity("spotify", "track", "t", "Ada")])
            artist, song = (found[("spotify", k, i)].entity_id for k, i in
                            (("artist", "a"), ("track", "t")))
            assert artist != song
            with pytest.raises(CatalogError, match="kinds differ"):
                await catalog.merge("acct", artist, [song], "ada")

    run(go())
