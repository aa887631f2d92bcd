"""Read one YAML file into plain data plus a :class:`SourceMap` of positions.

PyYAML's ``SafeLoader`` composes the node tree (so every value has a line and
column) and constructs scalars; nothing else is ever constructed, so a tag
such as ``!!python/object`` is refused. Duplicate keys, which ``safe_load``
silently lets the last one win, are errors here. No input can hang the loader or
exhaust the stack: nesting deeper than :data:`MAX_DEPTH`, an alias inside its own
anchor and a document whose aliases expand to more than :data:`MAX_VALUES` values
are errors too, as are characters YAML forbids and values a tag cannot read
(``!!int abc``), each with its line and column.

Example:
    >>> data, where = read_yaml("configs/mnist.yaml")
    >>> where.locate("fit.epochs")
    Location(file='configs/mnist.yaml', line=21, col=11)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from trainctl.config.source import Key, SourceMap, format_key
from trainctl.config.yaml_errors import syntax_error
from trainctl.errors import ConfigError, Location, printable


_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
#: Deeper than this is not a config (ours nest about 6 levels); PyYAML's composer and
#: everything after it recurse once per level, so the limit also keeps them in bounds.
MAX_DEPTH = 64
#: More values than this after aliases are expanded: a "billion laughs" document.
MAX_VALUES = 100_000


class _Loader(yaml.SafeLoader):
    """SafeLoader whose composer refuses nesting deeper than :data:`MAX_DEPTH`."""

    def __init__(self, text: str, display: str):
        self.display = display
        self.depth = 0
        super().__init__(text)

    def compose_node(self, parent, index):  # noqa: D102 (PyYAML's hook)
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(
                    f"the YAML is nested more than {MAX_DEPTH} levels deep",
                    where=Location(self.display, mark.line + 1, mark.column + 1),
                    hint="a config nests a few levels; check the brackets on this line")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


# YAML 1.1 (PyYAML) reads 1e-3 and 1.0e3 as strings: a float needs a dot and a signed
# exponent (1.0e-3). Configs are full of learning rates written the YAML 1.2 (and
# Python) way, so an exponent without them is a float here too.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def _location(display: str, node: yaml.Node) -> Location:
    mark = node.start_mark
    return Location(display, mark.line + 1, mark.column + 1)


class _Builder:
    """Builds plain data from a node tree, with a position for every value.

    Aliases are expanded (as ``safe_load`` does), but an alias inside its own anchor
    (``&a [*a]``) is an error, and so is a document that expands to more than
    :data:`MAX_VALUES` values (the "billion laughs" of nested aliases).
    """

    def __init__(self, loader: yaml.SafeLoader, display: str, where: SourceMap):
        self.loader = loader
        self.display = display
        self.where = where
        self.count = 0
        self.open: set[int] = set()  # ids of the collection nodes being built
        self.own: dict[int, set[int]] = {}  # mapping node id -> ids of its own key nodes

    def build(self, node: yaml.Node, path: Key) -> Any:
        display, where = self.display, self.where
        self.count += 1
        if self.count > MAX_VALUES:
            raise ConfigError(
                f"the YAML expands to more than {MAX_VALUES:,} values (aliases repeating "
                "large anchors?); a config has a few hundred",
                key=format_key(path) or None, where=_location(display, node),
                hint="write the values out, or use fewer aliases (*name)")
        if len(path) > MAX_DEPTH:  # aliases of aliases nest deeper than the text does
            raise ConfigError(
                f"the YAML is nested more than {MAX_DEPTH} levels deep (with its aliases "
                "expanded)", key=format_key(path[:4]) + "...",
                where=_location(display, node),
                hint="a config nests a few levels; check the aliases (*name) used here")
        where.set(path, _location(display, node))
        if isinstance(node, yaml.ScalarNode):
            return _scalar(self.loader, node, path, display)
        if node.tag not in _PLAIN_TAGS:
            _refuse_tag(node, path, display)
        if id(node) in self.open:
            raise ConfigError(
                "this YAML alias refers to a value that contains it (an endless cycle)",
                key=format_key(path) or None, where=_location(display, node),
                hint="an alias (*name) can only repeat a value defined before it, not one "
                     "it is part of")
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Key) -> dict:
        display, where = self.display, self.where
        # The mapping's own keys, before merge keys (<<) bring in others: a key merged in
        # may be given again (the mapping's own value wins, as with safe_load); an own
        # key given twice is an error. Kept per node: flattening changes node.value.
        own = self.own.setdefault(id(node), {
            id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"})
        self.loader.flatten_mapping(node)  # YAML merge keys (<<) as safe_load does
        out: dict[Any, Any] = {}
        seen: set = set()
        for key_node, value_node in node.value:
            key = _scalar(self.loader, key_node, path, display)
            child = path + (key,)
            duplicate = False
            if id(key_node) in own:
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # unhashable: PyYAML builds none from a scalar, but
                    pass  # be safe rather than crash
            if duplicate:
                raise ConfigError(
                    f"duplicate key {key!r}; first given at line "
                    f"{where.locate(child, key_position=True).line}",
                    key=format_key(child), where=_location(display, key_node),
                    hint="remove one of them (YAML would silently keep the last)")
            where.keys[child] = _location(display, key_node)
            out[key] = self.build(value_node, child)
        return out


def _scalar(loader: yaml.SafeLoader, node: yaml.Node, path: Key, display: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError("a mapping key must be a plain value, not a list or mapping",
                          key=format_key(path) or None, where=_location(display, node))
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        if node.tag in loader.yaml_constructors:  # a plain YAML tag, a bad value
            _refuse_value(node, path, display, exc.problem or str(exc))
        _refuse_tag(node, path, display)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        # PyYAML's own tag constructors fail like this on `!!int abc`, `!!bool maybe`,
        # `!!timestamp yesterday`, `!!float x`
        _refuse_value(node, path, display, f"{type(exc).__name__}: {exc}")


def _refuse_value(node: yaml.Node, path: Key, display: str, reason: str) -> None:
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    mark = node.start_mark
    explicit = mark.buffer is not None and mark.buffer[mark.pointer:mark.pointer + 1] == "!"
    raise ConfigError(
        f"cannot read {printable(str(node.value), 40)!r} as {tag} ({reason})",
        key=format_key(path) or None, where=_location(display, node),
        hint=f"write a valid {tag} value, or drop the tag and let YAML infer the type"
        if explicit else "quote the value to keep it as a string")


def _refuse_tag(node: yaml.Node, path: Key, display: str) -> None:
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    raise ConfigError(
        f"YAML tag {tag!r} is not allowed; trainctl reads plain YAML only "
        "(safe_load: no Python objects)",
        key=format_key(path) or None, where=_location(display, node),
        hint="write the value without the tag")


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character ``index`` of ``text``."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def parse_yaml(text: str, display: str) -> tuple[Any, SourceMap]:
    """Parse YAML ``text``; ``display`` names the source in messages."""
    where = SourceMap(Location(display))
    loader = None
    try:
        loader = _Loader(text, display)  # checks the characters: may raise ReaderError
        node = loader.get_single_node()
        if node is None:
            return None, where
        return _Builder(loader, display, where).build(node, ()), where
    except yaml.MarkedYAMLError as exc:
        raise syntax_error(exc, text, display) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, ESC, ...)
        line, col = _position(text, exc.position)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character[:1])
        raise ConfigError(f"YAML does not allow the character {chr(code)!r} (U+{code:04X}): "
                          f"{exc.reason}", where=Location(display, line, col),
                          hint="remove it, or write it as an escape inside double quotes: "
                               f"\"{chr(code).encode('unicode_escape').decode()}\"") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {printable(exc)}", where=Location(display)) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml(path: str | Path) -> tuple[Any, SourceMap]:
    """Read and parse a YAML file; a missing or unreadable file is a ConfigError."""
    display = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {display}",
                          where=Location(display)) from None
    except IsADirectoryError:
        raise ConfigError(f"expected a YAML file; received a directory: {display}",
                          where=Location(display)) from None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError; ValueError: a NUL in the path
        raise ConfigError(f"cannot read config file: {exc}", where=Location(display)) from None
    return parse_yaml(text, display)
