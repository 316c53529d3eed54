"""The client's address behind the reverse proxies a server trusts (``X-Forwarded-For``).

Behind HAProxy (``dawserver deploy haproxy``, docs/scale-out.md) every request comes from
the proxy, so per-address limits (new carts, short-link guesses, sign-in throttles) would
count every visitor as one, and audit records would keep the proxy's address. The proxy
appends the address it saw to ``X-Forwarded-For``; a node started with
``--trusted-proxy`` takes the client's address from there, reading the header from the
right and skipping the proxies it trusts: the first address that is not one of them is
the client. A request whose peer is not a trusted proxy keeps its peer's address, so a
client reaching a node directly cannot name another address in the header.

Written here rather than taken from aiohttp-remotes: its ``XForwardedStrict`` answers 400
to any peer that is not a proxy (a node's own checks and links), and its
``XForwardedFiltered`` believes the header whichever peer sent it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def trusted_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """The proxies' addresses or networks (``10.0.0.5``, ``10.0.0.0/8``, ``::1``);
    :class:`ValueError` naming one that is neither."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"trusted proxy {value!r}: give an IP address or a network "
                             "such as 10.0.0.0/8") from None
    return tuple(networks)


def _trusted(address: str | None, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def forwarded_client(request: web.Request, networks: tuple[Network, ...]) -> str | None:
    """The client's address for ``request`` when its peer is a trusted proxy that named
    one, else None (the peer is the client)."""
    if not networks or not _trusted(request.remote, networks):
        return None
    hops = [hop.strip() for line in request.headers.getall("X-Forwarded-For", ())
            for hop in line.split(",")]
    client = None
    for hop in reversed(hops):
        try:
            client = str(ipaddress.ip_address(hop))
        except ValueError:
            break  # not an address: nothing to its left can be trusted either
        if not _trusted(client, networks):
            return client
    return client  # every hop a proxy: the left-most


def forwarded_middleware(networks: tuple[Network, ...]) -> Callable[..., Awaitable[
        web.StreamResponse]]:
    """Middleware that sets ``request.remote`` to the client behind trusted proxies."""

    @web.middleware
    async def client_address(request: web.Request, handler: Handler) -> web.StreamResponse:
        client = forwarded_client(request, networks)
        if client is not None and client != request.remote:
            request = request.clone(remote=client)
        return await handler(request)

    return client_address
