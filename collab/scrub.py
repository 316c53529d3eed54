"""Forgetting a person in a Yjs document: every mention replaced, their comments emptied.

:func:`scrub` walks every shared type of a document (maps, arrays, text) and
passes every string through ``replace`` (the caller's rule, e.g.
:class:`accounts.pseudonyms.Pseudonymiser.text`); an entry with an ``author``
the caller names (``is_person``) has its ``text`` emptied as well. Run it as a
server edit of the live room (:meth:`collab.room.Room.edit`), so every client
sees the change, then fold the log (:meth:`collab.room.Room.compact`): yrs
garbage-collects the content of deleted items, so the new snapshot no longer
holds the old strings, and the logged updates that held them are deleted.

Map keys are left as they are (the document's keys are generated ids).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pycrdt import Array, Doc, Map, Text

from .store import Store
from .trial import load_document

#: The field of a comment (or any entry) that names who wrote it, and what they wrote.
AUTHOR, TEXT = "author", "text"

Replace = Callable[[str], str]
IsPerson = Callable[[Any], bool]


def _plain(value: Any, replace: Replace) -> Any:
    """A plain (JSON) value with every string replaced."""
    if isinstance(value, str):
        return replace(value)
    if isinstance(value, dict):
        return {k: _plain(v, replace) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, replace) for v in value]
    return value


def _scrub_map(entry: Map, replace: Replace, is_person: IsPerson) -> int:
    changed = 0
    authored = is_person(entry.get(AUTHOR))
    for key in list(entry.keys()):
        value = entry[key]
        if authored and key == TEXT and isinstance(value, str) and value:
            entry[key] = ""
            changed += 1
        elif isinstance(value, Map | Array | Text):
            changed += _scrub_shared(value, replace, is_person)
        else:
            new = _plain(value, replace)
            if new != value:
                entry[key] = new
                changed += 1
    return changed


def _scrub_array(items: Array, replace: Replace, is_person: IsPerson) -> int:
    changed = 0
    for index in range(len(items)):
        value = items[index]
        if isinstance(value, Map | Array | Text):
            changed += _scrub_shared(value, replace, is_person)
            continue
        new = _plain(value, replace)
        if new != value:
            del items[index]
            items.insert(index, new)
            changed += 1
    return changed


def _scrub_shared(value: Map | Array | Text, replace: Replace, is_person: IsPerson) -> int:
    if isinstance(value, Map):
        return _scrub_map(value, replace, is_person)
    if isinstance(value, Array):
        return _scrub_array(value, replace, is_person)
    old = str(value)
    new = replace(old)
    if new == old:
        return 0
    del value[:]
    value.insert(0, new)
    return 1


def scrub(doc: Doc, replace: Replace, is_person: IsPerson) -> int:
    """Replace every mention in ``doc`` (call it inside one transaction); values changed."""
    changed = 0
    for name in list(doc.keys()):
        root = doc[name]
        if root is None:  # a root nobody has typed yet: the project's roots are maps
            root = doc.get(name, type=Map)
        changed += _scrub_shared(root, replace, is_person)
    return changed


def authored(doc: Doc, is_person: IsPerson, root: str = "comments") -> list[dict[str, Any]]:
    """Entries of ``root`` (a map of entries) whose ``author`` the caller names."""
    if root not in set(doc.keys()):
        return []
    entries = doc.get(root, type=Map).to_py() or {}
    return sorted((e for e in entries.values() if isinstance(e, dict)
                   and is_person(e.get(AUTHOR))),
                  key=lambda e: (e.get("created_at", 0), str(e.get("id", ""))))


async def stored_doc(store: Store, project_id: str) -> Doc:
    """The document of ``project_id`` as the store holds it (no room needed)."""
    stored = await store.load(project_id)
    doc, _left_out = load_document(stored.snapshot, stored.updates, stored.snapshot_seq + 1)
    return doc
