"""The rules of forgetting a person: pseudonyms, mentions, document scrubs, re-authentication."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from pycrdt import Doc

from accounts.erasure import FRESH_SESSION_S, AccountErasure
from accounts.errors import Forbidden
from accounts.models import Account, AccountKind, AccountStatus, SessionRecord
from accounts.pseudonyms import Pseudonymiser, pseudonym_of
from collab.schema import ProjectDocument
from collab.scrub import authored, scrub

ADA = Pseudonymiser.of("p_0123456789abcdef0123", ["Ada Lovelace", "ada@example.org", None])


def test_a_pseudonym_is_stable_and_differs_per_person() -> None:
    assert pseudonym_of("p_1") == pseudonym_of("p_1") != pseudonym_of("p_2")
    assert pseudonym_of("p_1").startswith("erased-") and len(pseudonym_of("p_1")) == 23
    assert ADA.pseudonym == pseudonym_of(ADA.account_id)


def test_mentions_are_replaced_as_words_and_whole_values_in_any_case() -> None:
    p = ADA.pseudonym
    assert ADA.text("  ADA LOVELACE ") == p
    assert ADA.text("thanks Ada Lovelace's mix, mail ADA@example.org") == (
        f"thanks {p}'s mix, mail {p}")
    assert ADA.text("Ada Lovelaces") == "Ada Lovelaces"  # another word
    assert ADA.value({"who": ADA.account_id, "list": ["x", "Ada Lovelace"], "n": 3}) == {
        "who": p, "list": ["x", p], "n": 3}
    short = Pseudonymiser.of("p_9", ["Al"])
    assert short.text("Al") == short.pseudonym and short.text("Album by Al") == "Album by Al"


def test_a_scrub_empties_the_persons_comments_and_leaves_no_old_bytes() -> None:
    document = ProjectDocument()
    own = document.add_comment(ADA.account_id, "my secret lyric")
    other = document.add_comment("p_bo", "nice one, Ada Lovelace")
    document.add_marker(10, "ada@example.org take")
    assert [c["id"] for c in authored(document.doc, ADA.is_person)] == [own]
    with document.transaction():
        changed = scrub(document.doc, ADA.text, ADA.is_person)
    assert changed == 4  # author and text of one comment, one text, one marker
    comments = {c["id"]: c for c in document.comments()}
    assert comments[own]["author"] == ADA.pseudonym and comments[own]["text"] == ""
    assert (comments[other]["author"], comments[other]["text"]) == (
        "p_bo", f"nice one, {ADA.pseudonym}")
    state = document.doc.get_update()
    for old in (ADA.account_id, "Ada Lovelace", "ada@example.org", "secret lyric"):
        assert old.encode() not in state
    reloaded = Doc()
    reloaded.apply_update(state)
    assert ProjectDocument(reloaded).comments() == document.comments()
    with document.transaction():
        assert scrub(document.doc, ADA.text, ADA.is_person) == 0  # nothing left to do


def _person(password_hash: str | None) -> Account:
    return Account(account_id="p_1", kind=AccountKind.PERSON, name="P",
                   status=AccountStatus.ACTIVE, plan="free", region="default", created_at=0.0,
                   updated_at=0.0, password_hash=password_hash)


def _session(age: float) -> SessionRecord:
    now = time.time()
    return SessionRecord(key_hash="h", session_id="s", person_id="p_1", csrf_token="c",
                         created_at=now - age, last_seen_at=now, expires_at=now + 3600)


@pytest.mark.asyncio
async def test_a_person_without_a_password_erases_only_from_a_fresh_sign_in() -> None:
    erasure = AccountErasure(SimpleNamespace(store=None))  # type: ignore[arg-type]
    await erasure.confirm(_person(None), None, _session(60.0))
    with pytest.raises(Forbidden, match="fresh sign-in"):
        await erasure.confirm(_person(None), None, _session(FRESH_SESSION_S + 60.0))


def test_the_public_erasure_status_never_shows_the_error_text() -> None:
    """GET /privacy/erasures/{job} is public: a failure's text could name the person."""
    from dawserver.privacy_routes import ERASURE_FAILED, _view
    from jobs import RETRYING, JobRecord

    failing = JobRecord(
        account_id="erased-0123456789abcdef", id="job-1", queue="privacy.erase", payload={},
        state=RETRYING, priority=0, attempts=1, max_attempts=8, run_at=0.0, lease_until=0.0,
        lease_token=None, worker=None, progress=0.5, note="scrubbing documents", result=None,
        last_error="could not scrub 'Ada Lovelace <ada@example.org>'",
        idempotency_key=None, cancel_requested=False, created_at=0.0, updated_at=0.0,
        finished_at=None)
    assert _view(failing, "deletion").error == ERASURE_FAILED
    assert "ada@example.org" in _view(failing, "export").error  # the person's own job
