"""``PluginContext.people_emails`` as the server builds it, over a real account store: a
person's own address, every member's of an organisation, nothing for the unknown."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from aiohttp import web

from accounts.models import AccountKind
from accounts.store import AccountStore
from database import open_database
from dawserver.accounts_setup import plugin_owner_emails, plugin_people_emails
from dawserver.keys import ACCOUNTS


def test_people_of_a_person_an_organisation_and_no_account(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'a.sqlite3'}") as db:
            store = AccountStore(db)
            await store.migrate()
            app = web.Application()
            people, owners = plugin_people_emails(app), plugin_owner_emails(app)
            assert await people("p_x") == []  # before the account service started
            app[ACCOUNTS] = SimpleNamespace(store=store)  # type: ignore[assignment]
            ada = await store.create_account(AccountKind.PERSON, "Ada",
                                             email="Ada@Studio.example")
            bo = await store.create_account(AccountKind.PERSON, "Bo", email="bo@x.example")
            cy = await store.create_account(AccountKind.PERSON, "Cy", email="cy@x.example")
            label = await store.create_account(AccountKind.ORGANISATION, "Label")
            await store.set_member(label.account_id, ada.account_id, "owner")
            await store.set_member(label.account_id, bo.account_id, "viewer")
            assert await people(ada.account_id) == ["ada@studio.example"]
            assert sorted(await people(label.account_id)) == ["ada@studio.example",
                                                              "bo@x.example"]
            assert await owners(label.account_id) == ["ada@studio.example"]
            assert cy.email not in await people(label.account_id)
            await store.remove_member(label.account_id, bo.account_id)
            assert await people(label.account_id) == ["ada@studio.example"]
            assert await people("o_missing") == []
    asyncio.run(go())
