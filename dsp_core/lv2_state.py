"""The LV2 State extension: a plug-in's own state, as Turtle text in its ``lv2`` effect.

A plug-in with ``state:interface`` (x42's EQ and limiter, LSP's plug-ins) keeps
settings that are no control port: UI and analyser settings, a loaded file's path,
an internal key-value tree. The worker saves it with lilv
(``lilv_state_new_from_instance`` then ``lilv_state_to_string``, portable and
plain-data only, without port values: the controls live in the effect's params) and
restores it (``lilv_state_new_from_string`` then ``lilv_state_restore``). The text
travels in the effect's ``params["state"]`` (:data:`STATE_KEY`), at most
:data:`MAX_STATE_BYTES`.

Checks, in two places:

- :func:`check_text`, wherever the effect is validated (document writes, project
  files, ``to_session``): a string, at most :data:`MAX_STATE_BYTES` of UTF-8, no NUL,
  and :func:`turtle_problem`'s check.
- :func:`turtle_problem`, there and again in the worker before lilv reads the text:
  serd (lilv's Turtle reader) must parse all of it, and it must declare exactly one
  ``pset:Preset`` subject, which ``lv2:appliesTo`` this plug-in, and no base URI
  (lilv would resolve relative names against it, to files :func:`file_sources` never
  sees). lilv 0.24
  dereferences a NULL subject (SIGSEGV) on well-formed Turtle without a preset, so
  this check keeps a bad document from crashing the worker; :func:`restore` checks
  the plug-in lilv read as well.

Files. A state may name files (``atom:Path`` values, ``file://`` URIs: an impulse
response, a sample). In the document and in project files a stored file is named by
the project asset holding it, ``urn:maxbooster:asset:<sha256>`` (:data:`ASSET_PREFIX`),
so the state moves with the project to another server or machine; each such file is a
*source* of the session like a clip's audio (:func:`file_sources`, and
:mod:`dsp_core.sources`, which stores local files as assets on import and maps assets
back to local files before an engine plays the session, :func:`with_files`).
Where such files may lie is the caller's: :func:`confined` (a server, around what it
serves, with its asset directories) confines them in its context; anywhere else (a
local render, a benchmark) they are not confined.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar, Token
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from .errors import DspError, ProjectError
from .lv2_lilv import ffi, lib, serd, text

#: The key of an ``lv2`` effect's params that holds its state's text.
STATE_KEY = "state"
#: The largest state text an effect may hold (UTF-8 bytes).
MAX_STATE_BYTES = 256 * 1024
#: The subject lilv writes the state under (the text is self-contained, no file).
STATE_SUBJECT = b"urn:maxbooster:lv2-state"
_IS_POD, _IS_PORTABLE = 1, 2  # LV2_State_Flags
_RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
_PRESET = "http://lv2plug.in/ns/ext/presets#Preset"
_APPLIES_TO = "http://lv2plug.in/ns/lv2core#appliesTo"
#: The prefixes lilv declares before reading a state's text (lilv's set_prefixes).
_LILV_PREFIXES = {
    "atom": "http://lv2plug.in/ns/ext/atom#",
    "lv2": "http://lv2plug.in/ns/lv2core#",
    "pset": "http://lv2plug.in/ns/ext/presets#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "state": "http://lv2plug.in/ns/ext/state#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
_ATOM_PATH = "http://lv2plug.in/ns/ext/atom#Path"
_SERD_TURTLE, _SERD_URI, _SERD_CURIE = 1, 2, 3
#: How a stored state names a file kept as a project asset: this prefix and its id.
ASSET_PREFIX = "urn:maxbooster:asset:"
#: The directories a state's files must lie under in this context (None: not confined).
_FILE_ROOTS: ContextVar[frozenset[str] | None] = ContextVar("lv2_state_file_roots",
                                                            default=None)


def file_roots() -> frozenset[str] | None:
    """The directories the files a state names must lie under here (None: anywhere)."""
    return _FILE_ROOTS.get()


def confine(roots: Iterable[str | os.PathLike[str]] | None) -> Token[frozenset[str] | None]:
    """Confine the files a state may name, in the current context (this thread or task
    and the tasks it starts from now on), to under ``roots`` (None: not confined); a
    server does it with its asset directories. Returns the token :func:`ContextVar.reset`
    takes to undo it (:func:`confined` does both)."""
    return _FILE_ROOTS.set(None if roots is None else
                           frozenset(os.path.realpath(root) for root in roots))


@contextlib.contextmanager
def confined(roots: Iterable[str | os.PathLike[str]] | None) -> Iterator[None]:
    """Within the block, the files a state may name lie under ``roots`` (:func:`confine`);
    the confinement before it (none, outside any server) comes back after it."""
    token = confine(roots)
    try:
        yield
    finally:
        _FILE_ROOTS.reset(token)


class StateRefused(DspError):
    """A plug-in state's text that cannot be restored (malformed, or another plug-in's)."""


def check_text(state: object, uri: str) -> str:
    """``state`` when it is a string the document may hold; :class:`ProjectError` if not."""
    if not isinstance(state, str):
        raise ProjectError(
            f"lv2 {uri}: 'state' must be the text a save gave, not "
            f"{type(state).__name__} {str(state)[:40]!r}"
        )
    try:
        size = len(state.encode("utf-8"))
    except UnicodeEncodeError:
        raise ProjectError(
            f"lv2 {uri}: 'state' is not valid Unicode text (a lone surrogate); it must be "
            "the Turtle text a save gave"
        ) from None
    if size > MAX_STATE_BYTES:
        raise ProjectError(
            f"lv2 {uri}: 'state' holds {size} bytes, more than the "
            f"{MAX_STATE_BYTES} allowed; save the plug-in's state again "
            "without large embedded data"
        )
    if "\0" in state:
        raise ProjectError(
            f"lv2 {uri}: 'state' holds a NUL character; it must be the Turtle text a save gave"
        )
    problem = turtle_problem(state, uri) or _outside_problem(state)
    if problem is not None:
        raise ProjectError(
            f"lv2 {uri}: 'state' is refused: {problem}; store the text "
            "HostedPlugin.save_state() gave for this plug-in"
        )
    return state


def _outside_problem(state: str) -> str | None:
    """Why the files ``state`` names may not be read here (None: all allowed)."""
    roots = _FILE_ROOTS.get()
    if roots is None:
        return None
    for node in _parsed(state)[2]:
        if node[0] == "asset":
            if not _is_asset_id(node[2]):
                return f"it names the asset {node[2]!r}, which is no asset id (64 hex digits)"
            continue
        real = os.path.realpath(node[2])
        if not any(real == root or real.startswith(root + os.sep) for root in roots):
            return f"it names the file {node[2]!r}, outside the server's asset directories"
    return None


def turtle_problem(state: str, uri: str) -> str | None:
    """Why lilv must not restore ``state`` into plug-in ``uri`` (None when serd parses
    all of it, it has one ``pset:Preset`` subject and that applies to ``uri``)."""
    problem, statements, _files = _parsed(state)
    if problem is not None:
        return problem
    presets = {s for s, p, o in statements if p == _RDF_TYPE and o == _PRESET}
    if len(presets) != 1:
        return (
            f"it declares {len(presets)} pset:Preset subjects, not one (not the text "
            "of a saved state)"
        )
    applies = {o for s, p, o in statements if s in presets and p == _APPLIES_TO}
    if applies != {uri}:
        return f"it applies to {', '.join(sorted(applies)) or 'no plug-in'}, not to this plug-in"
    return None


def _is_asset_id(source: str) -> bool:
    from .sources import is_asset_id  # sources imports this module for lv2 effects

    return is_asset_id(source)


def file_sources(state: str) -> list[str]:
    """The files ``state`` names, each once, as sources: an asset id for a stored file
    (``urn:maxbooster:asset:<id>``), else the local path."""
    return list(dict.fromkeys(node[2] for node in _parsed(state)[2]))


def with_files(state: str, resolve: Callable[[str], str]) -> str:
    """``state`` with every file it names replaced by ``resolve(source)`` (see
    :func:`file_sources`): an asset id is written as ``urn:maxbooster:asset:<id>``, a
    path as a ``file://`` URI where the state had a URI, else as the ``atom:Path``
    literal. :class:`ProjectError` when a name cannot be rewritten (a literal path
    holding a quote or backslash)."""
    result = state
    for kind, raw, source in dict.fromkeys(_parsed(state)[2]):
        target = resolve(source)
        if target == source:
            continue
        uri = kind == "uri" or raw.startswith("<")
        if _is_asset_id(target):
            new = ASSET_PREFIX + target
        else:
            new = "file://" + quote(target) if uri else target
        token = raw if raw.startswith("<") else f'"{raw}"'
        replacement = f"<{new}>" if token.startswith("<") else f'"{new}"'
        if token not in result or '"' in new or "\\" in new:
            raise ProjectError(f"the saved state's file {source!r} cannot be renamed to "
                               f"{target!r} in its text; save the state again")
        result = result.replace(token, replacement)
    return result


def portable(state: str) -> str:
    """``state`` with each file it names in an asset store (``…/objects/ab/<id>.wav``,
    as a worker on the server saves it) named by its asset instead, so the text holds no
    server path (the asset is checked to be the project's own when it is played)."""
    from .sources import legacy_asset_id

    return with_files(state, lambda source: legacy_asset_id(source) or source)


_FileNode = tuple[str, str, str]  # ("uri" | "path" | "asset", the text as written, source)


@functools.lru_cache(maxsize=64)  # every to_session validates it again
def _parsed(state: str) -> tuple[str | None, tuple[tuple[str, str, str], ...],
                                 tuple[_FileNode, ...]]:
    """serd's reading of ``state``: why it cannot be read (None if it can), its
    statements (expanded) and the files it names (``atom:Path`` values, ``file://``
    URIs, ``urn:maxbooster:asset:`` names of either form)."""
    try:
        data = state.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid Unicode text (a lone surrogate)", (), ()
    prefixes = dict(_LILV_PREFIXES)
    statements: list[tuple[str, str, str]] = []
    files: list[_FileNode] = []
    bases: list[str] = []

    def expand(node: Any) -> str:
        value = ffi.string(node.buf, node.n_bytes).decode("utf-8", "replace")
        name, colon, rest = value.partition(":")
        if node.type == _SERD_CURIE and colon and name in prefixes:
            return prefixes[name] + rest
        return value

    @ffi.callback("int(void*, const SerdNode*)")
    def on_base(_handle: Any, uri: Any) -> int:
        bases.append(expand(uri))
        return 0

    @ffi.callback("int(void*, const SerdNode*, const SerdNode*)")
    def on_prefix(_handle: Any, name: Any, prefix_uri: Any) -> int:
        prefixes[expand(name)] = expand(prefix_uri)
        return 0

    @ffi.callback("SerdStatementSink")
    def on_statement(
        _h: Any, _f: int, _g: Any, subject: Any, predicate: Any, obj: Any, datatype: Any,
        _l: Any
    ) -> int:
        statement = (expand(subject), expand(predicate), expand(obj))
        statements.append(statement)
        if datatype != ffi.NULL and expand(datatype) == _ATOM_PATH:
            value = statement[2]
            if value.startswith(ASSET_PREFIX):
                files.append(("asset", value, value[len(ASSET_PREFIX):]))
            else:
                files.append(("path", value, value))
        for node, raw in zip((subject, predicate, obj), statement, strict=True):
            written = f"<{raw}>" if node.type == _SERD_URI else raw
            if raw.startswith("file:"):  # a plain literal too: a plug-in may open it
                files.append(("uri", written, unquote(urlsplit(raw).path)))
            elif raw.startswith(ASSET_PREFIX) and node.type == _SERD_URI:
                files.append(("asset", written, raw[len(ASSET_PREFIX):]))
        return 0

    reader = serd().serd_reader_new(
        _SERD_TURTLE,
        ffi.NULL,
        ffi.NULL,
        ffi.cast("void*", on_base),
        ffi.cast("void*", on_prefix),
        on_statement,
        ffi.NULL,
    )
    try:
        status = serd().serd_reader_read_string(reader, data)
    finally:
        serd().serd_reader_free(reader)
    if status != 0:
        return f"it is not valid Turtle (serd status {status})", (), ()
    if bases:  # lilv resolves relative names against it: files this reading never sees
        return (f"it declares a base URI ({bases[0]!r}); a saved state names its files "
                "by absolute file:// URIs or assets, never relative to a base"), (), ()
    return None, tuple(statements), tuple(files)


def save(world: Any, plugin: Any, instance: Any, features: Any) -> str:
    """The state of ``instance`` as Turtle text (its properties, no port values)."""
    lilv = lib()
    state = lilv.lilv_state_new_from_instance(
        plugin,
        instance,
        features.map_struct,
        ffi.NULL,
        ffi.NULL,
        ffi.NULL,
        ffi.NULL,
        ffi.NULL,
        ffi.NULL,
        _IS_POD | _IS_PORTABLE,
        features.array,
    )
    if state == ffi.NULL:
        raise StateRefused("lilv could not save the plug-in's state")
    try:
        raw = lilv.lilv_state_to_string(
            world, features.map_struct, features.unmap_struct, state, STATE_SUBJECT, ffi.NULL
        )
    finally:
        lilv.lilv_state_free(state)
    if raw == ffi.NULL:
        raise StateRefused("lilv could not write the plug-in's state as text")
    try:
        return ffi.string(raw).decode("utf-8")
    finally:
        lilv.lilv_free(raw)


def restore(world: Any, uri: str, instances: list[Any], features: Any, state: str) -> None:
    """Restore ``state`` into every instance of plug-in ``uri``; :class:`StateRefused`
    (nothing restored) when it is malformed or saved from another plug-in."""
    problem = turtle_problem(state, uri)
    if problem is not None:
        raise StateRefused(f"lv2 {uri}: the saved state was refused: {problem}")
    lilv = lib()
    parsed = lilv.lilv_state_new_from_string(world, features.map_struct, state.encode())
    if parsed == ffi.NULL:
        raise StateRefused(f"lv2 {uri}: the saved state was refused: lilv could not read it")
    try:
        node = lilv.lilv_state_get_plugin_uri(parsed)
        owner = "" if node == ffi.NULL else text(lilv.lilv_node_as_uri(node))
        if owner != uri:
            raise StateRefused(
                f"lv2 {uri}: the saved state was refused: it applies to "
                f"{owner or 'no plug-in'!r}, not to this plug-in"
            )
        for instance in instances:
            lilv.lilv_state_restore(parsed, instance, ffi.NULL, ffi.NULL, 0, features.array)
    finally:
        lilv.lilv_state_free(parsed)
