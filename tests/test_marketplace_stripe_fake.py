"""The fake Stripe speaks Stripe's protocol to the unmodified (blocking) stripe-python client:
test cards that decline, nested form bodies, pagination, expand, idempotency, errors,
Connect accounts and their expiring onboarding links."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import stripe
from marketplace_helpers import DAY, sync_client

from business.marketplace.fakes.stripe import FakeStripe, FakeStripeServer, StripeFault


@pytest.fixture
def world() -> Iterator[tuple[FakeStripe, FakeStripeServer, stripe.StripeClient]]:
    fake = FakeStripe()
    with FakeStripeServer(fake) as server:
        yield fake, server, sync_client(fake, server)


@pytest.mark.parametrize(("card", "code", "decline"), [
    ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
    ("pm_card_chargeDeclinedLostCard", "card_declined", "lost_card"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", None),
])
def test_a_declining_test_card_answers_a_card_error_like_stripe(world, card, code,
                                                                 decline) -> None:
    fake, _, client = world
    with pytest.raises(stripe.CardError) as caught:
        client.v1.payment_intents.create({"amount": 2500, "currency": "usd",
                                          "payment_method": card, "confirm": True})
    error = caught.value
    assert error.http_status == 402 and error.code == code
    assert error.error.decline_code == decline
    assert error.error.payment_intent.status == "requires_payment_method"
    charge = client.v1.charges.retrieve(error.error.charge)
    assert charge.status == "failed" and charge.failure_code == code
    assert fake.balances("platform") == {}  # nothing booked for a decline


def test_nested_form_keys_build_a_checkout_session_with_line_items(world) -> None:
    _, _, client = world
    session = client.v1.checkout.sessions.create({
        "mode": "payment", "success_url": "https://shop.example/ok?s={CHECKOUT_SESSION_ID}",
        "metadata": {"order": "o-1", "beat": "b-9"},
        "payment_intent_data": {"metadata": {"order": "o-1"}, "transfer_group": "o-1"},
        "line_items": [
            {"quantity": 2, "price_data": {"currency": "eur", "unit_amount": 1999,
                                           "product_data": {"name": "WAV lease"}}},
            {"quantity": 1, "price_data": {"currency": "eur", "unit_amount": 500,
                                           "product_data": {"name": "Stems"}}}]})
    assert session.amount_total == 2 * 1999 + 500 and session.currency == "eur"
    assert session.metadata.to_dict() == {"order": "o-1", "beat": "b-9"}
    items = client.v1.checkout.sessions.line_items.list(session.id)
    assert sorted((i.description, i.quantity) for i in items.data) == [
        ("Stems", 1), ("WAV lease", 2)]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create({
            "mode": "payment", "success_url": "https://shop.example/ok",
            "line_items": [{"price_data": {"currency": "usd", "unit_amount": 100,
                                           "product_data": {"name": "A"}}},
                           {"price_data": {"currency": "eur", "unit_amount": 100,
                                           "product_data": {"name": "B"}}}]})
    assert caught.value.param == "line_items"


def test_lists_page_newest_first_with_cursors_both_ways(world) -> None:
    _, _, client = world
    made = [client.v1.customers.create({"name": f"c{i}"}).id for i in range(23)]
    newest_first = list(reversed(made))
    page = client.v1.customers.list({"limit": 5})
    assert [c.id for c in page.data] == newest_first[:5] and page.has_more
    walked = [c.id for c in client.v1.customers.list({"limit": 7}).auto_paging_iter()]
    assert walked == newest_first
    after = client.v1.customers.list({"limit": 5, "starting_after": newest_first[19]})
    assert [c.id for c in after.data] == newest_first[20:] and not after.has_more
    before = client.v1.customers.list({"limit": 3, "ending_before": newest_first[5]})
    assert [c.id for c in before.data] == newest_first[2:5] and before.has_more
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.list({"limit": 101})
    assert caught.value.param == "limit"


def test_expand_replaces_ids_with_objects_and_refuses_other_paths(world) -> None:
    _, _, client = world
    intent = client.v1.payment_intents.create({
        "amount": 10_000, "currency": "usd", "payment_method": "pm_card_visa",
        "confirm": True, "expand": ["latest_charge.balance_transaction"]})
    txn = intent.latest_charge.balance_transaction
    assert txn.object == "balance_transaction" and txn.amount == 10_000
    assert txn.fee == 10_000 * 290 // 10_000 + 30 and txn.net == txn.amount - txn.fee
    plain = client.v1.payment_intents.retrieve(intent.id)
    assert isinstance(plain.latest_charge, str)
    listed = client.v1.payment_intents.list({"expand": ["data.latest_charge"]})
    assert listed.data[0].latest_charge.id == intent.latest_charge.id
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.retrieve(intent.id, {"expand": ["amount"]})
    assert caught.value.param == "expand[0]"


def test_an_idempotency_key_replays_refuses_other_parameters_and_lapses_after_a_day(
        world) -> None:
    fake, _, client = world
    params = {"amount": 1500, "currency": "usd", "payment_method": "pm_card_visa",
              "confirm": True}
    first = client.v1.payment_intents.create(params, {"idempotency_key": "order-1"})
    again = client.v1.payment_intents.create(params, {"idempotency_key": "order-1"})
    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(client.v1.charges.list().data) == 1  # charged once
    with pytest.raises(stripe.IdempotencyError) as caught:
        client.v1.payment_intents.create({**params, "amount": 1600},
                                         {"idempotency_key": "order-1"})
    assert "can only be used with the same parameters" in caught.value.user_message
    # a decline is remembered too: the same key answers the same 402, no second charge
    declined = {**params, "payment_method": "pm_card_chargeDeclined"}
    for _ in range(2):
        with pytest.raises(stripe.CardError):
            client.v1.payment_intents.create(declined, {"idempotency_key": "order-2"})
    assert len(client.v1.charges.list().data) == 2
    fake.advance(DAY + 1)
    later = client.v1.payment_intents.create({**params, "amount": 1600},
                                             {"idempotency_key": "order-1"})
    assert later.id != first.id


def test_errors_carry_stripes_types_and_statuses(world) -> None:
    fake, server, client = world
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_test_wrong", base_addresses={"api": server.url}
                            ).v1.customers.list()
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.retrieve("cus_nope")
    assert caught.value.http_status == 404 and caught.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.create({"amount": 10, "currency": "usd"})
    assert caught.value.code == "amount_too_small" and caught.value.param == "amount"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.payment_intents.create({"amount": "ten", "currency": "usd"})
    assert caught.value.param == "amount"
    with pytest.raises(stripe.InvalidRequestError) as caught:  # a session's total too
        client.v1.checkout.sessions.create({
            "mode": "payment", "success_url": "https://example.com/ok", "line_items": [
                {"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 10,
                                               "product_data": {"name": "Beat"}}}]})
    assert caught.value.code == "amount_too_small" and caught.value.param == "line_items"
    with pytest.raises(stripe.PermissionError):
        client.v1.customers.list(options={"stripe_account": "acct_not_ours"})
    fake.fail_next(500, path="/v1/customers")
    with pytest.raises(stripe.APIError):
        client.v1.customers.create({"name": "x"})
    fake.fail_next(429)
    with pytest.raises(stripe.RateLimitError):
        client.v1.customers.list()
    assert client.v1.customers.list().data == []  # the fault was one call only


def test_connected_accounts_keep_their_objects_apart(world) -> None:
    fake, _, client = world
    seller = client.v1.accounts.create({"type": "express", "capabilities": {
        "card_payments": {"requested": True}, "transfers": {"requested": True}}})
    theirs = client.v1.customers.create({"name": "buyer"}, {"stripe_account": seller.id})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.customers.retrieve(theirs.id)  # the platform cannot see it
    assert caught.value.http_status == 404
    assert client.v1.customers.retrieve(theirs.id, options={
        "stripe_account": seller.id}).id == theirs.id


def test_an_account_link_expires_and_a_used_one_sends_to_the_refresh_url(world) -> None:
    fake, _, client = world
    account = client.v1.accounts.create({"type": "express", "email": "ada@example.com",
                                         "capabilities": {"transfers": {"requested": True}}})
    assert not account.charges_enabled and "external_account" in \
        account.requirements.currently_due
    assert account.capabilities.transfers == "inactive"
    urls = {"refresh_url": "https://studio.example/connect/refresh",
            "return_url": "https://studio.example/connect/done", "type": "account_onboarding"}
    stale = client.v1.account_links.create({"account": account.id, **urls})
    assert stale.expires_at - stale.created == fake.account_link_lifetime
    fake.advance(fake.account_link_lifetime + 1)
    answer = requests.get(stale.url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["Location"] == urls["refresh_url"]
    assert not client.v1.accounts.retrieve(account.id).details_submitted

    fresh = client.v1.account_links.create({"account": account.id, **urls})
    answer = requests.get(fresh.url, allow_redirects=False, timeout=10)
    assert answer.headers["Location"] == urls["return_url"]
    done = client.v1.accounts.retrieve(account.id)
    assert done.charges_enabled and done.payouts_enabled
    assert done.requirements.currently_due == [] and done.capabilities.transfers == "active"
    again = requests.get(fresh.url, allow_redirects=False, timeout=10)
    assert again.headers["Location"] == urls["refresh_url"]  # single use
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.account_links.create({"account": account.id, "refresh_url": "nope",
                                        "return_url": urls["return_url"]})
    assert caught.value.param == "refresh_url"


def test_a_checkout_session_is_paid_on_the_hosted_page_and_an_expired_one_is_not(
        world) -> None:
    fake, _, client = world
    price = client.v1.prices.create({"currency": "usd", "unit_amount": 2999,
                                     "product_data": {"name": "Trackout lease"}})
    session = client.v1.checkout.sessions.create({
        "mode": "payment", "line_items": [{"price": price.id, "quantity": 1}],
        "success_url": "https://shop.example/thanks?s={CHECKOUT_SESSION_ID}",
        "payment_intent_data": {"metadata": {"order": "o-9"}}, "metadata": {"order": "o-9"}})
    declined = requests.post(session.url, data={"payment_method": "pm_card_chargeDeclined"},
                             allow_redirects=False, timeout=10)
    assert declined.status_code == 402
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    paid = requests.post(session.url, data={"payment_method": "pm_card_visa"},
                         allow_redirects=False, timeout=10)
    assert paid.headers["Location"] == f"https://shop.example/thanks?s={session.id}"
    done = client.v1.checkout.sessions.retrieve(session.id, {"expand": ["payment_intent"]})
    assert done.status == "complete" and done.payment_status == "paid"
    assert done.payment_intent.status == "succeeded"
    assert done.payment_intent.metadata.order == "o-9"
    assert len(client.v1.payment_intents.list().data) == 1  # the second card, same intent
    completed = fake.events_of("checkout.session.completed")
    assert [e["data"]["object"]["id"] for e in completed] == [session.id]

    late = client.v1.checkout.sessions.create({
        "mode": "payment", "line_items": [{"price": price.id}],
        "success_url": "https://shop.example/thanks"})
    fake.advance(DAY + 1)
    assert client.v1.checkout.sessions.retrieve(late.id).status == "expired"
    with pytest.raises(StripeFault, match="expired"):
        fake.complete_checkout(late.id)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create({
            "mode": "payment", "line_items": [{"price": client.v1.prices.create({
                "currency": "usd", "unit_amount": 500, "recurring": {"interval": "month"},
                "product_data": {"name": "Gold"}}).id}],
            "success_url": "https://shop.example/thanks"})
    assert "recurring" in caught.value.user_message
