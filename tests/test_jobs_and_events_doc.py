"""docs/jobs-and-events.md lists every declared event with every field of its payload."""

from __future__ import annotations

from pathlib import Path

from dawserver.context import PluginContext
from dawserver.plugins import declare_all, load_plugins

DOC = Path(__file__).resolve().parents[1] / "docs" / "jobs-and-events.md"


def catalogue_rows() -> dict[str, str]:
    """The event catalogue's rows by event name."""
    text = DOC.read_text().split("### Event catalogue", 1)[1]
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = line
    return rows


def test_every_declared_event_is_listed_with_its_payload_fields() -> None:
    context = PluginContext(manager=load_plugins())
    declare_all(context)
    rows = catalogue_rows()
    assert context.events, "no plug-in declares an event: the catalogue check checks nothing"
    for name, declared in context.events.items():
        assert name in rows, f"docs/jobs-and-events.md does not list event {name!r}"
        missing = [field for field in declared.item.payload.model_fields
                   if f"`{field}`" not in rows[name]]
        assert not missing, f"event {name!r}: the catalogue lacks payload fields {missing}"
        assert declared.plugin in rows[name]
    assert set(rows) <= set(context.events), "the catalogue lists events nobody declares"
