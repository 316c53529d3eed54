"""The storefront's HTML: the layout (ours: head, OpenGraph and Twitter tags, landmarks,
the search form, the theme's CSS) around the main part (the built-in template or the
seller's, rendered in :mod:`.sandbox`), the embeddable player and the sitemap.

Templates receive plain data only (:func:`beat_data`): titles, numbers, formatted prices
and URLs, never an object of ours.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import jinja2
from babel.numbers import format_currency
from markupsafe import Markup

from business.marketplace.ledger import ZERO_DECIMAL
from business.marketplace.models import Beat
from business.marketplace.render_pool import RenderPool
from business.marketplace.sandbox import TemplateRefused
from business.marketplace.storefront import Storefront

THEMES: dict[str, dict[str, str]] = {
    "classic": {"background": "#ffffff", "text": "#1a1a1a", "accent": "#0b57d0"},
    "midnight": {"background": "#101018", "text": "#f2f2f7", "accent": "#8ab4ff"},
    "minimal": {"background": "#fafafa", "text": "#222222", "accent": "#222222"},
}
FONTS = {"system": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
         "serif": "Georgia, 'Times New Roman', serif",
         "mono": "ui-monospace, 'SFMono-Regular', Menlo, monospace",
         "rounded": "ui-rounded, 'Nunito', system-ui, sans-serif"}
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
#: Pages may not be framed, load scripts, or post elsewhere; the embed may be framed anywhere.
PAGE_CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self'; "
            "style-src 'unsafe-inline'; script-src 'none'; form-action 'self'; "
            "base-uri 'none'; frame-ancestors 'none'")
EMBED_CSP = PAGE_CSP.replace("frame-ancestors 'none'", "frame-ancestors *")
PAGE_HEADERS = {"Content-Security-Policy": PAGE_CSP, "X-Frame-Options": "DENY",
                "X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=30"}
EMBED_HEADERS = {"Content-Security-Policy": EMBED_CSP, "X-Content-Type-Options": "nosniff",
                 "Cache-Control": "public, max-age=30"}

#: The main part of the store page by default; a seller's template replaces it.
DEFAULT_TEMPLATE = """\
{% if page == "beat" %}
<article class="beat" aria-labelledby="beat-title">
<h2 id="beat-title">{{ beat.title }}</h2>
<p class="meta">{{ beat.bpm }} BPM · {{ beat.key }}{% if beat.genre %} · {{ beat.genre }}\
{% endif %}{% if beat.mood %} · {{ beat.mood }}{% endif %}</p>
{% if beat.preview_url %}<audio controls preload="none" src="{{ beat.preview_url }}" \
aria-label="Preview of {{ beat.title }}"></audio>{% endif %}
{% if beat.tags %}<ul class="tags" aria-label="Tags">{% for t in beat.tags %}\
<li>{{ t }}</li>{% endfor %}</ul>{% endif %}
<table class="tiers"><caption>Licences</caption><thead><tr><th scope="col">Licence</th>
<th scope="col">Files</th><th scope="col">Price</th><th scope="col">Cart</th></tr></thead>\
<tbody>
{% for t in beat.tiers %}<tr><th scope="row">{{ t.name }}</th><td>{{ t.files|join(", ") }}\
</td><td>{{ t.price }}</td><td><form method="post" action="{{ store.url }}/cart">\
<input type="hidden" name="beat_id" value="{{ beat.id }}"><input type="hidden" name="tier" \
value="{{ t.tier }}"><button type="submit">Add {{ t.name }} to cart</button></form></td></tr>\
{% endfor %}</tbody></table>
<p><a href="{{ store.url }}">All beats by {{ store.name }}</a></p>
</article>
{% else %}
<h2 id="beats-heading">Beats</h2>
{% if beats %}<ul class="beats" aria-labelledby="beats-heading">
{% for b in beats %}<li class="beat"><article aria-labelledby="t-{{ b.id }}">
<h3 id="t-{{ b.id }}"><a href="{{ b.url }}">{{ b.title }}</a></h3>
<p class="meta">{{ b.bpm }} BPM · {{ b.key }}{% if b.genre %} · {{ b.genre }}{% endif %}\
{% if b.mood %} · {{ b.mood }}{% endif %}</p>
{% if b.tags %}<ul class="tags" aria-label="Tags">{% for t in b.tags %}<li>{{ t }}</li>\
{% endfor %}</ul>{% endif %}
{% if b.preview_url %}<audio controls preload="none" src="{{ b.preview_url }}" \
aria-label="Preview of {{ b.title }}"></audio>{% endif %}
<ul class="prices" aria-label="Licences">{% for t in b.tiers %}<li>{{ t.name }}: \
<span class="price">{{ t.price }}</span></li>{% endfor %}</ul>
</article></li>{% endfor %}
</ul>{% else %}<p>No beats match these filters.</p>{% endif %}
{% if next_url %}<nav aria-label="More beats"><a href="{{ next_url }}" rel="next">Next page\
</a></nav>{% endif %}
{% endif %}
"""

_LAYOUT = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<meta name="description" content="{{ description }}">
<link rel="canonical" href="{{ canonical }}">
{% for p, c in og %}<meta property="{{ p }}" content="{{ c }}">
{% endfor %}{% for n, c in twitter %}<meta name="{{ n }}" content="{{ c }}">
{% endfor %}<style>
:root{--bg:{{ colours.background }};--fg:{{ colours.text }};--accent:{{ colours.accent }}}
body{margin:0;background:var(--bg);color:var(--fg);font-family:{{ font }};line-height:1.5}
a{color:var(--accent)}a:focus,button:focus,input:focus,select:focus{outline:3px solid \
var(--accent);outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:var(--bg)}
header,main,footer,form[role=search]{max-width:60rem;margin:0 auto;padding:1rem}
header img.banner{width:100%;max-height:12rem;object-fit:cover}
header img.logo{height:4rem}
.beats{list-style:none;padding:0;display:grid;gap:1rem;\
grid-template-columns:repeat(auto-fill,minmax(16rem,1fr))}
.beat{border:1px solid color-mix(in srgb,var(--fg) 20%,transparent);padding:1rem;\
border-radius:.5rem}
.tags{display:flex;gap:.5rem;list-style:none;padding:0;flex-wrap:wrap}
.tags li{font-size:.85em;opacity:.8}.price{font-weight:600}
form[role=search] fieldset{display:flex;flex-wrap:wrap;gap:.75rem;border:0;padding:0}
form[role=search] label{display:flex;flex-direction:column;font-size:.9em}
audio{width:100%}
</style></head>
<body><a class="skip" href="#main">Skip to the beats</a>
<header>{% if banner_url %}<img class="banner" src="{{ banner_url }}" alt="">{% endif %}
{% if logo_url %}<img class="logo" src="{{ logo_url }}" alt="{{ store.name }} logo">{% endif %}
<h1><a href="{{ store.url }}">{{ store.name }}</a></h1>
<p><a href="{{ store.url }}/cart">Cart</a></p>
{% if store.bio %}<p>{{ store.bio }}</p>{% endif %}</header>
{% if search %}<form role="search" aria-label="Search and filter beats" method="get" \
action="{{ store.url }}"><fieldset><legend>Find a beat</legend>
<label for="f-q">Search<input id="f-q" type="search" name="q" value="{{ filters.q }}"></label>
<label for="f-bpm-min">BPM from<input id="f-bpm-min" type="number" min="0" name="bpm_min" \
value="{{ filters.bpm_min }}"></label>
<label for="f-bpm-max">BPM to<input id="f-bpm-max" type="number" min="0" name="bpm_max" \
value="{{ filters.bpm_max }}"></label>
{% for name, label, options in facets %}<label for="f-{{ name }}">{{ label }}\
<select id="f-{{ name }}" name="{{ name }}"><option value="">Any</option>\
{% for o in options %}<option{% if o == filters[name] %} selected{% endif %}>{{ o }}</option>\
{% endfor %}</select></label>
{% endfor %}<label for="f-price-min">Price from ({{ currency }})<input id="f-price-min" \
type="number" min="0" step="any" name="price_min" value="{{ filters.price_min }}"></label>
<label for="f-price-max">Price to ({{ currency }})<input id="f-price-max" type="number" \
min="0" step="any" name="price_max" value="{{ filters.price_max }}"></label>
<button type="submit">Search</button></fieldset></form>{% endif %}
<main id="main" tabindex="-1">{% if notice %}<p role="status">{{ notice }}</p>{% endif %}
{{ content }}</main>
{% if plans %}<section class="plans" aria-labelledby="plans-title">\
<h2 id="plans-title">Memberships</h2><ul>{% for p in plans %}<li><h3>{{ p.name }}</h3>
<p>{{ p.price }} a {{ p.interval }}</p>{% if p.perks %}<ul>{% for perk in p.perks %}\
<li>{{ perk }}</li>{% endfor %}</ul>{% endif %}</li>{% endfor %}</ul></section>{% endif %}
<footer><p>{{ store.name }} · <a href="{{ store.url }}/sitemap.xml">Sitemap</a></p></footer>
</body></html>
"""

_EMBED = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ beat.title }} – {{ store.name }}</title>
<style>body{margin:0;padding:.75rem;font-family:{{ font }};background:{{ colours.background }};\
color:{{ colours.text }}}a{color:{{ colours.accent }}}audio{width:100%}h1{font-size:1rem;\
margin:0 0 .5rem}</style></head>
<body><main aria-label="Beat player"><h1>{{ beat.title }} <small>by {{ store.name }}</small></h1>
{% if beat.preview_url %}<audio controls preload="none" src="{{ beat.preview_url }}" \
aria-label="Preview of {{ beat.title }}"></audio>{% else %}<p>No preview yet.</p>{% endif %}
<p>{{ beat.bpm }} BPM · {{ beat.key }}{% if beat.from_price %} · from {{ beat.from_price }}\
{% endif %} · <a href="{{ beat.absolute_url }}" target="_blank" rel="noopener">Licence it on \
{{ store.name }}</a></p></main></body></html>
"""

_trusted = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_LAYOUT_T = _trusted.from_string(_LAYOUT)
_EMBED_T = _trusted.from_string(_EMBED)
#: Ours, so rendered outside the sandbox (the same template passes in it: tested).
_DEFAULT_T = _trusted.from_string(DEFAULT_TEMPLATE)


def exponent(currency: str) -> int:
    """Decimal places of ``currency``'s major unit (as Stripe counts them)."""
    return 0 if currency.lower() in ZERO_DECIMAL else 2


@functools.lru_cache(maxsize=8192)
def format_price(minor: int, currency: str, locale: str = "en_US") -> str:
    """``2999, "usd"`` -> ``$29.99``; ``3000, "jpy"`` -> ``¥3,000`` (Babel, CLDR data)."""
    value = Decimal(minor).scaleb(-exponent(currency))
    return format_currency(value, currency.upper(), locale=locale)


def to_minor(text: str, currency: str) -> int | None:
    """A price typed in the search form (major units) in minor units; None if blank."""
    if not text.strip():
        return None
    value = Decimal(text.strip())
    if not value.is_finite() or value < 0:
        raise ValueError(text)
    return int(value.scaleb(exponent(currency)).to_integral_value())


def store_data(store: Storefront, base: str) -> dict[str, Any]:
    return {"name": store.title, "handle": store.handle, "bio": store.bio,
            "url": f"/store/{store.handle}", "absolute_url": f"{base}/store/{store.handle}"}


def beat_data(store: Storefront, beat: Beat, base: str) -> dict[str, Any]:
    """What a template may know of a beat: plain values and URLs."""
    url = f"/store/{store.handle}/beats/{beat.beat_id}"
    preview = next((f.asset_id for f in beat.files if f.kind == "tagged_mp3"), None)
    tiers = [t for t in beat.tiers if t.active]
    return {"id": beat.beat_id, "title": beat.title, "bpm": beat.bpm, "key": beat.key,
            "genre": beat.genre, "mood": beat.mood, "tags": list(beat.tags), "url": url,
            "absolute_url": base + url,
            "embed_url": f"/store/{store.handle}/embed/{beat.beat_id}",
            "preview_url": (
                f"/store/{store.handle}/preview/{beat.beat_id}?v={beat.preview_sha256[:16]}"
                if beat.preview_sha256 else
                f"/store/{store.handle}/media/{preview}" if preview else None),
            "from_price": format_price(min(t.price for t in tiers), beat.currency)
            if tiers else None,
            "tiers": [{"tier": t.tier, "name": t.name, "price": format_price(t.price, t.currency),
                       "amount": t.price, "currency": t.currency, "exclusive": t.exclusive,
                       "files": list(t.files)} for t in tiers]}


def plan_data(plan: Any) -> dict[str, Any]:
    """What the store page shows of a membership plan: its price and perks in words."""
    perks = []
    if plan.free_downloads and plan.free_tier:
        perks.append(f"{plan.free_downloads} free {plan.free_tier.replace('_', ' ')} "
                     f"licences a {plan.interval}")
    if plan.discount_bp:
        perks.append(f"{plan.discount_bp / 100:g} % off every other licence")
    return {"id": plan.plan_id, "name": plan.name, "interval": plan.interval,
            "price": format_price(plan.amount, plan.currency), "perks": perks}


def sample_data() -> dict[str, Any]:
    """Data a seller's template is tried with when saved (both pages' shapes)."""
    tiers = [{"tier": "mp3_lease", "name": "MP3 lease", "price": "$29.99", "amount": 2999,
              "currency": "usd", "exclusive": False, "files": ["mp3"]}]
    beat = {"id": "beat_sample", "title": "Sample beat", "bpm": 140, "key": "A minor",
            "genre": "trap", "mood": "dark", "tags": ["808"], "url": "/store/x/beats/b",
            "absolute_url": "http://x/store/x/beats/b", "embed_url": "/store/x/embed/b",
            "preview_url": None, "from_price": "$29.99", "tiers": tiers}
    store = {"name": "Sample store", "handle": "sample", "bio": "", "url": "/store/sample",
             "absolute_url": "http://x/store/sample"}
    return {"page": "store", "store": store, "beats": [beat] * 3, "beat": beat,
            "next_url": None}


def _theme(store: Storefront) -> tuple[dict[str, str], str]:
    theme = store.theme or {}
    colours = dict(THEMES.get(theme.get("theme", "classic"), THEMES["classic"]))
    colours.update({k: theme[k] for k in ("background", "text", "accent") if theme.get(k)})
    return colours, FONTS.get(theme.get("font", "system"), FONTS["system"])


def _media(store: Storefront, key: str) -> str | None:
    asset = (store.theme or {}).get(key)
    return f"/store/{store.handle}/media/{asset}" if asset else None


async def render_main(renderer: RenderPool, store: Storefront, data: dict[str, Any]
                      ) -> tuple[str, str]:
    """The main part: the seller's template (in the sandbox, in a render worker), or the
    built-in one when there is none or theirs fails on this data (or runs too long, or is
    paused by the breaker). ``(html, the failure or "")``; :class:`RenderBusy` when too
    many renders of this store (or in all) run or wait."""
    error = ""
    if store.template:
        try:
            return await renderer.render(store.template, data, key=store.account_id), ""
        except TemplateRefused as exc:
            error = str(exc)
    return _DEFAULT_T.render(**data), error


def page(store: Storefront, main: str, *, base: str, title: str, description: str,
         canonical: str, og: list[tuple[str, str]], twitter: list[tuple[str, str]],
         search: bool = False, filters: dict[str, str] | None = None,
         facets: list[tuple[str, str, list[str]]] | None = None, notice: str = "",
         plans: list[dict[str, Any]] | None = None) -> str:
    """The whole page around ``main`` (already escaped HTML); ``plans``: the store's
    membership plans (:func:`plan_data`)."""
    colours, font = _theme(store)
    return _LAYOUT_T.render(
        title=title, description=description, canonical=canonical, og=og, twitter=twitter,
        colours=colours, font=font, store=store_data(store, base), search=search,
        filters=filters or {}, facets=facets or [], notice=notice,
        currency=str((store.theme or {}).get("currency", "usd")).upper(),
        banner_url=_media(store, "banner_asset"), logo_url=_media(store, "logo_asset"),
        content=Markup(main), plans=plans or [])


def social_tags(store: Storefront, base: str, *, title: str, description: str, url: str,
                beat: dict[str, Any] | None = None
                ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """OpenGraph and Twitter card tags of a store page (``beat``: of a beat's page)."""
    image = _media(store, "banner_asset") or _media(store, "logo_asset")
    og = [("og:type", "music.song" if beat else "website"), ("og:title", title),
          ("og:description", description), ("og:url", url), ("og:site_name", store.title)]
    twitter = [("twitter:title", title), ("twitter:description", description)]
    if image:
        og.append(("og:image", base + image))
        twitter.append(("twitter:image", base + image))
    if beat and beat["preview_url"]:
        og.append(("og:audio", base + beat["preview_url"]))
    if beat:
        twitter = [("twitter:card", "player"), *twitter,
                   ("twitter:player", base + beat["embed_url"]),
                   ("twitter:player:width", "480"), ("twitter:player:height", "160")]
    else:
        twitter = [("twitter:card", "summary_large_image" if image else "summary"), *twitter]
    return og, twitter


def embed(store: Storefront, beat: dict[str, Any]) -> str:
    colours, font = _theme(store)
    return _EMBED_T.render(store=store_data(store, ""), beat=beat, colours=colours, font=font)


def query_url(path: str, params: dict[str, str]) -> str:
    kept = {k: v for k, v in params.items() if v}
    return f"{path}?{urlencode(kept)}" if kept else path


def sitemap(store: Storefront, beats: list[Beat], base: str) -> str:
    """The store's sitemap (sitemaps.org 0.9): its page and each beat on sale."""
    ElementTree.register_namespace("", SITEMAP_NS)
    root = ElementTree.Element(f"{{{SITEMAP_NS}}}urlset")

    def add(loc: str, modified: float | None) -> None:
        url = ElementTree.SubElement(root, f"{{{SITEMAP_NS}}}url")
        ElementTree.SubElement(url, f"{{{SITEMAP_NS}}}loc").text = loc
        if modified:
            from datetime import UTC, datetime
            ElementTree.SubElement(url, f"{{{SITEMAP_NS}}}lastmod").text = datetime.fromtimestamp(
                modified, UTC).strftime("%Y-%m-%d")

    add(f"{base}/store/{store.handle}", store.updated_at)
    for beat in beats:
        add(f"{base}/store/{store.handle}/beats/{beat.beat_id}", beat.created_at)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)
