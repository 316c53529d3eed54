"""tests/loopback.free_port: ports no outgoing connection nor other worker can take."""

from __future__ import annotations

import importlib
import socket

import loopback
import pytest
from loopback import ephemeral_low, free_port, port_span


def test_ports_lie_below_the_ephemeral_range_in_this_worker_s_share(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    first = port_span()
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    second = port_span()
    assert first.stop <= second.start and second.stop <= ephemeral_low()
    assert len(first) == len(second) >= 5000
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == 300  # none given twice in a round of its span
    assert all(port in second for port in ports)
    for port in ports:  # each free when given
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_someone_listens_on_is_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    span = port_span()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", span[0]))
        taken.listen()
        monkeypatch.setattr(loopback, "_turn", 0)
        assert free_port() == span[1]


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


def test_both_names_of_the_file_share_the_ports_given() -> None:
    named = importlib.import_module("tests.loopback")
    assert named is loopback  # one turn round the span for the process
    span = port_span()
    first, second = named.free_port(), loopback.free_port()
    # the next free one on (a port held by a server of a child process is passed)
    assert 0 < (span.index(second) - span.index(first)) % len(span) < 100
