"""Request and answer models of the storefront's settings routes and its page queries."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from business.marketplace.sandbox import MAX_TEMPLATE_CHARS
from dawserver.plugin_api import Model, Query

Colour = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$", description="#rrggbb")]
ThemeName = Literal["classic", "midnight", "minimal"]
Font = Literal["system", "serif", "mono", "rounded"]


class ThemeIn(Model):
    """How the store looks: a theme, colours over it, a font, logo and banner assets."""

    theme: ThemeName = "classic"
    background: Colour | None = None
    text: Colour | None = None
    accent: Colour | None = None
    font: Font = "system"
    logo_asset: str | None = Field(None, max_length=128)
    banner_asset: str | None = Field(None, max_length=128)
    currency: str = Field("usd", min_length=3, max_length=3,
                          description="the currency of the search form's prices")


class StorefrontIn(Model):
    """A seller's storefront: its handle (``/store/{handle}``), words, theme and template."""

    handle: str = Field(max_length=64)
    name: str = Field("", max_length=80)
    bio: str = Field("", max_length=1000)
    theme: ThemeIn = Field(default_factory=ThemeIn)
    template: str | None = Field(None, max_length=MAX_TEMPLATE_CHARS,
                                 description="a Jinja2 template of the page's main part, "
                                             "rendered in a sandbox")


class DomainIn(Model):
    """A custom domain to serve the store at (None: give it up)."""

    domain: str | None = Field(None, max_length=253)


class DnsRecord(Model):
    name: str
    type: str
    value: str


class StorefrontOut(Model):
    handle: str
    name: str
    bio: str
    theme: dict[str, Any]
    template: str | None
    domain: str | None
    domain_record: DnsRecord | None
    domain_verified: bool
    url: str
    template_error: str | None = None


class StoreQuery(Query):
    """The store page's search form (plain GET; empty fields are no filter)."""

    q: str = Field("", max_length=100)
    bpm_min: str = Field("", max_length=8)
    bpm_max: str = Field("", max_length=8)
    key: str = Field("", max_length=20)
    genre: str = Field("", max_length=60)
    mood: str = Field("", max_length=60)
    price_min: str = Field("", max_length=12)
    price_max: str = Field("", max_length=12)
    cursor: str = Field("", max_length=400)
