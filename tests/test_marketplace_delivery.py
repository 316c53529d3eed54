"""Delivery over HTTP: signed, expiring download links to a licence's files, download
limits that hold under concurrent downloads, forged and expired links refused, a refunded
licence downloading nothing, and the buyer's library (another account's licence: 404)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from marketplace_helpers import (
    Market,
    market,
    market_services,
    who,
)

from business.marketplace.delivery import Asked
from business.marketplace.sandbox_sales import SandboxSales
from dawserver.plugin_api import FileSent

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


async def bought(m: Market, tier: str = "wav_lease", **beat_fields: Any) -> dict[str, Any]:
    """A beat of ``seller`` (with ``beat_fields``) bought by ``buyer``: the buyer's
    licence."""
    await m.seller("seller")
    beat = await m.beat("seller", **beat_fields)
    status, started = await m.checkout("buyer", "seller", beat["beat_id"], tier)
    assert status == 201, started
    m.pay(started)
    await m.order("buyer", started["order"]["order_id"], "paid")
    [licence] = await m.library("buyer")
    return licence


async def get(m: Market, url: str) -> tuple[int, bytes, dict[str, str]]:
    answer = await m.client.get(url)
    return answer.status, await answer.read(), dict(answer.headers)


def link_of(licence: dict[str, Any], kind: str) -> str:
    return next(link["url"] for link in licence["links"] if link["kind"] == kind)


def mp3_link(licence: dict[str, Any]) -> tuple[str, str, int, str]:
    """The licence's mp3 link as ``Delivery.download`` takes it: licence, file, expiry,
    signature."""
    query = parse_qs(urlsplit(link_of(licence, "mp3")).query)
    file_id = next(f["file_id"] for f in licence["links"] if f["kind"] == "mp3")
    return (licence["licence_id"], file_id, int(query["expires"][0]),
            query["signature"][0])


async def fresh_licence(m: Market, before: dict[str, Any]) -> dict[str, Any]:
    """The buyer's licence again, once its links are new ones (a link's expiry is
    stamped to the second)."""
    async with asyncio.timeout(15):
        while True:
            [licence] = await m.library("buyer")
            if link_of(licence, "mp3") != link_of(before, "mp3"):
                return licence
            await asyncio.sleep(0.1)


async def test_a_signed_link_downloads_the_file_up_to_the_limit(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        licence = await bought(m)
        url = link_of(licence, "mp3")
        assert url.startswith(f"/api/marketplace/downloads/{licence['licence_id']}/")
        status, body, headers = await get(m, url)
        assert status == 200 and body == b"ID3 the mp3"
        assert 'filename="beat.mp3"' in headers["Content-Disposition"]
        status, body, _ = await get(m, link_of(licence, "wav"))
        assert status == 200 and body == b"RIFF the wav"
        assert (await m.library("buyer"))[0]["downloads"] == 2
        assert (await get(m, url))[0] == 200  # the whole file again: counted again
        status, body, _ = await get(m, url)
        assert status == 403 and b"3 downloads are used up" in body
        assert (await m.library("buyer"))[0]["downloads"] == 3
        # the used-up link's bytes are spent: no range of it is free any more
        answer = await m.client.get(url, headers={"Range": "bytes=0-2"})
        assert answer.status == 403
        licence = await fresh_licence(m, licence)
        status, body, _ = await get(m, link_of(licence, "wav"))
        assert status == 403 and b"3 downloads are used up" in body
        assert (await m.library("buyer"))[0]["downloads"] == 3


async def test_a_link_counts_one_download_however_many_ranges_it_serves(
        tmp_path: Path) -> None:
    """A player or download manager asks for a file in ranges, and a download is resumed:
    the link counts one download, not one per request."""
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        licence = await bought(m)
        url = link_of(licence, "mp3")
        for first in range(0, 11, 2):
            answer = await m.client.get(url, headers={"Range": f"bytes={first}-{first + 1}"})
            assert answer.status == 206, await answer.text()
            assert await answer.read() == b"ID3 the mp3"[first:first + 2]
        assert (await m.library("buyer"))[0]["downloads"] == 1
        store = market_services(m).store  # an expired link is forgotten by the sweep
        assert await store.db.fetchval("SELECT COUNT(*) FROM mkt_download_links") == 1
        assert await store.purge_download_links(time.time()) == 0
        assert await store.purge_download_links(time.time() + 7200) == 1


async def test_ranges_that_ask_for_the_file_again_count_again(tmp_path: Path) -> None:
    """A link's ranges are free while they add up to one file: ``Range: bytes=0-`` (or
    an ``If-Range`` that sends it all) asked again is another download, so a used-up
    licence gives out nothing more in ranges. HEAD counts nothing."""
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        licence = await bought(m)  # a limit of 3; the mp3 is 11 bytes
        url = link_of(licence, "mp3")
        for _ in range(3):
            answer = await m.client.head(url)
            assert answer.status == 200 and answer.headers["Content-Length"] == "11"
        assert (await m.library("buyer"))[0]["downloads"] == 0
        answer = await m.client.get(url, headers={"Range": "bytes=0-5"})  # a piece
        assert answer.status == 206 and await answer.read() == b"ID3 th"
        answer = await m.client.get(url, headers={"Range": "bytes=6-"})  # and the rest
        assert answer.status == 206 and await answer.read() == b"e mp3"
        assert (await m.library("buyer"))[0]["downloads"] == 1
        for downloads in (2, 3):
            answer = await m.client.get(url, headers={"Range": "bytes=0-"})
            assert answer.status == 206 and await answer.read() == b"ID3 the mp3"
            assert (await m.library("buyer"))[0]["downloads"] == downloads
        for headers in ({"Range": "bytes=0-"}, {"Range": "bytes=-4"}, {"Range": "bytes=-0"},
                        {"Range": "bytes=0-0", "If-Range": '"stale"'}):
            answer = await m.client.get(url, headers=headers)
            assert answer.status == 403, headers
        assert (await m.library("buyer"))[0]["downloads"] == 3
        assert (await m.client.head(url)).status == 200  # still nothing counted


RANGES = ("bytes=0-3", "bytes=4-", "bytes=-4", "bytes=-0", "bytes=-00", "BYTES=-0",
          "bytes=0-", "bytes=-11", "bytes=-99", "bytes=10-10", "bytes=11-", "bytes=3-1",
          "bytes=0-0", "bytes=0-99", "bytes= 0-3", "bytes=0-3,5-6", "bytes=-", "bytes=x-3",
          "items=0-3", "bytes=0-3 ", "bytes=00-03", "Bytes=2-5", "bytes=-1", "bytes=5")


async def test_a_range_is_charged_no_less_than_the_file_answer_sends(tmp_path: Path) -> None:
    """``Asked.span`` (what a request is charged before it is answered) is never less than
    what the real file answer then sends, for ranges good, odd and bad (``bytes=-0`` sends
    the whole file: it was charged nothing, so a used-up link gave out whole files)."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from dawserver.file_answer import FileAnswer

    data = b"ID3 the mp3"  # 11 bytes
    song = tmp_path / "song.mp3"
    song.write_bytes(data)

    async def answer(request: web.Request) -> web.StreamResponse:
        return FileAnswer(song)

    app = web.Application()
    app.router.add_get("/song", answer)
    async with TestClient(TestServer(app)) as client:
        for header in RANGES:
            got = await client.get("/song", headers={"Range": header})
            sent = len(await got.read())
            first, charged = Asked(range=header).span(len(data))
            assert sent <= charged, (header, got.status, sent, charged)
            if sent:  # what is charged is what is sent, where it starts
                assert await (await client.get("/song", headers={"Range": header})
                              ).read() == data[first:first + sent], header


async def test_a_resume_whose_if_range_holds_is_charged_its_range_only(
        tmp_path: Path) -> None:
    """A browser resumes with ``If-Range`` (the ETag or date it was sent): while that holds,
    the answer is the range and only the range counts; once it does not (the file changed),
    the answer is the whole file and counts as one."""
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        licence = await bought(m)  # a limit of 3; the mp3 is 11 bytes
        url = link_of(licence, "mp3")
        answer = await m.client.get(url, headers={"Range": "bytes=0-3"})
        assert answer.status == 206 and await answer.read() == b"ID3 "
        etag, modified = answer.headers["ETag"], answer.headers["Last-Modified"]
        for if_range, part, piece in ((etag, "4-7", b"the "), (modified, "8-", b"mp3")):
            answer = await m.client.get(url, headers={"Range": f"bytes={part}",
                                                      "If-Range": if_range})
            assert answer.status == 206 and await answer.read() == piece
            assert (await m.library("buyer"))[0]["downloads"] == 1, if_range
        answer = await m.client.get(url, headers={"Range": "bytes=6-",
                                                  "If-Range": '"another-file"'})
        assert answer.status == 200 and await answer.read() == b"ID3 the mp3"
        assert (await m.library("buyer"))[0]["downloads"] == 2


async def test_a_revalidation_or_failed_precondition_counts_nothing(tmp_path: Path) -> None:
    """A browser revalidating its copy (``If-None-Match``, ``If-Modified-Since``) is
    answered 304, and a request whose ``If-Match`` no longer holds 412: neither sends the
    file, so neither is charged, and both are answered even once the licence's downloads
    are used up (before, they were charged up front and refused near the limit). A
    precondition that holds sends the file and counts it."""
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        licence = await bought(m)  # a limit of 3; the mp3 is 11 bytes
        url = link_of(licence, "mp3")
        answer = await m.client.get(url)
        assert answer.status == 200 and await answer.read() == b"ID3 the mp3"
        etag, modified = answer.headers["ETag"], answer.headers["Last-Modified"]
        answer = await m.client.get(url, headers={"If-Match": etag})  # holds: sent
        assert answer.status == 200 and await answer.read() == b"ID3 the mp3"
        answer = await m.client.get(url, headers={"If-None-Match": '"old"'})  # changed: sent
        assert answer.status == 200 and await answer.read() == b"ID3 the mp3"
        assert (await m.library("buyer"))[0]["downloads"] == 3  # used up
        for headers, status in (({"If-None-Match": etag}, 304),
                                ({"If-Modified-Since": modified}, 304),
                                ({"If-None-Match": f'"old", {etag}', "Range": "bytes=0-3"},
                                 304),
                                ({"If-Match": '"another-file"'}, 412),
                                ({"If-Match": f"W/{etag}"}, 412),  # compared strongly
                                ({"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},
                                 412)):
            answer = await m.client.get(url, headers=headers)
            assert (answer.status, await answer.read()) == (status, b""), headers
        assert (await m.library("buyer"))[0]["downloads"] == 3
        answer = await m.client.get(url, headers={"If-None-Match": '"another-file"'})
        assert answer.status == 403  # the file itself: still refused once used up
        assert (await m.client.get(url, headers={"If-Match": etag})).status == 403


async def test_a_download_resumes_from_a_range_under_its_exact_name(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        mp3 = m.assets.add("seller", "mp3-accented", b"ID3 the mp3")
        licence = await bought(m, "mp3_lease", files=[
            {"kind": "mp3", "asset_id": mp3, "name": "Nuit d’été.mp3"}])
        url = link_of(licence, "mp3")
        answer = await m.client.get(url, headers={"Range": "bytes=4-6"})
        assert answer.status == 206 and await answer.read() == b"the"
        assert answer.headers["Content-Range"] == "bytes 4-6/11"
        assert answer.headers["Content-Type"] == "application/octet-stream"
        assert answer.headers["ETag"] and answer.headers["Accept-Ranges"] == "bytes"
        # the exact name for browsers that read it, a safe ASCII one for the rest
        disposition = answer.headers["Content-Disposition"]
        assert disposition.startswith("attachment;")
        assert "filename*=UTF-8''Nuit%20d%E2%80%99%C3%A9t%C3%A9.mp3" in disposition
        assert 'filename="Nuit d__t_.mp3"' in disposition


async def test_forged_expired_and_bare_links_are_refused(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        licence = await bought(m)
        url = link_of(licence, "mp3")
        path, query = url.split("?")
        params = {k: v[0] for k, v in parse_qs(query).items()}
        wav_file = next(link["file_id"] for link in licence["links"] if link["kind"] == "wav")
        forged = [
            f"{path}?expires={params['expires']}&signature={'0' * 64}",
            f"{path}?expires={int(params['expires']) + 3600}&signature={params['signature']}",
            f"{path.rsplit('/', 1)[0]}/{wav_file}?{query}",  # another file, same signature
            f"{path}?expires={params['expires']}&signature=%C3%A9",  # not even hex
        ]
        for bad in forged:
            status, body, _ = await get(m, bad)
            assert status == 403 and b"not one we signed" in body, bad
        signer = market_services(m).delivery.signer
        old, _ = signer.link(licence["licence_id"], urlsplit(path).path.rsplit("/", 1)[1],
                             now=time.time() - 2 * signer.ttl_s)
        status, body, _ = await get(m, old)
        assert status == 403 and b"expired" in body
        status, body, _ = await get(m, path)
        assert status == 400 and b"signature" in body
        assert (await m.library("buyer"))[0]["downloads"] == 0  # none of those counted


async def test_concurrent_downloads_never_pass_the_limit(db_url: str,
                                                         tmp_path: Path) -> None:
    async with market(tmp_path, db_url) as m:
        licence = await bought(m)
        file_id = urlsplit(link_of(licence, "wav")).path.rsplit("/", 1)[1]
        signer = market_services(m).delivery.signer
        now = int(time.time())  # eight links of the file, each counting once
        urls = [signer.link(licence["licence_id"], file_id, now=now + n)[0] for n in range(8)]
        results = await asyncio.gather(*(get(m, url) for url in urls))
        assert sorted(status for status, _, _ in results) == [200] * 3 + [403] * 5
        assert (await m.library("buyer"))[0]["downloads"] == 3


async def test_a_refunded_licence_downloads_nothing(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        licence = await bought(m)
        url = link_of(licence, "mp3")
        assert (await get(m, url))[0] == 200
        order_id = licence["order_id"]
        status, _ = await m.call("POST", f"/api/marketplace/sales/{order_id}/refund",
                                 who("other"), {})
        assert status == 404
        status, _ = await m.call("POST", f"/api/marketplace/sales/{order_id}/refund",
                                 who("seller", "ed", "editor"), {})
        assert status == 403
        status, order = await m.call("POST", f"/api/marketplace/sales/{order_id}/refund",
                                     who("seller"), {})
        assert status == 202 and order["status"] == "refunding"
        refunded = await m.order("buyer", order_id, "refunded")
        assert refunded["refunded_at"]
        [after] = await m.library("buyer")
        assert after["status"] == "refunded" and after["links"] == []
        status, body, _ = await get(m, url)
        assert status == 403 and b"refunded" in body
        ledger = market_services(m).ledger
        assert sorted(p["kind"] for p in await ledger.postings("seller")) == ["refund", "sale"]
        assert await ledger.audit("seller") == []
        balances = await ledger.balances("seller")
        assert balances[("external:refunds", "usd")] == 4999


async def test_the_library_is_the_buyers_own(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        licence = await bought(m, "trackout_lease")
        assert sorted(link["kind"] for link in licence["links"]) == ["mp3", "stems", "wav"]
        assert licence["rights"]["distribution_copies"] == 10_000
        lic = licence["licence_id"]
        status, one = await m.call("GET", f"/api/marketplace/library/{lic}",
                                   who("buyer", "vi", "viewer"))
        assert status == 200 and one["licence_id"] == lic and len(one["links"]) == 3
        for stranger in ("seller", "other"):
            status, _ = await m.call("GET", f"/api/marketplace/library/{lic}", who(stranger))
            assert status == 404
        status, _ = await m.call("GET", "/api/marketplace/library")
        assert status == 401


async def test_a_sandbox_sale_is_marked_in_the_sellers_own_pages(tmp_path: Path) -> None:
    """A sandbox sale (a test-mode key's, simulated) is bought by the seller's own account,
    so a signed-in seller sees its order and licence in the module's own routes: each says
    ``sandbox``, a real sale's does not, so the page can tell a test from a sale."""
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        real = await bought(m)
        beat = await m.beat("seller", title="Test Drive")

        async def unmarked(tx: Any, object_id: str) -> None:
            """The platform's sandbox marks are not what this test reads."""

        services = market_services(m)
        sale = await SandboxSales(services.store, services.fulfilment).sell(
            "seller", beat["beat_id"], "wav_lease", mark=unmarked)
        assert real["sandbox"] is False
        status, order = await m.call("GET", f"/api/marketplace/orders/{real['order_id']}",
                                     who("buyer"))
        assert status == 200 and order["sandbox"] is False
        [test] = await m.library("seller")
        assert (test["licence_id"], test["sandbox"]) == (sale.licence.licence_id, True)
        status, one = await m.call("GET", f"/api/marketplace/library/{test['licence_id']}",
                                   who("seller"))
        assert status == 200 and one["sandbox"] is True
        status, order = await m.call("GET", f"/api/marketplace/orders/{sale.order.order_id}",
                                     who("seller"))
        assert status == 200 and (order["status"], order["sandbox"]) == ("paid", True)


BIG = 48 * 1024 * 1024  # far more than the sockets' buffers hold: an abort is partial


async def big_download(m: Market) -> tuple[str, bytes]:
    """A licence whose one file is :data:`BIG` bytes: its link and the file."""
    data = bytes(range(256)) * (BIG // 256)
    big = m.assets.add("seller", "big-mp3", data)
    licence = await bought(m, "mp3_lease", files=[
        {"kind": "mp3", "asset_id": big, "name": "big.mp3"}])
    return link_of(licence, "mp3"), data


async def link_served(m: Market) -> int:
    """The bytes the one download link has served, as the server counts them."""
    return int(await market_services(m).store.db.fetchval(
        "SELECT served FROM mkt_download_links"))


async def test_an_aborted_download_resumed_from_where_it_stopped_counts_once(
        db_url: str, tmp_path: Path) -> None:
    """A whole download the buyer's connection drops part-way is charged only what it
    sent, so resuming it with ``Range: bytes=<received>-`` adds up to one download."""
    async with market(tmp_path, db_url) as m:
        url, data = await big_download(m)
        received = 4 * 1024 * 1024
        answer = await m.client.get(url)
        assert answer.status == 200 and answer.headers["Content-Length"] == str(BIG)
        head = await answer.content.readexactly(received)
        answer.close()  # the connection drops
        assert (await m.library("buyer"))[0]["downloads"] == 1
        async with asyncio.timeout(30):  # the server notices, and gives back what it kept
            while (served := await link_served(m)) == BIG:
                await asyncio.sleep(0.05)
        assert received <= served < BIG
        answer = await m.client.get(url, headers={"Range": f"bytes={received}-"})
        assert answer.status == 206
        assert answer.headers["Content-Range"] == f"bytes {received}-{BIG - 1}/{BIG}"
        assert head + await answer.read() == data
        assert (await m.library("buyer"))[0]["downloads"] == 1
        assert await link_served(m) == BIG  # one file's worth, no more
        # the resent bytes were free once: the whole file again is another download
        answer = await m.client.get(url, headers={"Range": "bytes=0-"})
        assert answer.status == 206 and await answer.read() == data
        assert (await m.library("buyer"))[0]["downloads"] == 2


async def test_a_resume_before_the_drop_is_noticed_still_counts_once(
        db_url: str, tmp_path: Path) -> None:
    """A download manager resumes the moment its connection drops, before the server's
    answer has noticed: the resume is charged while the cut answer still holds the whole
    file, so the licence counts two downloads for a while. The cut answer's end credits
    what it never sent, and the resume's end the bytes the cut answer sent last that it
    sent again: the download counts once. A later request that sends none of them is
    credited nothing more (they stay free for the next), and one that is cut before
    sending them is credited only its own unsent bytes."""
    async with market(tmp_path, db_url) as m:
        link = mp3_link(await bought(m))  # a limit of 3; the mp3 is 11 bytes
        delivery = market_services(m).delivery

        async def downloads() -> int:
            return int((await m.library("buyer"))[0]["downloads"])

        cut = await delivery.download(*link, asked=Asked())
        resume = await delivery.download(*link, asked=Asked(range="bytes=2-"))
        assert await downloads() == 2  # the cut answer has not ended yet
        await delivery.sent(cut, FileSent(0, 11, 4))  # 4 sent; the buyer got 2
        assert await downloads() == 2  # its last 4 bytes wait for the resume's end
        await delivery.sent(resume, FileSent(2, 9, 9))  # it sent 2 of them again
        assert await downloads() == 1
        # the whole file again, cut after 5 bytes while a later request asks for none of
        # them: only what it never sent is credited, and its 5 stay free for a resume
        cut = await delivery.download(*link, asked=Asked())
        other = await delivery.download(*link, asked=Asked(range="bytes=8-"))
        assert await downloads() == 3
        await delivery.sent(cut, FileSent(0, 11, 5))
        await delivery.sent(other, FileSent(8, 3, 3))
        assert await downloads() == 2
        resume = await delivery.download(*link, asked=Asked(range="bytes=0-4"))
        assert resume.charge is not None and resume.charge.charged == 0
        await delivery.sent(resume, FileSent(0, 5, 5))
        assert await downloads() == 2


async def test_cut_answers_ending_late_are_credited_only_what_was_sent_again(
        tmp_path: Path) -> None:
    """Two whole downloads cut after 10 of 11 bytes, and a third request that began before
    they ended and was cut before it sent a byte: the third sent none of their bytes
    again, so nothing of theirs is credited for it (20 bytes went out: two downloads),
    and their last bytes stay free, once, for the next request."""
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        link = mp3_link(await bought(m))  # a limit of 3; the mp3 is 11 bytes
        delivery = market_services(m).delivery
        answers = [await delivery.download(*link, asked=Asked()) for _ in range(3)]
        for answer, sent in zip(answers, (10, 10, 0), strict=True):
            await delivery.sent(answer, FileSent(0, 11, sent))
        assert (await m.library("buyer"))[0]["downloads"] == 2
        again = await delivery.download(*link, asked=Asked(range="bytes=0-9"))
        assert again.charge is not None and again.charge.charged == 0
        again = await delivery.download(*link, asked=Asked(range="bytes=0-9"))
        assert again.charge is not None and again.charge.charged == 10


async def test_whole_downloads_sent_in_full_each_count(db_url: str,
                                                       tmp_path: Path) -> None:
    async with market(tmp_path, db_url) as m:
        url, data = await big_download(m)
        for downloads in (1, 2):
            status, body, _ = await get(m, url)
            assert status == 200 and body == data
            assert (await m.library("buyer"))[0]["downloads"] == downloads
        assert await link_served(m) == 2 * BIG
        assert (await m.client.head(url)).status == 200
        assert (await m.library("buyer"))[0]["downloads"] == 2
