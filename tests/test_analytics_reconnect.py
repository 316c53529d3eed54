"""Reconnect notices on a running server with accounts, mailing through a real SMTP
server: when an organisation's source needs reconnecting (its granter erased, or its
token dead during a run) the organisation's owners and admins get one mail with a link to
reconnect it; its members and the erased person get none, and flagging the source again
(a second erasure, another run) mails nobody again."""

from __future__ import annotations

import asyncio
import inspect
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from accounts_helpers import PASSWORD, Person, accounts_server
from smtp_server import SmtpServer, links_in

from accounts.pseudonyms import pseudonym_of
from business.analytics.connections import NEEDS_RECONNECT
from business.analytics.fakes import FAKES, FakeSources
from business.analytics.services import services
from dawserver.keys import PLUGIN_CONTEXT_KEY
from dawserver.plugin_api import Permanent

pytestmark = [pytest.mark.timeout(240)]

A = "/api/analytics"
SECRET = "label-client-secret-9f02aa"
REFRESH = "label-refresh-token-41c7de"
NOTICE = "plugin/analytics-reconnect/"
DONE = ("done", "dead", "cancelled")


async def _ok(person: Person, method: str, path: str, body: Any = None,
              status: int = 200) -> Any:
    got, answer, _ = await person.call(method, path, body)
    assert got == status, (method, path, answer)
    return answer


async def _until(check: Any, timeout: float = 90.0) -> Any:
    """Poll ``await check()`` until it answers something true; that answer."""
    async with asyncio.timeout(timeout):
        while not (found := await check()):
            await asyncio.sleep(0.1)
        return found


async def _notices(queue: Any) -> list[Any]:
    """Every reconnect notice queued so far, sent or not."""
    return [j for j in await queue.find(account_id="mail", queue="mail")
            if (j.idempotency_key or "").startswith(NOTICE)]


async def _delivered(queue: Any, smtp: SmtpServer, count: int) -> list[EmailMessage]:
    """The reconnect mails received, once the ``count`` queued are all sent."""
    async def sent() -> bool:
        jobs = await _notices(queue)
        return len(jobs) == count and all(j.state in DONE for j in jobs)

    await _until(sent)
    assert all(j.state == "done" for j in await _notices(queue))
    return [m for m in smtp.messages if str(m["Subject"]).startswith("Reconnect ")]


def _to(messages: list[EmailMessage]) -> list[str]:
    return sorted(str(m["To"]) for m in messages)


@pytest.mark.asyncio
async def test_owners_and_admins_are_mailed_once_when_a_source_needs_reconnecting(
        tmp_path: Path, smtp_server: SmtpServer, collab_database_url: str) -> None:
    fake = FAKES["spotify"](client_secret=SECRET)
    async with FakeSources([fake]) as fakes, accounts_server(
            tmp_path, smtp_server, database_url=collab_database_url, plugins={"analytics": {
                "sources": {"spotify": {"base_url": fakes.base_url("spotify")}},
                "schedule_check_s": 3600}}) as (app, config):
        people = {name: Person(config.base_url, smtp_server, f"{name}@example.org")
                  for name in ("ada", "bo", "dee", "eve")}
        ada, bo, dee, eve = people.values()
        try:
            for name, person in people.items():
                await person.sign_up_and_in(name.title())
            org = (await ada.call("POST", "/accounts", {"name": "Label"}))[1]["id"]
            for person, role in ((bo, "admin"), (dee, "member"), (eve, "owner")):
                await ada.call("POST", f"/accounts/{org}/invitations",
                               {"email": person.email, "role": "member"})
                await _ok(person, "POST", "/invitations/accept",
                          {"token": await person.link_token("invite")})
                if role != "member":
                    await _ok(ada, "PUT", f"/accounts/{org}/members/{person.id}",
                              {"role": role})
            context = app[PLUGIN_CONTEXT_KEY]
            queue, module = context.background.queue, services(context)
            q = f"?account={org}"
            grant = {"source": "spotify", "entity_kind": "artist",
                     "entity_id": fake.artist_id, "entity_name": "Label Artist",
                     "client_id": "client-id", "client_secret": SECRET,
                     "refresh_token": REFRESH}

            # -- Eve, an owner, granted the label's source; her erasure forgets the grant
            source = await _ok(eve, "POST", f"{A}/sources{q}", grant, 201)
            job = await _ok(eve, "POST", "/me/delete", {"password": PASSWORD}, 202)
            assert (await _until(lambda: _done_job(ada, job["url"])))["state"] == "done"
            [flagged] = [s for s in await _ok(ada, "GET", f"{A}/sources{q}")
                         if s["source_id"] == source["source_id"]]
            assert flagged["state"] == NEEDS_RECONNECT
            mails = await _delivered(queue, smtp_server, 2)
            assert _to(mails) == ["ada@example.org", "bo@example.org"]  # not Dee, not Eve
            for mail in mails:
                assert "Label Artist" in str(mail["Subject"])
                assert "erased" in mail.get_body(("plain",)).get_content()
                assert f"{config.base_url}/analytics?account={org}#sources" in links_in(
                    mail, "plain")

            # a retried erasure finds nothing left to forget: no second mail
            for answer in context.manager.hook.account_erased(
                    context=context, account_id=eve.id, pseudonym=pseudonym_of(eve.id),
                    names=["Eve", eve.email]):
                if inspect.isawaitable(answer):
                    await answer
            assert len(await _notices(queue)) == 2

            # -- Ada reconnects it; then the platform revokes the token during a run
            await _ok(ada, "POST", f"{A}/sources{q}", grant, 201)
            fake.revoke()
            run = await _ok(ada, "POST", f"{A}/sources/{source['source_id']}/backfill{q}",
                            {"from": "2024-06-01", "to": "2024-06-07"}, 202)
            await _until(lambda: _finished_run(ada, run["run_id"], q))
            mails = await _delivered(queue, smtp_server, 4)
            died = [m for m in mails if "stopped working" in
                    m.get_body(("plain",)).get_content()]
            assert _to(died) == ["ada@example.org", "bo@example.org"]

            # the run again (a poll of the flagged source), and the flag again: nobody is
            # mailed again
            with pytest.raises(Permanent):
                await module.ingestor.run(org, run["run_id"])
            assert not await module.connections.flag(org, source["source_id"],
                                                     NEEDS_RECONNECT, "token revoked")
            assert len(await _notices(queue)) == 4
            assert len(await _delivered(queue, smtp_server, 4)) == 4
        finally:
            for person in people.values():
                await person.close()


async def _done_job(person: Person, url: str) -> dict[str, Any] | None:
    job = await _ok(person, "GET", url)
    return job if job["state"] in ("done", "failed", "cancelled") else None


async def _finished_run(person: Person, run_id: str, q: str) -> dict[str, Any] | None:
    run = await _ok(person, "GET", f"{A}/runs/{run_id}{q}")
    return run if run["job_state"] in DONE else None
