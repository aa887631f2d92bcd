"""The catalog of Keras built-ins: names, arguments and argument types, without TensorFlow.

``catalog.json`` (next to this file) is generated from the installed Keras by
``python -m trainctl.registry.catalog --write`` and read with plain :mod:`json`,
so ``trainctl validate`` can check component names, argument names and argument
types (SPEC §6: ``units: "sixty-four"`` fails) in milliseconds. The file holds
``{"keras": version, "kinds": {kind: {name: record}}, "dtypes": [name, ...]}``; a record is
``{"args": {arg: type}, "required": [...], "open": true, "function": true,
"trainctl": true}`` (keys omitted when empty/false; ``trainctl`` marks trainctl's own
layers, :mod:`trainctl.layers`), ``{"alias_of": name}`` or ``{"string_only": true}``.
Types are described in :mod:`trainctl.registry.argtypes`; a class may state types
its signature cannot tell in a ``trainctl_arg_types`` mapping (``{"fn": "enum:std,sum"}``).

Example:
    >>> [str(e) for e in check_component("layer", {"type": "Dense", "units": "sixty-four"},
    ...                                  key="model.layers[0]")]
    ["model.layers[0].units: expected a positive integer; received 'sixty-four' (str)"]
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Callable

from trainctl.errors import ConfigError, Location, did_you_mean
from trainctl.keras2_plugins import keras3_problem
from trainctl.registry import argtypes
from trainctl.registry.registry import KERAS_KINDS, REGISTRIES, get_registry
from trainctl.registry.specs import import_attr, split_spec, unknown_arg_message
from trainctl.registry.signature import DROPPED_ARGS, accepted_params

CATALOG_PATH = Path(__file__).with_name("catalog.json")
Locate = Callable[[str], "Location | None"]


@functools.lru_cache(maxsize=1)
def load() -> dict[str, Any]:
    """The parsed ``catalog.json`` (read once per process)."""
    with open(CATALOG_PATH, encoding="utf-8") as f:
        return json.load(f)


def _kind_table(kind: str) -> dict[str, dict]:
    return load()["kinds"].get(kind, {})


def dtypes() -> list[str]:
    """The dtype names Keras accepts (``keras.Input(dtype=...)``), sorted.

    Example:
        >>> "float32" in dtypes()
        True
    """
    return list(load().get("dtypes", []))


def _plugin_names(kind: str) -> list[str]:
    # builtins=False: never triggers the Keras import.
    return REGISTRIES[kind].names(builtins=False) if kind in REGISTRIES else []


def _own_names(kind: str) -> set[str]:
    """Names trainctl itself registers (the mnist source, ...): built in, not plug-ins."""
    if kind not in REGISTRIES:
        return set()
    return {n for n in _plugin_names(kind)
            if REGISTRIES[kind].module_of(n).startswith("trainctl.")}


def names(kind: str) -> list[str]:
    """Every name usable for ``kind``: Keras built-ins and registered plug-ins, sorted.

    Example:
        >>> "Dense" in names("layer")
        True
    """
    get_registry(kind)  # unknown kind -> ConfigError listing the kinds
    return sorted(set(_kind_table(kind)) | set(_plugin_names(kind)))


def record(kind: str, name: str) -> dict | None:
    """The catalog record for ``name`` (aliases followed), or a plug-in's live one, or None."""
    if name in _plugin_names(kind):
        return _live_record(REGISTRIES[kind].get(name))
    table = _kind_table(kind)
    found = table.get(name)
    if found and "alias_of" in found:
        found = table.get(found["alias_of"])
    return found


def _live_record(obj: Any) -> dict:
    """A record for a plug-in object, made by inspecting it (types from defaults and docs)."""
    if isinstance(obj, str):
        return {"string_only": True}
    info = accepted_params(obj)
    is_class = inspect.isclass(obj)
    docs = _docs(obj)
    stated = getattr(obj, "trainctl_arg_types", None) if is_class else None
    stated = stated if isinstance(stated, dict) else {}
    args = {n: stated.get(n) or argtypes.arg_type(n, d, docs.get(n))
            for n, d in info.params.items() if is_class or d is not argtypes.REQUIRED}
    rec: dict[str, Any] = {"args": args}
    if is_class and info.required:
        rec["required"] = list(info.required)
    if not is_class:
        rec["function"] = True
    if info.open:
        rec["open"] = True
    return rec


def _docs(obj: Any) -> dict[str, str]:
    """Argument descriptions from the docstrings of ``obj`` and its bases (subclass first)."""
    found: dict[str, str] = {}
    for cls in getattr(obj, "__mro__", (obj,)):
        for name, text in argtypes.doc_args(getattr(cls, "__doc__", None)).items():
            found.setdefault(name, text)
    return found


def check_component(kind: str, spec: Any, *, key: str,
                    locate: Locate | None = None) -> list[ConfigError]:
    """Check a raw config component (name or ``{type: ...}``) without importing TensorFlow.

    Checks that the name exists, every argument is accepted, required arguments
    are present, and each value fits its type; nested ``{type: ...}`` values
    (``learning_rate``, ``*_initializer``, ...) are checked recursively. Names with
    a ``:`` are imported (the config names the module) and checked live. For
    layers the caller strips trainctl's own ``inputs`` key first (``name`` is a
    real Keras layer argument and stays). Kinds ``dataset`` and ``model`` only
    know what is registered, so the modules that register them must be imported.

    Args:
        kind: ``"layer"``, ``"optimizer"``, ...
        spec: the raw YAML value.
        key: its dotted path, e.g. ``model.layers[0]``.
        locate: ``dotted_key -> Location | None``; the most specific key is asked first.

    Returns:
        The errors found (empty when the component is fine).
    """
    def err(message: str, at_key: str, hint: str | None = None) -> ConfigError:
        where = locate(at_key) if locate else None
        if where is None and locate and at_key != key:
            where = locate(key)
        return ConfigError(message, key=at_key, where=where, hint=hint)

    try:
        name, kwargs = split_spec(spec, key=key)
    except ConfigError as exc:
        return [err(exc.message, exc.key or key)]
    plugin = None
    if ":" in name:  # the config names the module, so importing it is allowed
        try:
            plugin = import_attr(name, key=key, where=locate(key) if locate else None)
        except ConfigError as exc:
            return [exc]
        rec: dict | None = _live_record(plugin)
    else:
        rec = record(kind, name)
        if name in _plugin_names(kind):
            plugin = REGISTRIES[kind].get(name)
    problem = keras3_problem(kind, plugin) if plugin is not None else None
    if problem:  # e.g. add_metric: it would fail mid-build with Keras's NotImplementedError
        return [err(problem, key)]
    if rec is None:
        type_key = f"{key}.type" if isinstance(spec, dict) else key
        return [err(f"unknown {kind} {name!r}{did_you_mean(name, names(kind))}", type_key,
                    hint=f"`trainctl components {kind}` lists the names")]
    if rec.get("string_only"):
        return [err(f"{kind} {name!r} is resolved by Keras itself and takes no arguments; "
                    f"received {', '.join(kwargs)}", key)] if kwargs else []
    return _check_args(name, rec, kwargs, key=key, locate=locate, err=err)


def _check_args(name: str, rec: dict, kwargs: dict, *, key: str, locate: Locate | None,
                err: Callable[..., ConfigError]) -> list[ConfigError]:
    args: dict[str, str] = rec.get("args", {})
    errors = []
    for arg, value in kwargs.items():
        arg_key = f"{key}.{arg}"
        type_ = args.get(arg)
        if type_ is None:
            if not rec.get("open"):
                errors.append(err(unknown_arg_message(arg, name, args), arg_key,
                                  hint=DROPPED_ARGS.get(arg)))
            continue
        message = argtypes.value_error(type_, value)
        if message:
            errors.append(err(message, arg_key))
            continue
        nested = argtypes.component_kind(type_, value)
        if nested:
            errors += _check_nested(nested, value, key=arg_key, locate=locate, err=err)
    missing = [r for r in rec.get("required", []) if r not in kwargs]
    if missing:
        errors.append(err(f"missing required argument{'s' if len(missing) > 1 else ''} "
                          f"{', '.join(map(repr, missing))} for {name}", key))
    return errors


def _check_nested(kind: str, value: Any, *, key: str, locate: Locate | None,
                  err: Callable[..., ConfigError]) -> list[ConfigError]:
    if kind == "activation" and isinstance(value, str):
        # Keras looks activation strings up case-sensitively in keras.activations.
        if ":" in value or value in names("activation"):
            return []
        return [err(f"unknown activation {value!r}{did_you_mean(value, names('activation'))}",
                    key)]
    return check_component(kind, value, key=key, locate=locate)


def describe(kind: str, name: str) -> str:
    """One component's arguments for humans: ``Dense(units: int, activation: activation?, ...)``.

    Raises:
        ConfigError: unknown kind or name.
    """
    rec = record(kind, name)
    if rec is None:
        raise ConfigError(f"unknown {kind} {name!r}{did_you_mean(name, names(kind))}")
    alias = _kind_table(kind).get(name, {}).get("alias_of")
    head = f"{name}: alias of {alias}" if alias else name
    if rec.get("string_only"):
        return f"{head}: resolved by Keras at compile time; takes no arguments"
    required = rec.get("required", [])
    args = rec.get("args", {})
    text = ", ".join(f"{a}: {args.get(a, 'any')}" for a in required)
    optional = [f"{a}: {t}" for a, t in args.items() if a not in required]
    if optional:
        text += ("; " if text else "") + "optional " + ", ".join(optional)
    if rec.get("open"):
        text += ("; " if text else "") + "**kwargs"
    return f"{head}({text})"


# -- generation (imports Keras) ------------------------------------------------
def generate() -> dict[str, Any]:
    """Build the catalog from the installed Keras (imports TensorFlow)."""
    import keras

    from trainctl.registry.keras_builtins import collect

    kinds: dict[str, dict] = {}
    for kind in sorted(KERAS_KINDS):
        table = {}
        for entry in collect(kind):
            if entry.string_only:
                table[entry.name] = {"string_only": True}
            elif entry.alias_of:
                table[entry.name] = {"alias_of": entry.alias_of}
            else:
                table[entry.name] = _live_record(entry.obj)
                if getattr(entry.obj, "__module__", "").startswith("trainctl."):
                    table[entry.name]["trainctl"] = True
        kinds[kind] = dict(sorted(table.items()))
    from keras.src.backend.common import dtypes as keras_dtypes

    names = set(keras_dtypes.ALLOWED_DTYPES) | {
        k for k in keras_dtypes.PYTHON_DTYPES_MAP if isinstance(k, str)}  # "int"
    return {"keras": keras.__version__, "kinds": kinds, "dtypes": sorted(names)}


def dumps(catalog: dict[str, Any]) -> str:
    """The on-disk form: compact, one line, fast to parse.

    Names are sorted by :func:`generate`; arguments keep signature order, so an
    error lists ``units, activation, ...`` the way the Keras docs do.
    """
    return json.dumps(catalog, separators=(",", ":")) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m trainctl.registry.catalog --write|--check``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv not in (["--write"], ["--check"]):
        print("usage: python -m trainctl.registry.catalog --write|--check", file=sys.stderr)
        return 2
    text = dumps(generate())
    if argv == ["--write"]:
        CATALOG_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {CATALOG_PATH} ({len(text)} bytes)")
        return 0
    same = CATALOG_PATH.exists() and CATALOG_PATH.read_text(encoding="utf-8") == text
    print("catalog.json is up to date" if same else "catalog.json is stale: run --write")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
