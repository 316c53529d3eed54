"""A tiny authoritative DNS server on loopback (UDP) serving TXT records a test controls.

Built on dnspython's message API (``dns.message.from_wire``, ``make_response``)::

    async with DnsServer() as dns:
        dns.zone["_maxbooster-challenge.example.com"] = ["maxbooster-domain-verification=..."]
        ...  # point the resolver at dns.address ("127.0.0.1:PORT")

``zone`` maps a name (no final dot, lower case) to its TXT texts: a name mapped to
``[]`` exists without a TXT record (NOERROR, empty answer), a name not in it does not
exist (NXDOMAIN). ``silent = True`` drops every query, as a server that is down.
"""

from __future__ import annotations

import asyncio
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DnsServer(asyncio.DatagramProtocol):
    """Answers TXT queries for :attr:`zone`; counts the queries it got in :attr:`asked`."""

    def __init__(self) -> None:
        self.zone: dict[str, list[str]] = {}
        self.silent = False
        self.asked: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, as ``single_sign_on["dns_servers"]`` takes it."""
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return f"{host}:{port}"

    async def __aenter__(self) -> DnsServer:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.asked.append(name)
        if self.silent or self.transport is None:
            return
        answer = dns.message.make_response(query)
        answer.flags |= dns.flags.AA
        if name not in self.zone:
            answer.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.TXT and self.zone[name]:
            answer.answer.append(dns.rrset.from_text_list(
                question.name, 60, dns.rdataclass.IN, dns.rdatatype.TXT,
                ['"' + text.replace('"', '\\"') + '"' for text in self.zone[name]]))
        self.transport.sendto(answer.to_wire(), addr)
