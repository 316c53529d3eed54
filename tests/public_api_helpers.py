"""A running server with two people, each with an API key of every public-API scope."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from accounts_helpers import Person, accounts_server
from smtp_server import SmtpServer

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


@asynccontextmanager
async def two_people(tmp_path: Path, smtp: SmtpServer, **overrides: Any
                     ) -> AsyncIterator[tuple[Any, Caller, Caller]]:
    """A server, Ada's key and Bob's key."""
    async with accounts_server(tmp_path, smtp, **overrides) as (app, config), \
            aiohttp.ClientSession() as http:
        ada_person, ada = await person_with_key(config.base_url, smtp, "ada@example.org", http)
        bob_person, bob = await person_with_key(config.base_url, smtp, "bob@example.org", http)
        try:
            yield app, ada, bob
        finally:
            await ada_person.close()
            await bob_person.close()
