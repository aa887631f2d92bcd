"""Import the user's plug-in modules, and nothing a config does not name.

A module is imported only when the config lists it under ``imports:`` or uses
it as the part before ``:`` in a component name (``my_layers:MyDense``).
Modules are looked up in the config's folder first, then the working
directory. Plug-ins written for tf.keras 2 are adapted to Keras 3 by
:mod:`trainctl.keras2_plugins`. Same-named modules of different folders are told
apart by :func:`module_clash` (``trainctl smoke``/``validate`` of several configs).

Example:
    >>> import_plugins(["examples.plugins.layers"], config_dir=Path("configs"),
    ...                locate=cfg.locate)
"""

from __future__ import annotations

import hashlib
import importlib
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from trainctl.errors import ConfigError, Location


def add_search_path(config_dir: Path) -> None:
    """Put the config's folder, then the working directory, at the front of sys.path
    (:func:`search_path`)."""
    sys.path[:] = search_path(config_dir)


# -- one process, several configs: same-named modules ---------------------------
# ``module:Name`` as a config value (a component, a data source): the module part
_MODULE_VALUE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*):"
                           r"[A-Za-z_][A-Za-z0-9_.]*$")


def named_modules(data: Any) -> list[str]:
    """The modules a resolved config's data makes trainctl import, found without
    importing: every ``imports:`` entry and the module of each ``module:Name`` value
    or key (Keras's and TensorFlow's own left out), each once, in order.

    Example:
        >>> named_modules({"imports": ["my_layers"], "loss": "my_losses:fn"})
        ['my_layers', 'my_losses']
    """
    found: list[str] = []
    if isinstance(data, dict) and isinstance(data.get("imports"), list):
        found += [name for name in data["imports"] if isinstance(name, str) and name]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(key)
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            match = _MODULE_VALUE.match(value)
            if match:
                found.append(match.group(1))

    walk(data)
    return [name for name in dict.fromkeys(found)
            if name.partition(".")[0] not in ("keras", "tensorflow", "trainctl")]


def search_path(config_dir: Path) -> list[str]:
    """``sys.path`` for a config in ``config_dir``: its folder, then the working directory,
    then the rest (what :func:`add_search_path` sets; :func:`module_clash` reads it)."""
    front = list(dict.fromkeys([str(Path(config_dir).resolve()), str(Path.cwd())]))
    return front + [p for p in sys.path if p not in front]


def module_origins(name: str, path: list[str]) -> dict[str, str]:
    """The file each of ``name``'s levels (``pkg``, ``pkg.mod``) would be imported from
    with ``sys.path`` = ``path``: found by the path finder alone, so nothing is imported
    and ``sys.modules`` is not consulted. Stops at the first level not found there (a
    module served by another finder: nothing to compare); a namespace package has no
    file and is left out.

    Example:
        >>> module_origins("examples.plugins.gan", [os.getcwd()])["examples.plugins.gan"]
        '/work/main/examples/plugins/gan.py'
    """
    from importlib.machinery import PathFinder

    origins: dict[str, str] = {}
    locations: list[str] | None = list(path)
    parts = name.split(".")
    for i in range(len(parts)):
        if locations is None:  # a plain module has no submodules
            break
        try:
            spec = PathFinder.find_spec(parts[i], locations)
        except (ImportError, ValueError, OSError):
            break
        if spec is None:
            break
        if spec.origin and spec.has_location:
            origins[".".join(parts[:i + 1])] = spec.origin
        locations = list(spec.submodule_search_locations) \
            if spec.submodule_search_locations is not None else None
    return origins


def _same_file(a: str, b: str) -> bool:
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _shown(path: str) -> str:
    """``path`` relative to the working directory when under it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def module_clash(modules: list[str], config_dir: Path) -> str | None:
    """Why this process cannot import ``modules`` for a config in ``config_dir``: one
    of them (or a package above it) is already imported from another file than the one
    this config's search path gives, so ``import`` would hand it the other config's
    code. None when every module is not yet imported or imported from the same file.

    Example:
        >>> module_clash(["plugins2"], Path("mod2/b"))  # after mod2/a's config ran
        "plug-in module 'plugins2' is mod2/b/plugins2.py here, but mod2/a/plugins2.py is already imported"
    """
    path = search_path(config_dir)
    for name in modules:
        for level, origin in module_origins(name, path).items():
            module = sys.modules.get(level)
            loaded = getattr(module, "__file__", None) if module is not None else None
            if loaded and not _same_file(loaded, origin):
                return (f"plug-in module {level!r} is {_shown(origin)} here, but "
                        f"{_shown(loaded)} is already imported")
    return None


# Where the imported plug-ins live (a module's file, a package's folder): their frames
# are the user's code even when installed in site-packages (trainctl.diagnose).
_plugin_paths: set[str] = set()


def plugin_paths() -> tuple[str, ...]:
    """The files and folders (ending in a separator) of the plug-ins imported so far."""
    return tuple(_plugin_paths)


def _remember(module: ModuleType) -> ModuleType:
    import os

    file = getattr(module, "__file__", None)
    if file:
        path = os.path.abspath(file)
        package = os.path.basename(path) == "__init__.py"
        _plugin_paths.add(os.path.join(os.path.dirname(path), "") if package else path)
    return module


def _uses_keras(name: str) -> bool:
    """Whether module ``name``'s source mentions Keras or TensorFlow (read, not imported;
    a module that cannot be found says no, and its import fails as usual)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a parent package missing or broken
        return False
    origin = getattr(spec, "origin", None) if spec is not None else None
    if not origin or not origin.endswith(".py"):
        return False
    try:
        source = Path(origin).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "keras" in source or "tensorflow" in source


def import_module(name: str, *, key: str, where: Location | None) -> ModuleType:
    """Import ``name``; any failure becomes a ConfigError naming the config key."""
    if "tensorflow" not in sys.modules and (name.partition(".")[0] in ("keras", "tensorflow")
                                            or _uses_keras(name)):
        from trainctl.run.runtime import import_tensorflow

        # `keras.layers:X`, or a plug-in that imports Keras (`my_losses:fn`): TensorFlow
        # first, without its start-up noise (the plug-in's own import would print it)
        import_tensorflow()
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise ConfigError(
                f"cannot import module {name!r}: no such module", key=key, where=where,
                hint="modules are looked up in the folder of the config given to trainctl "
                     "(not of a base it extends), then the working directory; check the "
                     "dotted name and that the folders have the files, or install the module"
            ) from None
        raise ConfigError(f"importing {name!r} failed: {exc}", key=key, where=where) from None
    except Exception as exc:  # the user's module raised while importing
        last = traceback.extract_tb(exc.__traceback__)[-1]
        raise ConfigError(
            f"importing {name!r} failed: {type(exc).__name__}: {exc} "
            f"(at {last.filename}:{last.lineno})", key=key, where=where) from None
    if name.partition(".")[0] not in ("keras", "tensorflow"):
        _remember(module)
    return module


def import_plugins(modules: list[str], *, config_dir: Path,
                   locate: Callable[[str], Location]) -> list[ModuleType]:
    """Import every module in ``imports:``, in order.

    Plug-ins nearly always import Keras, so TensorFlow is imported first with its
    start-up noise silenced (the same import ``fit`` does), also under ``validate``.
    """
    add_search_path(config_dir)
    if modules and "tensorflow" not in sys.modules:
        from trainctl.run.runtime import import_tensorflow

        import_tensorflow()
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
