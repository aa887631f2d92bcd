"""Key paths and the source map: where each config value came from.

A key path is a tuple of mapping keys and list indices, ``("model", "layers", 0,
"units")``, shown to users as ``model.layers[0].units``. A :class:`SourceMap`
remembers the :class:`~trainctl.errors.Location` of every value so that any
later check can point at the file, line and column (or the ``--set`` option)
that gave it.

Example:
    >>> format_key(("fit", "callbacks", 1, "mode"))
    'fit.callbacks[1].mode'
    >>> parse_key("model.layers[0].units")
    ('model', 'layers', 0, 'units')
"""

from __future__ import annotations

import re
from typing import Iterable, Union

from trainctl.errors import Location

Key = tuple[Union[str, int], ...]

_PART = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")


def format_key(path: Iterable[Union[str, int]]) -> str:
    """Render a key path as ``a.b[0].c``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_key(text: str) -> Key:
    """Parse ``a.b[0].c`` into a key path; raise ValueError when malformed."""
    parts: list[Union[str, int]] = []
    pos = 0
    expect_name = True
    while pos < len(text):
        if text[pos] == "." and not expect_name and parts:
            pos += 1
            expect_name = True
            continue
        match = _PART.match(text, pos)
        if not match or (match.group(1) is not None and not expect_name):
            raise ValueError(f"malformed key {text!r} at character {pos + 1}")
        if match.group(1) is not None:
            parts.append(match.group(1))
        else:
            if not parts:
                raise ValueError(f"malformed key {text!r}: an index needs a key before it")
            parts.append(int(match.group(2)))
        expect_name = False
        pos = match.end()
    if not parts or expect_name:
        raise ValueError(f"malformed key {text!r}")
    return tuple(parts)


def _parse_prefix(text: str) -> Key:
    """The key path of ``text``, or of its longest prefix that parses.

    A config key may itself hold ``.``, ``[`` or nothing at all (``compile.loss.a[``,
    ``fit.callbacks[0].``): such a dotted path does not parse back, but its
    enclosing key still has a position worth pointing at.
    """
    while text:
        try:
            return parse_key(text)
        except ValueError:
            cut = max(text.rfind("."), text.rfind("["))
            text = text[:cut] if cut > 0 else ""
    return ()


class SourceMap:
    """Locations of config values and keys, by key path.

    ``values[path]`` is where the value starts; ``keys[path]`` is where its key
    is written (for "unknown key" errors). ``locate`` falls back to the nearest
    enclosing path that has a location, so every key path gets some position.
    """

    def __init__(self, default: Location):
        self.default = default
        self.values: dict[Key, Location] = {}
        self.keys: dict[Key, Location] = {}

    def locate(self, path: Key | str, *, key_position: bool = False) -> Location:
        """Return the best-known location for ``path`` (a tuple or dotted string)."""
        if isinstance(path, str):
            path = _parse_prefix(path)
        table = self.keys if key_position else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), self.default)

    def set(self, path: Key, where: Location, *, key_where: Location | None = None) -> None:
        """Record where ``path``'s value (and key) came from."""
        self.values[tuple(path)] = where
        if key_where is not None:
            self.keys[tuple(path)] = key_where

    def replace_subtree(self, path: Key, other: "SourceMap") -> None:
        """Drop every location under ``path`` and take ``other``'s in its place."""
        n = len(path)
        for table in (self.values, self.keys):
            for k in [k for k in table if k[:n] == tuple(path)]:
                del table[k]
        self.values.update(other.values)
        self.keys.update(other.keys)

    def merged_under(self, child: "SourceMap") -> "SourceMap":
        """A map with this (base) map's entries, overridden by ``child``'s."""
        merged = SourceMap(child.default)
        for table_name in ("values", "keys"):
            table = dict(getattr(self, table_name))
            table.update(getattr(child, table_name))
            setattr(merged, table_name, table)
        return merged
