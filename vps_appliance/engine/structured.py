"""Structured output: the internal request's answer shape (`Output`: OpenAI's
`response_format`, and the other formats' equivalents) as a llama.cpp grammar (GBNF).

`json_object` is any JSON object; `json_schema` is converted by llama-cpp-python's
`json_schema_to_gbnf` (llama.cpp's own converter, ported). Sampling through the grammar makes
every answer parse and match the schema, so a schema is taken only when the converter enforces
all of it: the converter silently drops what it does not know (`minimum`, `patternProperties`,
remote `$ref`s, `properties` next to `anyOf`, …), and such an answer could break the schema.
`unsupported` finds those keywords before any work is done; the 400 names each one with its
place in the schema. The schema is always enforced, `strict` or not: a constrained answer is
what a client sending a schema wants, and `strict: false` only allows less.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from llama_cpp.llama_grammar import json_schema_to_gbnf

from cerebrum.generation.request import Output

from ..errors import BadRequest

_PARAM = "response_format"
_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
# Keywords that say nothing about validity (JSON Schema's annotations and containers).
_ANNOTATIONS = frozenset({"title", "description", "$schema", "$id", "$comment", "default",
                          "examples", "deprecated", "readOnly", "writeOnly", "$defs",
                          "definitions", "discriminator"})
# Validation keywords the converter does not enforce at all.
_NEVER = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
          "patternProperties", "propertyNames", "minProperties", "maxProperties",
          "dependentRequired", "dependentSchemas", "dependencies", "not", "if", "then", "else",
          "uniqueItems", "contains", "minContains", "maxContains", "unevaluatedProperties",
          "unevaluatedItems", "additionalItems", "contentEncoding", "contentMediaType",
          "contentSchema", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef")
_FORMATS = frozenset({"date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4",
                      "uuid5"})
_OBJECT = frozenset({"type", "properties", "required", "additionalProperties"})
_ARRAY = frozenset({"type", "items", "prefixItems", "minItems", "maxItems"})
_STRING = frozenset({"type", "minLength", "maxLength"})
_JSON_OBJECT = {"type": "object"}  # the converter's generic object: any JSON object


def grammar(fmt: Output) -> str | None:
    """The GBNF that enforces `fmt`, or None for plain text; a 400 for a schema the converter
    cannot enforce in full."""
    if fmt.type == "text":
        return None
    schema = _JSON_OBJECT if fmt.type == "json_object" or not fmt.schema else fmt.schema
    problems = list(unsupported(schema))
    if problems:
        raise BadRequest("'response_format.json_schema.schema' uses what this backend cannot "
                         "enforce: " + "; ".join(problems), param=_PARAM,
                         code="unsupported_schema")
    try:
        return json_schema_to_gbnf(json.dumps(schema))
    except (AssertionError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise BadRequest(f"'response_format.json_schema.schema' cannot be turned into a "
                         f"grammar: {exc or type(exc).__name__}", param=_PARAM,
                         code="unsupported_schema") from None


def unsupported(schema: Any, where: str = "#") -> Iterator[str]:
    """What in `schema` the grammar would not enforce, each with its place (a JSON pointer)."""
    if isinstance(schema, bool):
        yield f"{where}: boolean schemas"
        return
    if not isinstance(schema, dict):
        yield f"{where}: a schema must be an object"
        return
    for key in _NEVER:
        if key in schema:
            yield f"{where}: '{key}'"
    for defs in ("$defs", "definitions"):
        for name, sub in (schema.get(defs) or {}).items():
            yield from unsupported(sub, f"{where}/{defs}/{name}")
    kind = schema.get("type")
    if kind is not None and not (kind in _TYPES if isinstance(kind, str) else
                                 isinstance(kind, list) and kind and all(
                                     isinstance(k, str) and k in _TYPES for k in kind)):
        yield f"{where}: 'type' {json.dumps(kind)}"
        return
    keys = set(schema) - _ANNOTATIONS - set(_NEVER) - {"format"}  # a format: in _checks
    used, children = _branch(schema, keys, where)
    for key in sorted(keys - used):
        yield f"{where}: '{key}' alongside {_describe(used)}"
    for sub, at in children:
        yield from unsupported(sub, at)
    yield from _checks(schema, where)


def _branch(schema: dict[str, Any], keys: set[str],
            where: str) -> tuple[frozenset[str], list[tuple[Any, str]]]:
    """The keywords the converter reads for `schema` (it takes the first case that applies)
    and the subschemas it visits."""
    kind = schema.get("type")
    if "$ref" in schema:
        return frozenset({"$ref"}), []
    for union in ("oneOf", "anyOf"):
        if union in schema:
            alts = schema[union]
            return frozenset({union}), [(s, f"{where}/{union}/{i}")
                                        for i, s in enumerate(alts if isinstance(alts, list)
                                                              else [alts])]
    if isinstance(kind, list):
        return frozenset({"type"}), []
    if "const" in schema:
        return frozenset({"const", "type"}), []
    if "enum" in schema:
        return frozenset({"enum", "type"}), []
    if kind in (None, "object") and ("properties" in schema or (
            "additionalProperties" in schema and schema["additionalProperties"] is not True)):
        props = schema.get("properties") or {}
        children = [(s, f"{where}/properties/{n}") for n, s in props.items()] \
            if isinstance(props, dict) else []
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            children.append((extra, f"{where}/additionalProperties"))
        return _OBJECT, children
    if kind in (None, "object") and "allOf" in schema:
        return frozenset({"type", "allOf"}), []
    if kind in (None, "array") and ("items" in schema or "prefixItems" in schema):
        items = schema.get("items") or schema.get("prefixItems")
        if isinstance(items, list):
            key = "items" if "items" in schema else "prefixItems"
            return frozenset({"type", "items", "prefixItems"}), [
                (s, f"{where}/{key}/{i}") for i, s in enumerate(items)]
        return _ARRAY, [(items, f"{where}/items")]
    if kind in (None, "string") and "pattern" in schema:
        return frozenset({"type", "pattern"}), []
    if kind in (None, "string") and schema.get("format") in _FORMATS:
        return frozenset({"type", "format"}), []
    if kind == "string":
        return _STRING, []
    if kind == "object" and schema.get("additionalProperties") is True:
        return frozenset({"type", "additionalProperties"}), []
    return frozenset({"type"}), []


def _checks(schema: dict[str, Any], where: str) -> Iterator[str]:
    """Keyword values the converter reads but would enforce wrongly."""
    ref = schema.get("$ref")
    if ref is not None and not (isinstance(ref, str) and ref.startswith("#/")):
        yield f"{where}: '$ref' {json.dumps(ref)} (only local references, \"#/…\")"
    props = schema.get("properties")
    if props is not None and not isinstance(props, dict):
        yield f"{where}: 'properties' must be an object"
    required = schema.get("required")
    if isinstance(required, list) and "properties" in schema and isinstance(props, dict):
        for name in required:
            if name not in props:
                yield f"{where}: 'required' names {json.dumps(name)}, which is not in " \
                      "'properties'"
    pattern = schema.get("pattern")
    if pattern is not None and not (isinstance(pattern, str) and pattern.startswith("^")
                                    and pattern.endswith("$")):
        yield f"{where}: 'pattern' must be anchored (\"^…$\")"
    if "prefixItems" in schema and "items" in schema:
        yield f"{where}: 'prefixItems' with 'items'"
    if "oneOf" in schema and "anyOf" in schema:
        yield f"{where}: 'oneOf' with 'anyOf'"
    if "allOf" in schema and "properties" not in schema:
        for i, part in enumerate(schema["allOf"] if isinstance(schema["allOf"], list) else []):
            extra = set(part) - _ANNOTATIONS - _OBJECT - {"$ref"} if isinstance(part, dict) \
                else {"(not an object)"}
            if extra:
                yield f"{where}/allOf/{i}: {', '.join(sorted(extra))} (allOf parts may only " \
                      "be objects with properties, or $refs)"
    fmt = schema.get("format")
    if fmt is not None and fmt not in _FORMATS:
        yield f"{where}: 'format' {json.dumps(fmt)}"


def _describe(used: frozenset[str]) -> str:
    keys = sorted(used - {"type"}) or ["'type'"]
    return ", ".join(k if k.startswith("'") else f"'{k}'" for k in keys)
