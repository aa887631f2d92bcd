"""Finding and calling a data source: built-ins, registered plug-ins and ``module:function``.

``data.source`` is a name or ``{type: name, **args}``. Names are looked up in the
``dataset`` registry (plug-ins: ``@register("dataset")``; the built-ins are
registered there too) and in :data:`SOURCES`; ``module.path:function`` imports
that module (the config's folder, then the working directory, on ``sys.path``)
because the config names it.

A plug-in function follows the keras.datasets protocol: it is called with the
mapping's other keys as keyword arguments (plus ``path=`` the absolute
``data.path`` and ``seed=`` the experiment's seed when it has such parameters
and the config does not set them) and returns numpy arrays, either
``((x_train, y_train), (x_test, y_test))`` (the test pair optional; a third
item in a pair is sample weights) or a dict with keys ``x_train``, ``y_train``,
``x_test``, ``y_test``, ``sample_weight_train``, ``sample_weight_test``
(``x_train`` required). ``x``/``y`` may be ``{name: array}`` for several model
inputs/outputs, or a list in model order.

Example (YAML)::

    data: {source: {type: "my_data:load", n: 1000}, path: raw.csv}
"""

from __future__ import annotations

import contextlib
import inspect
import os
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

from trainctl.data import builtin, csv_files, npz, synthetic  # noqa: F401 - fill SOURCES
from trainctl.data.base import SOURCES, RawData, SourceContext, split_from_parts
from trainctl.data.types import Split, map_arrays
from trainctl.errors import ConfigError, DataError, Location, describe, did_you_mean
from trainctl.plugins import add_search_path
from trainctl.registry import DuplicateNameError, get_registry, import_attr, register

Locate = Callable[[str], Location]

_RESULT_KEYS = ("x_train", "y_train", "x_test", "y_test",
                "sample_weight_train", "sample_weight_test")

for _name, _func in SOURCES.items():
    try:
        register("dataset", _func, name=_name)
    except DuplicateNameError:
        pass  # a plug-in took the name first: the registry's entry wins


def source_names() -> list[str]:
    """Every source name a config can use (besides ``module.path:function``)."""
    return sorted(set(SOURCES) | set(get_registry("dataset").names(builtins=False)))


def split_spec(spec: Any, *, key: str, locate: Locate) -> tuple[str, dict, str]:
    """``(name, args, key of the name)`` from a name or a ``{type: ...}`` mapping."""
    if isinstance(spec, str) and spec:
        return spec, {}, key
    if isinstance(spec, dict) and isinstance(spec.get("type"), str) and spec["type"]:
        args = {k: v for k, v in spec.items() if k != "type"}
        return spec["type"], args, f"{key}.type"
    raise ConfigError(f"expected a source name or {{type: name, ...}}; received {describe(spec)}",
                      key=key, where=locate(key))


def is_builtin_style(func: Callable) -> bool:
    """True for sources taking a :class:`SourceContext` first (see :func:`base.source`)."""
    return bool(getattr(func, "trainctl_source", False))


def lookup(name: str, *, key: str, locate: Locate) -> Callable:
    """The source function for ``name``; unknown names are ConfigErrors with suggestions."""
    if ":" in name:
        return import_attr(name, key=key, where=locate(key))
    registry = get_registry("dataset")
    if name in registry.names(builtins=False):
        return registry.get(name)
    if name in SOURCES:
        return SOURCES[name]
    names = source_names()
    raise ConfigError(f"unknown data source {name!r}{did_you_mean(name, names)}; "
                      f"sources: {', '.join(names)}", key=key, where=locate(key),
                      hint="a function of yours can be given as module.path:function")


def check_args(func: Callable, name: str, args: dict, *, key: str, locate: Locate) -> None:
    """Raise ConfigError for an argument ``func`` does not take, or a missing one."""
    params = dict(inspect.signature(func).parameters)
    if is_builtin_style(func):
        params.pop(next(iter(params)))  # the SourceContext
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    for arg in args:
        if arg not in params:
            at = f"{key}.{arg}"
            accepted = [p for p in params if p not in ("path", "seed")] or ["none"]
            raise ConfigError(f"source {name!r} takes no argument {arg!r}"
                              f"{did_you_mean(arg, params)}; it takes: {', '.join(accepted)}",
                              key=at, where=locate(at))
    missing = [p for p, info in params.items() if info.default is info.empty
               and info.kind is not info.VAR_POSITIONAL and p not in args
               and p not in ("path", "seed")]
    if missing:
        raise ConfigError(f"source {name!r} needs the argument(s) {', '.join(missing)}",
                          key=key, where=locate(key))


def check_source(spec: Any, *, key: str, locate: Locate) -> list[ConfigError]:
    """Check ``data.source`` without importing plug-ins or TensorFlow (``trainctl validate``).

    Example:
        >>> check_source("mnsit", key="data.source", locate=cfg.locate)
        [ConfigError("unknown data source 'mnsit' (did you mean 'mnist'?); ...")]
    """
    try:
        name, args, name_key = split_spec(spec, key=key, locate=locate)
        if ":" in name:
            module, _, attr = name.partition(":")
            if not module or not attr:
                raise ConfigError(f"expected 'module.path:function'; received {name!r}",
                                  key=name_key, where=locate(name_key))
            return []  # importing it is for the run, not for validate
        func = lookup(name, key=name_key, locate=locate)
        check_args(func, name, args, key=key, locate=locate)
    except ConfigError as exc:
        return [exc]
    return []


def load_source(spec: Any, ctx_args: dict, *, key: str, locate: Locate) -> RawData:
    """Resolve ``spec`` and call it.

    Args:
        spec: the ``data.source`` value.
        ctx_args: the :class:`SourceContext` fields other than ``name``, ``key``, ``locate``.
        key: the config key of ``spec``.
        locate: ``key -> Location``.
    """
    name, args, name_key = split_spec(spec, key=key, locate=locate)
    if ":" in name:
        add_search_path(ctx_args["config_dir"])  # the config's folder, then the cwd
    func = lookup(name, key=name_key, locate=locate)
    check_args(func, name, args, key=key, locate=locate)
    ctx = SourceContext(name=name, key=key, locate=locate, **ctx_args)
    if is_builtin_style(func):
        if _read_once is not None and not args:
            return _load_once(name, func, ctx)
        return func(ctx, **args)
    return call_plugin(func, args, ctx)


# -- `trainctl smoke`: each Keras data set file read once -------------------------------
_read_once: Optional[dict] = None  # (name, file) -> (its files' stat, RawData); see below


@contextlib.contextmanager
def keras_datasets_read_once():
    """Within the block, a built-in Keras data set (mnist, fashion_mnist, cifar10) found
    in a file is read, hashed, parsed and checked once: a later load of the same
    unchanged file (same size and modification time) gets copies of its arrays. For
    ``trainctl smoke``, where most configs read mnist.npz (0.2 s each)."""
    global _read_once
    _read_once = {}
    try:
        yield
    finally:
        _read_once = None


def _keras_dataset_file(name: str, func: Callable, ctx: SourceContext) -> Optional[Path]:
    """The file or folder the built-in Keras data set source ``name`` reads (as
    :func:`trainctl.data.builtin.load_keras_dataset` finds it); None for another source,
    a plug-in registered under the name, or a data set that would be downloaded."""
    ds = builtin.DATASETS.get(name)
    if ds is None or SOURCES.get(name) is not func:
        return None
    if ctx.path is not None:
        return ctx.path if builtin._usable(ctx.path) else None
    return next((p for p in builtin.candidates(ds) if builtin._usable(p)), None)


def _stat(files: dict[str, str]) -> Optional[tuple]:
    try:
        return tuple((path, os.stat(path).st_size, os.stat(path).st_mtime_ns)
                     for path in sorted(files))
    except OSError:
        return None


def _copy(raw: RawData) -> RawData:
    """``raw`` with arrays of its own: a run may not change another run's."""
    def split(part: Optional[Split]) -> Optional[Split]:
        if part is None:
            return None
        return Split(*(map_arrays(lambda a: a.copy(), arrays)
                       for arrays in (part.x, part.y, part.sample_weight)))

    return RawData(train=split(raw.train), test=split(raw.test), files=dict(raw.files),
                   shaped_like_model=raw.shaped_like_model)


def _load_once(name: str, func: Callable, ctx: SourceContext) -> RawData:
    found = _keras_dataset_file(name, func, ctx)
    if found is None:
        return func(ctx)
    key = (name, str(Path(found).resolve()))
    seen = _read_once.get(key)
    if seen is not None and seen[0] is not None and seen[0] == _stat(seen[1].files):
        return _copy(seen[1])
    raw = func(ctx)
    _read_once[key] = (_stat(raw.files), _copy(raw))
    return raw


def call_plugin(func: Callable, args: dict, ctx: SourceContext) -> RawData:
    """Call a keras.datasets-style function and turn its result into :class:`RawData`."""
    params = inspect.signature(func).parameters
    kwargs = dict(args)
    if ctx.path is not None:
        if "path" not in params:
            raise ConfigError(f"data.path is set, but source {ctx.name!r} takes no 'path' "
                              "argument", key=ctx.path_key, where=ctx.locate(ctx.path_key),
                              hint="remove data.path, or give the function a path parameter")
        kwargs.setdefault("path", str(ctx.path))
    elif "path" in params and params["path"].default is params["path"].empty \
            and "path" not in kwargs:
        raise ConfigError(f"source {ctx.name!r} needs a file: set data.path", key=ctx.key,
                          where=ctx.locate(ctx.key))
    if "seed" in params:
        kwargs.setdefault("seed", ctx.seed)
    try:
        result = func(**kwargs)
    except Exception as exc:  # the user's code: say where it failed, not our traceback
        last = traceback.extract_tb(exc.__traceback__)[-1]
        raise DataError(f"{ctx.where()}: source {ctx.name!r} raised {type(exc).__name__}: "
                        f"{exc} (at {last.filename}:{last.lineno})") from exc
    return normalize_result(result, f"{ctx.where()}: source {ctx.name!r} returned")


def normalize_result(result: Any, what: str) -> RawData:
    """RawData from a keras.datasets-style tuple or a dict of arrays (see module docstring)."""
    if isinstance(result, dict):
        unknown = [k for k in result if k not in _RESULT_KEYS]
        if unknown or "x_train" not in result:
            raise DataError(f"{what} a dict with keys {', '.join(map(str, result))}; expected "
                            f"x_train (required), {', '.join(_RESULT_KEYS[1:])}")
        train = split_from_parts((result["x_train"], result.get("y_train"),
                                  result.get("sample_weight_train")), f"{what} train")
        test = None
        if result.get("x_test") is not None:
            test = split_from_parts((result["x_test"], result.get("y_test"),
                                     result.get("sample_weight_test")), f"{what} test")
        return RawData(train=train, test=test)
    if isinstance(result, (tuple, list)) and len(result) in (1, 2) and \
            isinstance(result[0], (tuple, list, dict)) and \
            (len(result) == 1 or result[1] is None or isinstance(result[1], (tuple, list, dict))):
        train = split_from_parts(result[0], f"{what} train")
        test = (split_from_parts(result[1], f"{what} test")
                if len(result) == 2 and result[1] is not None else None)
        return RawData(train=train, test=test)
    expected = ("expected ((x_train, y_train), (x_test, y_test)), ((x_train, y_train), None) "
                "or a dict with x_train, y_train, x_test, y_test (numpy arrays)")
    if isinstance(result, (tuple, list)) and 2 <= len(result) <= 3 and all(
            hasattr(part, "shape") for part in result):
        raise DataError(f"{what} {len(result)} arrays (x, y{', w' if len(result) == 3 else ''}): "
                        f"the training pair alone; {expected}\n  hint: return (x, y), None "
                        "for data without a test split")
    raise DataError(f"{what} {describe(result)}; {expected}")
