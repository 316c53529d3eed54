"""Delivery: signed, expiring download links to a licence's files, with download limits.

A link is ``/api/marketplace/downloads/<licence>/<file>?expires=<unix time>&signature=<hex>``
where the signature is HMAC-SHA256, under a key derived from the server's secret for this
purpose alone, over ``"<licence>\\x1f<file>\\x1f<expires>"``. Anyone holding a live link may
download (as with a presigned object-store URL); a changed licence, file or expiry, or a
link past its expiry, is refused. Each link counts one download against the licence's
limit the first time it is used (one conditional ``UPDATE``, so racing downloads cannot
pass it; ``mkt_download_links`` remembers the link until it expires), and each later
request of it for the whole file counts again; the ranges a player or download manager
asks for, and a resumed download, count nothing more; a revalidation answered 304, or a
request whose precondition fails (412), counts nothing. A request is counted by what it
asks for before it is answered; once answered (or cut short) what it did not send is
credited back (:meth:`Delivery.sent`), so a download aborted part-way and resumed counts
once, even when the resume came before the server noticed the drop. A refunded licence
downloads nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlencode

from business.marketplace.errors import DownloadRefused, NotFoundHere
from business.marketplace.models import ACTIVE, BeatFile, Licence
from business.marketplace.store import MarketStore
from dawserver.plugin_api import FileSent, Preconditions, if_range_holds

PREFIX = "/api/marketplace/downloads"
#: ``asset_file(seller_account, asset_id)``: the local file of a platform asset (None:
#: not known here).
AssetFile = Callable[[str, str], Awaitable[str | None]]
#: The most of the bytes an answer cut short sent last that its resume gets again free: what
#: socket buffers (the server's and the buyer's) may have held when the connection dropped.
RESEND_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True)
class LinkSigner:
    """Signs and checks download links."""

    key: bytes
    ttl_s: int = 3600

    def signature(self, licence_id: str, file_id: str, expires: int) -> str:
        message = f"{licence_id}\x1f{file_id}\x1f{expires}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def link(self, licence_id: str, file_id: str, now: float | None = None) -> tuple[str, int]:
        """A link to one file of a licence and when it expires."""
        expires = int(time.time() if now is None else now) + self.ttl_s
        query = urlencode({"expires": expires,
                           "signature": self.signature(licence_id, file_id, expires)})
        return f"{PREFIX}/{licence_id}/{file_id}?{query}", expires

    def check(self, licence_id: str, file_id: str, expires: int, signature: str,
              now: float | None = None) -> None:
        """Nothing for a live link we signed; else :class:`DownloadRefused`."""
        good = self.signature(licence_id, file_id, expires)
        if not hmac.compare_digest(good.encode(), signature.lower().encode()):
            raise DownloadRefused("this download link is not one we signed (it was changed "
                                  "or made up): open your library for a fresh link")
        if (time.time() if now is None else now) >= expires:
            raise DownloadRefused("this download link has expired: open your library for a "
                                  "fresh link")


@dataclass(frozen=True)
class Charge:
    """What a counted request was charged to its link: ``asked`` bytes of the file (of
    ``size``) from byte ``first``, ``charged`` of them (the rest were resent free), as
    the link's request number ``request``."""

    account_id: str
    licence_id: str
    file_id: str
    expires: int
    first: int
    asked: int
    charged: int
    size: int
    request: int


@dataclass(frozen=True)
class Download:
    """A file to send: where it lies, what to call it and what its request was charged
    (None: nothing, a HEAD)."""

    path: Path
    name: str
    kind: str
    charge: Charge | None = None


@dataclass(frozen=True)
class Asked:
    """What a download request asks of a file: its method and ``Range`` header (with
    ``If-Range``, which may turn a range into the whole file), and its other
    preconditions, which may turn the answer into a 304 or 412 with no body."""

    method: str = "GET"
    range: str | None = None
    if_range: str | None = None
    preconditions: Preconditions = Preconditions()
    bodiless: bool = False

    def span(self, size: int) -> tuple[int, int]:
        """The part of the file's ``size`` bytes the answer may send, at most, as (its
        first byte, how many bytes): none for HEAD; a single ``bytes=`` range (clipped
        to the file); the whole file, from byte 0, for anything else (no range, several,
        one unreadable, or an ``If-Range`` not yet :meth:`resolved`); none for an answer
        :meth:`resolved` to be a 304 or 412."""
        if self.method == "HEAD" or self.bodiless:
            return 0, 0
        if not self.range or self.if_range is not None:
            return 0, size
        unit, _, spec = self.range.partition("=")
        first, dash, last = spec.strip().partition("-")
        if unit.strip().lower() != "bytes" or "," in spec or not dash:
            return 0, size
        try:
            if not first.strip():  # the last N bytes
                count = max(0, min(size, int(last)))
                if count == 0:  # "bytes=-0": aiohttp sends the whole file (206)
                    return 0, size
                start = size - count
            else:
                start = int(first)
                end = min(size - 1, int(last)) if last.strip() else size - 1
                count = max(0, end - start + 1)
        except ValueError:
            return 0, size
        return (0, count) if count in (0, size) else (start, count)

    def resolved(self, stat: os.stat_result) -> Asked:
        """What this request asks of the file of ``stat``: its ``Range`` (``If-Range``
        dropped) while its ``If-Range`` holds, the whole file once it no longer does
        (the file answer decides the same, :func:`if_range_holds`); ``bodiless`` where
        the file answer will be a 304 or 412 (:class:`Preconditions`)."""
        bodiless = self.preconditions.answer(stat) is not None
        if self.if_range is None:
            return replace(self, bodiless=bodiless)
        return replace(self, range=self.range if if_range_holds(self.if_range, stat) else None,
                       if_range=None, bodiless=bodiless)


class Delivery:
    """The buyer's library and downloads."""

    def __init__(self, store: MarketStore, signer: LinkSigner,
                 asset_file: AssetFile | None) -> None:
        self.store = store
        self.signer = signer
        self.asset_file = asset_file

    def links(self, licence: Licence) -> list[dict[str, object]]:
        """Fresh links to the licence's files (none for a refunded licence)."""
        if licence.status != ACTIVE:
            return []
        found = []
        for f in licence.files:
            url, expires = self.signer.link(licence.licence_id, f.file_id)
            found.append({"file_id": f.file_id, "kind": f.kind, "name": f.name,
                          "url": url, "expires_at": expires})
        return found

    async def library(self, buyer: str) -> list[tuple[Licence, list[dict[str, object]]]]:
        """The buyer's licences, newest first, each with fresh download links."""
        return [(lic, self.links(lic)) for lic in await self.store.licences_of_buyer(buyer)]

    async def licence_of_buyer(self, buyer: str, licence_id: str) -> Licence:
        licence = await self.store.licence(licence_id)
        if licence is None or licence.buyer_account != buyer:
            raise NotFoundHere(f"no licence {licence_id!r} of yours")
        return licence

    async def download(self, licence_id: str, file_id: str, expires: int,
                       signature: str, *, asked: Asked | None = None) -> Download:
        """Check a link, count what the request serves (:meth:`.Store.count_download`:
        one download per file's worth of bytes the link serves, at least one) and say
        which file to send."""
        self.signer.check(licence_id, file_id, expires, signature)
        licence = await self.store.licence(licence_id)
        item: BeatFile | None = licence.file(file_id) if licence else None
        if licence is None or item is None:
            raise NotFoundHere(f"licence {licence_id!r} has no file {file_id!r}")
        if licence.status != ACTIVE:
            raise DownloadRefused("this licence was refunded, so its files can no longer be "
                                  "downloaded")
        local = (await self.asset_file(licence.account_id, item.asset_id) if self.asset_file
                 else None)
        if not local or not Path(local).is_file():
            raise NotFoundHere(f"the file {item.name or item.kind!r} is not available on "
                               "this server: ask the seller to upload it again")
        stat = Path(local).stat()
        size = stat.st_size
        asked = (asked or Asked()).resolved(stat)
        charge = None
        if asked.method != "HEAD" and not asked.bodiless:  # a 304 or 412 sends nothing
            first, wanted = asked.span(size)
            counted = await self.store.count_download(
                licence.account_id, licence_id, file_id, expires, time.time(),
                served=wanted, size=size, first=first)
            if counted is None:
                current = await self.store.licence(licence_id)
                if current is not None and current.status != ACTIVE:
                    raise DownloadRefused("this licence was refunded, so its files can no "
                                          "longer be downloaded")
                raise DownloadRefused(f"this licence's {licence.download_limit} downloads "
                                      "are used up: ask the seller to raise the limit")
            charge = Charge(licence.account_id, licence_id, file_id, expires, first, wanted,
                            counted.charged, size, counted.request)
        suffix = Path(local).suffix
        name = item.name or f"{licence.title} ({item.kind}){suffix}"
        return Download(Path(local), name, item.kind, charge)

    async def sent(self, download: Download, sent: FileSent) -> None:
        """Once a download is answered: credit its link with what it was charged for and
        did not send (:meth:`.Store.credit_download`), and for an answer cut short, keep
        the bytes it sent last (up to :data:`RESEND_LIMIT`) free for the resume that asks
        for them again, since they may never have reached the buyer (or for the resume
        that came before this answer ended, once it has sent them again)."""
        charge = download.charge
        if charge is None:
            return
        resend = None
        if not sent.complete and sent.sent > 0:
            end = sent.first + sent.sent
            resend = (max(sent.first, end - RESEND_LIMIT), end)
        await self.store.credit_download(
            charge.account_id, charge.licence_id, charge.file_id, charge.expires,
            request=charge.request, size=charge.size,
            unsent=min(charge.charged, charge.asked - sent.sent),
            sent=(sent.first, sent.first + sent.sent), resend=resend)
