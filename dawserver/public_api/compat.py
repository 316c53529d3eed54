"""Is a new OpenAPI document compatible with an old one? The CI check of ``/api/v1``.

Incompatible (a client written against the old document breaks): a removed path or
operation, a removed field of a success answer (at any depth), a field whose type
changed, a new required request field or parameter. Additions (paths, operations,
optional fields, answer fields) are compatible. Incompatible changes pass only with a
new major version (``info.version``), which for this API means a new path (``/api/v2``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
REF = "#/components/schemas/"


def major(document: dict[str, Any]) -> int:
    """The major version of ``document`` (``info.version`` ``"1.4.0"`` → 1)."""
    return int(str(document.get("info", {}).get("version", "0")).split(".")[0] or 0)


class _Schemas:
    def __init__(self, document: dict[str, Any]) -> None:
        self.components = document.get("components", {}).get("schemas", {})

    def resolve(self, schema: Any) -> dict[str, Any]:
        seen = set()
        while isinstance(schema, dict) and "$ref" in schema and schema["$ref"] not in seen:
            seen.add(schema["$ref"])
            schema = self.components.get(schema["$ref"].removeprefix(REF), {})
        return schema if isinstance(schema, dict) else {}

    def branches(self, schema: Any) -> list[dict[str, Any]]:
        """``schema`` and its ``anyOf``/``oneOf``/``allOf`` branches, resolved."""
        schema = self.resolve(schema)
        found = [schema]
        for key in ("anyOf", "oneOf", "allOf"):
            for branch in schema.get(key, []):
                found += self.branches(branch)
        return found

    def properties(self, schema: Any) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for branch in self.branches(schema):
            merged.update(branch.get("properties", {}))
        return merged

    def required(self, schema: Any) -> set[str]:
        return {name for branch in self.branches(schema) for name in branch.get("required", [])}

    def types(self, schema: Any) -> set[str]:
        found: set[str] = set()
        for branch in self.branches(schema):
            kind = branch.get("type")
            found |= set(kind) if isinstance(kind, list) else {kind} if kind else set()
        return found

    def items(self, schema: Any) -> Any:
        for branch in self.branches(schema):
            if "items" in branch:
                return branch["items"]
        return None


def _answer_fields(old: _Schemas, new: _Schemas, a: Any, b: Any, where: str, depth: int = 0
                   ) -> Iterator[str]:
    """Fields of answer schema ``a`` that ``b`` lost or retyped."""
    if depth > 20 or a is None:
        return
    if b is None:
        yield f"{where}: the answer's schema was removed"
        return
    old_types, new_types = old.types(a), new.types(b)
    if old_types and new_types and not new_types <= old_types:
        yield f"{where}: type {sorted(old_types)} became {sorted(new_types)}"
    props_a, props_b = old.properties(a), new.properties(b)
    for name, schema in props_a.items():
        if name not in props_b:
            yield f"{where}.{name}: answer field removed"
        else:
            yield from _answer_fields(old, new, schema, props_b[name], f"{where}.{name}",
                                      depth + 1)
    items_a = old.items(a)
    if items_a is not None:
        yield from _answer_fields(old, new, items_a, new.items(b), f"{where}[]", depth + 1)


def _request_fields(old: _Schemas, new: _Schemas, a: Any, b: Any, where: str, depth: int = 0
                    ) -> Iterator[str]:
    """Fields ``b`` requires of a request that ``a`` did not."""
    if depth > 20 or b is None:
        return
    required_a = old.required(a) if a is not None else set()
    for name in sorted(new.required(b) - required_a):
        yield f"{where}.{name}: new required request field"
    props_a = old.properties(a) if a is not None else {}
    for name, schema in new.properties(b).items():
        if name in props_a:
            yield from _request_fields(old, new, props_a[name], schema, f"{where}.{name}",
                                       depth + 1)


def _json_schema(content: dict[str, Any] | None) -> Any:
    for media, entry in (content or {}).items():
        if "json" in media:
            return entry.get("schema")
    return None


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Every incompatible change from ``old`` to ``new``, one line each."""
    a, b = _Schemas(old), _Schemas(new)
    found: list[str] = []
    for path, item in old.get("paths", {}).items():
        if path not in new.get("paths", {}):
            found.append(f"{path}: path removed")
            continue
        for method in METHODS:
            if method not in item:
                continue
            where = f"{method.upper()} {path}"
            after = new["paths"][path].get(method)
            if after is None:
                found.append(f"{where}: operation removed")
                continue
            before = item[method]
            for status, answer in before.get("responses", {}).items():
                if not status.startswith("2"):
                    continue
                other = after.get("responses", {}).get(status)
                if other is None:
                    found.append(f"{where} {status}: success answer removed")
                    continue
                found += _answer_fields(a, b, _json_schema(answer.get("content")),
                                        _json_schema(other.get("content")),
                                        f"{where} {status}")
            body_a = _json_schema((before.get("requestBody") or {}).get("content"))
            body_b = _json_schema((after.get("requestBody") or {}).get("content"))
            found += _request_fields(a, b, body_a, body_b, f"{where} body")
            params_a = {(p["in"], p["name"]) for p in before.get("parameters", [])
                        if p.get("required")}
            for parameter in after.get("parameters", []):
                named = (parameter["in"], parameter["name"])
                if parameter.get("required") and named not in params_a:
                    found.append(f"{where}: new required {named[0]} parameter {named[1]!r}")
    return found


def check(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The incompatible changes that block ``new``: none when its major version rose."""
    if major(new) > major(old):
        return []
    return breaking_changes(old, new)
