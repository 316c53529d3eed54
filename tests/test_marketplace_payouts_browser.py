"""The payouts panel of /sales-reports in real headless Debian Chromium, against ``dawserver
serve`` and the fake Stripe (its webhooks signed and delivered to the server): the balance
and today's instant terms the API answers, a payout asked for in the page and listed, the
server's refusal shown as its message, and the history following Stripe's ``payout.paid``
and ``payout.failed``; no console errors but the refused request's own."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from loopback import free_port
from pagebrowser import (
    BROWSER_TEST,
    BrowserPerson,
    ServerProcess,
    plugin_site,
    wait_for,
)

from business.marketplace import bookings
from business.marketplace.fakes.stripe import FakeStripe, FakeStripeServer
from business.marketplace.ledger import Ledger
from database import open_database

pytestmark = [*BROWSER_TEST, pytest.mark.timeout(240)]
SECRET = "whsec_payouts_page"
M = "/api/marketplace"


@dataclass
class Site:
    server: ServerProcess
    fake: FakeStripe
    browser: Any
    data: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    data = tmp_path_factory.mktemp("payouts-page") / "data"
    data.mkdir()
    fake = FakeStripe(webhook_secret=SECRET)
    with FakeStripeServer(fake) as stripe_server, plugin_site(data, free_port(), {
            "marketplace": {"stripe": {"api_key": fake.api_key, "api_base": stripe_server.url,
                                       "webhook_secret": SECRET, "max_network_retries": 0,
                                       "timeout": 10}}}) as (server, browser):
        fake.webhooks.url = f"{server.url}{M}/stripe/webhook"
        yield Site(server, fake, browser, data)


@pytest.fixture
def ada(site: Site) -> Iterator[BrowserPerson]:
    person = BrowserPerson(site.browser, site.server.url)
    try:
        yield person
    finally:
        person.close()


def seller_with_sales(site: Site, ada: BrowserPerson, net: int) -> tuple[str, int]:
    """Ada connects Stripe (onboarded, instant eligible, ``net`` on her Stripe balance and
    a sale of that net in our books); her Stripe account and her balance in our books."""
    connected = ada.call("POST", f"{M}/seller/stripe", {
        "return_url": "https://example.com/back", "refresh_url": "https://example.com/again"})
    account = connected["stripe_account"]
    site.fake.complete_onboarding(account)
    site.fake.set_instant_eligible(account, True)
    with site.fake.lock:
        site.fake.balance_transaction(account, amount=net, currency="usd", type="charge",
                                      source=None)
    database = site.data / "collab.sqlite3"
    with sqlite3.connect(database, timeout=10) as db:
        [(account_id,)] = db.execute("SELECT account_id FROM mkt_sellers WHERE "
                                     "stripe_account = ?", (account,)).fetchall()

    async def book() -> int:
        async with open_database(f"sqlite://{database}") as db:
            ledger = Ledger(db)
            await ledger.post(account_id, bookings.sale(
                "sale:page-test", "usd", gross=net + 320, stripe_fee=320))
            return await ledger.balance(account_id, bookings.SELLER, "usd")

    with ThreadPoolExecutor(1) as thread:  # Playwright's loop runs in this one
        return account, thread.submit(asyncio.run, book()).result(60)


def pay_out(page: Any, amount: str, method: str) -> None:
    page.locator("#payout-form input[name=amount]").fill(amount)
    page.locator("#payout-form select[name=method]").select_option(method)
    page.locator("#pay-out").click()


def shown_statuses(page: Any) -> dict[str, str]:
    rows = page.locator("#payout-history tbody tr")
    return {rows.nth(i).get_attribute("data-payout"): rows.nth(i).get_attribute("data-status")
            for i in range(rows.count())}


def test_pay_out_in_the_page_see_it_listed_and_a_refusal(site: Site,
                                                         ada: BrowserPerson) -> None:
    ada.sign_in_by_api()
    account, balance = seller_with_sales(site, ada, 50_000)
    assert balance == 50_000
    options = ada.call("GET", f"{M}/payouts/options")
    assert options["available"] == balance and options["instant"]["eligible"] is True

    page = ada.page
    page.goto(f"{site.server.url}/sales-reports")
    page.locator("#payouts[data-ready=true]").wait_for()
    assert page.locator("#available").text_content() == "500.00 USD"
    assert page.locator("#pending").text_content() == "0.00 USD"
    terms = page.locator("#instant-terms").text_content()
    limit = options["instant"]["daily_limit"]
    assert f"fee {options['instant']['fee_basis_points'] / 100:.2f} %" in terms
    assert f"{limit / 100:.2f} USD limit" in terms
    assert page.locator("#no-payouts").is_visible()

    # a standard payout asked for in the page: listed, on its way, out of the balance
    pay_out(page, "120.00", "standard")
    page.locator("#payout-history tbody tr").first.wait_for()
    [standard] = ada.call("GET", f"{M}/payouts")
    assert (standard["amount"], standard["method"], standard["status"]) == (
        12_000, "standard", "pending")
    assert "Asked for 120.00 USD (standard)" in page.locator("#payout-result").text_content()
    assert shown_statuses(page) == {standard["payout_id"]: "pending"}
    assert page.locator("#available").text_content() == "380.00 USD"
    assert page.locator("#pending").text_content() == "120.00 USD"

    # an instant one, with its fee
    pay_out(page, "100.00", "instant")
    wait_for(lambda: len(shown_statuses(page)) == 2)
    instant = next(p for p in ada.call("GET", f"{M}/payouts") if p["method"] == "instant")
    assert instant["fee"] == 150  # 1.5 % of 100.00
    row = page.locator(f"#payout-history tr[data-payout='{instant['payout_id']}']")
    assert "1.50 USD" in row.text_content()

    # more than the balance: the server's 409 shown as its message, nothing booked
    pay_out(page, "1000.00", "standard")
    alert = page.locator("#payout-result [role=alert]")
    alert.wait_for()
    assert "the balance is 278.50 USD" in alert.text_content()
    assert len(ada.call("GET", f"{M}/payouts")) == 2

    # Stripe pays both out, then the bank returns the instant one: the history follows
    site.fake.settle_payouts(account)
    site.fake.fail_payout(instant["stripe_payout"])
    wait_for(lambda: {p["status"] for p in ada.call("GET", f"{M}/payouts")} == {
        "paid", "failed"}, timeout=30)
    page.reload()
    page.locator("#payouts[data-ready=true]").wait_for()
    assert shown_statuses(page) == {standard["payout_id"]: "paid",
                                    instant["payout_id"]: "failed"}
    assert row.locator("td.status").text_content() == "failed or returned"
    assert page.locator("#available").text_content() == "378.50 USD"  # the amount back
    assert page.locator("#members").text_content().endswith("No members yet.")
    refused = [e for e in ada.log.errors() if "409" not in e]
    assert refused == []
