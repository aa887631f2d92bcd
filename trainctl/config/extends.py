"""``extends:``: merge base config files under the one that names them.

Mappings merge key by key (the child wins); any other value, lists included,
is replaced whole, so a child's ``layers:`` never interleaves with its base's.
Paths are relative to the folder of the file that names them: a base's ``extends``,
``data.path`` and ``model.weights_from`` too (:func:`rebase_paths`), wherever the
config that extends it lives. Cycles are errors.

Example:
    # configs/small.yaml
    extends: _base/mnist.yaml
    fit: {epochs: 1}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trainctl.config.load import read_yaml
from trainctl.config.source import Key, SourceMap, format_key
from trainctl.errors import ConfigError, describe


def deep_merge(base: Any, child: Any) -> Any:
    """Merge ``child`` over ``base``: mappings recursively, everything else replaced."""
    if isinstance(base, dict) and isinstance(child, dict):
        out = dict(base)
        for key, value in child.items():
            out[key] = deep_merge(base[key], value) if key in base else value
        return out
    return child


# Values that are file paths relative to the config file that gives them.
PATH_KEYS = (("data", "path"), ("model", "weights_from"), ("model", "weights_from", "path"))


def rebase_paths(data: dict, base_dir: Path, child_dir: Path) -> dict:
    """``data`` (a base config read from ``base_dir``) with its relative paths made
    relative to ``child_dir``, so each still names the file its own author meant.

    Example:
        >>> rebase_paths({"data": {"path": "../d.npz"}}, Path("bases/deep"), Path("sub"))
        {'data': {'path': '../bases/d.npz'}}
    """
    out = data
    for key in PATH_KEYS:
        parent = out
        for part in key[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        value = parent.get(key[-1]) if isinstance(parent, dict) else None
        if not isinstance(value, str) or not value or os.path.isabs(value) or \
                value.startswith("~") or base_dir.resolve() == child_dir.resolve():
            continue
        rebased = os.path.relpath(os.path.join(base_dir.resolve(), value), child_dir.resolve())
        out = set_path(out, key, rebased)
    return out


def set_path(data: dict, key: tuple, value: Any) -> dict:
    """A copy of ``data`` with ``key`` (a path of mapping keys) set to ``value``."""
    head, *rest = key
    return {**data, head: set_path(data[head], tuple(rest), value) if rest else value}


def _extends_list(data: dict, where: SourceMap) -> list[str]:
    value = data.get("extends")
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item.strip() or "\x00" in item:
            key: Key = ("extends", i) if isinstance(value, list) else ("extends",)
            raise ConfigError(f"expected a path to a YAML file; received {describe(item)}",
                              key=format_key(key), where=where.locate(key),
                              hint="e.g. extends: _base/mnist_mlp.yaml (relative to this "
                                   "config's folder)")
    return items


def load_with_extends(path: Path, _chain: tuple[Path, ...] = ()) -> tuple[dict, SourceMap]:
    """Read ``path`` and every file it ``extends``, merged; bases first, in order."""
    data, where = read_yaml(path)
    if data is None:
        raise ConfigError("the config file is empty; expected a mapping of sections "
                          "(data:, model:, compile:, fit:, ...)", where=where.locate(()))
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of config sections at the top level; "
                          f"received {describe(data)}", where=where.locate(()))
    resolved = path.resolve()
    chain = _chain + (resolved,)
    merged: dict = {}
    merged_where = SourceMap(where.default)
    for i, rel in enumerate(_extends_list(data, where)):
        base_path = (path.parent / rel)
        key: Key = ("extends", i) if isinstance(data["extends"], list) else ("extends",)
        try:
            resolved_base, is_file = base_path.resolve(), base_path.is_file()
        except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
            raise ConfigError(f"cannot use {rel!r} as a base config: {exc}",
                              key=format_key(key), where=where.locate(key)) from None
        if resolved_base in chain:
            raise ConfigError(f"extends cycle: {' -> '.join(str(p) for p in chain)} -> "
                              f"{base_path}", key=format_key(key), where=where.locate(key))
        if not is_file and base_path.is_dir():
            raise ConfigError(f"{base_path} is a folder; extends names a YAML file",
                              key=format_key(key), where=where.locate(key),
                              hint=f"e.g. extends: {Path(rel) / 'mnist_mlp.yaml'}")
        if not is_file:
            raise ConfigError(f"base config not found: {base_path} (paths in extends are "
                              f"relative to the config's folder, {path.parent.resolve()})",
                              key=format_key(key), where=where.locate(key))
        base, base_where = load_with_extends(base_path, chain)
        merged = deep_merge(merged, rebase_paths(base, base_path.parent, path.parent))
        merged_where = merged_where.merged_under(base_where)
    merged = deep_merge(merged, {k: v for k, v in data.items() if k != "extends"})
    if "extends" in data:
        merged["extends"] = data["extends"]
    return merged, merged_where.merged_under(where)
