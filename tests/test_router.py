"""The route contract: incomplete declarations are refused at startup, input is validated."""

from __future__ import annotations

import asyncio
import gzip
import itertools
from collections.abc import AsyncIterator
from email.utils import formatdate
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import Field

from dawserver.file_answer import entity_tag
from dawserver.openapi import openapi_document
from dawserver.plugin_api import (
    JSON_BODY_LIMIT,
    PUBLIC,
    Empty,
    FileReply,
    FileSent,
    Media,
    Model,
    Permission,
    PluginError,
    Preconditions,
    Principal,
    Query,
    Reply,
    Role,
    Route,
    hookimpl,
)
from dawserver.plugins import install, load_plugins

WRITE = Permission("echo.write", "echo things back", Role.EDITOR)


class Shout(Model):
    text: str
    times: int = Field(1, ge=1, le=3)


class Loud(Query):
    volume: int = Field(5, ge=0, le=11)


class Echo(Model):
    said: str


async def echo(request) -> Echo:  # noqa: ANN001 - plugin_api.Request
    """Say it back."""
    return Echo(said=request.body.text * request.body.times + "!" * request.query.volume)


async def liar(request) -> dict:  # noqa: ANN001
    """Answer something that is not an Echo."""
    return {"said": 5, "extra": True}


async def odd_status(request) -> Reply:  # noqa: ANN001
    """Answer with a status the route does not declare."""
    return Reply({"said": "x"}, status=203)


def _route(**changes: object) -> Route:
    fields = {"method": "POST", "path": "/echo", "handler": echo, "permission": WRITE,
              "body": Shout, "query": Loud, "response": Echo}
    return Route(**{**fields, **changes})  # type: ignore[arg-type]


class EchoPlugin:
    """A plug-in serving the given routes, declaring ``echo.write``."""

    PLUGIN_NAME = "echo"

    def __init__(self, *routes: Route, declare: bool = True) -> None:
        self.served = list(routes)
        self.declare = declare

    @hookimpl
    def permissions(self) -> list[Permission]:
        return [WRITE] if self.declare else []

    @hookimpl
    def routes(self, context: object) -> list[Route]:
        return self.served


def _install(tmp_path: Path, plugin: EchoPlugin, **settings: object) -> web.Application:
    app = web.Application(**settings)
    config = {"data_dir": tmp_path, "plugins": {"distribution": False}}
    install(app, config, manager=load_plugins(config, entry_points=False, extra=[plugin]),
            identify=lambda request: Principal("acc", request.headers.get("X-Role", "owner"),
                                               "ada"))
    return app


@pytest.mark.parametrize("changes,message", [
    ({"permission": Permission("echo.other", "undeclared")}, "is not declared by any plug-in"),
    ({"permission": "echo.write"}, "is not declared by any plug-in"),
    ({"body": None}, "declares no request body"),
    ({"method": "GET"}, "a GET route takes no body"),
    ({"response": None}, "declares no response"),
    ({"response": object}, "has no JSON schema"),
    ({"query": Shout}, "query must be a plugin_api.Query model"),
    ({"handler": lambda request: None}, "the handler must be an async function"),
])
def test_an_incomplete_route_cannot_be_registered(tmp_path: Path, changes: dict,
                                                   message: str) -> None:
    with pytest.raises(PluginError, match=message) as caught:
        _install(tmp_path, EchoPlugin(_route(**changes)))
    assert "plug-in 'echo', route " in str(caught.value)


def test_a_route_given_as_a_tuple_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="return plugin_api.Route declarations"):
        _install(tmp_path, EchoPlugin(("GET", "/echo", echo)))  # type: ignore[arg-type]


def test_a_route_naming_a_permission_nobody_declares_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match=r"route POST /echo: permission .*echo.write"):
        _install(tmp_path, EchoPlugin(_route(), declare=False))


def test_input_is_validated_before_the_handler_and_answers_are_checked(tmp_path: Path
                                                                        ) -> None:
    plugin = EchoPlugin(_route(), _route(path="/liar", handler=liar, body=Empty, query=None),
                        _route(path="/odd", handler=odd_status, permission=PUBLIC,
                               body=Empty, query=None))

    async def go() -> None:
        async with TestClient(TestServer(_install(tmp_path, plugin))) as client:
            async def call(path: str, **kwargs: object) -> tuple[int, dict]:
                async with client.post(path, **kwargs) as answer:
                    return answer.status, await answer.json()

            assert await call("/echo?volume=2", json={"text": "hi", "times": 2}) == (
                200, {"said": "hihi!!"})
            status, body = await call("/echo", json={"text": "hi", "times": 9})
            assert status == 422 and body["fields"] == [
                {"path": "body.times", "message": "Input should be less than or equal to 3"}]
            assert "body.times" in body["error"]
            status, body = await call("/echo?volume=loud", json={"text": "hi"})
            assert status == 422 and body["fields"][0]["path"] == "query.volume"
            status, body = await call("/echo", json={"txt": "hi"})
            assert status == 422
            assert {f["path"] for f in body["fields"]} == {"body.text", "body.txt"}
            status, body = await call("/echo", data=b"{oops")
            assert status == 400 and "not valid JSON" in body["error"]
            status, body = await call("/echo", json={"text": "hi"},
                                      headers={"X-Role": "viewer"})
            assert status == 403  # the permission is checked before the input
            status, body = await call("/echo", json={"text": "x" * 2_000_000})
            assert status == 413 and "size limit" in body["error"]
            status, body = await call("/liar")
            assert status == 500 and "server log" in body["error"]
            status, body = await call("/odd")
            assert status == 500

    asyncio.run(go())


def test_a_file_reply_is_the_file_of_a_declared_type_with_its_name(tmp_path: Path) -> None:
    """A plug-in answers a file from disk (``FileReply``): its declared type, its name as
    ``inline`` or ``attachment``; a type the route does not declare is a bug (500)."""
    sheet = tmp_path / "sheet.csv"
    sheet.write_bytes(b"name,plays\nNight Drive,12\n")

    async def shown(request) -> FileReply:  # noqa: ANN001
        """The sheet, shown."""
        return FileReply(sheet, "text/csv", filename="plays \u00fc.csv",
                         headers={"Cache-Control": "private, no-cache"})

    async def saved(request) -> FileReply:  # noqa: ANN001
        """The sheet, saved."""
        return FileReply(sheet, "text/csv", filename="plays.csv", attachment=True)

    async def mistyped(request) -> FileReply:  # noqa: ANN001
        """The sheet, as a type the route does not declare."""
        return FileReply(sheet, "text/html")

    plugin = EchoPlugin(*(
        _route(method="GET", path=f"/{handler.__name__}", handler=handler, body=None,
               query=None, response=Media("text/csv"))
        for handler in (shown, saved, mistyped)))

    async def go() -> None:
        async with TestClient(TestServer(_install(tmp_path / "data", plugin))) as client:
            answer = await client.get("/shown")
            assert (answer.status, await answer.read()) == (200, sheet.read_bytes())
            assert answer.headers["Content-Type"] == "text/csv"
            assert answer.headers["Cache-Control"] == "private, no-cache"
            assert answer.headers["Content-Disposition"] == (
                "inline; filename=\"plays _.csv\"; filename*=UTF-8''plays%20%C3%BC.csv")
            answer = await client.get("/saved", headers={"Range": "bytes=0-3"})
            assert (answer.status, await answer.read()) == (206, b"name")
            assert answer.headers["Content-Disposition"].startswith("attachment; ")
            answer = await client.get("/mistyped")
            assert answer.status == 500 and "server log" in (await answer.json())["error"]

    asyncio.run(go())


def _counted_song_plugin(song: Path) -> tuple[list[FileSent], EchoPlugin]:
    """A plug-in answering ``song`` at ``GET /song_file`` with ``on_sent``, and the list
    of what each answer reported."""
    heard: list[FileSent] = []

    async def hear(sent: FileSent) -> None:
        heard.append(sent)

    async def song_file(request) -> FileReply:  # noqa: ANN001
        """The song, counted."""
        return FileReply(song, "application/octet-stream", on_sent=hear)

    return heard, EchoPlugin(_route(method="GET", path="/song_file", handler=song_file,
                                    body=None, query=None,
                                    response=Media("application/octet-stream")))


def test_a_file_reply_tells_its_plugin_what_each_answer_sent(tmp_path: Path) -> None:
    """``FileReply.on_sent`` hears, once each answer is over, which part of the file it
    was to send and how much of that it wrote: all of a whole GET or a range, nothing of
    a HEAD or a 304."""
    song = tmp_path / "song.bin"
    song.write_bytes(bytes(range(256)) * 40)  # 10,240 bytes
    heard, plugin = _counted_song_plugin(song)

    async def go() -> None:
        async with TestClient(TestServer(_install(tmp_path / "data", plugin))) as client:
            answer = await client.get("/song_file")
            assert await answer.read() == song.read_bytes()
            answer = await client.get("/song_file", headers={"Range": "bytes=100-199"})
            assert (answer.status, len(await answer.read())) == (206, 100)
            answer = await client.head("/song_file")
            assert answer.status == 200
            etag = answer.headers["ETag"]
            answer = await client.get("/song_file", headers={"If-None-Match": etag})
            assert answer.status == 304
        assert heard == [FileSent(0, 10240, 10240), FileSent(100, 100, 100),
                         FileSent(0, 0, 0), FileSent(0, 0, 0)]
        assert [sent.complete for sent in heard] == [True] * 4

    asyncio.run(go())


def _sheet_plugin(tmp_path: Path) -> tuple[Path, EchoPlugin]:
    """A small CSV file and a plug-in answering it at ``GET /sheet_file``."""
    sheet = tmp_path / "sheet.csv"
    sheet.write_bytes(b"name,plays\nNight Drive,12\n")

    async def sheet_file(request) -> FileReply:  # noqa: ANN001
        """The sheet."""
        return FileReply(sheet, "text/csv")

    return sheet, EchoPlugin(_route(method="GET", path="/sheet_file", handler=sheet_file,
                                    body=None, query=None, response=Media("text/csv")))


def test_a_range_applies_only_while_its_if_range_holds(tmp_path: Path) -> None:
    """A download resumed with ``If-Range`` gets the range only if the file is still the
    one it names (its entity tag, or not modified since its date); else the whole file
    (aiohttp alone sends the range for any entity tag, and a changed file would join
    two different ones)."""
    sheet, plugin = _sheet_plugin(tmp_path)
    whole = sheet.read_bytes()

    async def go() -> None:
        async with TestClient(TestServer(_install(tmp_path / "data", plugin))) as client:
            etag = (await client.head("/sheet_file")).headers["ETag"]
            later = formatdate(sheet.stat().st_mtime + 60, usegmt=True)
            earlier = formatdate(sheet.stat().st_mtime - 60, usegmt=True)
            for if_range, expected in ((etag, (206, whole[:4])), (later, (206, whole[:4])),
                                       ('"an-older-file"', (200, whole)),
                                       (f"W/{etag}", (200, whole)), (earlier, (200, whole)),
                                       ("not a validator", (200, whole))):
                answer = await client.get("/sheet_file", headers={
                    "Range": "bytes=0-3", "If-Range": if_range})
                assert (answer.status, await answer.read()) == expected, if_range

    asyncio.run(go())


def test_preconditions_tell_beforehand_what_the_file_answer_sends(tmp_path: Path) -> None:
    """``Preconditions.answer`` foretells the file answer's 304 or 412 (no body), or that
    it sends the file, for every mix of ``If-Match``, ``If-Unmodified-Since``,
    ``If-None-Match`` and ``If-Modified-Since`` (a route charging for what it sends asks
    it first): tried against the real answer, so an aiohttp that decides otherwise fails."""
    sheet, plugin = _sheet_plugin(tmp_path)

    async def go() -> None:
        async with TestClient(TestServer(_install(tmp_path / "data", plugin))) as client:
            etag = (await client.head("/sheet_file")).headers["ETag"]
            mtime = sheet.stat().st_mtime
            later, earlier = (formatdate(mtime + 60, usegmt=True),
                              formatdate(mtime - 60, usegmt=True))
            tags = (None, etag, f"W/{etag}", '"other"', f'"other", {etag}', "*", "garbage",
                    f'"other" junk, {etag}')
            dates = (None, later, earlier, "not a date")
            seen: dict[int, int] = {}
            for if_match, unmodified, none_match, modified in itertools.product(
                    tags, dates, tags, dates):
                asked = {name: value for name, value in (
                    ("If-Match", if_match), ("If-Unmodified-Since", unmodified),
                    ("If-None-Match", none_match), ("If-Modified-Since", modified))
                    if value is not None}
                answer = await client.get("/sheet_file", headers=asked)
                body = await answer.read()
                foretold = Preconditions.of(asked).answer(sheet.stat())
                assert (answer.status, bool(body)) == (foretold or 200, foretold is None), asked
                seen[answer.status] = seen.get(answer.status, 0) + 1
            assert set(seen) == {200, 304, 412} and min(seen.values()) > 50, seen

    asyncio.run(go())


def test_a_counted_file_answer_sends_the_file_itself_never_a_compressed_one(
        tmp_path: Path) -> None:
    """aiohttp sends a ``.gz`` or ``.br`` file lying beside the one answered to a client
    that accepts the encoding, and judges the request's preconditions by it. A counted
    answer (``on_sent``) sends the file itself: what it reports, and ``Preconditions``,
    are about that file (else a revalidation foretold as 304 went out as a whole body)."""
    song = tmp_path / "song.bin"
    song.write_bytes(bytes(range(256)) * 8)
    (tmp_path / "song.bin.gz").write_bytes(gzip.compress(song.read_bytes()))
    (tmp_path / "song.bin.br").write_bytes(b"not what was asked for")
    heard, plugin = _counted_song_plugin(song)

    async def go() -> None:
        async with TestClient(TestServer(_install(tmp_path / "data", plugin)),
                              auto_decompress=False) as client:
            plain = entity_tag(song.stat())
            for accepted in ("gzip", "br", "gzip, br", "identity"):
                answer = await client.get("/song_file", headers={"Accept-Encoding": accepted})
                assert answer.status == 200 and "Content-Encoding" not in answer.headers
                assert await answer.read() == song.read_bytes(), accepted
                asked = {"Accept-Encoding": accepted, "If-None-Match": plain}
                assert Preconditions.of(asked).answer(song.stat()) == 304
                answer = await client.get("/song_file", headers=asked)
                assert (answer.status, await answer.read()) == (304, b""), accepted
        assert [sent.sent for sent in heard] == [2048, 0] * 4

    asyncio.run(go())


async def _take_bytes(request) -> Echo:  # noqa: ANN001
    """Say how many bytes came."""
    return Echo(said=str(len(request.body)))


@pytest.mark.parametrize("changes,message", [
    ({"method": "GET", "body": None, "max_body": 10}, "takes none"),
    ({"max_body": 0}, "positive number of bytes"),
    ({"body": Media("audio/wav", stream=True), "max_body": 10}, "takes none"),
])
def test_a_body_limit_where_the_router_reads_no_body_is_refused(tmp_path: Path, changes: dict,
                                                                  message: str) -> None:
    with pytest.raises(PluginError, match=message):
        _install(tmp_path, EchoPlugin(_route(**changes)))


def test_each_route_reads_no_more_than_its_limit(tmp_path: Path) -> None:
    """JSON routes read 64 KiB unless they declare more; raw bodies the server's limit;
    a declared limit is capped by the server's; the document publishes each."""
    big = 1024 * 1024
    plugin = EchoPlugin(
        _route(), _route(path="/roomy", max_body=big),
        _route(path="/huge", max_body=64 * big),
        _route(path="/raw", handler=_take_bytes, body=Media("text/csv"), query=None))
    app = _install(tmp_path, plugin, client_max_size=4 * big)
    text = "x" * (100 * 1024)

    async def go() -> None:
        async with TestClient(TestServer(app)) as client:
            async def call(path: str, **kwargs: object) -> tuple[int, dict]:
                async with client.post(path, **kwargs) as answer:
                    return answer.status, await answer.json()

            status, body = await call("/echo", json={"text": text})
            assert status == 413 and body["limit_bytes"] == JSON_BODY_LIMIT
            assert "POST /echo: 64 KiB (65536 bytes)" in body["error"]
            assert "send at most 65536 bytes" in body["error"]
            assert await call("/echo", json={"text": "x" * 60_000}) == (
                200, {"said": "x" * 60_000 + "!" * 5})
            status, body = await call("/roomy", json={"text": text})
            assert status == 200 and len(body["said"]) == len(text) + 5
            status, body = await call("/roomy", json={"text": text * 11})
            assert status == 413 and body["limit_bytes"] == big
            assert "1 MiB" in body["error"] and "server's limit" not in body["error"]
            status, body = await call("/huge", json={"text": "x" * (5 * big)})
            assert status == 413 and body["limit_bytes"] == 4 * big  # the server's cap
            assert "the server's limit (dawserver serve --max-message-bytes)" in body["error"]
            csv = b"a,b\n" * (big // 4 * 3)
            assert await call("/raw", data=csv, headers={"Content-Type": "text/csv"}) == (
                200, {"said": str(len(csv))})
            status, body = await call("/raw", data=csv * 2, headers={"Content-Type": "text/csv"})
            assert status == 413 and body["limit_bytes"] == 4 * big

    asyncio.run(go())
    document = openapi_document(app)
    assert document["paths"]["/echo"]["post"]["x-max-body-bytes"] == JSON_BODY_LIMIT
    assert document["paths"]["/roomy"]["post"]["x-max-body-bytes"] == big


def test_a_chunked_body_past_the_limit_is_refused_before_it_ends(tmp_path: Path) -> None:
    """The body never ends: the answer can only come from a server that stopped reading."""
    app = _install(tmp_path, EchoPlugin(_route()))
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(32):  # 256 KiB, then the body stalls and never ends
            sent += 8192
            yield b" " * 8192
        await asyncio.Event().wait()

    async def go() -> tuple[int, dict, str]:
        async with asyncio.timeout(20), TestClient(TestServer(app)) as client, \
                client.post("/echo", data=endless(),
                            headers={"Content-Type": "application/json"}) as answer:
            return answer.status, await answer.json(), answer.headers.get("Connection", "")

    status, body, connection = asyncio.run(go())
    assert status == 413 and body["limit_bytes"] == JSON_BODY_LIMIT
    assert "64 KiB" in body["error"] and connection.lower() == "close"
    assert sent >= JSON_BODY_LIMIT  # it was sent more than the limit, in chunks
