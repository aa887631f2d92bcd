"""Named components: register classes and functions, look them up, build them from config.

A component in a config is a name (``"rmsprop"``) or a mapping
``{type: Name, **constructor_args}``. A :class:`Registry` per kind (layer, loss,
optimizer, ...) maps names to classes or functions; Keras built-ins are added
lazily by :mod:`trainctl.registry.keras_builtins` on the first lookup in a
Keras-backed kind, so importing this module never imports TensorFlow.

Example:
    >>> @register("layer")
    ... class MyDense: ...
    >>> get_registry("layer").get("MyDense") is MyDense
    True
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from trainctl.errors import ConfigError, Location, did_you_mean
from trainctl.keras2_plugins import adapt_keras3, keras3_problem
from trainctl.registry.signature import DROPPED_ARGS, accepted_params
from trainctl.registry.specs import (import_attr, nested_kind, source_of, split_spec,
                                     unknown_arg_message)

Locate = Callable[[str], "Location | None"]

#: Every kind of component, in the order `trainctl components` lists them.
KINDS: tuple[str, ...] = (
    "layer", "loss", "metric", "optimizer", "schedule", "callback", "initializer",
    "regularizer", "constraint", "activation", "dataset", "model")
#: Kinds whose built-ins come from Keras (the others hold trainctl's and users' own).
KERAS_KINDS: frozenset[str] = frozenset(KINDS) - {"dataset", "model"}

@dataclass(frozen=True)
class Entry:
    """One registered name.

    Args:
        name: the registered name.
        obj: the class or function (for ``string_only`` entries, the name itself).
        builtin: True for Keras built-ins.
        string_only: a name Keras resolves itself at compile time ("accuracy").
        alias_of: the canonical name when this name is an alias ("rmsprop").
    """

    name: str
    obj: Any
    builtin: bool = False
    string_only: bool = False
    alias_of: str | None = None
    forced: bool = False


class DuplicateNameError(ConfigError):
    """A name registered twice in one kind (a plug-in bug, reported like a config error)."""


class Registry:
    """A name -> component table for one kind, like MMEngine's ``Registry``.

    Args:
        kind: ``"layer"``, ``"optimizer"``, ... (see :data:`KINDS`).

    Example:
        >>> reg = Registry("callback")
        >>> @reg.register(name="Noop")
        ... class NoopCallback: ...
        >>> reg.build({"type": "Noop"}, key="fit.callbacks[0]")  # doctest: +ELLIPSIS
        <...NoopCallback object at ...>
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._populated = kind not in KERAS_KINDS

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} names)"

    # -- registration -------------------------------------------------------
    def register(self, obj: Any = None, *, name: str | None = None,
                 aliases: Iterable[str] = (), force: bool = False) -> Any:
        """Register a class or function; usable as a decorator or a plain call.

        Args:
            obj: the class or function; omit it to get a decorator.
            name: the registered name (default ``obj.__name__``).
            aliases: further names for the same object.
            force: replace an existing entry instead of raising.

        Returns:
            ``obj`` (so the decorator leaves the class unchanged), or a decorator.

        Raises:
            DuplicateNameError: the name is taken, saying where the first one lives.

        Example:
            >>> reg = Registry("layer")
            >>> reg.register(dict, name="D") is dict
            True
        """
        if isinstance(obj, str):  # @reg.register("Name"), MMEngine style
            obj, name = None, obj
        if obj is None:
            return functools.partial(self.register, name=name, aliases=aliases, force=force)
        main = name or obj.__name__
        for n in (main, *aliases):
            self.add(Entry(n, obj, alias_of=None if n == main else main, forced=force),
                     force=force)
        return obj

    def add(self, entry: Entry, *, force: bool = False) -> None:
        """Add one :class:`Entry` (used by :mod:`keras_builtins`); see :meth:`register`."""
        old = self._entries.get(entry.name)
        if old is not None and entry.builtin and not old.builtin:
            # Keras loads lazily, so a plug-in may have taken a built-in's name first.
            if old.forced:
                return  # the plug-in asked to replace the built-in
            raise DuplicateNameError(
                f"{self.kind} name '{entry.name}' is a Keras built-in "
                f"({source_of(entry.obj)}) and is also registered by {source_of(old.obj)}",
                hint="choose another name, or pass force=True to replace the built-in")
        if old is not None and not force and old.obj is not entry.obj:
            what = "a Keras built-in, " if old.builtin else ""
            raise DuplicateNameError(
                f"{self.kind} name '{entry.name}' is already registered: {what}"
                f"{source_of(old.obj)}; this one is {source_of(entry.obj)}",
                hint="choose another name, or pass force=True to replace it")
        self._entries[entry.name] = entry

    # -- lookup -------------------------------------------------------------
    def _ensure_populated(self) -> None:
        if not self._populated:
            self._populated = True  # set first: populate() calls add(), not get()
            from trainctl.registry import keras_builtins
            keras_builtins.populate(self.kind, self)

    def names(self, *, builtins: bool = True) -> list[str]:
        """Sorted registered names (``builtins=False``: without loading Keras)."""
        if builtins:
            self._ensure_populated()
        return sorted(n for n, e in self._entries.items() if builtins or not e.builtin)

    def registered(self, name: str) -> Any:
        """The object registered as plug-in ``name`` (None when unknown), without loading
        Keras (``trainctl components KIND NAME`` reads its signature)."""
        entry = self._entries.get(name)
        return entry.obj if entry is not None else None

    def module_of(self, name: str) -> str:
        """The module that registered plug-in ``name`` ("" when unknown), without loading
        Keras (``trainctl components`` tells trainctl's own names from plug-ins)."""
        entry = self._entries.get(name)
        return getattr(entry.obj, "__module__", "") if entry is not None else ""

    def entry(self, name: str, *, key: str | None = None,
              where: Location | None = None) -> Entry:
        """The :class:`Entry` for ``name``; ``module.path:Attr`` names are imported; a plug-in
        is adapted to Keras 3 on the way out (:func:`trainctl.keras2_plugins.adapt_keras3`)."""
        if ":" in name:
            return Entry(name, adapt_keras3(self.kind, import_attr(name, key=key, where=where)))
        # Always load Keras first, so a plug-in shadowing a built-in is reported
        # the same way whatever is looked up first.
        self._ensure_populated()
        found = self._entries.get(name)
        if found is None:
            raise ConfigError(
                f"unknown {self.kind} {name!r}{did_you_mean(name, self._entries)}",
                key=key, where=where,
                hint=f"`trainctl components {self.kind}` lists the names; "
                     "a plug-in's class can be given as module.path:ClassName")
        if not found.builtin:
            adapt_keras3(self.kind, found.obj)
        return found

    def get(self, name: str, *, key: str | None = None,
            where: Location | None = None) -> Any:
        """The object registered as ``name`` (a string for ``string_only`` names).

        Raises:
            ConfigError: unknown name, with the nearest names.

        Example:
            >>> get_registry("optimizer").get("rmsprop")  # doctest: +SKIP
            <class 'keras.src.optimizers.rmsprop.RMSprop'>
        """
        return self.entry(name, key=key, where=where).obj

    def is_builtin(self, name: str) -> bool:
        """True when ``name`` is a built-in (for losses and metrics: Keras resolves the string
        itself; the layer kind also holds trainctl's own layers)."""
        self._ensure_populated()
        entry = self._entries.get(name)
        return entry is not None and entry.builtin

    def __contains__(self, name: str) -> bool:
        self._ensure_populated()
        return name in self._entries

    # -- building -----------------------------------------------------------
    def build(self, spec: Any, *, key: str, where: Location | None = None,
              locate: Locate | None = None) -> Any:
        """Build a component from a name or a ``{type: Name, **kwargs}`` mapping.

        Arguments are checked against the constructor's signature before it is
        called; nested ``{type: ...}`` values are built from the registry their
        argument name implies (``learning_rate`` -> schedule, ``*_initializer``...).
        A function with arguments becomes a ``functools.partial`` keeping its name.

        Args:
            spec: the raw config value.
            key: its dotted key path, for error messages.
            where: its location, used when ``locate`` gives none.
            locate: ``dotted_key -> Location | None`` for nested keys.

        Raises:
            ConfigError: unknown name or argument, missing argument, or the
                constructor failed.

        Example:
            >>> get_registry("layer").build({"type": "Dense", "units": 4},
            ...                              key="model.layers[0]")  # doctest: +SKIP
            <Dense name=dense, built=False>
        """
        def at(k: str) -> Location | None:
            return (locate(k) if locate else None) or where

        name, kwargs = split_spec(spec, key=key, where=at(key))
        entry = self.entry(name, key=_type_key(spec, key), where=at(_type_key(spec, key)))
        obj = entry.obj
        problem = None if entry.builtin else keras3_problem(self.kind, obj)
        if problem:  # fail here, not with Keras's NotImplementedError mid-build
            raise ConfigError(problem, key=key, where=at(key))
        if entry.string_only:
            if kwargs:
                raise ConfigError(
                    f"{self.kind} {name!r} is resolved by Keras itself and takes no "
                    f"arguments; received {', '.join(kwargs)}", key=key, where=at(key))
            return obj
        _check_kwargs(obj, name, kwargs, key=key, at=at)
        for arg, value in list(kwargs.items()):
            kind = nested_kind(arg)
            if kind and isinstance(value, Mapping) and "type" in value:
                kwargs[arg] = get_registry(kind).build(
                    value, key=f"{key}.{arg}", where=where, locate=locate)
        if not inspect.isclass(obj):
            return _bind_function(obj, kwargs)
        return _call(obj, name, kwargs, key=key, where=at(key))


def _type_key(spec: Any, key: str) -> str:
    return f"{key}.type" if isinstance(spec, Mapping) else key


def _check_kwargs(obj: Any, name: str, kwargs: dict, *, key: str,
                  at: Callable[[str], Location | None]) -> None:
    info = accepted_params(obj)
    is_class = inspect.isclass(obj)
    # A function's parameters without a default (y_true, y_pred, x) are call-time inputs.
    accepted = [n for n in info.names if is_class or n in info.defaults]
    if not info.open:
        for arg in kwargs:
            if arg not in accepted:
                raise ConfigError(
                    unknown_arg_message(arg, name, accepted),
                    key=f"{key}.{arg}", where=at(f"{key}.{arg}"), hint=DROPPED_ARGS.get(arg))
    if is_class:
        missing = [n for n in info.required if n not in kwargs]
        if missing:
            raise ConfigError(
                f"missing required argument{'s' if len(missing) > 1 else ''} "
                f"{', '.join(map(repr, missing))} for {name}", key=key, where=at(key))


def _bind_function(func: Callable, kwargs: dict) -> Callable:
    if not kwargs:
        return func
    # Keras names metrics and losses after __name__, which a bare partial lacks.
    return functools.update_wrapper(functools.partial(func, **kwargs), func)


def _call(cls: type, name: str, kwargs: dict, *, key: str, where: Location | None) -> Any:
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        # The constructor's own message says it all; its traceback is Keras internals.
        raise ConfigError(f"{name} rejected its arguments: {type(exc).__name__}: {exc}",
                          key=key, where=where) from None
    except Exception as exc:  # a plug-in's bug: keep the chain for --verbose
        raise ConfigError(f"building {name} failed: {type(exc).__name__}: {exc}",
                          key=key, where=where) from exc


#: One registry per kind; plug-ins add to these with :func:`register`.
REGISTRIES: dict[str, Registry] = {kind: Registry(kind) for kind in KINDS}


def get_registry(kind: str) -> Registry:
    """The registry for ``kind``.

    Raises:
        ConfigError: unknown kind, listing the valid ones.
    """
    try:
        return REGISTRIES[kind]
    except KeyError:
        raise ConfigError(f"unknown component kind {kind!r}{did_you_mean(kind, KINDS)}; "
                          f"valid kinds: {', '.join(KINDS)}") from None


def register(kind: str, obj: Any = None, *, name: str | None = None,
             aliases: Iterable[str] = (), force: bool = False) -> Any:
    """Register ``obj`` under ``kind``; the decorator plug-in modules use.

    Example:
        >>> import trainctl  # doctest: +SKIP
        >>> @trainctl.register("layer")  # doctest: +SKIP
        ... class MyDenseLayer(keras.layers.Layer): ...
    """
    return get_registry(kind).register(obj, name=name, aliases=aliases, force=force)
