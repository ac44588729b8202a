"""A JSON Schema that OpenAI accepts in strict structured-output mode, derived from a msgspec type.

msgspec.json.schema() describes the full contract (it is what we export and validate against). Strict
mode accepts only a subset of JSON Schema (OpenAI, "Structured model outputs" guide, "Supported
schemas"): the root must be an object, every object must list all of its properties in `required` and
set `additionalProperties: false`, optional values are expressed as a union with null, and only the
keywords in SUPPORTED_KEYWORDS may appear. Anything dropped here (minLength, maxLength, ...) is still
enforced by our own msgspec validation of every response, which is why dropping is safe.

A call can pin a top-level array to an exact length that its type leaves open (a quiz type allows 3-10
questions, one run wants exactly 5): strict_schema_with_lengths() derives that variant, so a model that
follows the schema also follows the rule.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import msgspec

# The keywords the structured-outputs guide lists as supported; everything else is dropped.
SUPPORTED_KEYWORDS = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf", "$ref",
    "$defs", "description",
    "pattern", "format",  # strings
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",  # numbers
    "minItems", "maxItems",  # arrays
})
# The string formats the guide names; msgspec can emit others (e.g. "decimal"), which are dropped.
SUPPORTED_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"})
_NULL = {"type": "null"}


class UnsupportedSchema(ValueError):
    """The type cannot be expressed in strict mode (e.g. a free-form dict); the message says where."""


def schema_name(tp: type) -> str:
    """The response_format name: the type's name in snake_case ("SyllabusLesson" -> "syllabus_lesson")."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", tp.__name__).lower()[:64]


@functools.cache  # a type's schema never changes; callers must not mutate the returned dict
def strict_schema(tp: type) -> dict[str, Any]:
    raw = msgspec.json.schema(tp)
    defs = dict(raw.get("$defs", {}))
    root_name = raw["$ref"].rsplit("/", 1)[-1] if "$ref" in raw else None
    root = defs.pop(root_name) if root_name else {k: v for k, v in raw.items() if k != "$defs"}
    if root.get("type") != "object":
        raise UnsupportedSchema(f"{tp.__name__}: the root of a strict schema must be an object")
    # The root definition moves to the top, so a (recursive) reference to it must point at "#".
    root_ref = f"#/$defs/{root_name}" if root_name else None
    schema = _strict(root, root_ref, tp.__name__)
    if defs:
        schema["$defs"] = {name: _strict(node, root_ref, name) for name, node in defs.items()}
    return schema


def strict_schema_with_lengths(tp: type, fixed_lengths: dict[str, int] | None) -> dict[str, Any]:
    """strict_schema(tp) with minItems = maxItems = n for each top-level array property named in
    fixed_lengths; the cached schema is never changed."""
    if not fixed_lengths:
        return strict_schema(tp)
    return _with_lengths(tp, tuple(sorted(fixed_lengths.items())))


@functools.cache  # one variant per (type, lengths); a run asks for the same one again and again
def _with_lengths(tp: type, lengths: tuple[tuple[str, int], ...]) -> dict[str, Any]:
    base = strict_schema(tp)
    properties = dict(base["properties"])
    for name, count in lengths:
        prop = properties.get(name)
        if prop is None or prop.get("type") != "array":
            raise UnsupportedSchema(f"{tp.__name__}.{name}: a fixed length needs a top-level array property")
        # Outside the type's own bounds no answer could pass our validation: fail here, not after paid calls.
        if not prop.get("minItems", 0) <= count <= prop.get("maxItems", count):
            raise UnsupportedSchema(f"{tp.__name__}.{name}: {count} items is outside the type's bounds")
        properties[name] = {**prop, "minItems": count, "maxItems": count}
    return {**base, "properties": properties}


def _strict(node: dict[str, Any], root_ref: str | None, where: str) -> dict[str, Any]:
    if "oneOf" in node:
        # msgspec uses oneOf for tagged unions; strict mode only knows anyOf, and our validation is exact.
        node = {**{k: v for k, v in node.items() if k != "oneOf"}, "anyOf": node["oneOf"]}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in SUPPORTED_KEYWORDS:
            continue
        if key == "properties":
            out[key] = {name: _strict(sub, root_ref, f"{where}.{name}") for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = _strict(value, root_ref, f"{where}[]")
        elif key == "anyOf":
            out[key] = [_strict(sub, root_ref, where) for sub in value]
        elif key == "$ref":
            out[key] = "#" if value == root_ref else value
        elif key == "format" and value not in SUPPORTED_FORMATS:
            continue
        elif key == "additionalProperties" and value is not False:
            raise UnsupportedSchema(f"{where}: free-form mappings cannot be expressed in strict mode")
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        # msgspec emits a bare enum for Literal; naming the type keeps the schema unambiguous.
        types = {_json_type(v) for v in out["enum"]}
        if len(types) == 1:
            out = {"type": types.pop(), **out}
    if out.get("type") == "object":
        _close_object(out, node)
    return out


def _close_object(out: dict[str, Any], original: dict[str, Any]) -> None:
    properties = out.setdefault("properties", {})
    was_required = set(original.get("required", ()))
    for name, prop in properties.items():
        default = original.get("properties", {}).get(name, {}).get("default")
        # An optional field without a real default can be absent; in strict mode it is null instead.
        # A field with a real default (e.g. []) just becomes required: null would not decode.
        if name not in was_required and default is None and not _nullable(prop):
            properties[name] = _with_null(prop)
    out["required"] = list(properties)
    out["additionalProperties"] = False


def _nullable(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return (
        kind == "null"
        or (isinstance(kind, list) and "null" in kind)
        or any(_nullable(sub) for sub in node.get("anyOf", ()))
        or None in node.get("enum", ())
    )


def _with_null(node: dict[str, Any]) -> dict[str, Any]:
    inner = {k: v for k, v in node.items() if k != "description"}
    wrapped: dict[str, Any] = {"anyOf": [inner, dict(_NULL)]}
    if "description" in node:
        wrapped["description"] = node["description"]
    return wrapped


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"
