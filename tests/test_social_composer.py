"""The composer's live check over HTTP: each channel's variant as its network sees it
(preview, length as the network counts it, errors and warnings), nothing stored, and
another account's channel answering 404."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from social_helpers import InTestNetwork, connect, social_app, who

pytestmark = pytest.mark.timeout(120)
ADA = who("acc", "p_ada", "editor")
AUDIO = {"asset_id": "a1", "kind": "audio", "content_type": "audio/wav",
         "size_bytes": 2_000_000, "duration_s": 30.0}


def _run(tmp_path: Path, body: Any) -> None:
    networks = [InTestNetwork(n) for n in ("x", "bluesky", "instagram")]

    async def go() -> None:
        async with social_app(tmp_path, f"sqlite://{tmp_path / 's.sqlite3'}",
                              *networks) as (client, context):
            ids = {}
            for network in networks:
                ids[network.network] = (await connect(client, network, "acc",
                                                      "p_ada"))["channel_id"]
            await body(client, context, ids)

    asyncio.run(go())


async def _check(client: Any, body: dict[str, Any], headers: Any = ADA) -> Any:
    answer = await client.post("/api/social/compose/check", headers=headers, json=body)
    return answer.status, await answer.json()


def test_each_channel_is_measured_and_checked_by_its_own_rules(tmp_path: Path) -> None:
    async def body(client: Any, context: Any, ids: dict[str, str]) -> None:
        text = "Night Drive is out Friday. " + "la " * 88   # 291 characters
        status, answer = await _check(client, {
            "text": text, "link": "https://example.org/night-drive",
            "first_comment": "Pre-save: https://example.org/p",
            "targets": [{"channel_id": ids["x"]}, {"channel_id": ids["bluesky"]},
                        {"channel_id": ids["instagram"]}]})
        assert status == 200, answer
        by = {c["network"]: c for c in answer["channels"]}
        assert answer["ok"] is False
        # X: no link cards, so the link goes on the text's last line and counts 23
        x = by["x"]
        assert x["preview"]["text"] == f"{text}\nhttps://example.org/night-drive"
        assert (x["length"], x["max_length"]) == (len(text) + 1 + 23, 280)
        assert "URLs count 23" in x["notes"]
        assert [p["code"] for p in x["problems"] if p["severity"] == "error"] == [
            "text_too_long"]
        assert x["ok"] is False
        # Bluesky: a link card beside 291 of its 300 graphemes
        bsky = by["bluesky"]
        assert (bsky["preview"]["text"], bsky["preview"]["link_card"]) == (
            text, "https://example.org/night-drive")
        assert (bsky["length"], bsky["max_length"], bsky["ok"]) == (len(text), 300, True)
        # Instagram: the post needs media, and a link in a caption is only a warning
        insta = by["instagram"]
        codes = {(p["code"], p["severity"]) for p in insta["problems"]}
        assert ("link_not_clickable", "warning") in codes
        assert any(severity == "error" for _, severity in codes)
        assert insta["preview"]["first_comment"] == "Pre-save: https://example.org/p"
        assert await context.database().fetchval("SELECT COUNT(*) FROM social_posts") == 0

    _run(tmp_path, body)


def test_a_variant_overrides_the_base_fields_for_its_channel(tmp_path: Path) -> None:
    async def body(client: Any, context: Any, ids: dict[str, str]) -> None:
        status, answer = await _check(client, {
            "text": "la " * 100, "media": [AUDIO],
            "targets": [{"channel_id": ids["x"], "text": "Out Friday", "media": []},
                        {"channel_id": ids["bluesky"]}]})
        assert status == 200, answer
        x, bsky = answer["channels"]
        assert (x["preview"]["text"], x["length"], x["ok"], x["problems"]) == (
            "Out Friday", 10, True, [])
        assert x["preview"]["media"] == []
        # Bluesky keeps the base: an audio file it cannot publish
        assert [p["field"] for p in bsky["problems"]] == ["media[0]"]
        assert "audio" in bsky["problems"][0]["message"]
        assert answer["ok"] is False

    _run(tmp_path, body)


def test_another_accounts_channel_and_bad_input_are_refused(tmp_path: Path) -> None:
    async def body(client: Any, context: Any, ids: dict[str, str]) -> None:
        status, answer = await _check(client, {"text": "hi", "targets": [
            {"channel_id": ids["x"]}]}, headers=who("other", "p_bob", "owner"))
        assert status == 404, answer
        status, answer = await _check(client, {"text": "hi", "targets": [
            {"channel_id": ids["x"]}, {"channel_id": ids["x"]}]})
        assert status == 400 and "named twice" in answer["error"]
        status, _ = await _check(client, {"text": "hi", "targets": []})
        assert status in (400, 422)
        viewer = who("acc", "p_vic", "viewer")
        status, _ = await _check(client, {"text": "hi", "targets": [
            {"channel_id": ids["x"]}]}, headers=viewer)
        assert status == 403

    _run(tmp_path, body)
