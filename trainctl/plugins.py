"""Import the user's plug-in modules, and nothing a config does not name.

A module is imported only when the config lists it under ``imports:`` or uses
it as the part before ``:`` in a component name (``my_layers:MyDense``).
Modules are looked up in the config's folder first, then the working
directory.

Example:
    >>> import_plugins(["examples.plugins.layers"], config_dir=Path("configs"),
    ...                locate=cfg.locate)
"""

from __future__ import annotations

import hashlib
import importlib
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Callable

from trainctl.errors import ConfigError, Location


def add_search_path(config_dir: Path) -> None:
    """Put the config's folder, then the working directory, at the front of sys.path."""
    for folder in (Path.cwd(), Path(config_dir).resolve()):  # inserted in reverse order
        text = str(folder)
        if text in sys.path:
            sys.path.remove(text)
        sys.path.insert(0, text)


def import_module(name: str, *, key: str, where: Location | None) -> ModuleType:
    """Import ``name``; any failure becomes a ConfigError naming the config key."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise ConfigError(
                f"cannot import module {name!r}: no such module", key=key, where=where,
                hint="modules are looked up in the config's folder, then the working "
                     "directory; check the dotted name and that the folders have the files"
            ) from None
        raise ConfigError(f"importing {name!r} failed: {exc}", key=key, where=where) from None
    except Exception as exc:  # the user's module raised while importing
        last = traceback.extract_tb(exc.__traceback__)[-1]
        raise ConfigError(
            f"importing {name!r} failed: {type(exc).__name__}: {exc} "
            f"(at {last.filename}:{last.lineno})", key=key, where=where) from None


def import_plugins(modules: list[str], *, config_dir: Path,
                   locate: Callable[[str], Location]) -> list[ModuleType]:
    """Import every module in ``imports:``, in order."""
    add_search_path(config_dir)
    return [import_module(name, key=f"imports[{i}]", where=locate(f"imports[{i}]"))
            for i, name in enumerate(modules)]


def module_hashes(modules: list[ModuleType]) -> dict[str, str]:
    """sha256 of each plug-in module's source file, for run.json."""
    out = {}
    for module in modules:
        path = getattr(module, "__file__", None)
        if path and Path(path).is_file():
            out[module.__name__] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return out
