"""Store connector for the HTTPS "drop" protocol (a plug-in itself).

Protocol, per message: ``PUT /drop/{message_id}/{file}`` for every file (header
``X-Content-SHA256``), then ``POST /drop/{message_id}/complete`` with the ERN XML
(header ``X-Action``). The store answers 201 ``accepted`` the first time and 200
``duplicate`` for a message id it already accepted, so re-sending is safe;
``GET /drop/{message_id}`` answers ``{"status": "accepted"|"unknown"}``, which the
pipeline asks before it re-sends (so a lost acknowledgement costs no second upload).
Bearer-token authentication; TLS when the URL is https:// (``ca_file`` to trust a
private CA). Configure under ``plugins.distribution.stores``::

    {"fakestore": {"protocol": "https-drop", "url": "https://127.0.0.1:8443",
                   "token": "...", "dpid": "PADPIDA2026000001X", "name": "Fake Store"}}
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp

from business.distribution.ddex import Party
from business.distribution.errors import DeliveryError
from business.distribution.stores.base import DeliveryPackage, Receipt
from dawserver.plugin_api import PluginContext, hookimpl

PLUGIN_NAME = "distribution-https-drop"
PROTOCOL = "https-drop"
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class HttpDropConnector:
    """Delivers packages to one store speaking the drop protocol."""

    def __init__(self, name: str, url: str, *, token: str = "", dpid: str = "",
                 display_name: str = "", ca_file: str | None = None,
                 timeout_s: float = 30.0) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.party = Party(dpid or f"PADPIDA{name.upper()[:11]}", display_name or name)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._ssl: ssl.SSLContext | bool = True
        if ca_file:
            self._ssl = ssl.create_default_context(cafile=ca_file)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def deliver(self, package: DeliveryPackage) -> Receipt:
        """Upload the files, then the message; DeliveryError on failure."""
        base = f"{self.url}/drop/{package.message_id}"
        try:
            async with aiohttp.ClientSession(timeout=self._timeout,
                                             headers=self._headers) as session:
                if package.action != "takedown":
                    for item in package.files:
                        data = await asyncio.to_thread(_read, item.path)
                        async with session.put(f"{base}/{item.name}", data=data, ssl=self._ssl,
                                               headers={"X-Content-SHA256": item.sha256}) as r:
                            await _check(r, f"upload of {item.name}")
                async with session.post(f"{base}/complete", data=package.xml, ssl=self._ssl,
                                        headers={"X-Action": package.action,
                                                 "Content-Type": "application/xml"}) as r:
                    await _check(r, "message")
                    body = await r.json()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(f"store {self.name}: {type(exc).__name__}: {exc}") from exc
        return Receipt(package.message_id, body.get("status") == "duplicate",
                       str(body.get("status", "")))

    async def accepted(self, message_id: str) -> bool:
        """Whether the store already accepted ``message_id``; DeliveryError if it can't say."""
        try:
            async with aiohttp.ClientSession(timeout=self._timeout,
                                             headers=self._headers) as session, \
                    session.get(f"{self.url}/drop/{message_id}", ssl=self._ssl) as r:
                if r.status == 404:
                    return False
                await _check(r, "status probe")
                body = await r.json()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(f"store {self.name}: {type(exc).__name__}: {exc}") from exc
        return body.get("status") == "accepted"


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


async def _check(response: aiohttp.ClientResponse, what: str) -> None:
    if response.status < 300:
        return
    text = (await response.text())[:200]
    raise DeliveryError(f"{what} refused with HTTP {response.status}: {text}",
                        retryable=response.status in RETRYABLE_STATUS)


@hookimpl
def plugin_info() -> dict[str, str]:
    return {"name": PLUGIN_NAME, "version": "1.0",
            "description": "Store connector for the HTTPS drop delivery protocol"}


@hookimpl(optionalhook=True)  # a hook of the distribution plug-in: absent when it is disabled
def distribution_stores(context: PluginContext) -> list[HttpDropConnector]:
    stores = context.settings_for("distribution").get("stores", {})
    connectors = []
    for name, settings in stores.items():
        if settings.get("protocol", PROTOCOL) != PROTOCOL:
            continue
        connectors.append(HttpDropConnector(
            name, settings["url"], token=settings.get("token", ""),
            dpid=settings.get("dpid", ""), display_name=settings.get("name", ""),
            ca_file=settings.get("ca_file"), timeout_s=float(settings.get("timeout_s", 30)),
        ))
    return connectors
