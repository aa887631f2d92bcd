"""Read one YAML file into plain data plus a :class:`SourceMap` of positions.

PyYAML's ``SafeLoader`` composes the node tree (so every value has a line and
column) and constructs scalars; nothing else is ever constructed, so a tag
such as ``!!python/object`` is refused. Duplicate keys, which ``safe_load``
silently lets the last one win, are errors here.

Example:
    >>> data, where = read_yaml("configs/mnist.yaml")
    >>> where.locate("fit.epochs")
    Location(file='configs/mnist.yaml', line=21, col=11)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from trainctl.config.source import Key, SourceMap, format_key
from trainctl.errors import ConfigError, Location


_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


def _location(display: str, node: yaml.Node) -> Location:
    mark = node.start_mark
    return Location(display, mark.line + 1, mark.column + 1)


def _construct(loader: yaml.SafeLoader, node: yaml.Node, path: Key,
               display: str, where: SourceMap) -> Any:
    """Build plain Python data from ``node``, recording each value's position."""
    where.set(path, _location(display, node))
    if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
        _refuse_tag(node, path, display)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # YAML merge keys (<<) as safe_load does
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(loader, key_node, path, display)
            child = path + (key,)
            if key in out:
                raise ConfigError(
                    f"duplicate key {key!r}; first given at line "
                    f"{where.locate(child, key_position=True).line}",
                    key=format_key(child), where=_location(display, key_node),
                    hint="remove one of them (YAML would silently keep the last)")
            where.keys[child] = _location(display, key_node)
            out[key] = _construct(loader, value_node, child, display, where)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(loader, item, path + (i,), display, where)
                for i, item in enumerate(node.value)]
    return _scalar(loader, node, path, display)


def _scalar(loader: yaml.SafeLoader, node: yaml.Node, path: Key, display: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError("a mapping key must be a plain value, not a list or mapping",
                          key=format_key(path) or None, where=_location(display, node))
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError:
        _refuse_tag(node, path, display)


def _refuse_tag(node: yaml.Node, path: Key, display: str) -> None:
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    raise ConfigError(
        f"YAML tag {tag!r} is not allowed; trainctl reads plain YAML only "
        "(safe_load: no Python objects)",
        key=format_key(path) or None, where=_location(display, node),
        hint="write the value without the tag")


def parse_yaml(text: str, display: str) -> tuple[Any, SourceMap]:
    """Parse YAML ``text``; ``display`` names the source in messages."""
    where = SourceMap(Location(display))
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, where
        return _construct(loader, node, (), display, where), where
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(display, mark.line + 1, mark.column + 1) if mark else Location(display)
        problem = exc.problem or str(exc)
        context = f" ({exc.context})" if exc.context else ""
        raise ConfigError(f"YAML syntax error: {problem}{context}", where=loc,
                          hint="check indentation, colons and quotes on this line") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", where=Location(display)) from None
    finally:
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
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", where=Location(display)) from None
    return parse_yaml(text, display)
