"""``--set a.b[0].c=value``: command-line overrides applied after ``extends``.

The value is parsed as YAML (``--set fit.epochs=3`` gives an int, ``--set
compile.optimizer='{type: Adam}'`` a mapping). Missing mappings on the way are
created; a list index must exist.

Example:
    >>> apply_overrides({"fit": {"epochs": 2}}, ["fit.epochs=5"], SourceMap(Location("x")))
    {'fit': {'epochs': 5}}
"""

from __future__ import annotations

import copy
from typing import Any

from trainctl.config.load import parse_yaml
from trainctl.config.source import SourceMap, format_key, parse_key
from trainctl.errors import ConfigError, Location, UsageError, describe, printable

#: How much of a ``--set`` option messages quote.
DISPLAY_LIMIT = 80


def parse_override(text: str) -> tuple[tuple, Any, Location, SourceMap]:
    """Split ``key=value`` into a key path and a parsed YAML value."""
    # the option as messages show it: on one line, and short (a value can be a page long)
    display = f"--set {printable(text, DISPLAY_LIMIT)}"
    if "=" not in text:
        raise UsageError(f"{display}: expected KEY=VALUE, e.g. --set fit.epochs=3")
    raw_key, raw_value = text.split("=", 1)
    try:
        path = parse_key(raw_key.strip())
    except ValueError as exc:
        raise UsageError(f"{display}: {printable(exc)}; expected a dotted key such as "
                         "model.layers[0].units") from None
    value, value_where = parse_yaml(raw_value, display)
    return path, value, Location(display), value_where


def set_in(data: Any, path: tuple, value: Any, where: Location) -> None:
    """Set ``path`` in ``data`` to ``value`` as ``--set`` does (mappings created on the way);
    a path that cannot be followed is a ConfigError located at ``where``."""
    node = data
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        node = _child(node, part, path[: i + 1], where, create=not isinstance(nxt, int))
    last = path[-1]
    if isinstance(last, int):
        _check_index(node, last, path, where)
    elif not isinstance(node, dict):
        raise ConfigError(f"cannot set key {last!r}: {format_key(path[:-1])} is "
                          f"{describe(node)}, not a mapping", key=format_key(path), where=where,
                          hint=_index_hint(node, path))
    node[last] = value


def _child(node: Any, part: Any, prefix: tuple, where: Location, create: bool) -> Any:
    if isinstance(part, int):
        _check_index(node, part, prefix, where)
        return node[part]
    if not isinstance(node, dict):
        raise ConfigError(f"cannot descend into {describe(node)}: expected a mapping",
                          key=format_key(prefix), where=where, hint=_index_hint(node, prefix))
    if part not in node or node[part] is None:
        node[part] = {} if create else []
    return node[part]


def _index_hint(node: Any, path: tuple) -> str | None:
    """``layers.0`` for ``layers[0]``: say how a list item is named."""
    part = path[-1]
    if isinstance(node, list) and isinstance(part, str) and part.lstrip("-").isdigit():
        fixed = format_key(path[:-1] + (int(part),))
        return f"a list item is named by its index in brackets: {fixed}"
    return None


def _check_index(node: Any, index: int, path: tuple, where: Location) -> None:
    if not isinstance(node, list):
        raise ConfigError(f"expected a list to index with [{index}]; found {describe(node)}",
                          key=format_key(path), where=where)
    if not -len(node) <= index < len(node):
        raise ConfigError(f"index {index} is out of range: the list has {len(node)} items",
                          key=format_key(path), where=where)


def apply_overrides(data: dict, overrides: list[str], where: SourceMap) -> dict:
    """Return a copy of ``data`` with each ``--set`` applied in order; update ``where``."""
    data = copy.deepcopy(data)
    for text in overrides:
        path, value, loc, value_where = parse_override(text)
        set_in(data, path, value, loc)
        sub = SourceMap(loc)
        for n in range(1, len(path)):  # mappings the option created come from it too
            if path[:n] not in where.values:
                sub.set(path[:n], loc, key_where=loc)
        sub.set(path, loc, key_where=loc)
        for k in value_where.values:  # every key inside the value points at the option
            sub.values[path + k] = loc
        where.replace_subtree(path, sub)
    return data
