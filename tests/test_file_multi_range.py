"""A ``Range`` of several ranges on a file answer gets the whole file (200), as HTTP lets
a server that will not combine them answer (RFC 9110, 14.2), never 416; one range still
gets 206, and a range the file cannot satisfy 416."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from test_router import _counted_song_plugin, _install, _sheet_plugin

from dawserver.plugin_api import FileSent

SEVERAL = ("bytes=0-3,10-13", "bytes=0-3, 5-", "bytes=-2,0-1", "bytes=0-3,")


def test_several_ranges_get_the_whole_file(tmp_path: Path) -> None:
    sheet, plugin = _sheet_plugin(tmp_path)
    whole = sheet.read_bytes()

    async def go() -> None:
        async with TestClient(TestServer(_install(tmp_path / "data", plugin))) as client:
            for ranges in SEVERAL:
                answer = await client.get("/sheet_file", headers={"Range": ranges})
                assert (answer.status, await answer.read()) == (200, whole), ranges
                assert "Content-Range" not in answer.headers
            answer = await client.head("/sheet_file", headers={"Range": SEVERAL[0]})
            assert answer.status == 200
            assert answer.headers["Content-Length"] == str(len(whole))
            etag = answer.headers["ETag"]
            answer = await client.get("/sheet_file", headers={"Range": SEVERAL[0],
                                                              "If-Range": etag})
            assert (answer.status, await answer.read()) == (200, whole)
            # one range, and one the file cannot satisfy, answer as before
            answer = await client.get("/sheet_file", headers={"Range": "bytes=0-3"})
            assert (answer.status, await answer.read()) == (206, whole[:4])
            answer = await client.get("/sheet_file", headers={"Range": "bytes=999-"})
            assert answer.status == 416
            assert answer.headers["Content-Range"] == f"bytes */{len(whole)}"

    asyncio.run(go())


def test_a_counted_file_answer_to_several_ranges_counts_the_whole_file(tmp_path: Path
                                                                        ) -> None:
    song = tmp_path / "song.bin"
    song.write_bytes(bytes(range(256)) * 40)  # 10,240 bytes
    heard, plugin = _counted_song_plugin(song)

    async def go() -> None:
        async with TestClient(TestServer(_install(tmp_path / "data", plugin))) as client:
            answer = await client.get("/song_file", headers={"Range": "bytes=0-9,20-29"})
            assert (answer.status, await answer.read()) == (200, song.read_bytes())
        assert heard == [FileSent(0, 10240, 10240)]

    asyncio.run(go())
