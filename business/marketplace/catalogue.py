"""The catalogue's rules: beats, their files and licence tiers, and the public listing.

A beat carries files (platform assets of the seller's account, by asset id: ``mp3``,
``wav``, ``stems``, and the public preview ``tagged_mp3``) and licence tiers. Tiers not
given take the market's defaults (:data:`DEFAULT_TIERS`: MP3 lease, WAV lease, trackout
lease, unlimited, exclusive), priced in the beat's currency; a given tier may change the
price, name, rights, files delivered and download limit. Prices are positive integers
of minor units; every tier's currency is the beat's.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pycountry

from business.marketplace.errors import CatalogueInvalid, NotFoundHere
from business.marketplace.ledger import ZERO_DECIMAL, format_amount
from business.marketplace.models import ON_SALE, Beat, BeatFile, Tier
from business.marketplace.store import MarketStore, decode_cursor, encode_cursor, new_id

#: Codes of ISO 4217 that are no money to pay with (metals, funds, testing).
NOT_PAYABLE = frozenset({"xag", "xau", "xba", "xbb", "xbc", "xbd", "xdr", "xpd", "xpt",
                         "xsu", "xts", "xua", "xxx"})
#: Currencies with three decimals, which Stripe takes in multiples of ten only: refused.
THREE_DECIMALS = frozenset({"bhd", "iqd", "jod", "kwd", "lyd", "omr", "tnd"})

_UNLIMITED: dict[str, Any] = {"distribution_copies": None, "audio_streams": None,
                              "music_videos": None, "monetized_video_streams": None,
                              "radio_stations": None, "live_performances": True}

#: The market's default tiers: (name, price in major units, files, rights, limit).
DEFAULT_TIERS: dict[str, tuple[str, str, tuple[str, ...], dict[str, Any], int]] = {
    "mp3_lease": ("MP3 lease", "29.99", ("mp3",), {
        "distribution_copies": 2500, "audio_streams": 50_000, "music_videos": 1,
        "monetized_video_streams": 0, "radio_stations": 0, "live_performances": True}, 3),
    "wav_lease": ("WAV lease", "49.99", ("mp3", "wav"), {
        "distribution_copies": 5000, "audio_streams": 100_000, "music_videos": 1,
        "monetized_video_streams": 100_000, "radio_stations": 2, "live_performances": True},
        3),
    "trackout_lease": ("Trackout lease", "99.99", ("mp3", "wav", "stems"), {
        "distribution_copies": 10_000, "audio_streams": 500_000, "music_videos": 1,
        "monetized_video_streams": 500_000, "radio_stations": 2, "live_performances": True},
        5),
    "unlimited": ("Unlimited", "199.99", ("mp3", "wav", "stems"), _UNLIMITED, 10),
    "exclusive": ("Exclusive rights", "499.99", ("mp3", "wav", "stems"), _UNLIMITED, 10),
}
EXCLUSIVE = "exclusive"

#: The largest bound a filter compares with: every database takes it as a 32-bit integer,
#: and a larger one filters the same (no price or BPM comes near it).
FILTER_BOUND = 2**31 - 1

_KEY = re.compile(r"^\s*([A-Ga-g])\s*([#b♯♭]?)\s*(major|maj|minor|min|m)?\s*$", re.I)


def check_currency(currency: str, field: str = "currency") -> str:
    """``currency`` as Stripe writes it (``usd``), or :class:`CatalogueInvalid`."""
    code = currency.strip().lower()
    if (len(code) != 3 or pycountry.currencies.get(alpha_3=code.upper()) is None
            or code in NOT_PAYABLE):
        raise CatalogueInvalid(
            f"currency {currency!r} is not an ISO 4217 currency to pay with: use a code "
            "such as usd, eur, gbp or jpy", [{"path": field, "message": "unknown currency"}])
    if code in THREE_DECIMALS:
        raise CatalogueInvalid(f"currency {code} has three decimals, which checkout does not "
                               "take: price the beat in another currency",
                               [{"path": field, "message": "unsupported currency"}])
    return code


def normal_key(text: str) -> str:
    """A musical key as ``C# minor`` / ``Eb major``, or :class:`CatalogueInvalid`."""
    found = _KEY.match(text)
    if not found:
        raise CatalogueInvalid(f"key {text!r} is not a musical key: write it like 'C minor', "
                               "'F# major' or 'Am'", [{"path": "key", "message": "bad key"}])
    note, accidental, mode = found.groups()
    accidental = {"♯": "#", "♭": "b"}.get(accidental, accidental)
    minor = (mode or "").lower() in ("m", "min", "minor")
    return f"{note.upper()}{accidental} {'minor' if minor else 'major'}"


def _bound(value: int) -> int:
    """A filter's bound as the database can compare it (see :data:`FILTER_BOUND`)."""
    return max(-FILTER_BOUND, min(int(value), FILTER_BOUND))


def default_price(price: str, currency: str) -> int:
    """A default price in ``currency``'s minor units (whole units without decimals)."""
    value = Decimal(price)
    if currency in ZERO_DECIMAL:
        return int(value.to_integral_value()) * 100
    return int(value * 100)


#: The largest price Stripe takes, in minor units (a tier's or a membership plan's).
STRIPE_MAX_AMOUNT = 99_999_999


def _price(value: Any, tier: str, currency: str, path: str) -> int:
    if type(value) is not int or value <= 0:
        raise CatalogueInvalid(
            f"price of tier {tier!r} must be a positive whole number of minor units "
            f"(for {currency.upper()}, {format_amount(2999, currency)} is 2999); got {value!r}",
            [{"path": path, "message": "price must be a positive integer"}])
    if value > STRIPE_MAX_AMOUNT:
        raise CatalogueInvalid(f"price of tier {tier!r} is above Stripe's limit of "
                               f"{STRIPE_MAX_AMOUNT} minor units",
                               [{"path": path, "message": "price too high"}])
    return value


def build_tiers(given: list[dict[str, Any]] | None, currency: str,
                files: list[BeatFile]) -> list[Tier]:
    """The beat's tiers: ``given`` over the market defaults, checked against its files."""
    kinds = {f.kind for f in files}
    tiers: list[Tier] = []
    if given is None:  # every default tier the files can deliver
        given = [{"tier": name} for name, d in DEFAULT_TIERS.items() if set(d[2]) <= kinds]
    seen: set[str] = set()
    for n, spec in enumerate(given):
        name = spec["tier"]
        path = f"body.tiers.{n}"
        if name in seen:
            raise CatalogueInvalid(f"tier {name!r} is given twice",
                                   [{"path": path, "message": "duplicate tier"}])
        seen.add(name)
        title, price, delivered, rights, limit = DEFAULT_TIERS[name]
        tier_currency = spec.get("currency")
        if tier_currency is not None and check_currency(tier_currency,
                                                        f"{path}.currency") != currency:
            raise CatalogueInvalid(
                f"tier {name!r} is priced in {tier_currency.upper()} but the beat sells in "
                f"{currency.upper()}: every tier of a beat takes the beat's currency",
                [{"path": f"{path}.currency", "message": "currency mismatch"}])
        amount = (default_price(price, currency) if spec.get("price") is None
                  else _price(spec["price"], name, currency, f"{path}.price"))
        delivered = tuple(spec.get("files") or delivered)
        missing = sorted(set(delivered) - kinds)
        if missing:
            raise CatalogueInvalid(
                f"tier {name!r} delivers {', '.join(missing)} but the beat has no such file: "
                "add the file or leave the tier out",
                [{"path": f"{path}.files", "message": "file kind missing"}])
        tiers.append(Tier(name, spec.get("name") or title, amount, currency, delivered,
                          {**rights, **(spec.get("rights") or {})}, name == EXCLUSIVE,
                          int(spec.get("download_limit") or limit),
                          bool(spec.get("active", True))))
    if not tiers:
        raise CatalogueInvalid("the beat has no tier its files can deliver: add an mp3 "
                               "file (MP3 lease) or name the tiers",
                               [{"path": "body.tiers", "message": "no tier"}])
    return tiers


AssetCheck = Callable[[str, str], Awaitable[bool | None]]


class Catalogue:
    """A seller's beats and the public listing."""

    def __init__(self, store: MarketStore, asset_exists: AssetCheck | None = None) -> None:
        self.store = store
        #: ``asset_exists(account_id, asset_id)``: False refuses a file; None: unknown.
        self.asset_exists = asset_exists

    async def create(self, account_id: str, data: dict[str, Any]) -> Beat:
        """A new beat on sale from ``data`` (the checked body of ``BeatIn``)."""
        currency = check_currency(data["currency"], "body.currency")
        files = []
        for n, f in enumerate(data["files"]):
            if self.asset_exists is not None and await self.asset_exists(
                    account_id, f["asset_id"]) is False:
                raise CatalogueInvalid(
                    f"no asset {f['asset_id']!r} in your account's assets: upload it "
                    "first (POST /projects/<project>/assets) and use the id it answers",
                    [{"path": f"body.files.{n}.asset_id", "message": "unknown asset"}])
            files.append(BeatFile(new_id("file"), f["kind"], f["asset_id"],
                                  f.get("name") or ""))
        tiers = build_tiers(data.get("tiers"), currency, files)
        beat = Beat(account_id, new_id("beat"), data["title"].strip(), int(data["bpm"]),
                    normal_key(data["key"]), data.get("genre", "").strip().lower(),
                    data.get("mood", "").strip().lower(),
                    sorted({t.strip().lower() for t in data.get("tags", []) if t.strip()}),
                    currency, ON_SALE, time.time(), files, tiers)
        await self.store.insert_beat(beat)
        return beat

    async def get(self, account_id: str, beat_id: str) -> Beat:
        beat = await self.store.beat(account_id, beat_id)
        if beat is None:
            raise NotFoundHere(f"no beat {beat_id!r} in this account")
        return beat

    async def change_tier(self, account_id: str, beat_id: str, tier_name: str,
                          changes: dict[str, Any]) -> Beat:
        """Change a tier's price, name, download limit or whether it is offered; an open
        checkout keeps the price it was given."""
        beat = await self.get(account_id, beat_id)
        tier = beat.tier(tier_name)
        if tier is None:
            raise NotFoundHere(f"beat {beat_id!r} has no tier {tier_name!r}")
        price = tier.price if changes.get("price") is None else _price(
            changes["price"], tier_name, beat.currency, "body.price")
        if changes.get("currency") is not None and check_currency(
                changes["currency"], "body.currency") != beat.currency:
            raise CatalogueInvalid(
                f"the beat sells in {beat.currency.upper()}, not "
                f"{changes['currency'].upper()}: a tier takes the beat's currency",
                [{"path": "body.currency", "message": "currency mismatch"}])
        new = Tier(tier.tier, changes.get("name") or tier.name, price, tier.currency,
                   tier.files, tier.rights, tier.exclusive,
                   int(changes.get("download_limit") or tier.download_limit),
                   tier.active if changes.get("active") is None else bool(changes["active"]))
        await self.store.update_tier(account_id, beat_id, new)
        return await self.get(account_id, beat_id)

    async def listing(self, query: Any) -> tuple[list[Beat], str | None]:
        """Beats on sale matching the query's filters (``q``, where the query has one: words
        in the title or a tag), newest first; the next cursor."""
        where: list[str] = []
        args: list[Any] = []
        if query.seller:
            where.append("b.account_id = ?")
            args.append(query.seller)
        if query.bpm_min is not None:
            where.append("b.bpm >= ?")
            args.append(_bound(query.bpm_min))
        if query.bpm_max is not None:
            where.append("b.bpm <= ?")
            args.append(_bound(query.bpm_max))
        if query.key:
            where.append("b.musical_key = ?")
            args.append(normal_key(query.key))
        for column in ("genre", "mood"):
            value = getattr(query, column)
            if value:
                where.append(f"b.{column} = ?")
                args.append(value.strip().lower())
        text = getattr(query, "q", "").strip().lower()
        if text:
            like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace(
                "_", "\\_") + "%"
            where.append("(LOWER(b.title) LIKE ? ESCAPE '\\' OR b.tags LIKE ? ESCAPE '\\')")
            args += [like, like]
        if query.currency:
            where.append("b.currency = ?")
            args.append(check_currency(query.currency, "query.currency"))
        if query.price_min is not None or query.price_max is not None:
            tier = ["t.account_id = b.account_id", "t.beat_id = b.beat_id", "t.active = 1"]
            if query.price_min is not None:
                tier.append("t.price >= ?")
                args.append(_bound(query.price_min))
            if query.price_max is not None:
                tier.append("t.price <= ?")
                args.append(_bound(query.price_max))
            where.append(f"EXISTS (SELECT 1 FROM mkt_tiers t WHERE {' AND '.join(tier)})")
        if query.cursor:
            try:
                at, seller, beat_id = decode_cursor(query.cursor)
                if (type(at) not in (int, float) or not math.isfinite(at)
                        or not isinstance(seller, str) or not isinstance(beat_id, str)):
                    raise ValueError(f"cursor {query.cursor[:40]!r} is not one this server "
                                     "gave")
            except ValueError as exc:
                raise CatalogueInvalid(f"{exc}: start again without a cursor",
                                       [{"path": "query.cursor", "message": "bad cursor"}]
                                       ) from None
            where.append("(b.created_at < ? OR (b.created_at = ? AND (b.account_id < ? OR "
                         "(b.account_id = ? AND b.beat_id < ?))))")
            args += [at, at, seller, seller, beat_id]
        found = await self.store.listing(where, args, query.limit + 1)
        page = found[:query.limit]
        more = len(found) > query.limit
        last = page[-1] if page else None
        cursor = (encode_cursor(last.created_at, last.account_id, last.beat_id)
                  if more and last else None)
        return page, cursor
