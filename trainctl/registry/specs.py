"""Component specs: parse ``name`` / ``{type: ...}`` values, import ``module:Attr`` names.

Shared by :mod:`registry` (building) and :mod:`catalog` (TF-free checking);
imports nothing heavy.

Example:
    >>> split_spec({"type": "Dense", "units": 4}, key="model.layers[0]")
    ('Dense', {'units': 4})
"""

from __future__ import annotations

import inspect
from typing import Any, Iterable, Mapping

from trainctl.plugins import import_module
from trainctl.errors import ConfigError, Location, describe, did_you_mean

# Argument name -> kind of the nested component it holds (exact names first).
_NESTED_EXACT = {"learning_rate": "schedule", "layer": "layer", "backward_layer": "layer",
                 "cell": "layer", "optimizer": "optimizer", "inner_optimizer": "optimizer",
                 "loss": "loss", "activation": "activation",
                 "recurrent_activation": "activation",
                 "schedule": "schedule"}  # LearningRateScheduler(schedule=...)
_NESTED_SUFFIX = (("_initializer", "initializer"), ("_regularizer", "regularizer"),
                  ("_constraint", "constraint"), ("_activation", "activation"))


def nested_kind(arg: str) -> str | None:
    """The kind of component an argument named ``arg`` takes, or None.

    Example:
        >>> nested_kind("kernel_initializer"), nested_kind("units")
        ('initializer', None)
    """
    if arg in _NESTED_EXACT:
        return _NESTED_EXACT[arg]
    for suffix, kind in _NESTED_SUFFIX:
        if arg.endswith(suffix):
            return kind
    return None


def source_of(obj: Any) -> str:
    """Where ``obj`` lives: ``module:QualName (path/file.py:LINE)``."""
    text = f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"
    try:
        target = inspect.unwrap(obj)
        file = inspect.getsourcefile(target)
        line = inspect.getsourcelines(target)[1]
        text += f" ({file}:{line})"
    except (TypeError, OSError):
        pass  # built-ins, strings, objects made at run time: the name is all we have
    return text


def split_spec(spec: Any, *, key: str, where: Location | None = None
               ) -> tuple[str, dict[str, Any]]:
    """``"rmsprop"`` -> ``("rmsprop", {})``; ``{type: X, a: 1}`` -> ``("X", {"a": 1})``.

    Raises:
        ConfigError: not a string or a mapping with a string ``type``.
    """
    if isinstance(spec, str):
        return spec, {}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"expected a name or a mapping with 'type'; received {describe(spec)}",
                          key=key, where=where)
    if "type" not in spec:
        raise ConfigError(
            "a component mapping needs a 'type' key; received keys "
            + (", ".join(map(str, spec)) or "none"), key=key, where=where)
    kwargs = dict(spec)
    name = kwargs.pop("type")
    if not isinstance(name, str):
        raise ConfigError(f"expected a name; received {describe(name)}",
                          key=f"{key}.type", where=where)
    return name, kwargs


def unknown_arg_message(arg: str, name: str, accepted: Iterable[str]) -> str:
    """``unknown argument 'unit' for Dense (did you mean 'units'?); accepted: units, ...``."""
    accepted = list(accepted)
    return (f"unknown argument {arg!r} for {name}{did_you_mean(arg, accepted)}; "
            f"accepted: {', '.join(accepted) or 'none'}")


def import_attr(name: str, *, key: str | None = None, where: Location | None = None) -> Any:
    """Resolve ``module.path:Attr`` (``Attr`` may be dotted) by importing the module.

    Only for names a config gives: the caller decides that.

    Raises:
        ConfigError: the module cannot be imported or has no such attribute.

    Example:
        >>> import_attr("collections:OrderedDict").__name__
        'OrderedDict'
    """
    module_name, _, attr = name.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"expected 'module.path:Name'; received {name!r}", key=key, where=where)
    module = import_module(module_name, key=key, where=where)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = [n for n in dir(obj) if not n.startswith("_")]
            raise ConfigError(f"{module_name!r} has no attribute {attr!r}"
                              f"{did_you_mean(part, public)}", key=key, where=where)
        obj = getattr(obj, part)
    return obj
