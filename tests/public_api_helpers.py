"""A running server with people signed in, each with an API key of every public-API scope."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
from accounts_helpers import Person, accounts_server
from distribution_helpers import make_art, make_audio, release_dict
from smtp_server import SmtpServer

from business.distribution.services import services as distribution
from business.social.models import ChannelTokens
from dawserver.keys import PLUGIN_CONTEXT_KEY

SCOPES = ["account.read", "projects.create", "project.read", "project.edit", "project.manage"]


def wav_bytes(seconds: float = 0.2, rate: int = 8000) -> bytes:
    """A small mono 16-bit WAV file."""
    frames = b"\x00\x10" * int(seconds * rate)
    return (b"RIFF" + struct.pack("<I", 36 + len(frames)) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" +
            struct.pack("<I", len(frames)) + frames)


@dataclass
class Caller:
    """One person's API key, and calls made with it."""

    base_url: str
    key: str
    person_id: str
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, json: Any = None,
                   headers: dict[str, str] | None = None, data: bytes | None = None
                   ) -> tuple[int, Any, Any]:
        """``(status, body, headers)``; JSON and problem+json bodies are decoded."""
        sent = {"Authorization": f"Bearer {self.key}", **(headers or {})}
        async with self.http.request(method, self.base_url + path, json=json, data=data,
                                     headers=sent) as response:
            raw = await response.read()
            body: Any = raw
            if response.content_type in ("application/json", "application/problem+json"):
                body = await response.json(content_type=None)
            return response.status, body, response.headers


async def person_with_key(base_url: str, smtp: SmtpServer, email: str,
                          http: aiohttp.ClientSession) -> tuple[Person, Caller]:
    """A signed-up person and a key of their own account with :data:`SCOPES`."""
    person = Person(base_url, smtp, email)
    await person.sign_up_and_in(email.split("@")[0])
    status, key, _ = await person.call("POST", f"/accounts/{person.id}/keys",
                                       {"name": "api", "scopes": SCOPES})
    assert status == 201, key
    return person, Caller(base_url, key["key"], person.id, http)


async def key_of(person: Person, caller: Caller, scopes: list[str], *, test: bool = False
                 ) -> Caller:
    """Another key of ``person``'s account holding ``scopes`` (``test``: a test-mode key)."""
    status, made, _ = await person.call("POST", f"/accounts/{person.id}/keys",
                                        {"name": "test" if test else "live", "scopes": scopes,
                                         "test": test})
    assert status == 201 and made["key"].startswith("mbk_test_" if test else "mbk_live_"), made
    return Caller(caller.base_url, made["key"], caller.person_id, caller.http)


class Account(NamedTuple):
    """A signed-in person and a key of their account."""

    person: Person
    key: Caller


#: Who :func:`signed_in` signs in unless told.
ADA_AND_BOB = ("ada@example.org", "bob@example.org")


@asynccontextmanager
async def signed_in(tmp_path: Path, smtp: SmtpServer, *emails: str, **overrides: Any
                    ) -> AsyncIterator[tuple[Any, ...]]:
    """A server (``overrides`` its settings) and, for each of ``emails`` (Ada and Bob
    unless told), the person signed in with a key of :data:`SCOPES`:
    ``(app, Account, ...)``."""
    async with accounts_server(tmp_path, smtp, **overrides) as (app, config), \
            aiohttp.ClientSession() as http:
        made: list[Account] = []
        try:
            for email in emails or ADA_AND_BOB:
                made.append(Account(*await person_with_key(config.base_url, smtp, email,
                                                           http)))
            yield (app, *made)
        finally:
            for account in made:
                await account.person.close()


@asynccontextmanager
async def two_people(tmp_path: Path, smtp: SmtpServer, **overrides: Any
                     ) -> AsyncIterator[tuple[Any, Caller, Caller]]:
    """A server, Ada's key and Bob's key."""
    async with signed_in(tmp_path, smtp, **overrides) as (app, ada, bob):
        yield app, ada.key, bob.key


async def ids(caller: Caller | Person, path: str) -> list[str]:
    """The ids of the list at ``path`` (with a key or signed in)."""
    status, page, _ = await caller.call("GET", path)
    assert status == 200, (path, page)
    return [item["id"] for item in page["data"]]


# -- plug-in data ----------------------------------------------------------------------


def account_folder(app: Any, account_id: str) -> Path:
    """The account's distribution folder on the server (made): a release may name the
    files there (and its renders), nothing else."""
    folder = distribution(app[PLUGIN_CONTEXT_KEY]).catalog.media_folder(account_id)
    assert folder is not None, account_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def release_body(folder: Path, n: int) -> dict[str, Any]:
    """The distribution plug-in's release ``rel-{n}``: cover art and one track in ``folder``
    (to pass the files check, the account's folder: :func:`account_folder`)."""
    art = make_art(folder / "cover.jpg")
    audio = make_audio(folder / "render.wav", seconds=1.0)
    return release_dict(folder, art=art, audio=[audio], release_id=f"rel-{n}", isrc_base=n)


async def upload(caller: Caller, path: Path) -> Path:
    """Upload ``path`` to the distribution folder of ``caller``'s account (a live key with
    ``distribution.releases``); the server path a release names it by."""
    status, made, _ = await caller.call("PUT", f"/api/distribution/files/{path.name}",
                                        data=path.read_bytes(),
                                        headers={"Content-Type": "application/octet-stream"})
    assert status in (200, 201), made
    return Path(made["path"])


async def post_releases(caller: Caller, folder: Path, count: int = 3) -> None:
    """Releases ``rel-1`` to ``rel-{count}`` of ``caller``'s account, through the plug-in:
    their cover and track made in ``folder`` and uploaded to the account first."""
    local = release_body(folder, 1)
    art = await upload(caller, Path(local["artwork_path"]))
    audio = await upload(caller, Path(local["tracks"][0]["audio_path"]))
    for n in range(1, count + 1):
        body = release_dict(folder, art=art, audio=[audio], release_id=f"rel-{n}", isrc_base=n)
        status, made, _ = await caller.call("POST", "/api/distribution/releases", body)
        assert status == 201, made


async def x_channel(module: Any, tx: Any, account_id: str) -> str:
    """A connected X channel of ``account_id`` in the social plug-in ``module``; its id."""
    box = module.channels.box
    sealed = ChannelTokens(box.seal("a"), box.seal("r"), None, "", 1, 0.0, 0.0)
    return await module.store.insert_channel(tx, account_id, "x", "remote-ada", "Ada", "@ada",
                                             sealed, "p", 0.0)
