"""Built-ins by name: fills the registries from Keras's public namespaces and trainctl's layers.

Imports Keras (and so TensorFlow) only when :func:`collect` or :func:`populate`
is called; :class:`~trainctl.registry.registry.Registry` calls it lazily.

Names are the ones Keras itself accepts: the public classes and functions of
``keras.layers``, ``keras.losses``, ... plus the string aliases each namespace's
``get()`` resolves (``"rmsprop"``, ``"mse"``, ``"glorot_uniform"``). The layer
kind also holds trainctl's own layers (:mod:`trainctl.layers`: ``LogMetric``,
``AddLoss``), built-ins of trainctl that the catalog describes like Keras's.

Example:
    >>> from trainctl.registry.keras_builtins import collect
    >>> {e.name: e.alias_of for e in collect("optimizer")}["rmsprop"]  # doctest: +SKIP
    'RMSprop'
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from trainctl.registry.registry import KERAS_KINDS, Entry, Registry, get_registry

# kind -> (public namespace, internal module whose ALL_OBJECTS_DICT is what the
# namespace's get() resolves strings with, or None).
_SOURCES: dict[str, tuple[str, str | None]] = {
    "layer": ("keras.layers", None),
    "loss": ("keras.losses", "keras.src.losses"),
    "metric": ("keras.metrics", "keras.src.metrics"),
    "optimizer": ("keras.optimizers", "keras.src.optimizers"),
    "schedule": ("keras.optimizers.schedules", None),
    "callback": ("keras.callbacks", None),
    "initializer": ("keras.initializers", "keras.src.initializers"),
    "regularizer": ("keras.regularizers", "keras.src.regularizers"),
    "constraint": ("keras.constraints", "keras.src.constraints"),
    "activation": ("keras.activations", "keras.src.activations"),
}

# Helpers and abstract bases: not components a config can use by name.
_SKIP_ALWAYS = {"get", "serialize", "deserialize"}
_SKIP: dict[str, set[str]] = {
    # Input/InputLayer are declared under model.inputs; Wrapper is abstract.
    "layer": {"Layer", "Input", "InputLayer", "InputSpec", "Wrapper"},
    "loss": {"Loss", "LossFunctionWrapper"},
    "metric": {"Metric", "metric", "MeanMetricWrapper", "mean_metric_wrapper"},
    "optimizer": {"Optimizer", "optimizer"},
    "schedule": {"LearningRateSchedule"},
    # History and the progress bar are added by Keras itself; CallbackList is a container.
    "callback": {"Callback", "CallbackList", "History"},
    "initializer": {"Initializer", "initializer"},
    "regularizer": {"Regularizer", "regularizer"},
    "constraint": {"Constraint", "constraint"},
    "activation": set(),
}

# Metric strings that compile() resolves from the loss and output shape
# (keras/src/trainers/compile_utils.py); no class or function stands behind them.
STRING_ONLY_METRICS = ("accuracy", "acc", "crossentropy", "ce")


def _candidates(kind: str) -> dict[str, Any]:
    public_name, internal_name = _SOURCES[kind]
    public = importlib.import_module(public_name)
    found: dict[str, Any] = {}
    for name in dir(public):
        obj = getattr(public, name)
        if not name.startswith("_") and callable(obj) and not inspect.ismodule(obj):
            found[name] = obj
    if internal_name:
        table = getattr(importlib.import_module(internal_name), "ALL_OBJECTS_DICT", {})
        for name, obj in table.items():
            found.setdefault(name, obj)
    skip = _SKIP_ALWAYS | _SKIP[kind]
    return {n: o for n, o in found.items() if n not in skip and _fits(kind, o)}


def _fits(kind: str, obj: Any) -> bool:
    import keras

    if kind == "layer":
        return inspect.isclass(obj) and issubclass(obj, keras.layers.Layer)
    if kind == "optimizer":
        return inspect.isclass(obj) and issubclass(obj, keras.optimizers.Optimizer)
    return True


def _canonical(names: list[str], obj: Any) -> str:
    """The name an object is known by: its own ``__name__`` when registered, else the first."""
    own = getattr(obj, "__name__", None)
    return own if own in names else sorted(names)[0]


def collect(kind: str) -> list[Entry]:
    """The Keras built-ins of ``kind`` as :class:`Entry` objects, aliases marked.

    Args:
        kind: a Keras-backed kind (``layer``, ``loss``, ..., ``activation``).

    Returns:
        Entries sorted by name; an alias has ``alias_of`` set to its canonical name.
    """
    if kind not in KERAS_KINDS:
        return []
    found = _candidates(kind)
    if kind == "layer":
        from trainctl.layers import LAYERS

        for name, obj in LAYERS.items():
            found.setdefault(name, obj)  # a future Keras layer of that name wins
    if kind == "metric":
        for name in STRING_ONLY_METRICS:
            found.pop(name, None)
    by_obj: dict[int, list[str]] = {}
    for name, obj in found.items():
        by_obj.setdefault(id(obj), []).append(name)
    entries = []
    for name, obj in sorted(found.items()):
        canonical = _canonical(by_obj[id(obj)], obj)
        entries.append(Entry(name, obj, builtin=True,
                             alias_of=None if canonical == name else canonical))
    if kind == "metric":
        entries += [Entry(n, n, builtin=True, string_only=True) for n in STRING_ONLY_METRICS]
    return sorted(entries, key=lambda e: e.name)


def populate(kind: str, registry: Registry | None = None) -> None:
    """Add the Keras built-ins of ``kind`` to ``registry`` (default: the global one).

    Example:
        >>> populate("layer")  # doctest: +SKIP
    """
    registry = registry or get_registry(kind)
    for entry in collect(kind):
        registry.add(entry)
