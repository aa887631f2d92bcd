"""Import the user's plug-in modules, and nothing a config does not name.

A module is imported only when the config lists it under ``imports:`` or uses
it as the part before ``:`` in a component name (``my_layers:MyDense``).
Modules are looked up in the config's folder first, then the working
directory. Plug-ins written for tf.keras 2 are adapted to Keras 3 where that
is safe (a Metric's ``reset_states``) and reported where it is not
(``add_metric``); see :func:`adapt_keras3` and :func:`keras3_problem`.

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
    """Put the config's folder, then the working directory, at the front of sys.path."""
    for folder in (Path.cwd(), Path(config_dir).resolve()):  # inserted in reverse order
        text = str(folder)
        if text in sys.path:
            sys.path.remove(text)
        sys.path.insert(0, text)


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
    """``sys.path`` as :func:`add_search_path` leaves it for a config in ``config_dir``."""
    front = [str(Path(config_dir).resolve()), str(Path.cwd())]
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


# -- tf.keras 2 plug-ins under Keras 3 -------------------------------------------
def _owner(cls: type, attr: str) -> type | None:
    """The first class in ``cls``'s MRO that defines ``attr`` itself."""
    return next((c for c in cls.__mro__ if attr in vars(c)), None)


def _is_keras_class(cls: type, name: str) -> bool:
    """Whether Keras's class ``name`` (``Metric``, ``Layer``) is among ``cls``'s bases."""
    return any(c.__name__ == name and c.__module__.startswith("keras")
               for c in getattr(cls, "__mro__", ()))


def adapt_reset_states(cls: type) -> bool:
    """Make a Metric subclass's tf.keras 2 ``reset_states()`` run under Keras 3.

    Keras 3 resets metrics with ``reset_state()`` only, so a ``reset_states()``
    override (seed 001) would silently never run (KERAS3_NOTES). When ``cls``
    defines ``reset_states`` below (or without) its own ``reset_state``, this
    sets ``cls.reset_state`` to call it and prints a one-line warning naming
    the Keras 3 method. Idempotent: an adapted class is left alone.

    Args:
        cls: any class; only Keras Metric subclasses are changed.

    Returns:
        True when the class was adapted now.

    Example:
        >>> adapt_reset_states(CategoricalTruePositives)  # doctest: +SKIP
        True
    """
    if not isinstance(cls, type) or not _is_keras_class(cls, "Metric"):
        return False
    old, new = _owner(cls, "reset_states"), _owner(cls, "reset_state")
    if old is None or (new is not None and cls.__mro__.index(new) <= cls.__mro__.index(old)):
        return False

    def reset_state(self):
        self.reset_states()

    reset_state.__doc__ = f"Calls {cls.__name__}.reset_states() (adapted by trainctl for Keras 3)."
    cls.reset_state = reset_state
    print(f"warning: metric {cls.__module__}:{cls.__qualname__} defines reset_states(), which "
          "Keras 3 never calls; trainctl makes reset_state() call it (rename the method to "
          "reset_state)", file=sys.stderr, flush=True)
    return True


def adapt_result(cls: type) -> bool:
    """Make a Metric subclass's ``result()`` return a value, never its live variable.

    ``return self.true_positives`` (seed 002) hands Keras 3 the variable itself:
    ``fit`` keeps it in the epoch's logs, validation then resets and refills the
    same variable, and history records the validation value as the training one.
    The wrapped ``result()`` returns a copy (``keras.ops.copy``) of a variable and
    prints a one-line warning the first time it does.

    Returns:
        True when the class was wrapped now (a class is wrapped once).

    Example:
        >>> adapt_result(CategoricalTruePositives)  # doctest: +SKIP
        True
    """
    if not isinstance(cls, type) or not _is_keras_class(cls, "Metric"):
        return False
    owner = _owner(cls, "result")
    if owner is None or owner.__module__.startswith("keras") \
            or getattr(vars(owner)["result"], "_trainctl_wrapped", False):
        return False
    original = vars(owner)["result"]
    warned: list[bool] = []

    def result(self):
        import keras

        value = original(self)
        if isinstance(value, keras.Variable):
            if not warned:
                warned.append(True)
                print(f"warning: metric {owner.__module__}:{owner.__qualname__}.result() "
                      "returns its variable, which Keras 3 would log after validation has "
                      "overwritten it; trainctl returns a copy (return "
                      "keras.ops.copy(...) instead)", file=sys.stderr, flush=True)
            value = keras.ops.copy(value)  # a tensor: the value now
        return value

    result._trainctl_wrapped = True
    result.__doc__ = original.__doc__
    owner.result = result
    return True


def _calls(cls: type, attr: str) -> bool:
    """Whether a method that ``cls`` or a non-Keras base defines uses ``self.<attr>``
    (and the user's classes do not define ``attr`` themselves)."""
    own = [k for k in cls.__mro__
           if not k.__module__.startswith(("keras", "tensorflow", "builtins"))]
    if any(attr in vars(k) for k in own):
        return False  # their own add_metric: nothing of Keras's is called
    for klass in own:  # Keras's own methods are not the user's
        for value in vars(klass).values():
            code = getattr(getattr(value, "__func__", value), "__code__", None)
            if code is not None and attr in code.co_names:
                return True
    return False


def keras3_problem(kind: str, obj: Any) -> str | None:
    """What in a plug-in class cannot work under Keras 3, as a message; None when fine.

    Today: a layer or model that calls ``add_metric`` (removed in Keras 3; its
    call would fail with a NotImplementedError while the model is built).

    Example:
        >>> keras3_problem("layer", MetricLoggingLayer)  # doctest: +SKIP
        'MetricLoggingLayer calls add_metric(), which Keras 3 removed; ...'
    """
    if kind not in ("layer", "model") or not isinstance(obj, type):
        return None
    if _is_keras_class(obj, "Layer") and _calls(obj, "add_metric"):
        return (f"{obj.__name__} calls add_metric(), which Keras 3 removed "
                "(NotImplementedError); log the value with trainctl's LogMetric layer "
                "after the layer instead, e.g. {type: LogMetric, fn: std, "
                "name: std_of_activation}, or give the layer a keras.metrics.Mean and call "
                "its update_state() in call()")
    return None


def adapt_keras3(kind: str, obj: Any) -> Any:
    """Apply the safe Keras 3 adaptations to a plug-in component; return it.

    Example:
        >>> adapt_keras3("metric", CategoricalTruePositives)  # doctest: +SKIP
    """
    if kind == "metric":
        adapt_reset_states(obj)
        adapt_result(obj)
    return obj
