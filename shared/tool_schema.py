"""Tool parameter schemas: the JSON Schema subset tools use, checked in plain sentences.

Two readers share this module: the platform API checks the schema an owner
writes for a webhook (`schema_problems`), and the runtime checks the arguments
a model produced against a tool's schema before any call (`argument_problems`).
Tool schemas in the wild (the xiaozhi firmware, MCP servers, OpenAI function
definitions) use a small part of JSON Schema: `type`, `properties`,
`required`, `enum`, `const`, numeric and length bounds, `items`,
`additionalProperties`, and `anyOf`/`oneOf` for nullable values. That part is
checked; keywords outside it (`$ref`, `format`, `pattern`, ...) are accepted
without being enforced, so a richer schema never blocks a call the tool
itself would take. No dependency, so `functions/` stays light.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

TYPES: Final = ("object", "array", "string", "integer", "number", "boolean", "null")
MAX_SCHEMA_BYTES: Final = 16 * 1024
MAX_DEPTH: Final = 8
MAX_PROBLEMS: Final = 5


def _is_type(value: object, kind: str) -> bool:
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if kind == "integer":
        return isinstance(value, int) or (math.isfinite(value) and float(value).is_integer())
    return math.isfinite(value)  # number


def _where(path: str) -> str:
    return f"{path} " if path else ""


def _check(value: object, schema: object, path: str, out: list[str], depth: int) -> None:
    if len(out) >= MAX_PROBLEMS or not isinstance(schema, Mapping) or depth > MAX_DEPTH:
        return
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        listed = options if isinstance(options, list) else []
        fits = any(_fits(value, option, depth + 1) for option in listed)
        if listed and not fits:
            out.append(f"{_where(path)}does not match any allowed form".strip())
            return
    kinds = schema.get("type")
    allowed = [kinds] if isinstance(kinds, str) else kinds if isinstance(kinds, list) else []
    allowed = [k for k in allowed if k in TYPES]
    if allowed and not any(_is_type(value, k) for k in allowed):
        out.append(f"{_where(path)}must be {' or '.join(allowed)}".strip())
        return
    if "const" in schema and value != schema["const"]:
        out.append(f"{_where(path)}must be {json.dumps(schema['const'])}".strip())
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and value not in enum:
        shown = ", ".join(json.dumps(e) for e in enum[:8])
        out.append(f"{_where(path)}must be one of {shown}".strip())
    if _is_type(value, "number"):
        number = float(value)  # type: ignore[arg-type]
        low, high = schema.get("minimum"), schema.get("maximum")
        if _is_type(low, "number") and number < low:  # type: ignore[operator]
            out.append(f"{_where(path)}must be at least {low}".strip())
        if _is_type(high, "number") and number > high:  # type: ignore[operator]
            out.append(f"{_where(path)}must be at most {high}".strip())
    if isinstance(value, str):
        shortest, longest = schema.get("minLength"), schema.get("maxLength")
        if _is_type(shortest, "integer") and len(value) < shortest:  # type: ignore[operator]
            out.append(f"{_where(path)}must have at least {shortest} characters".strip())
        if _is_type(longest, "integer") and len(value) > longest:  # type: ignore[operator]
            out.append(f"{_where(path)}must have at most {longest} characters".strip())
    if isinstance(value, list):
        items = schema.get("items")
        for index, item in enumerate(value):
            _check(item, items, f"{path}[{index}]" if path else f"item {index}", out, depth + 1)
    if isinstance(value, Mapping):
        _check_object(value, schema, path, out, depth)


def _check_object(
    value: Mapping[str, Any], schema: Mapping[str, Any], path: str, out: list[str], depth: int
) -> None:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    required = schema.get("required")
    for name in required if isinstance(required, list) else []:
        if isinstance(name, str) and name not in value:
            out.append(f"{path + '.' if path else ''}{name} is required")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        child = f"{path}.{name}" if path else str(name)
        if name in properties:
            _check(item, properties[name], child, out, depth + 1)
        elif extra is False:
            out.append(f"{child} is not a known parameter")
        elif isinstance(extra, Mapping):
            _check(item, extra, child, out, depth + 1)


def _fits(value: object, schema: object, depth: int) -> bool:
    problems: list[str] = []
    _check(value, schema, "", problems, depth)
    return not problems


def argument_problems(schema: Mapping[str, Any], arguments: object) -> list[str]:
    """Why `arguments` do not fit `schema` (empty when they do), in short sentences."""
    problems: list[str] = []
    if not isinstance(arguments, Mapping):
        return ["the arguments must be a JSON object"]
    _check(arguments, schema, "", problems, 0)
    return problems[:MAX_PROBLEMS]


def parse_arguments(text: str | Mapping[str, Any] | None) -> dict[str, Any] | str:
    """A model's argument text as an object, or a sentence saying why it is not one."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return {}
    if isinstance(text, Mapping):
        return dict(text)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return "the arguments are not valid JSON"
    if not isinstance(value, dict):
        return "the arguments must be a JSON object"
    return value


# --- checking a schema an owner wrote ----------------------------------------------------------


def _schema_problem(schema: object, path: str, depth: int) -> str | None:
    where = f" at {path}" if path else ""
    if not isinstance(schema, Mapping):
        return f"the schema{where} must be a JSON object"
    if depth > MAX_DEPTH:
        return f"the schema nests deeper than {MAX_DEPTH} levels"
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind is not None else []
    for k in kinds:
        if k not in TYPES:
            return f"type{where} must be one of {', '.join(TYPES)} (not {json.dumps(k)})"
    properties = schema.get("properties")
    if properties is not None:
        if not isinstance(properties, Mapping):
            return f"properties{where} must be an object of parameter schemas"
        for name, child in properties.items():
            problem = _schema_problem(child, f"{path}.{name}" if path else name, depth + 1)
            if problem is not None:
                return problem
    required = schema.get("required")
    if required is not None and not (
        isinstance(required, list) and all(isinstance(r, str) for r in required)
    ):
        return f"required{where} must be a list of parameter names"
    if isinstance(required, list) and isinstance(properties, Mapping):
        missing = [r for r in required if r not in properties]
        if missing:
            return f"required{where} names {', '.join(missing)}, which is not among the properties"
    enum = schema.get("enum")
    if enum is not None and not (isinstance(enum, list) and enum):
        return f"enum{where} must be a non-empty list"
    if "items" in schema:
        return _schema_problem(schema["items"], f"{path}[]" if path else "items", depth + 1)
    return None


def schema_problems(schema: object) -> str | None:
    """A sentence saying what is wrong with a tool's parameter schema, or None."""
    if not isinstance(schema, Mapping):
        return 'parameters must be a JSON schema object, such as {"type": "object"}.'
    if schema.get("type", "object") != "object":
        return 'parameters must describe an object: its "type" must be "object".'
    try:
        size = len(json.dumps(schema, allow_nan=False))
    except (TypeError, ValueError):
        return "parameters must be plain JSON (no NaN or infinity)."
    if size > MAX_SCHEMA_BYTES:
        return f"parameters are {size} bytes; at most {MAX_SCHEMA_BYTES} are allowed."
    problem = _schema_problem(schema, "", 0)
    return None if problem is None else f"parameters: {problem}."


def object_schema(properties: Mapping[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """A small helper for built-in tools' schemas."""
    schema: dict[str, Any] = {"type": "object", "properties": dict(properties)}
    if required:
        schema["required"] = list(required)
    return schema
