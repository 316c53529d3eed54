"""The storefront ("Pro Page"): server-rendered store, beat and embed pages parsed as HTML
(lxml), the search form's filters and paging, handles, the template sandbox refusing
escape attempts (and a template failing on live data never breaking the page), custom
domains by the Host header, another seller's beat answering 404, the sitemap."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import lxml.html
import pytest
from marketplace_helpers import (
    Market,
    market,
    who,
)

from business.marketplace.sandbox import MAX_TEMPLATE_CHARS, Sandbox, TemplateRefused
from business.marketplace.storefront_pages import DEFAULT_TEMPLATE, format_price, sample_data
from dawserver.plugin_api import hookimpl

pytestmark = [pytest.mark.timeout(90)]
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def sqlite(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'market.sqlite3'}"


class Dns:
    """Stands in for DNS: the TXT records the test publishes."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}

    def lookup(self, name: str) -> list[str] | None:
        """The marketplace's ``txt_lookup`` resolver (a setting)."""
        return self.records.get(name)


BEATS = [  # title, bpm, key, genre, mood, tags, mp3 lease price (cents)
    ("Night Drive", 140, "A minor", "trap", "dark", ["808", "night"], 2999),
    ("Sunny Loop", 95, "C major", "pop", "happy", ["guitar"], 1999),
    ("Cold Steel", 150, "F# minor", "drill", "dark", ["808", "sliding"], 3999),
    ("Velvet", 85, "Eb major", "rnb", "smooth", ["keys"], 4999),
    ("Low Tide", 120, "A minor", "trap", "chill", ["ambient"], 999),
]


async def seed(m: Market, seller: str = "seller", handle: str = "nightshop") -> dict[str, str]:
    """A store with the beats above; their ids by title."""
    ids = {}
    for title, bpm, key, genre, mood, tags, price in BEATS:
        beat = await m.beat(seller, title=title, bpm=bpm, key=key, genre=genre, mood=mood,
                            tags=tags, tiers=[{"tier": "mp3_lease", "price": price},
                                              {"tier": "exclusive", "price": price * 20}])
        ids[title] = beat["beat_id"]
    status, body = await m.call("PUT", "/api/marketplace/storefront", who(seller), {
        "handle": handle, "name": "Night Shop <b>", "bio": "Dark beats & more",
        "theme": {"theme": "midnight", "accent": "#ff3366", "font": "mono"}})
    assert status == 200, body
    return ids


async def get(m: Market, path: str, **headers: str) -> tuple[int, str, Any]:
    answer = await m.client.get(path, headers=headers, allow_redirects=False)
    return answer.status, await answer.text(), answer.headers


def titles(doc: Any) -> list[str]:
    return [h.text_content().strip() for h in doc.cssselect("main article h3")]


@pytest.mark.asyncio
async def test_every_page_renders_for_a_seeded_store(tmp_path: Path) -> None:
    async with market(tmp_path, sqlite(tmp_path)) as m:
        ids = await seed(m)
        status, text, headers = await get(m, "/store/nightshop")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "script-src 'none'" in headers["Content-Security-Policy"]
        doc = lxml.html.fromstring(text)
        # the seller's name is text, never markup
        assert doc.cssselect("h1")[0].text_content() == "Night Shop <b>"
        assert not doc.cssselect("header b")
        assert sorted(titles(doc)) == sorted(t for t, *_ in BEATS)
        # landmarks, a skip link, every form control labelled
        assert doc.cssselect("header") and doc.cssselect("main#main") and doc.cssselect(
            "footer") and doc.cssselect("form[role=search]")
        assert doc.cssselect("a.skip")[0].get("href") == "#main"
        controls = doc.cssselect("form[role=search] input, form[role=search] select")
        assert len(controls) == 8
        labelled = {lab.get("for") for lab in doc.cssselect("form[role=search] label")}
        assert all(c.get("id") in labelled for c in controls)
        assert doc.cssselect("form[role=search]")[0].get("method") == "get"
        # the select boxes offer the store's own keys, genres and moods
        genres = [o.text for o in doc.cssselect("select[name=genre] option")]
        assert genres == ["Any", "drill", "pop", "rnb", "trap"]
        # prices formatted per currency, OpenGraph and Twitter tags
        article = next(a for a in doc.cssselect("main article")
                       if "Sunny Loop" in a.text_content())
        assert "$19.99" in article.text_content() and "$399.80" in article.text_content()
        meta = {e.get("property") or e.get("name"): e.get("content")
                for e in doc.cssselect("head meta")}
        assert meta["og:title"] == "Night Shop <b>" and meta["og:type"] == "website"
        assert meta["og:url"].endswith("/store/nightshop") and meta["twitter:card"] == "summary"
        assert "--accent:#ff3366" in doc.cssselect("style")[0].text

        # a beat's page
        status, text, headers = await get(m, f"/store/nightshop/beats/{ids['Cold Steel']}")
        assert status == 200
        doc = lxml.html.fromstring(text)
        assert doc.cssselect("main h2")[0].text == "Cold Steel"
        rows = [[c.text_content() for c in r] for r in doc.cssselect("table.tiers tbody tr")]
        assert rows == [["MP3 lease", "mp3", "$39.99", "Add MP3 lease to cart"],
                        ["Exclusive rights", "mp3, wav, stems", "$799.80",
                         "Add Exclusive rights to cart"]]
        meta = {e.get("property") or e.get("name"): e.get("content")
                for e in doc.cssselect("head meta")}
        assert meta["og:type"] == "music.song" and meta["twitter:card"] == "player"
        assert meta["twitter:player"].endswith(f"/store/nightshop/embed/{ids['Cold Steel']}")
        preview = doc.cssselect("audio")[0].get("src")
        assert meta["og:audio"].endswith(preview)

        # the preview plays; a paid file of the same beat is not served
        answer = await m.client.get(preview)
        assert answer.status == 200 and await answer.read() == b"ID3 tagged preview"
        assert answer.headers["Content-Type"] == "audio/mpeg"
        status, owned = await m.call("GET", f"/api/marketplace/beats/{ids['Cold Steel']}",
                                     who("seller"))
        wav = next(f["asset_id"] for f in owned["files"] if f["kind"] == "wav")
        assert (await get(m, f"/store/nightshop/media/{wav}"))[0] == 404

        # the embeddable player may be framed anywhere; nothing else may
        status, text, headers = await get(m, f"/store/nightshop/embed/{ids['Cold Steel']}")
        assert status == 200 and "X-Frame-Options" not in headers
        assert "frame-ancestors *" in headers["Content-Security-Policy"]
        doc = lxml.html.fromstring(text)
        assert doc.cssselect("audio")[0].get("aria-label") == "Preview of Cold Steel"
        assert "from $39.99" in doc.cssselect("main")[0].text_content()

        # the sitemap: valid XML, the store and every beat
        status, text, headers = await get(m, "/store/nightshop/sitemap.xml")
        assert status == 200 and headers["Content-Type"].startswith("application/xml")
        root = ElementTree.fromstring(text.encode())
        assert root.tag == f"{SITEMAP}urlset"
        locs = [u.findtext(f"{SITEMAP}loc") for u in root]
        assert locs[0].endswith("/store/nightshop") and len(locs) == 1 + len(BEATS)
        assert {loc.rsplit("/", 1)[1] for loc in locs[1:]} == set(ids.values())


@pytest.mark.asyncio
@pytest.mark.parametrize(("query", "expected"), [
    ({"bpm_min": "100", "bpm_max": "145"}, {"Night Drive", "Low Tide"}),
    ({"key": "A minor"}, {"Night Drive", "Low Tide"}),
    ({"genre": "trap", "mood": "dark"}, {"Night Drive"}),
    ({"price_max": "20"}, {"Sunny Loop", "Low Tide"}),
    ({"price_min": "45", "price_max": "60"}, {"Velvet"}),
    ({"q": "808"}, {"Night Drive", "Cold Steel"}),
    ({"q": "tide"}, {"Low Tide"}),
    ({"bpm_min": "", "genre": "", "q": ""}, {t for t, *_ in BEATS}),
])
async def test_the_search_form_filters_the_beats(tmp_path: Path, query: dict[str, str],
                                                 expected: set[str]) -> None:
    async with market(tmp_path, sqlite(tmp_path)) as m:
        await seed(m)
        await m.beat("other", title="Not Mine", bpm=120, key="A minor", genre="trap")
        status, text, _ = await get(m, "/store/nightshop?" + "&".join(
            f"{k}={v.replace(' ', '+').replace('#', '%23')}" for k, v in query.items()))
        assert status == 200
        assert set(titles(lxml.html.fromstring(text))) == expected


@pytest.mark.asyncio
async def test_paging_by_cursor_and_bad_fields_answer_a_notice(tmp_path: Path,
                                                               db_url: str,
                                                               ) -> None:
    async with market(tmp_path, db_url) as m:
        await seed(m)
        for n in range(25):
            await m.beat("seller", title=f"Extra {n:02d}", genre="trap")
        seen: list[str] = []
        path: str | None = "/store/nightshop?genre=trap"
        while path:
            status, text, _ = await get(m, path)
            assert status == 200
            doc = lxml.html.fromstring(text)
            seen += titles(doc)
            nxt = doc.cssselect("a[rel=next]")
            path = nxt[0].get("href") if nxt else None
            assert path is None or "genre=trap" in path
        assert len(seen) == len(set(seen)) == 27
        # a form typed wrong never answers a JSON error to a shopper
        status, text, _ = await get(m, "/store/nightshop?bpm_min=fast&key=H+minor&cursor=x")
        assert status == 200
        notice = lxml.html.fromstring(text).cssselect("[role=status]")[0].text_content()
        assert "Ignored bpm min" in notice and "No such key" in notice
        # words of a title or a tag; LIKE's wildcards are plain characters
        await m.beat("seller", title="100% Pure", genre="trap")
        for q, expected in (("PURE", ["100% Pure"]), ("100%", ["100% Pure"]), ("%", ["100% Pure"]),
                            ("_", []), ("sliding", ["Cold Steel"])):
            text = (await get(m, f"/store/nightshop?q={q.replace('%', '%25')}"))[1]
            assert titles(lxml.html.fromstring(text)) == expected, q


@pytest.mark.asyncio
async def test_another_sellers_beat_and_unknown_stores_answer_404(
        tmp_path: Path, db_url: str) -> None:
    async with market(tmp_path, db_url) as m:
        ids = await seed(m)
        mine = (await m.call("GET", f"/api/marketplace/beats/{ids['Velvet']}", who("seller")))[1]
        answer = await m.client.get(f"/store/nightshop/media/{mine['preview_asset_id']}")
        assert answer.status == 200 and await answer.read() == b"ID3 tagged preview"
        theirs = await m.beat("other", title="Theirs")
        for path in (f"/store/nightshop/beats/{theirs['beat_id']}",
                     f"/store/nightshop/embed/{theirs['beat_id']}",
                     f"/store/nightshop/media/{theirs['preview_asset_id']}",
                     "/store/nightshop/beats/beat_missing", "/store/nobody",
                     "/store/nobody/sitemap.xml"):
            assert (await get(m, path))[0] == 404, path


@pytest.mark.asyncio
async def test_handles_are_validated_and_unique(tmp_path: Path,
                                                db_url: str) -> None:
    async with market(tmp_path, db_url) as m:
        await seed(m)
        for bad in ("ab", "Bad Handle", "-dash", "admin", "a--b", "x" * 40):
            status, body = await m.call("PUT", "/api/marketplace/storefront", who("other"),
                                        {"handle": bad})
            assert status == 422 and "handle" in body["error"], (bad, body)
        status, body = await m.call("PUT", "/api/marketplace/storefront", who("other"),
                                    {"handle": "NightShop"})
        assert status == 409 and "taken" in body["error"]
        # the seller moves; the old handle is free, and answers 404 meanwhile
        status, body = await m.call("PUT", "/api/marketplace/storefront", who("seller"),
                                    {"handle": "night-shop-2"})
        assert status == 200 and body["url"] == "/store/night-shop-2"
        assert (await get(m, "/store/nightshop"))[0] == 404
        status, body = await m.call("PUT", "/api/marketplace/storefront", who("other"),
                                    {"handle": "nightshop"})
        assert status == 200
        # only the owner sets the storefront
        status, _ = await m.call("PUT", "/api/marketplace/storefront",
                                 who("seller", "helper", "editor"), {"handle": "mine"})
        assert status == 403


ATTEMPTS = [
    ("{{ ''.__class__.__mro__ }}", "outside its data"),
    ("{{ cycler.__init__.__globals__ }}", "cycler"),
    ("{{ store.__init__.__globals__ }}", "outside its data"),
    ("{{ joiner.__init__.__globals__.os }}", "joiner"),
    ("{{ lipsum(n=100000) }}", "lipsum"),
    ("{% for i in range(10**8) %}{% endfor %}", "only go over the store's data"),
    ("{% for a in beats %}{% for b in beats %}{% for c in beats %}"
     "x{% endfor %}{% endfor %}{% endfor %}", "nested"),
    # loops with empty bodies spend no budget: they may only go over the store's data
    ('{% for a in "x" * 10000 %}{% for b in "x" * 10000 %}{% endfor %}{% endfor %}',
     "only go over the store's data"),
    ("{% for a in beats|join %}{% for b in beats|join %}{% endfor %}{% endfor %}",
     "only go over the store's data"),
    # nor can a value be doubled until memory runs out
    ('{% set a = "x" * 10000 %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a }}', "{% set %}"),
    ("{% with a = 'x' * 10000 %}{{ a }}{% endwith %}", "{% with %}"),
    ("{{ 'x' * 1000000000 }}", "'*'"),
    ("{{ 9 ** 9 ** 9 }}", "'**'"),
    ("{{ 'a'|center(1000000000) }}", "No filter named 'center'"),
    ("{{ '<script>'|safe }}", "No filter named 'safe'"),
    ("{{ '%*d'|format(1000000000, 1) }}", "No filter named 'format'"),
    ("{{ beats.append(1) }}", "outside its data"),
    ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", "macros"),
    ("{% include '/etc/passwd' %}", "one file"),
    ("{% for b in beats recursive %}{{ loop(beats) }}{% endfor %}", "recursive"),
    ("{% if %}", "line 1"),
    ("{{ 'a'" + ".upper()" * 400 + " }}", "nested too deep"),
    ("x" * (MAX_TEMPLATE_CHARS + 1), "at most"),
]


@pytest.mark.parametrize(("template", "says"), ATTEMPTS)
@pytest.mark.asyncio
async def test_malicious_templates_are_refused_when_saved(tmp_path: Path, template: str,
                                                          says: str) -> None:
    async with market(tmp_path, sqlite(tmp_path)) as m:
        await seed(m)
        status, body = await m.call("PUT", "/api/marketplace/storefront", who("seller"),
                                    {"handle": "nightshop", "template": template})
        assert status == 422, body
        assert says in body["error"], body["error"]
        # the store still serves its built-in page
        status, text, _ = await get(m, "/store/nightshop")
        assert status == 200 and len(titles(lxml.html.fromstring(text))) == len(BEATS)


def test_the_sandbox_stops_a_template_that_runs_too_long() -> None:
    sandbox = Sandbox()
    many = {"beats": [{"title": str(n)} for n in range(1000)]}
    slow = "{% for a in beats %}{% for b in beats %}{{ b.title }}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateRefused, match="reads and calls|of CPU"):
        sandbox.render(slow, many)
    assert sandbox.render("{{ beats|length }}", many) == "1000"


#: C-level string work the sandbox's budget never sees: seconds of CPU in one expression.
HEAVY = '{{ "a".ljust(2 * 10**7)' + ".title().upper().lower()" * 30 + " | length }}"
#: A gigabyte string: stopped by the render worker's memory limit.
HUGE = '{{ "x".ljust(10**9) | length }}'
RENDER = {"render": {"timeout_s": 2.0, "memory_mb": 700, "workers": 2}}


@pytest.mark.parametrize(("template", "says"), [(HEAVY, "was stopped"),
                                                 (HUGE, "MemoryError|memory")])
@pytest.mark.asyncio
async def test_templates_past_the_time_or_memory_limit_are_refused_when_saved(
        tmp_path: Path, template: str, says: str) -> None:
    async with market(tmp_path, sqlite(tmp_path), **RENDER) as m:
        await seed(m)
        status, body = await m.call("PUT", "/api/marketplace/storefront", who("seller"),
                                    {"handle": "nightshop", "template": template})
        assert status == 422, body
        assert re.search(says, body["error"]), body["error"]
        # the worker was replaced: a good template still checks and renders
        status, body = await m.call("PUT", "/api/marketplace/storefront", who("seller"),
                                    {"handle": "nightshop",
                                     "template": "<p>made by {{ store.handle }}</p>"})
        assert status == 200, body
        assert "made by nightshop" in (await get(m, "/store/nightshop"))[1]


@pytest.mark.asyncio
async def test_a_pathological_template_stalls_no_other_request_and_is_stopped(
        tmp_path: Path) -> None:
    async with market(tmp_path, sqlite(tmp_path), **RENDER) as m:
        await seed(m)
        # passes on the 3 sample beats, runs for seconds on the store's 5
        slow = "{% if beats|length > 3 %}" + HEAVY + "{% endif %}ok"
        status, body = await m.call("PUT", "/api/marketplace/storefront", who("seller"),
                                    {"handle": "nightshop", "template": slow})
        assert status == 200, body
        async with asyncio.timeout(60):
            page = asyncio.create_task(get(m, "/store/nightshop"))
            await asyncio.sleep(0.2)  # the render is under way in a worker
            status, body = await m.call("GET", "/api/marketplace/storefront", who("seller"))
            assert status == 200 and body["handle"] == "nightshop"
            assert not page.done(), "another request waited for the template's render"
            status, text, _ = await page
        # stopped at the limit: the built-in page, and the seller is told why
        assert status == 200 and len(titles(lxml.html.fromstring(text))) == len(BEATS)
        status, body = await m.call("GET", "/api/marketplace/storefront", who("seller"))
        assert "was stopped" in body["template_error"]


@pytest.mark.asyncio
async def test_a_custom_template_renders_and_one_failing_on_live_data_falls_back(
        tmp_path: Path) -> None:
    async with market(tmp_path, sqlite(tmp_path)) as m:
        await seed(m)
        template = ("<section aria-label='Catalogue'>{% for b in beats %}<article>"
                    "<h3>{{ b.title|upper }}</h3><p>{{ b.from_price }}</p></article>"
                    "{% endfor %}</section><p>{{ store.bio }}</p>")
        status, body = await m.call("PUT", "/api/marketplace/storefront", who("seller"),
                                    {"handle": "nightshop", "bio": "Dark beats & more",
                                     "template": template})
        assert status == 200 and body["template"] == template
        doc = lxml.html.fromstring((await get(m, "/store/nightshop"))[1])
        assert "COLD STEEL" in titles(doc) and doc.cssselect("section[aria-label=Catalogue]")
        assert "Dark beats & more" in doc.cssselect("main")[0].text_content()
        # passes with the 3 sample beats, fails on the store's 5: visitors never see a 500
        fragile = "{% if beats|length > 3 %}{{ beats.missing }}{% endif %}ok"
        status, body = await m.call("PUT", "/api/marketplace/storefront", who("seller"),
                                    {"handle": "nightshop", "template": fragile})
        assert status == 200
        status, text, _ = await get(m, "/store/nightshop")
        assert status == 200 and len(titles(lxml.html.fromstring(text))) == len(BEATS)
        status, body = await m.call("GET", "/api/marketplace/storefront", who("seller"))
        assert "missing" in body["template_error"]


class Hostile(Dns):
    """An installed plug-in that tries to answer for DNS (the records the test gives it)
    and the asset store through the hooks that used to decide them."""

    @hookimpl(optionalhook=True)
    def marketplace_txt_records(self, context: Any, name: str) -> list[str] | None:
        return self.records.get(name)

    @hookimpl(optionalhook=True)
    def marketplace_asset_file(self, context: Any, account_id: str, asset_id: str) -> str:
        return "/etc/passwd"


@pytest.mark.asyncio
async def test_no_plug_in_decides_domain_proof_or_asset_files(tmp_path: Path) -> None:
    dns, hostile = Dns(), Hostile()
    async with market(tmp_path, sqlite(tmp_path), plugins=(hostile,),
                      txt_lookup=dns.lookup) as m:
        await seed(m)
        status, body = await m.call("PUT", "/api/marketplace/storefront/domain", who("seller"),
                                    {"domain": "bank.example"})
        assert status == 200
        record = body["domain_record"]
        hostile.records[record["name"]] = [record["value"]]
        status, body = await m.call("POST", "/api/marketplace/storefront/domain/verify",
                                    who("seller"), {})
        assert status == 409 and "has no TXT record" in body["error"]
        status, body = await m.call("PUT", "/api/marketplace/storefront", who("seller"), {
            "handle": "nightshop", "theme": {"logo_asset": "passwd"}})
        assert status == 422 and "no asset 'passwd'" in body["error"]
        assert (await m.client.get("/store/nightshop/media/passwd")).status == 404


@pytest.mark.asyncio
async def test_a_proved_custom_domain_serves_the_store_at_the_root(tmp_path: Path,
                                                                  db_url: str,
                                                               ) -> None:
    dns = Dns()
    async with market(tmp_path, db_url, txt_lookup=dns.lookup) as m:
        await seed(m)
        await m.call("PUT", "/api/marketplace/storefront", who("other"), {"handle": "other"})
        status, body = await m.call("PUT", "/api/marketplace/storefront/domain", who("seller"),
                                    {"domain": "https://beats.example.com/"})
        assert status == 422 and "not a domain" in body["error"]
        status, body = await m.call("PUT", "/api/marketplace/storefront/domain", who("seller"),
                                    {"domain": "Beats.Example.com."})
        assert status == 200 and body["domain"] == "beats.example.com"
        record = body["domain_record"]
        assert record["name"] == "_maxbooster-store.beats.example.com"
        assert not body["domain_verified"]
        # a claim reserves nothing (no squatting): only the DNS proof takes the domain
        status, claimed = await m.call("PUT", "/api/marketplace/storefront/domain",
                                       who("other"), {"domain": "beats.example.com"})
        assert status == 200 and not claimed["domain_verified"]

        def on_host(text: str) -> bool:
            h1 = lxml.html.fromstring(text).cssselect("h1")
            return bool(h1) and h1[0].text_content() == "Night Shop <b>"

        # unproved: the host is not served as the store
        assert not on_host((await get(m, "/", Host="beats.example.com"))[1])
        status, body = await m.call("POST", "/api/marketplace/storefront/domain/verify",
                                    who("seller"), {})
        assert status == 409 and "no TXT record" in body["error"]
        dns.records[record["name"]] = ["maxbooster-store-verification=someone-else"]
        status, _ = await m.call("POST", "/api/marketplace/storefront/domain/verify",
                                 who("seller"), {})
        assert status == 409
        dns.records[record["name"]].append(record["value"])
        status, body = await m.call("POST", "/api/marketplace/storefront/domain/verify",
                                    who("seller"), {})
        assert status == 200 and body["domain_verified"]

        status, text, headers = await get(m, "/", Host="beats.example.com")
        assert status == 200 and on_host(text)
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        status, text, _ = await get(m, "/?genre=pop", Host="BEATS.example.com:443")
        assert titles(lxml.html.fromstring(text)) == ["Sunny Loop"]
        assert not on_host((await get(m, "/", Host="other.example.com"))[1])
        status, _ = await m.call("POST", "/api/marketplace/storefront/domain/verify",
                                 who("other"), {})
        assert status == 409  # the record names the seller's token, not the other store's
        assert on_host((await get(m, "/", Host="beats.example.com"))[1])
        # the domain changes hands: whoever publishes the record now proves it and takes it
        dns.records[record["name"]] = [claimed["domain_record"]["value"]]
        status, body = await m.call("POST", "/api/marketplace/storefront/domain/verify",
                                    who("other"), {})
        assert status == 200 and body["domain_verified"]
        assert not on_host((await get(m, "/", Host="beats.example.com"))[1])
        status, mine = await m.call("GET", "/api/marketplace/storefront", who("seller"))
        assert status == 200 and not mine["domain_verified"]
        # giving the domain up stops serving it at once on this server
        status, _ = await m.call("PUT", "/api/marketplace/storefront/domain", who("seller"),
                                 {"domain": None})
        assert status == 200
        assert not on_host((await get(m, "/", Host="beats.example.com"))[1])



@pytest.mark.asyncio
async def test_a_forged_host_reaches_no_page_or_sitemap(tmp_path: Path) -> None:
    """Pages and the sitemap (kept by shared caches) name the server's public URL, or the
    store's proved domain when asked on it: never a Host header someone made up."""
    dns = Dns()
    async with market(tmp_path, sqlite(tmp_path), txt_lookup=dns.lookup,
                      server_config={"public_url": "https://studio.example.org/"}) as m:
        ids = await seed(m)

        async def sitemap_locs(host: str) -> list[str]:
            status, text, _ = await get(m, "/store/nightshop/sitemap.xml", Host=host)
            assert status == 200, text
            return [u.findtext(f"{SITEMAP}loc") for u in ElementTree.fromstring(text.encode())]

        def og_url(text: str) -> str:
            return lxml.html.fromstring(text).cssselect('meta[property="og:url"]')[0].get(
                "content")

        locs = await sitemap_locs("evil.example")
        assert locs[0] == "https://studio.example.org/store/nightshop"
        assert all(loc.startswith("https://studio.example.org/") for loc in locs)
        beat = f"/store/nightshop/beats/{ids['Cold Steel']}"
        _, text, _ = await get(m, beat, Host="evil.example")
        assert og_url(text) == "https://studio.example.org" + beat
        status, body = await m.call("PUT", "/api/marketplace/storefront/domain",
                                    who("seller"), {"domain": "beats.example.com"})
        assert status == 200
        assert (await sitemap_locs("beats.example.com"))[0].startswith("https://studio.")
        record = body["domain_record"]
        dns.records[record["name"]] = [record["value"]]
        status, _ = await m.call("POST", "/api/marketplace/storefront/domain/verify",
                                 who("seller"), {})
        assert status == 200
        locs = await sitemap_locs("Beats.Example.com:443")
        assert locs[0] == "https://beats.example.com/store/nightshop"
        assert (await sitemap_locs("evil.example"))[0].startswith("https://studio.")


def test_the_built_in_template_passes_the_sandbox_too() -> None:
    data = sample_data()
    assert "Sample beat" in Sandbox().render(DEFAULT_TEMPLATE, data)
    assert "Sample beat" in Sandbox().render(DEFAULT_TEMPLATE, {**data, "page": "beat"})


def test_prices_are_formatted_per_currency() -> None:
    assert format_price(2999, "usd") == "$29.99"
    assert format_price(3000, "jpy") == "¥3,000"
    assert format_price(123456, "eur") == "€1,234.56"
