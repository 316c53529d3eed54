"""Licence contracts: each purchase's PDF (parties, the tier's rights, the beat, date,
order id, a SHA-256 of each delivered file) written by the job, kept under the seller's
account, re-downloadable by the buyer while the licence is active (another account's:
404; a refunded licence's: 403, the seller's copy kept); the seller's template
checked in the sandbox when saved (escapes refused), and one failing on live data falling
back to the default wording."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import zlib
from pathlib import Path
from typing import Any

import pytest
from marketplace_helpers import (
    Market,
    market,
    market_services,
    who,
)

from business.marketplace.contract_pdf import DEFAULT_CONTRACT, latin1, rights_list

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

M = "/api/marketplace"


def pdf_text(pdf: bytes) -> str:
    """The text of a PDF: pypdf's extraction when installed, else the string operands of
    the (Flate-compressed) content streams fpdf2 writes, one shown string per line."""
    assert pdf.startswith(b"%PDF-"), pdf[:20]
    try:
        import io

        import pypdf
    except ImportError:
        pypdf = None
    if pypdf is not None:
        return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    lines = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            content = zlib.decompress(stream)
        except zlib.error:
            content = stream
        for shown in re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", content):
            text = re.sub(rb"\\([()\\])", rb"\1", shown)
            lines.append(text.decode("latin-1"))
    return "\n".join(lines)


def flat(text: str) -> str:
    return " ".join(text.split())


async def bought(m: Market, tier: str = "wav_lease", buyer: str = "buyer"
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """A beat of ``seller`` bought by ``buyer``: the order and the licence, once its
    contract is written."""
    if not await market_services(m).store.stripe_account("seller"):
        await m.seller("seller")
    beat = await m.beat("seller")
    status, started = await m.checkout(buyer, "seller", beat["beat_id"], tier)
    assert status == 201, started
    m.pay(started)
    order = await m.order(buyer, started["order"]["order_id"], "paid")
    async with asyncio.timeout(30):
        while True:
            [licence] = [lic for lic in await m.library(buyer)
                         if lic["order_id"] == order["order_id"]]
            if licence["contract_url"]:
                return order, licence
            await asyncio.sleep(0.1)


async def get_pdf(m: Market, url: str, account: str) -> tuple[int, bytes, dict[str, str]]:
    answer = await m.client.get(url, headers=who(account))
    return answer.status, await answer.read(), dict(answer.headers)


def sha256_of(m: Market, account: str, asset_id: str) -> str:
    path = m.assets.file(account, asset_id)
    assert path is not None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


async def test_a_purchase_gets_a_contract_with_rights_and_checksums(
        tmp_path: Path, db_url: str) -> None:
    async with market(tmp_path, db_url) as m:
        order, licence = await bought(m, "wav_lease")
        url = licence["contract_url"]
        assert url == f"{M}/library/{licence['licence_id']}/contract"
        status, pdf, headers = await get_pdf(m, url, "buyer")
        assert status == 200, pdf
        assert headers["Content-Type"] == "application/pdf"
        assert headers["X-Content-SHA256"] == hashlib.sha256(pdf).hexdigest()
        text = flat(pdf_text(pdf))
        assert "WAV lease licence agreement" in text
        for field in (order["order_id"], licence["licence_id"], "Night Drive",
                      "140 BPM, A minor", "49.99 USD", "(the Licensor, account seller)",
                      "(the Licensee, account buyer)", "non-exclusive"):
            assert field in text, (field, text)
        # the tier's rights, each with its limit
        for right in ("Distribution copies (sales and downloads): up to 5,000",
                      "Audio streams: up to 100,000", "Music videos: up to 1",
                      "Monetised video streams: up to 100,000",
                      "Radio stations (broadcast): up to 2",
                      "Live performances (for profit): allowed"):
            assert right in text, (right, text)
        # a checksum of each delivered file (the mp3 and the wav), none of the others
        beat = await market_services(m).store.beat("seller", licence["beat_id"])
        assert beat is not None
        sums = {f.kind: sha256_of(m, "seller", f.asset_id) for f in beat.files}
        assert f"sha256: {sums['mp3']}" in text and f"sha256: {sums['wav']}" in text
        assert sums["stems"] not in text and sums["tagged_mp3"] not in text
        assert len(re.findall(r"sha256: [0-9a-f]{64}", text)) == 2
        # kept under the seller: the seller's copy of the sale is the same document
        status, theirs, _ = await get_pdf(m, f"{M}/sales/{order['order_id']}/contract",
                                          "seller")
        assert status == 200 and theirs == pdf
        # re-downloadable, and the library's one licence answers the same
        assert (await get_pdf(m, url, "buyer"))[1] == pdf
        status, one = await m.call("GET", f"{M}/library/{licence['licence_id']}",
                                   who("buyer", "vi", "viewer"))
        assert status == 200 and one["contract_url"] == url
        # nobody else's: 404 like a missing one
        for stranger in ("seller", "other"):
            assert (await get_pdf(m, url, stranger))[0] == 404
        assert (await get_pdf(m, f"{M}/sales/{order['order_id']}/contract", "buyer"))[0] \
            == 404
        # the job wrote it once; another run finds it
        contracts = market_services(m).contracts
        again = await contracts.write("seller", licence["licence_id"])
        assert again.pdf == pdf and again.template == "default"


async def test_a_refunded_licences_contract_is_the_sellers_alone(
        tmp_path: Path, db_url: str) -> None:
    """Refunded in full, the licence's contract is refused to the buyer (403, as its
    files are) while the seller keeps their copy for the records."""
    async with market(tmp_path, db_url) as m:
        order, licence = await bought(m, "mp3_lease")
        sale = f"{M}/sales/{order['order_id']}/contract"
        status, pdf, _ = await get_pdf(m, licence["contract_url"], "buyer")
        assert status == 200, pdf
        status, body = await m.call("POST", f"{M}/sales/{order['order_id']}/refund",
                                    who("seller"), {})
        assert status == 202, body
        await m.order("buyer", order["order_id"], "refunded")
        status, refused, _ = await get_pdf(m, licence["contract_url"], "buyer")
        assert status == 403 and "refunded" in json.loads(refused)["error"], refused
        status, library = await m.call("GET", f"{M}/library", who("buyer"))
        assert status == 200 and [x["contract_url"] for x in library
                                  if x["licence_id"] == licence["licence_id"]] == [None]
        status, theirs, _ = await get_pdf(m, sale, "seller")
        assert status == 200 and theirs == pdf
        # another account is still told there is no such licence
        assert (await get_pdf(m, licence["contract_url"], "other"))[0] == 404


async def test_an_exclusive_contract_says_so(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        _, licence = await bought(m, "exclusive")
        status, pdf, _ = await get_pdf(m, licence["contract_url"], "buyer")
        text = flat(pdf_text(pdf))
        assert "Exclusive rights licence agreement" in text
        assert "the exclusive right" in text and "non-exclusive" not in text
        assert "Distribution copies (sales and downloads): unlimited" in text
        assert len(re.findall(r"sha256: [0-9a-f]{64}", text)) == 3  # mp3, wav, stems


SELLER_TEMPLATE = """\
# Contract {{ licence.order_id }}
Between {{ licensor.name }} and {{ licensee.account }} on {{ licence.date }}.
{%- for r in rights %}
- {{ r.name | upper }} = {{ r.value }}
{%- endfor %}
{%- for f in files %}
sha256: {{ f.sha256 }}
{%- endfor %}
Beat & title: {{ beat.title }} <no escaping in text>
"""


async def test_the_sellers_template_is_used(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        status, body = await m.call("GET", f"{M}/contract-template", who("seller"))
        assert status == 200 and body["template"] is None
        assert body["default_template"] == DEFAULT_CONTRACT
        status, body = await m.call("PUT", f"{M}/contract-template", who("seller"),
                                    {"template": SELLER_TEMPLATE})
        assert status == 200 and body["template"] == SELLER_TEMPLATE
        # only the owner sets it
        status, _ = await m.call("PUT", f"{M}/contract-template",
                                 who("seller", "ed", "editor"), {"template": "x"})
        assert status == 403
        order, licence = await bought(m, "mp3_lease")
        _, pdf, _ = await get_pdf(m, licence["contract_url"], "buyer")
        text = flat(pdf_text(pdf))
        assert f"Contract {order['order_id']}" in text
        assert "DISTRIBUTION COPIES (SALES AND DOWNLOADS) = up to 2,500" in text
        assert "Beat & title: Night Drive <no escaping in text>" in text
        assert "licence agreement" not in text
        beat = await market_services(m).store.beat("seller", licence["beat_id"])
        assert beat is not None
        mp3 = next(f for f in beat.files if f.kind == "mp3")
        assert f"sha256: {sha256_of(m, 'seller', mp3.asset_id)}" in text
        # back to the default
        status, body = await m.call("PUT", f"{M}/contract-template", who("seller"),
                                    {"template": None})
        assert status == 200 and body["template"] is None


ATTACKS = {
    "{{ ''.__class__.__mro__[1].__subclasses__() }}": "reached outside",
    "{{ licence.__class__.__init__.__globals__ }}": "reached outside",
    "{{ cycler.__init__.__globals__.os.system('id') }}": "undefined",
    "{{ lipsum.__globals__['os'] }}": "undefined",
    "{{ files.append(1) }}": "reached outside",
    "{{ rights.pop() }}": "reached outside",
    "{% for i in range(10**9) %}x{% endfor %}": "loop may only go over",
    "{% include '/etc/passwd' %}": "include",
    "{% import 'os' as os %}": "import",
    "{% set x = 1 %}": "set",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}": "macros",
    "{{ 'a' * 100000000 }}": "'*' may make at most",
    "{{ 9 ** 9 ** 9 }}": "'**' is limited",
    "{{ licence.id | attr('__class__') }}": "No filter named 'attr'",
    "{{ (licence.id ~ 'x') | format }}": "No filter named 'format'",
    "{{ '{0.__class__.__mro__}'.format(licence.id) }}": "reached outside",
    "{% for a in files %}{% for b in files %}{% for c in files %}{% endfor %}{% endfor %}"
    "{% endfor %}": "nested more than",
}


#: C-level string work the sandbox's budget never sees: seconds of CPU in one expression.
HEAVY = '{{ "a".ljust(2 * 10**7)' + ".title().upper().lower()" * 30 + " | length }}"


async def test_malicious_templates_cannot_escape_the_sandbox(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}",
                      render={"timeout_s": 2.0, "workers": 2}) as m:
        for source, reason in ATTACKS.items():
            status, body = await m.call("PUT", f"{M}/contract-template", who("seller"),
                                        {"template": source})
            assert status == 422, (source, body)
            assert reason in body["error"], (source, body["error"])
            assert body["fields"][0]["path"] == "template"
        status, body = await m.call("GET", f"{M}/contract-template", who("seller"))
        assert body["template"] is None  # nothing saved
        # C-level string work the budget cannot see is stopped by the worker's time
        # (or memory) limit; the worker is replaced and a good template still checks
        status, body = await m.call("PUT", f"{M}/contract-template", who("seller"),
                                    {"template": HEAVY})
        assert status == 422 and re.search("was stopped|MemoryError", body["error"]), body
        status, body = await m.call("PUT", f"{M}/contract-template", who("seller"),
                                    {"template": "# Ours {{ licence.order_id }}"})
        assert status == 200, body


async def test_a_template_failing_on_live_data_falls_back_to_the_default(
        tmp_path: Path) -> None:
    fragile = ("# Ours {{ licence.order_id }}\n{% if licence.exclusive %}"
               "{{ licence.missing_field }}{% endif %}\n")
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        status, body = await m.call("PUT", f"{M}/contract-template", who("seller"),
                                    {"template": fragile})
        assert status == 200, body  # the sample is a lease: it passes
        order, licence = await bought(m, "exclusive")
        _, pdf, _ = await get_pdf(m, licence["contract_url"], "buyer")
        text = flat(pdf_text(pdf))
        assert "Exclusive rights licence agreement" in text and order["order_id"] in text
        status, body = await m.call("GET", f"{M}/contract-template", who("seller"))
        assert licence["licence_id"] in body["last_error"]
        assert "missing_field" in body["last_error"]
        kept = await market_services(m).contracts.of_seller("seller", licence["licence_id"])
        assert kept is not None and kept.template == "default"


async def test_a_contract_waits_for_its_files_and_names_the_store(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        status, _ = await m.call("PUT", f"{M}/storefront", who("seller"), {
            "handle": "nightshop", "name": "Nightshop Beats", "bio": "", "theme": {},
            "template": None})
        assert status == 200
        _, licence = await bought(m, "mp3_lease")
        _, pdf, _ = await get_pdf(m, licence["contract_url"], "buyer")
        assert "Prod. by Nightshop Beats" in flat(pdf_text(pdf))
        # before the job has run, the buyer is told to wait (409), not sent a 404
        contracts = market_services(m).contracts
        await contracts.db.execute("DELETE FROM mkt_contracts")
        status, body = await m.call("GET", licence["contract_url"], who("buyer"))
        assert status == 409 and "being written" in body["error"]
        # a delivered file that cannot be read makes the job retry, never a contract
        # without its checksum
        beat = await market_services(m).store.beat("seller", licence["beat_id"])
        assert beat is not None
        mp3 = next(f for f in beat.files if f.kind == "mp3")
        del m.assets.files[("seller", mp3.asset_id)]
        from business.marketplace.contracts import FileMissing
        with pytest.raises(FileMissing):
            await contracts.write("seller", licence["licence_id"])


async def test_rights_and_text_are_written_as_a_contract_says_them() -> None:
    listed = rights_list({"radio_stations": 0, "distribution_copies": None,
                          "live_performances": True, "custom_right": 12_000})
    assert [r["key"] for r in listed] == ["distribution_copies", "radio_stations",
                                          "live_performances", "custom_right"]
    assert [r["value"] for r in listed] == ["unlimited", "not allowed", "allowed",
                                            "up to 12,000"]
    assert listed[-1]["name"] == "Custom right"
    assert latin1("Beyoncé – “Łódź” ő 李") == 'Beyoncé - "?ódz" o ?'


async def test_an_erased_buyer_loses_the_contracts_naming_them(tmp_path: Path) -> None:
    from business.marketplace.privacy import erase_account, export_account
    from dawserver.plugin_api import Pseudonymiser

    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        order, licence = await bought(m, "mp3_lease")
        db = market_services(m).store.db
        exported = await export_account(db, "buyer")
        assert [c["licence_id"] for c in exported["contracts"]] == [licence["licence_id"]]
        assert len(exported["contracts"][0]["files"]) == 1
        sold = await export_account(db, "seller")
        assert [c["order_id"] for c in sold["contracts_sold"]] == [order["order_id"]]
        pz = Pseudonymiser("buyer")
        await erase_account(db, pz)
        assert await db.fetchval("SELECT COUNT(*) FROM mkt_contracts") == 0
        # the licence stays valid under the pseudonym; its contract is written again
        # naming the pseudonym, never the erased person
        found = await market_services(m).contracts.write("seller", licence["licence_id"])
        text = flat(pdf_text(found.pdf))
        assert pz.pseudonym in text and "account buyer)" not in text
