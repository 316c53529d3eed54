"""A reset or verification resend only queues one ``account_asks`` job, the same for any
address: the lookup, links and mail run in that job, so neither the answer's time nor a
failure of that work tells whether the address has an account, and the job, durable
like any other, is done even when the server stops right after answering."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from accounts_helpers import PASSWORD, Person, accounts_server
from loopback import free_port
from smtp_server import SmtpServer
from social_fakes import until

from accounts.service import ASK_RULE
from dawserver.account_mail import ASKS_QUEUE, MAIL_ACCOUNT
from dawserver.account_mail import QUEUE as MAIL_QUEUE
from dawserver.keys import ACCOUNTS, BACKGROUND
from jobs import DONE, JobQueue

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

NOBODY = "nobody@example.org"
ASKED = [(path, who) for path in ("/auth/reset", "/auth/verify/resend")
         for who in ("ada", "eve", "nobody")]


async def _people(base_url: str, smtp: SmtpServer) -> tuple[Person, Person]:
    """Ada, signed up and verified, and Eve, signed up but not verified."""
    ada = Person(base_url, smtp, "ada@example.org")
    eve = Person(base_url, smtp, "eve@example.org")
    await ada.sign_up_and_in()
    status, _, _ = await eve.call("POST", "/auth/sign-up", {
        "email": eve.email, "password": PASSWORD})
    assert status == 202
    await eve.mail("verify")
    return ada, eve


def _recorded_lookups(store: Any) -> list[str]:
    """The addresses the accounts ``store`` is asked about from now on."""
    lookups, looked_up = [], store.person_by_email

    async def recorded(email: str, *args: Any, **kwargs: Any) -> Any:
        lookups.append(email)
        return await looked_up(email, *args, **kwargs)

    store.person_by_email = recorded
    return lookups


async def _mail_jobs(queue: JobQueue) -> dict[str, Any]:
    """Every job under the account mail's account, by id."""
    return {job.id: job for job in await queue.find(account_id=MAIL_ACCOUNT)}


async def test_a_failing_mail_work_answers_every_address_alike(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config):
        ada, eve = await _people(config.base_url, smtp_server)
        try:
            service, asked = app[ACCOUNTS], set()

            async def failing(person: Any, purpose: str, kind: str, data: Any) -> None:
                asked.add((person.email, kind))
                raise RuntimeError("the database is gone")

            service._mail_link = failing
            emails = {"ada": ada.email, "eve": eve.email, "nobody": NOBODY}
            answers = [await eve.call("POST", path, {"email": emails[who]})
                       for path, who in ASKED]
            assert [a[:2] for a in answers] == [answers[0][:2]] * len(ASKED)
            assert answers[0][0] == 202
            # the work does run (in the jobs, after the answers), and fails there
            wanted = {(ada.email, "reset"), (eve.email, "reset"), (eve.email, "verify")}

            async def tried() -> bool:
                return asked == wanted

            await until(tried)
        finally:
            await ada.close()
            await eve.close()


async def test_an_ask_is_one_job_for_any_address_and_done_after_a_restart(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config):
        ada, eve = await _people(config.base_url, smtp_server)
        emails = {"ada": ada.email, "eve": eve.email, "nobody": NOBODY}
        try:
            await app[BACKGROUND].stop()  # no worker: what the requests did stays visible
            queue, store = app[BACKGROUND].queue, app[ACCOUNTS].store
            lookups = _recorded_lookups(store)
            made, answers = [], []
            for path, who in ASKED:
                before = await _mail_jobs(queue)
                status, body, _ = await eve.call("POST", path, {"email": emails[who]})
                answers.append((status, body))
                new = [job for id_, job in (await _mail_jobs(queue)).items()
                       if id_ not in before]
                made.append([(job.queue, job.state, sorted(job.payload),
                               job.payload.get("email")) for job in new])
            # nobody was looked up; one queued job per request, alike for every address
            assert lookups == []
            assert made == [[(ASKS_QUEUE, "queued", ["ask", "ask_id", "email"], emails[who])]
                            for _, who in ASKED]
            assert answers == [answers[0]] * len(ASKED) and answers[0][0] == 202
            before = await _mail_jobs(queue)
        finally:
            await ada.close()
            await eve.close()

    # the server stopped after answering: the next one does the queued asks
    async with accounts_server(tmp_path, smtp_server,
                               port=free_port()) as (app, config):
        queue = app[BACKGROUND].queue

        async def asks_done() -> bool:
            asks = [job for job in await queue.find(account_id=MAIL_ACCOUNT, queue=ASKS_QUEUE)
                    if job.payload["ask"] != "sign_up"]  # (Ada's and Eve's, done before)
            return len(asks) == len(ASKED) and all(job.state == DONE for job in asks)

        await until(asks_done)
        assert (await ada.mail("reset"))["To"] == ada.email
        assert (await eve.mail("reset"))["To"] == eve.email
        assert (await eve.mail("verify", 2))["To"] == eve.email
        mailed = {(job.payload["kind"], job.payload["to"])
                  for id_, job in (await _mail_jobs(queue)).items()
                  if id_ not in before and job.queue == MAIL_QUEUE}
        # the asks are done and queued no mail for the unknown address (nor a verification
        # for Ada's verified one): none can arrive later
        assert mailed == {("reset", ada.email), ("reset", eve.email), ("verify", eve.email)}
        assert not [m for m in smtp_server.messages if NOBODY in m["To"]]


def stopped(app: Any) -> None:
    """Stop the accounts' clock: a wait the throttle asks for never runs out while the
    test makes its requests, however slowly a loaded machine makes them."""
    now = time.time()
    app[ACCOUNTS].clock = lambda: now


async def test_a_client_asking_too_often_waits_and_queues_nothing_more(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    """Asks cost the client, whatever the addresses: past :data:`ASK_RULE`'s free ones
    (the one after them counts the first wait) it is answered 429 with a wait, and no
    job is queued for it."""
    async with accounts_server(tmp_path, smtp_server) as (app, config), \
            Person(config.base_url, smtp_server, NOBODY) as stranger:
        await app[BACKGROUND].stop()  # no worker: the queued asks stay visible
        stopped(app)
        free = ASK_RULE.free_failures + 1
        for n in range(free):
            path = ("/auth/reset", "/auth/verify/resend")[n % 2]
            status, _, _ = await stranger.call("POST", path,
                                               {"email": f"someone{n}@example.org"})
            assert status == 202
        status, body, headers = await stranger.call("POST", "/auth/reset",
                                                    {"email": "one.more@example.org"})
        assert status == 429 and int(headers["Retry-After"]) >= 1, body
        asks = await app[BACKGROUND].queue.find(account_id=MAIL_ACCOUNT, queue=ASKS_QUEUE)
        assert len(asks) == free


async def test_a_sign_up_is_one_job_for_any_address_and_done_after_a_restart(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    """A sign-up for a taken address and for a free one do the same work before the
    answer (the password checked and hashed, one job queued; no lookup): the job creates
    the account or mails that there is one, also after the server stopped."""
    async with accounts_server(tmp_path, smtp_server) as (app, config):
        ada, _ = await _people(config.base_url, smtp_server)
        ben = Person(config.base_url, smtp_server, "ben@example.org")
        try:
            await app[BACKGROUND].stop()  # no worker: what the requests did stays visible
            queue, store = app[BACKGROUND].queue, app[ACCOUNTS].store
            lookups = _recorded_lookups(store)
            made, answers = [], []
            for email in (ada.email, ben.email):
                before = await _mail_jobs(queue)
                status, body, _ = await ben.call("POST", "/auth/sign-up", {
                    "email": email, "password": "another password 1", "name": "Ben"})
                answers.append((status, body))
                made += [(job.queue, sorted(job.payload), job.payload["ask"])
                         for id_, job in (await _mail_jobs(queue)).items() if id_ not in before]
            assert lookups == [] and answers == [answers[0]] * 2 and answers[0][0] == 202
            assert made == [(ASKS_QUEUE, ["ask", "ask_id", "email", "name", "password_hash",
                                          "region"], "sign_up")] * 2
            assert await store.person_by_email(ben.email) is None  # not before the job
        finally:
            await ada.close()

    async with accounts_server(tmp_path, smtp_server, port=free_port()) as (app, config):
        ben.base_url = config.base_url
        try:
            assert (await ada.mail("exists"))["To"] == ada.email
            status, body, _ = await ben.call("POST", "/auth/verify",
                                             {"token": await ben.link_token("verify")})
            assert status == 200 and body["name"] == "Ben", body
            signed = await ben.sign_in("another password 1")
            assert signed["person"]["email"] == ben.email
        finally:
            await ben.close()


async def test_sign_ups_of_one_client_are_limited_apart_from_its_asks(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    """A client signing up again and again (each sign-up costs an argon2 hash and a
    job) waits past its free sign-ups: 429, and no hash, no job. Its asks for resets
    are counted apart, and so are another client's sign-ups."""
    async with accounts_server(tmp_path, smtp_server, sign_ups_per_client=2) as (app, config), \
            Person(config.base_url, smtp_server, NOBODY) as stranger:
        await app[BACKGROUND].stop()  # no worker: the queued sign-ups stay visible
        stopped(app)
        hashed: list[str] = []
        hash_password = app[ACCOUNTS].passwords.hash

        def counted(password: str) -> str:
            hashed.append(password)
            return hash_password(password)

        app[ACCOUNTS].passwords.hash = counted
        for n in range(2):
            status, body, _ = await stranger.call("POST", "/auth/sign-up", {
                "email": f"someone{n}@example.org", "password": PASSWORD})
            assert status == 202, body
        status, body, headers = await stranger.call("POST", "/auth/sign-up", {
            "email": "one.more@example.org", "password": PASSWORD})
        assert status == 429 and int(headers["Retry-After"]) >= 1, body
        assert "too many sign-ups" in body["error"], body
        assert len(hashed) == 2  # the refused one cost no hash
        asks = await app[BACKGROUND].queue.find(account_id=MAIL_ACCOUNT, queue=ASKS_QUEUE)
        assert len(asks) == 2
        status, body, _ = await stranger.call("POST", "/auth/reset", {"email": NOBODY})
        assert status == 202, body  # an ask of its own budget
        status, body, _ = await stranger.call(
            "POST", "/auth/sign-up", {"email": "elsewhere@example.org", "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.9"})
        assert status == 429, body  # a header the server does not trust changes nothing
