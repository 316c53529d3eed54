"""Who a per-address limit counts: one client of the public internet.

An IPv4 address counts as itself (an IPv4-mapped IPv6 address as its IPv4 one); an
IPv6 address as its /64 network, since a host rotates freely within its /64 and
counting single addresses would not limit it. Anything that is not an address (a
Unix socket peer, no peer) counts as the text given.
"""

from __future__ import annotations

import ipaddress


def limited_client(address: str) -> str:
    """The key a per-address limit counts ``address`` under."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)
