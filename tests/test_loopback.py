"""tests/loopback.free_port: ports no outgoing connection nor other worker can take."""

from __future__ import annotations

import importlib
import socket

import loopback
import pytest
from loopback import free_port, port_span


def test_each_worker_has_a_share_below_the_ephemeral_range(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loopback, "ephemeral_low", lambda: 32768)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    shares = []
    for worker in ("gw0", "gw1", "gw2"):  # gw2: started again after a worker died
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        shares.append(port_span())
    assert shares[0] == range(20768, 26768) and shares[1] == range(26768, 32768)
    assert shares[2] == shares[0]
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT")
    assert port_span() == range(20768, 32768)  # no xdist: all of it


def test_an_ephemeral_range_that_starts_low_leaves_the_pick_to_the_kernel(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loopback, "ephemeral_low", lambda: 1100)
    assert port_span() == range(0)
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_ports_given_are_of_this_worker_s_share_free_and_new() -> None:
    span = port_span()
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == 300  # none given twice in a round of its share
    assert all(port in span for port in ports)
    for port in ports:  # each free when given
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_someone_listens_on_is_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    span = port_span()
    with socket.socket() as taken:
        at = free_port()
        taken.bind(("127.0.0.1", at))
        taken.listen()
        monkeypatch.setattr(loopback, "_turn", span.index(at))
        given = free_port()
    assert given != at and given in span


def test_a_client_s_own_port_is_never_one_given() -> None:
    """An outgoing connection's own port comes from the ephemeral range: it cannot take
    a port :func:`free_port` gave while its server has yet to bind it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        clients = [socket.create_connection(server.getsockname()) for _ in range(50)]
        try:
            own = {client.getsockname()[1] for client in clients}
        finally:
            for client in clients:
                client.close()
    assert not own & set(port_span())


def test_both_names_of_the_file_share_one_turn() -> None:
    named = importlib.import_module("tests.loopback")
    assert named is loopback  # one turn round the share for the process
    span = port_span()
    first, second = named.free_port(), loopback.free_port()
    # the next free one on (a port held by a server of a child process is passed)
    assert 0 < (span.index(second) - span.index(first)) % len(span) < 100
