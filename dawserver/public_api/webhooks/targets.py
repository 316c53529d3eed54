"""Where a webhook may post: https URLs on public addresses (no SSRF into our network).

A URL is checked when a subscription is made or changed (:func:`check_url`, which
resolves its host), and every connection resolves through :class:`PublicResolver`,
which refuses private answers again at send time, so a name that later resolves
to ``10.0.0.5`` (DNS rebinding) cannot reach it either.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

from ...public_addresses import Address, is_loopback, is_public
from .settings import WebhookSettings


class TargetError(ValueError):
    """A webhook URL the server will not post to; the message says why and what to do."""


def refusal(address: Address, settings: WebhookSettings) -> str | None:
    """Why ``address`` may not be posted to (None: it may)."""
    if is_loopback(address):
        return None if settings.allow_loopback else "a loopback address"
    if not is_public(address) and not settings.allow_private:
        return "a private, link-local or reserved address"
    return None


def parse_url(url: str, settings: WebhookSettings) -> tuple[str, int]:
    """The host and port of ``url`` if its form is acceptable; else :class:`TargetError`."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TargetError(f"webhook URL {url!r} must be an absolute https:// URL")
    if parts.username or parts.password:
        raise TargetError(f"webhook URL {url!r} must not carry a user name or password; "
                          "verify deliveries by their Webhook-Signature instead")
    if parts.fragment:
        raise TargetError(f"webhook URL {url!r} must not have a #fragment")
    check_host_name(url, parts.hostname)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetError(f"webhook URL {url!r} has an invalid port") from None
    if parts.scheme == "http" and not (settings.allow_loopback and _is_loopback_name(
            parts.hostname)):
        raise TargetError(f"webhook URL {url!r} must use https:// (deliveries carry your "
                          "data; plain http is allowed only for loopback in development)")
    return parts.hostname, port


def check_host_name(url: str, host: str) -> None:
    """:class:`TargetError` unless ``host`` is a valid IDNA name (no empty label, none
    over 63 characters) or an IP address."""
    try:
        host.encode("idna")
    except UnicodeError:
        raise TargetError(f"webhook URL {url!r} has an invalid host name {host!r} (an empty "
                          "label or one over 63 characters); check the URL") from None


def _is_loopback_name(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to; :class:`TargetError` if it resolves to none."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # UnicodeError: not a valid IDNA name
        raise TargetError(f"webhook host {host!r} does not resolve ({exc}); check the "
                          "name") from None
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def check_addresses(host: str, addresses: list[Address], settings: WebhookSettings) -> None:
    """:class:`TargetError` if any address of ``host`` is refused."""
    for address in addresses:
        why = refusal(address, settings)
        if why is not None:
            raise TargetError(
                f"webhook host {host!r} resolves to {address}, {why}; the server posts "
                "only to public internet addresses (an operator may allow private "
                "networks with the webhooks setting allow_private)")


async def check_url(url: str, settings: WebhookSettings) -> None:
    """Refuse ``url`` unless it is https (or allowed loopback) on public addresses."""
    host, port = parse_url(url, settings)
    check_addresses(host, await resolve(host, port), settings)


class PublicResolver(AbstractResolver):
    """aiohttp's resolver, refusing private answers (checked again at every connection)."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[Any]:
        found = await self._inner.resolve(host, port, family)
        check_addresses(host, [ipaddress.ip_address(r["host"]) for r in found], self.settings)
        return found

    async def close(self) -> None:
        await self._inner.close()
