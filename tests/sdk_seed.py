"""Plug-in resources for the SDK tests, made through the plug-ins' own services: three
releases (rel-2 gated and queued for delivery to a fake store), one royalty statement,
three beats (beat-3 newest), an order of beat-2 and a licence the account bought."""

from __future__ import annotations

import time
from typing import Any

from distribution_helpers import make_art, make_audio, release_dict
from public_api_helpers import SCOPES, Caller, account_folder

from business.distribution.services import services as distribution
from business.marketplace.models import Beat, BeatFile, Licence, Order, Tier
from business.marketplace.services import services as marketplace
from dawserver.keys import PLUGIN_CONTEXT_KEY

PLUGIN_SCOPES = ["distribution.read", "distribution.royalties", "marketplace.read",
                 "marketplace.library"]
STATEMENT = ("store,territory,isrc,units,amount,currency\n"
             "S,US,QZABC2600001,1,10.00,USD\nS,FR,QZABC2600001,2,3.50,EUR\n")


def store_settings(store_url: str) -> dict[str, Any]:
    """The ``plugins`` setting delivering to a fake store at ``store_url``."""
    return {"distribution": {"stores": {"fake": {
        "url": store_url, "token": "secret", "dpid": "PADPIDA0000000001Z"}}}}


async def key_for_sdk(person: Any, caller: Caller) -> Caller:
    """Another key of ``caller``'s account: the project scopes and the plug-ins' read scopes."""
    status, key, _ = await person.call("POST", f"/accounts/{person.id}/keys",
                                       {"name": "sdk", "scopes": SCOPES + PLUGIN_SCOPES})
    assert status == 201, key
    return Caller(caller.base_url, key["key"], caller.person_id, caller.http)


def _beat(seller: str, beat_id: str, made: float) -> Beat:
    tier = Tier("wav_lease", "WAV lease", 2999, "usd", ("wav",), {"streams": 100000}, False, 3)
    return Beat(seller, beat_id, f"Beat {beat_id}", 90, "A minor", "trap", "dark", ["night"],
                "usd", "on_sale", made, [BeatFile("f1", "wav", "a" * 64)], [tier])


async def seed(app: Any, account_id: str) -> None:
    """Make the resources above for ``account_id`` (files in its distribution folder)."""
    context = app[PLUGIN_CONTEXT_KEY]
    module = distribution(context)
    root = account_folder(app, account_id)
    art = make_art(root / "cover.jpg")
    audio = make_audio(root / "render.wav", seconds=1.0)
    for n in (1, 2, 3):
        await module.catalog.save_release(account_id, release_dict(
            root, art=art, audio=[audio], release_id=f"rel-{n}", isrc_base=n))
    snapshot_id = await module.catalog.snapshot(account_id, "rel-2")
    await module.pipeline.enqueue(account_id, "rel-2", ["fake"], snapshot_id=snapshot_id)
    await module.royalties.import_statement(account_id, STATEMENT, "nov.csv")

    store = marketplace(context).store
    now = time.time()
    for n in (1, 2, 3):
        await store.insert_beat(_beat(account_id, f"beat-{n}", now + n))
    order = Order(account_id, "order-1", "beat-2", "wav_lease", "buyer-x", 2999, "usd", False,
                  "paid", "acct_1", "cs_1", "pi_1", "", now, now + 1)
    bought = Licence("seller-x", "lic-1", "order-x", "beat-x", "wav_lease", account_id,
                     "Beat beat-x", [BeatFile("f1", "wav", "a" * 64)], {"streams": 100000},
                     False, 0, 3, "active", now + 1)
    async with store.db.transaction() as tx:
        await store.insert_order(tx, order)
        await store.insert_licence(tx, bought)
