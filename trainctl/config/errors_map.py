"""Turn pydantic's ValidationError into ConfigErrors that name file:line:col and key.

Pydantic reports a location as a tuple that mixes the config's keys with the
names of union members (``('outputs', 'list[str]', 0)``); those names are
dropped by walking the raw data alongside, and the errors for one key are
merged into a single "expected A or B; received X" line.

Example:
    fit.epochs: expected an integer; received 'two' (str)
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from trainctl.config.source import SourceMap, format_key
from trainctl.errors import ConfigError, describe, did_you_mean

_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "list_type": "a list", "dict_type": "a mapping",
    "model_type": "a mapping", "model_attributes_type": "a mapping",
    "none_required": "null",
}
_MISSING = object()


def _clean_loc(loc: tuple, data: Any) -> tuple:
    """Drop union-member tags from ``loc`` by following the real data."""
    path: list = []
    node = data
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and "[" not in part \
                and part.isidentifier() and not _is_type_tag(part):
            path.append(part)  # a missing key: keep it so the message names it
            node = _MISSING
        # anything else is a union tag ('str', 'list[str]', 'constrained-int', ...)
    return tuple(path)


def _is_type_tag(part: str) -> bool:
    return part in {"str", "int", "float", "bool", "dict", "list", "none", "function-after"}


def _model_at(path: tuple, root: type[BaseModel]) -> type[BaseModel] | None:
    """The pydantic model class that holds the keys under ``path``, if any."""
    current: Any = root
    for part in path:
        current = _unwrap_model(current)
        if current is None:
            return None
        if isinstance(part, int) or part not in getattr(current, "model_fields", {}):
            if isinstance(part, int) or not hasattr(current, "model_fields"):
                current = _element_type(current)
                continue
            return None
        current = current.model_fields[part].annotation
    return _unwrap_model(current)


def _unwrap_model(tp: Any) -> Any:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for arg in typing.get_args(tp):
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


def _element_type(tp: Any) -> Any:
    args = typing.get_args(tp)
    return args[-1] if args else None


def _message(err: dict, root: type[BaseModel], path: tuple) -> str:
    etype = err["type"]
    if etype == "extra_forbidden":
        model = _model_at(path[:-1], root)
        names = sorted(model.model_fields) if model else []
        return (f"unknown key {path[-1]!r}{did_you_mean(str(path[-1]), names)}"
                + (f"; valid keys: {', '.join(names)}" if names else ""))
    if etype == "missing":
        return "required key is missing"
    received = f"; received {describe(err['input'])}"
    if etype in _EXPECTED:
        return f"expected {_EXPECTED[etype]}{received}"
    ctx = err.get("ctx") or {}
    if etype == "literal_error":
        return f"expected {ctx.get('expected')}{received}"
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
              "less_than": "<"}
    if etype in bounds:
        limit = next(iter(ctx.values()))
        return f"expected a value {bounds[etype]} {limit}{received}"
    if etype == "too_short":
        return f"expected at least {ctx.get('min_length')} item(s); received none"
    if etype == "string_too_short":
        return f"expected a non-empty string{received}"
    if etype == "value_error":
        return str(ctx.get("error", err["msg"]))
    return f"{err['msg'][0].lower()}{err['msg'][1:]}{received}"


def translate(exc: ValidationError, data: Any, where: SourceMap,
              root: type[BaseModel]) -> list[ConfigError]:
    """One ConfigError per offending key, in file order."""
    grouped: dict[tuple, list[str]] = {}
    for err in exc.errors():
        path = _clean_loc(err["loc"], data)
        message = _message(err, root, path)
        msgs = grouped.setdefault(path, [])
        if message not in msgs:
            msgs.append(message)
    errors = []
    for path, msgs in grouped.items():
        message = msgs[0] if len(msgs) == 1 else _merge(msgs)
        key_pos = msgs[0].startswith("unknown key")
        if msgs[0] == "required key is missing":
            hint = f"add '{path[-1]}:' under {format_key(path[:-1]) or 'the top level'}"
            errors.append(ConfigError(message, key=format_key(path),
                                      where=where.locate(path[:-1]), hint=hint))
            continue
        errors.append(ConfigError(message, key=format_key(path),
                                  where=where.locate(path, key_position=key_pos)))
    errors.sort(key=lambda e: (e.where.file, e.where.line, e.where.col) if e.where else ("", 0, 0))
    return errors


def _merge(msgs: list[str]) -> str:
    """``expected a string`` + ``expected a list`` -> ``expected a string or a list``."""
    expected, received = [], ""
    for m in msgs:
        if m.startswith("expected "):
            head, _, tail = m.partition("; received ")
            expected.append(head[len("expected "):])
            received = received or tail
        else:
            return m
    text = "expected " + " or ".join(dict.fromkeys(expected))
    return text + (f"; received {received}" if received else "")
