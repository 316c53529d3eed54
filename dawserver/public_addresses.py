"""Whether an IP address is on the public internet: the one check behind every URL the
server fetches for someone (webhook targets, organisations' sign-in providers), so a URL
a user gives never reaches into the server's own network (SSRF).

Python's ``is_global`` is the base, with the ranges it still calls global although they
are not (SRv6 segment ids, the newer documentation prefix, translated and dummy prefixes)
listed in :data:`NOT_PUBLIC`; an address that wraps an IPv4 address (IPv4-mapped, 6to4,
SIIT-translated) is judged by the IPv4 address it reaches.
"""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Networks that are never public, whatever ``is_global`` says of them.
NOT_PUBLIC = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16",
    "169.254.0.0/16", "192.0.0.0/24", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
    "::/128", "fc00::/7", "fe80::/10", "ff00::/8", "64:ff9b::/96", "64:ff9b:1::/48",
    "fec0::/10", "192.88.99.0/24", "::/96", "100::/64", "100:0:0:1::/64", "5f00::/16",
    "3fff::/20")]
LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
#: SIIT's IPv4-translated addresses (RFC 2765): ``::ffff:0:a.b.c.d``.
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")


def reached(address: Address) -> Address:
    """The address ``address`` reaches: the IPv4 address an IPv4-mapped, 6to4 or
    SIIT-translated IPv6 address wraps, else ``address`` itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _TRANSLATED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_loopback(address: Address) -> bool:
    """Whether ``address`` reaches this machine's loopback."""
    return any(reached(address) in net for net in LOOPBACK)


def is_public(address: Address) -> bool:
    """Whether ``address`` reaches a globally routable host (never loopback)."""
    target = reached(address)
    return target.is_global and not any(target in net for net in NOT_PUBLIC) and \
        not is_loopback(target)
