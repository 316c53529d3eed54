"""The grant-withdrawal helpers' keys and mail ids, pinned to the letter.

Servers already hold jobs queued and mails sent under these names: a change to how
they are formed would queue a withdrawal again, or mail the same people twice, on
upgrade. So the expected values are written out, not computed the way the code does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from dawserver.grant_revocation import mail_each_once, queue_withdrawal


class _Payload(BaseModel):
    channel_id: str


class _Queue:
    """Records what ``enqueue`` is asked (the job queue's signature)."""

    def __init__(self) -> None:
        self.queued: list[dict[str, Any]] = []

    async def enqueue(self, job: str, payload: dict, *, account_id: str,
                      idempotency_key: str, tx: Any) -> None:
        self.queued.append({"job": job, "payload": payload, "account_id": account_id,
                            "key": idempotency_key, "tx": tx})


def test_a_withdrawal_is_queued_under_the_key_it_always_had() -> None:
    queue, tx = _Queue(), object()
    asyncio.run(queue_withdrawal(queue, tx, "social.revoke", _Payload(channel_id="ch1"),
                                 account_id="acc", holder="ch1",
                                 secrets=["sealed-access", "sealed-refresh"]))
    [queued] = queue.queued
    assert queued == {"job": "social.revoke", "payload": {"channel_id": "ch1"},
                      "account_id": "acc", "tx": tx,
                      "key": "social-revoke/ch1/008aea24719219696f351279"}


def test_each_address_is_mailed_once_under_the_id_it_always_had() -> None:
    sent: list[tuple[str, str]] = []

    async def send_mail(to: str, subject: str, paragraphs: list[str], **kw: Any) -> None:
        sent.append((to, kw["mail_id"]))

    mailed = asyncio.run(mail_each_once(
        send_mail, [" Ada@Example.com", "ada@example.com", "", "  ", "bob@example.com"],
        "subject", ["text"], kind="social-revoke-failed", event="revoke-failed:ch1",
        excluded=lambda address: address == "bob@example.com"))
    assert mailed == ["ada@example.com"]
    assert sent == [("ada@example.com", "social-revoke-failed/f8e3f82bf1fcd88e64697eac")]
