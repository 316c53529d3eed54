"""Licence contracts as PDF: the default wording, the data a template sees, the layout.

A contract is a seller's template (or :data:`DEFAULT_CONTRACT`) rendered as **plain text**
in the storefront's sandbox (:class:`~business.marketplace.sandbox.Sandbox` with
``autoescape=False``: the same budgets and refusals, no HTML escaping) and laid out by
fpdf2 with a small line syntax: ``# `` a title, ``## `` a heading, ``- `` a bullet, a
blank line a paragraph break, anything else text. It runs in the render pool's worker
processes (:func:`render_contract`), never on the event loop.

fpdf2's core fonts (Helvetica) carry Latin-1 only: other characters are written as their
closest Latin-1 letters (``ő`` as ``o``) or ``?`` (``Ł``, CJK); the data the PDF is about (the order
id, the checksums) is ASCII.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

from fpdf import FPDF

from business.marketplace.sandbox import Sandbox

#: What each right of a tier is called in a contract, in the tiers' order.
RIGHT_NAMES: dict[str, str] = {
    "distribution_copies": "Distribution copies (sales and downloads)",
    "audio_streams": "Audio streams",
    "music_videos": "Music videos",
    "monetized_video_streams": "Monetised video streams",
    "radio_stations": "Radio stations (broadcast)",
    "live_performances": "Live performances (for profit)",
}

#: Our own wording after the market's usual lease contract.
DEFAULT_CONTRACT = """\
# {{ licence.tier_name }} licence agreement

This agreement is made on {{ licence.date }} between {{ licensor.name }} (the Licensor, \
account {{ licensor.account }}) and {{ licensee.name }} (the Licensee, account \
{{ licensee.account }}), for order {{ licence.order_id }} (licence {{ licence.id }}).

## The beat
- Title: {{ beat.title }}
- Tempo and key: {{ beat.bpm }} BPM, {{ beat.key }}
- Beat id: {{ beat.id }}
- Price paid: {{ licence.price }}

## What the Licensor grants
{% if licence.exclusive -%}
The Licensor grants the Licensee the exclusive right to use the beat in one new song. \
From this date the Licensor stops selling licences for the beat; licences sold before \
this date stay valid.
{%- else -%}
The Licensor grants the Licensee a non-exclusive, non-transferable right to use the beat \
in one new song. The Licensor keeps the right to license the beat to others.
{%- endif %}

The Licensee may, within these limits:
{%- for right in rights %}
- {{ right.name }}: {{ right.value }}
{%- endfor %}

## Terms
The Licensor keeps the copyright in the beat. The Licensee owns the lyrics and vocals \
they add. The Licensee credits the beat as "Prod. by {{ licensor.name }}" wherever \
credits are shown. The Licensee may not sell, lease, give away or register the beat \
itself, alone or with minor changes, nor register it with a content identification \
system. The rights above end if the payment is refunded or reversed.

## Files delivered
Each file the Licensee received, with its SHA-256 checksum:
{%- for file in files %}
- {{ file.name }} ({{ file.kind }}, {{ file.bytes }} bytes)
sha256: {{ file.sha256 }}
{%- endfor %}

Signed electronically for {{ licensor.name }} through {{ platform }}.
"""


def right_value(value: Any) -> str:
    """A right's limit as a contract says it."""
    if value is None:
        return "unlimited"
    if value is True:
        return "allowed"
    if value is False or value == 0:
        return "not allowed"
    if isinstance(value, int):
        return f"up to {value:,}"
    return str(value)


def rights_list(rights: dict[str, Any]) -> list[dict[str, str]]:
    """A tier's rights as ``[{key, name, value}]`` for a template, in a fixed order."""
    keys = [k for k in RIGHT_NAMES if k in rights] + sorted(set(rights) - set(RIGHT_NAMES))
    return [{"key": k, "name": RIGHT_NAMES.get(k, k.replace("_", " ").capitalize()),
             "value": right_value(rights[k])} for k in keys]


def contract_date(granted_at: float) -> str:
    return datetime.fromtimestamp(granted_at, UTC).strftime("%d %B %Y")


def sample_contract_data() -> dict[str, Any]:
    """Data of the shape a contract gets, to try a template on when it is saved."""
    return {
        "platform": "Max Booster Studio",
        "licence": {"id": "lic_sample", "order_id": "ord_sample", "tier": "mp3_lease",
                    "tier_name": "MP3 lease", "exclusive": False, "date": "1 January 2026",
                    "granted_at": "2026-01-01T00:00:00+00:00", "price": "29.99 USD"},
        "licensor": {"name": "Sample Producer", "account": "acct-seller"},
        "licensee": {"name": "Sample Artist", "account": "acct-buyer"},
        "beat": {"id": "beat_sample", "title": "Sample Beat", "bpm": 140, "key": "A minor",
                 "genre": "trap", "mood": "dark"},
        "rights": rights_list({"distribution_copies": 2500, "audio_streams": 50_000,
                               "music_videos": 1, "monetized_video_streams": 0,
                               "radio_stations": 0, "live_performances": True}),
        "files": [{"name": "beat.mp3", "kind": "mp3", "bytes": 1234,
                   "sha256": "0" * 64}],
    }


_PUNCTUATION = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'",
                              "\u201c": '"', "\u201d": '"', "\u2026": "...",
                              "\u2022": "-"})


def latin1(text: str) -> str:
    """``text`` in the core fonts' Latin-1: accents kept where Latin-1 has them, others
    reduced to their base letter, anything else ``?``."""
    out = []
    for char in text.translate(_PUNCTUATION):
        if char in "\n\t" or (char >= " " and ord(char) < 256 and char != "\x7f"):
            out.append(char)
            continue
        base = unicodedata.normalize("NFKD", char).encode("latin-1", "ignore").decode()
        base = "".join(c for c in base if not unicodedata.combining(c))
        out.append(base or "?")
    return "".join(out)


def _cell(pdf: FPDF, text: str, font: tuple[str, str, int], *, height: float = 5,
          indent: float = 0, after: float = 0) -> None:
    """One wrapped, left-aligned block of text."""
    pdf.set_font(*font)
    pdf.set_x(pdf.l_margin + indent)
    pdf.multi_cell(pdf.epw - indent, height, text.strip(), new_x="LMARGIN", new_y="NEXT",
                   align="L")
    if after:
        pdf.ln(after)


def build_pdf(text: str, *, title: str, subject: str, created: float) -> bytes:
    """Lay out a rendered contract (the line syntax above) as an A4 PDF."""
    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.set_title(latin1(title))
    pdf.set_subject(latin1(subject))
    pdf.set_creator("Max Booster Studio marketplace")
    pdf.set_creation_date(datetime.fromtimestamp(created, UTC))
    pdf.add_page()
    for raw in text.splitlines():
        line = latin1(raw.rstrip())
        if not line.strip():
            pdf.ln(3)
        elif line.startswith("# "):
            _cell(pdf, line[2:], ("Helvetica", "B", 16), height=8, after=2)
        elif line.startswith("## "):
            pdf.ln(2)
            _cell(pdf, line[3:], ("Helvetica", "B", 12), height=7)
        elif line.startswith("- "):
            _cell(pdf, "- " + line[2:].strip(), ("Helvetica", "", 10), indent=4)
        elif line.startswith("sha256:"):
            _cell(pdf, line, ("Courier", "", 9), indent=8)
        else:
            _cell(pdf, line, ("Helvetica", "", 10))
    return bytes(pdf.output())


def render_contract(sandbox: Sandbox, source: str, data: dict[str, Any]) -> bytes:
    """``source`` rendered with ``data`` in the text sandbox, as a PDF
    (:class:`~business.marketplace.sandbox.TemplateRefused` on any template failure)."""
    text = sandbox.render(source, data)
    licence = data.get("licence") or {}
    return build_pdf(text, title=f"{licence.get('tier_name', 'Licence')} licence: "
                     f"{(data.get('beat') or {}).get('title', '')}",
                     subject=f"order {licence.get('order_id', '')}, licence "
                     f"{licence.get('id', '')}", created=float(data.get("created", 0.0)))
