"""Awareness bookkeeping: newest state wins, leaving clients are announced as gone."""

from __future__ import annotations

import time

from collab.presence import GONE_FORGET_SECONDS, OUTDATED_SECONDS, Presence, server_client_id
from collab.protocol import AwarenessEntry, decode_awareness, encode_awareness


def update(*entries: AwarenessEntry) -> bytes:
    return encode_awareness(list(entries))


def test_newer_clock_replaces_older_state_and_older_is_ignored() -> None:
    presence = Presence()
    present, removed = presence.apply(update(AwarenessEntry(1, 2, {"user": "ana"})))
    assert (present, removed) == ({1}, set())
    presence.apply(update(AwarenessEntry(1, 1, {"user": "stale"})))
    assert presence.states() == {1: {"user": "ana"}}
    presence.apply(update(AwarenessEntry(1, 3, {"user": "ana", "track": "t2"})))
    assert presence.states() == {1: {"user": "ana", "track": "t2"}}


def test_removing_a_client_produces_a_null_state_with_a_newer_clock() -> None:
    presence = Presence()
    presence.apply(update(AwarenessEntry(1, 4, {"user": "ana"}), AwarenessEntry(2, 1, {})))
    gone = presence.remove({1})
    assert gone is not None
    assert decode_awareness(gone) == [AwarenessEntry(1, 5, None)]
    assert presence.states() == {2: {}}
    assert presence.remove({1}) is None


def test_encode_all_lists_only_present_clients() -> None:
    presence = Presence()
    assert presence.encode_all() is None
    presence.apply(update(AwarenessEntry(1, 1, {"user": "ana"}), AwarenessEntry(2, 1, None)))
    assert decode_awareness(presence.encode_all()) == [AwarenessEntry(1, 1, {"user": "ana"})]


def test_the_servers_client_id_is_never_a_yjs_one_and_lib0_reads_it() -> None:
    ids = {server_client_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(1 << 32 <= client_id < 1 << 53 for client_id in ids)


def test_an_id_is_free_once_gone_or_not_renewed_for_the_yjs_timeout() -> None:
    presence = Presence()
    assert presence.free(1)
    assert presence.take([AwarenessEntry(1, 1, {"user": "ana"})])
    assert not presence.free(1)
    assert presence.free(1, now=time.monotonic() + OUTDATED_SECONDS + 1)
    assert presence.take([AwarenessEntry(1, 1, {"user": "again"})]) == []  # not newer
    assert presence.take([AwarenessEntry(1, 1, None)]) == [AwarenessEntry(1, 1, None)]
    assert presence.take([AwarenessEntry(1, 1, None)]) == []  # already gone
    assert presence.free(1) and presence.clock(1) == (1, False)


def test_ids_gone_or_stale_for_the_horizon_are_forgotten_but_kept_ones_stay() -> None:
    presence = Presence()
    presence.take([AwarenessEntry(cid, 1, {"user": str(cid)}) for cid in (1, 2, 3)])
    presence.remove({1})
    soon = time.monotonic() + GONE_FORGET_SECONDS / 2
    assert presence.forget(keep=set(), now=soon) == set()  # a reconnect may come back
    assert presence.clock(1) == (2, False)
    later = time.monotonic() + GONE_FORGET_SECONDS + 1
    assert presence.forget(keep={3}, now=later) == {1, 2}  # 2: nobody renewed it
    assert presence.clock(1) is None and presence.clock(2) is None
    assert presence.states() == {3: {"user": "3"}}
