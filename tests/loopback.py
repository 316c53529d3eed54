"""What the test servers on loopback share: a free port and a self-signed certificate."""

from __future__ import annotations

import datetime
import ipaddress
import os
import random
import socket
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# This file is imported as ``loopback`` (tests/ on sys.path) and as ``tests.loopback``:
# whichever comes first answers to both names, so one record of the ports given serves
# the whole process.
sys.modules.setdefault("loopback", sys.modules[__name__])
sys.modules.setdefault("tests.loopback", sys.modules[__name__])

#: How many ports below the kernel's ephemeral range :func:`free_port` hands out, and
#: the fewest a worker's share may hold (else the kernel picks, as ``bind(0)`` does).
SPAN = 12_000
MIN_SHARE = 200


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (outgoing connections' own ports
    and ``bind(0)`` come from it)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def port_span() -> range:
    """The ports this process's :func:`free_port` picks from: just below the ephemeral
    range, this pytest-xdist worker's share of it (``PYTEST_XDIST_WORKER=gwN`` of
    ``PYTEST_XDIST_WORKER_COUNT``; a worker xdist starts again after one died, ``gw2``
    of 2, takes share ``2 % 2``, which a live worker may hold: that happens only after
    a test failed, and costs a chance of a port picked twice). Empty when the shares
    would be too small (an ephemeral range that starts low)."""
    high = ephemeral_low()
    low = max(1024, high - SPAN)
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    share = (high - low) // workers
    if share < MIN_SHARE:
        return range(0)
    start = low + (worker % workers) * share
    return range(start, start + share)


_turn = random.randrange(SPAN)  # a child process starts elsewhere than its parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now, and stays free until its user
    binds it (unless someone else names it): taken from :func:`port_span`, not from the
    ephemeral range, so no outgoing connection (a client's own port) nor another
    worker's pick takes it meanwhile, as a port ``bind(0)`` chose could be. The process
    goes round its span, so it gives a port again only after all the others. With no
    span (or none of it free) the kernel picks one."""
    global _turn
    span = port_span()
    for _ in range(len(span)):
        port = span[_turn % len(span)]
        _turn += 1
        with socket.socket() as sock:  # no SO_REUSEADDR: a port in TIME_WAIT is passed
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_files(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A fresh certificate for the address ``host`` (its own CA, valid a day) and its key,
    written as ``cert.pem`` and ``key.pem`` in ``directory``; their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file
