"""The object store interface on local disk and on a real S3 server (SeaweedFS on
loopback): streamed and multipart writes, reads, listing, deletion, presigned URLs."""

from __future__ import annotations

import asyncio
import os
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from loopback import free_port

from dawserver.storage import (
    LocalObjectStore,
    ObjectNotFound,
    ObjectStore,
    StorageSettings,
    StorageUnavailable,
    open_object_store,
    parse_storage_url,
)
from dawserver.storage.local import LinkRefused

pytestmark = pytest.mark.asyncio
MIB = 1 << 20


def fresh_bucket() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def s3_store(s3_server, **options) -> ObjectStore:  # noqa: ANN001 - S3Server
    settings = StorageSettings(**s3_server.settings(), **options)
    store = open_object_store(f"s3://{fresh_bucket()}/some/prefix", settings)
    await store.start()
    await store.create_bucket()
    return store


@pytest_asyncio.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    if request.param == "local":
        store: ObjectStore = LocalObjectStore(tmp_path / "objects", link_key=b"k" * 32)
        await store.start()
    else:
        store = await s3_store(request.getfixturevalue("s3_server"),
                               multipart_threshold_mb=5, part_size_mb=5)
    try:
        yield store
    finally:
        await store.stop()


async def chunks(total: int, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    data = os.urandom(size)
    sent = 0
    while sent < total:
        part = data[:min(size, total - sent)]
        sent += len(part)
        yield part


async def test_small_objects_round_trip_and_are_listed_by_prefix(store: ObjectStore) -> None:
    assert await store.put("a/one.txt", b"first") == 5
    assert await store.put("a/two.txt", chunks(1000)) == 1000
    await store.put("b/three.txt", b"x")
    assert await store.get("a/one.txt") == b"first"
    assert await store.keys("a/") == ["a/one.txt", "a/two.txt"]
    assert await store.keys("a/o") == ["a/one.txt"]
    for outside in ("../", "a/../../", "/etc/", "a//"):  # never a listing outside the store
        with pytest.raises(ValueError, match="not valid"):
            await store.keys(outside)
    assert await store.exists("b/three.txt") and not await store.exists("b/four.txt")
    await store.delete("a/one.txt")
    assert not await store.exists("a/one.txt")
    with pytest.raises(ObjectNotFound):
        await store.get("a/one.txt")


async def test_a_large_streamed_upload_arrives_whole(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(13 * MIB + 123))  # three 5 MiB parts on S3, the last short
    assert await store.put_file("big/stem.bin", source) == source.stat().st_size
    copy = tmp_path / "copy.bin"
    assert await store.download("big/stem.bin", copy) == source.stat().st_size
    assert copy.read_bytes() == source.read_bytes()


async def test_downloads_of_one_object_to_one_file_at_once_all_succeed(
        store: ObjectStore, tmp_path: Path) -> None:
    # two renders missing the same cache entry: they shared one '.part' file, so the first
    # rename published a file the second was still writing and the others' renames failed
    await store.put("big/take.bin", chunks(3 * MIB))
    expected = await store.get("big/take.bin")
    copy = tmp_path / "cache" / "take.bin"
    sizes = await asyncio.gather(*(store.download("big/take.bin", copy) for _ in range(4)))
    assert sizes == [len(expected)] * 4
    assert copy.read_bytes() == expected
    assert [p.name for p in copy.parent.iterdir()] == ["take.bin"]


async def test_a_presigned_url_is_fetched_by_a_plain_client_until_it_expires(
        store: ObjectStore) -> None:
    await store.put("links/take.wav", b"RIFF-bytes")
    if isinstance(store, LocalObjectStore):  # our own route checks local links
        url = await store.presigned_url("links/take.wav", 60)
        key, _, query = url.removeprefix("/storage/").partition("?")
        fields = dict(pair.split("=") for pair in query.split("&"))
        path = store.check_link(key, int(fields["expires"]), fields["signature"])
        assert path.read_bytes() == b"RIFF-bytes"
        with pytest.raises(LinkRefused, match="expired"):
            store.check_link(key, int(fields["expires"]), fields["signature"],
                             now=int(fields["expires"]) + 1)
        with pytest.raises(LinkRefused, match="not one we signed"):
            store.check_link("links/other.wav", int(fields["expires"]), fields["signature"])
        with pytest.raises(LinkRefused, match="not one we signed"):  # not a 500
            store.check_link(key, int(fields["expires"]), "é" + fields["signature"][1:])
        return
    url = await store.presigned_url("links/take.wav", 60, filename="take.wav")
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())
    assert body == b"RIFF-bytes"
    short = await store.presigned_url("links/take.wav", 1)
    await asyncio.sleep(2.2)
    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(lambda: urllib.request.urlopen(short, timeout=10).read())
    assert refused.value.code == 403
    tampered = url.replace("links%2Ftake.wav", "links%2Fother.wav").replace(
        "links/take.wav", "links/other.wav")
    with pytest.raises(urllib.error.HTTPError) as changed:
        await asyncio.to_thread(lambda: urllib.request.urlopen(tampered, timeout=10).read())
    assert changed.value.code == 403


async def test_a_failed_multipart_upload_leaves_no_object(s3_server) -> None:  # noqa: ANN001
    store = await s3_store(s3_server, multipart_threshold_mb=5, part_size_mb=5)

    async def broken() -> AsyncIterator[bytes]:
        async for chunk in chunks(11 * MIB):
            yield chunk
        raise OSError("the client went away")

    try:
        with pytest.raises(OSError, match="went away"):
            await store.put("broken/stem.wav", broken())
        assert not await store.exists("broken/stem.wav")
        uploads = await store.client.list_multipart_uploads(Bucket=store.bucket)
        assert not uploads.get("Uploads")  # aborted, not left to linger
    finally:
        await store.stop()


async def test_an_unreachable_s3_server_is_unavailable_not_a_hang() -> None:
    store = open_object_store(f"s3://{fresh_bucket()}", StorageSettings(
        endpoint_url=f"http://127.0.0.1:{free_port()}", access_key_id="a",
        secret_access_key="b", connect_timeout=1, max_attempts=1))
    async with store, asyncio.timeout(20):
        with pytest.raises(StorageUnavailable, match="cannot be reached"):
            await store.put("x/y", b"data")
        with pytest.raises(StorageUnavailable):
            await store.exists("x/y")


async def test_storage_urls_and_keys_are_checked() -> None:
    assert parse_storage_url("s3://media/eu/assets") == ("media", "eu/assets")
    with pytest.raises(ValueError, match="s3://BUCKET/PREFIX"):
        parse_storage_url("gs://media")
    with pytest.raises(ValueError, match="not valid"):
        LocalObjectStore(Path("/tmp")).path("../etc/passwd")
    with pytest.raises(ValueError, match="unknown storage settings"):
        StorageSettings.from_mapping({"endpoint": "http://x"})


async def test_a_file_name_is_made_safe_for_content_disposition() -> None:
    from dawserver.storage.base import content_disposition

    header = content_disposition('evil".wav\r\nSet-Cookie: x=1')
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="evil_.wavSet-Cookie: x=1"; ')
    assert content_disposition("Café.wav").endswith("filename*=UTF-8''Caf%C3%A9.wav")
    assert content_disposition("") == "attachment; filename=\"download\"; filename*=UTF-8''download"


async def test_a_local_link_signs_the_name_to_save_as(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path, link_key=b"k" * 32)
    url = await store.presigned_url("links/take.wav", 60, filename="take.wav")
    key, _, query = url.removeprefix("/storage/").partition("?")
    fields = dict(pair.split("=") for pair in query.split("&"))
    expires, signature = int(fields["expires"]), fields["signature"]
    assert store.check_link(key, expires, signature, "take.wav") == store.path(key)
    with pytest.raises(LinkRefused, match="not one we signed"):
        store.check_link(key, expires, signature, "invoice.exe")


async def test_a_local_listing_walks_its_folders_off_the_event_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Listing a local store walks a folder tree (the hourly export sweep lists every
    export's scratch files): in a thread, so the rooms and live mixes on the event loop
    never wait for the disk."""
    store = LocalObjectStore(tmp_path)
    await store.put("exports/p/j.zip", b"zip")
    walked_on_loop, rglob = [], Path.rglob

    def spy(self: Path, pattern: str):  # noqa: ANN202 - Path.rglob's generator
        walked_on_loop.append(threading.current_thread() is threading.main_thread())
        return rglob(self, pattern)

    monkeypatch.setattr(Path, "rglob", spy)
    assert await store.keys("exports/") == ["exports/p/j.zip"]
    assert walked_on_loop == [False]
