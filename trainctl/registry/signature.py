"""Which keyword arguments a class or function accepts, found without calling it.

Keras constructors pass ``**kwargs`` up to their base class, so ``Dense.__init__``
alone says "anything goes". :func:`accepted_params` follows ``**kwargs`` up the
MRO until a base that takes no ``**kwargs`` (or a Keras base that validates its
``**kwargs``), so a misspelled argument is caught before the constructor runs.

This module never imports TensorFlow or Keras: Keras bases are recognised by
their module and class name.

Example:
    >>> class Base:
    ...     def __init__(self, name=None): ...
    >>> class Dense(Base):
    ...     def __init__(self, units, activation=None, **kwargs):
    ...         super().__init__(**kwargs)
    >>> info = accepted_params(Dense)
    >>> info.names, info.required, info.open
    (('units', 'activation', 'name'), ('units',), False)
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

#: The marker for "this parameter has no default".
REQUIRED = inspect.Parameter.empty

# Keras bases whose ``__init__`` takes ``**kwargs`` but rejects every key except
# these (keras/src/layers/layer.py pops input_dim/input_shape and raises on the
# rest; base_optimizer.py pops ``decay``, which Keras 3 ignores with a warning
# only, so we deliberately do not accept it: a silent no-op is worse than an error).
VALIDATING_BASES: dict[str, tuple[str, ...]] = {
    "keras.src.layers.layer.Layer": ("input_dim", "input_shape"),
    "keras.src.optimizers.base_optimizer.BaseOptimizer": (),
    "keras.src.losses.loss.Loss": (),
    "keras.src.metrics.metric.Metric": (),
}

# Keras classes that pop a keyword from ``**kwargs`` themselves before passing
# the rest up; without this table these real arguments would be "unknown".
POPPED_KWARGS: dict[str, tuple[str, ...]] = {
    "keras.src.layers.normalization.layer_normalization.LayerNormalization":
        ("rms_scaling",),
    "keras.src.layers.activations.leaky_relu.LeakyReLU": ("alpha",),
    "keras.src.layers.rnn.lstm.LSTM": ("implementation",),
    "keras.src.layers.rnn.lstm.LSTMCell": ("implementation",),
    "keras.src.layers.rnn.gru.GRU": ("implementation",),
    "keras.src.layers.rnn.gru.GRUCell": ("implementation",),
}

#: Arguments Keras 3 dropped, with what to write instead (used in error hints).
DROPPED_ARGS: dict[str, str] = {
    "decay": "Keras 3 optimizers ignore `decay`; use a learning-rate schedule "
             "(learning_rate: {type: ExponentialDecay, ...})",
    "lr": "Keras 3 calls it `learning_rate`",
    "batch_input_shape": "declare the shape under model.inputs instead",
    "input_length": "Keras 3 removed `input_length`; just remove it",
}


@dataclass(frozen=True)
class ParamInfo:
    """The keyword arguments a callable accepts.

    Args:
        params: name -> default (``REQUIRED`` when it has none), in signature order.
        open: True when arbitrary extra keywords are accepted (unvalidated ``**kwargs``).
        owners: name -> ``module.QualName`` of the class or function that declares it.

    Example:
        >>> info = accepted_params(lambda x, scale=1.0: x)
        >>> info.names, info.defaults
        (('x', 'scale'), {'scale': 1.0})
    """

    params: dict[str, Any] = field(default_factory=dict)
    open: bool = False
    owners: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        """All accepted argument names, in signature order (subclass first)."""
        return tuple(self.params)

    @property
    def required(self) -> tuple[str, ...]:
        """Argument names without a default."""
        return tuple(n for n, d in self.params.items() if d is REQUIRED)

    @property
    def defaults(self) -> dict[str, Any]:
        """Argument name -> default, for the arguments that have one."""
        return {n: d for n, d in self.params.items() if d is not REQUIRED}

    def accepts(self, name: str) -> bool:
        """Whether ``name`` may be passed as a keyword argument."""
        return self.open or name in self.params


def qualified_name(obj: Any) -> str:
    """``module.QualName`` of a class or function: ``keras.src.layers.core.dense.Dense``."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def accepted_params(obj: Callable) -> ParamInfo:
    """The keyword arguments ``obj`` (a class or a function) accepts.

    Args:
        obj: a class (its ``__init__`` is inspected, walking ``**kwargs`` up the
            MRO) or any other callable.

    Returns:
        A :class:`ParamInfo`; ``open`` is True when we cannot tell (no signature,
        or ``**kwargs`` that go somewhere other than a base ``__init__``).

    Example:
        >>> accepted_params(lambda *args, **kwargs: None).open  # nothing to go on
        True
    """
    if inspect.isclass(obj):
        return _class_params(obj)
    return _function_params(obj)


def _signature(func: Callable) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # builtins and C extensions
        return None


def _function_params(func: Callable) -> ParamInfo:
    sig = _signature(func)
    if sig is None:
        return ParamInfo(open=True)
    params, owners = {}, {}
    owner = qualified_name(func)
    is_open = False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD or p.kind is p.VAR_POSITIONAL:
            # `def f(*args, **kwargs)` (an undecorated wrapper, say) tells us nothing.
            is_open = is_open or p.kind is p.VAR_KEYWORD or len(sig.parameters) == 1
            continue
        if p.kind is p.POSITIONAL_ONLY:
            continue  # cannot be given by keyword
        params[p.name] = p.default
        owners[p.name] = owner
    return ParamInfo(params, is_open, owners)


def _forwards_to_base(init: Callable) -> bool:
    """Whether an ``__init__`` calls some other ``__init__`` (``super().__init__(**kw)``).

    If it takes ``**kwargs`` but never calls a base ``__init__``, the extra keywords
    go elsewhere (stored, passed to a wrapped function), so the class is open.
    """
    code = getattr(inspect.unwrap(init), "__code__", None)
    return code is not None and "__init__" in code.co_names


def _passed_keywords(init: Callable) -> set[str]:
    """Keyword names an ``__init__`` passes in its calls (``super().__init__(rank=2, ...)``).

    CPython keeps each call's keyword names as a tuple constant of the code object.
    """
    code = getattr(inspect.unwrap(init), "__code__", None)
    consts = code.co_consts if code is not None else ()
    return {n for c in consts if isinstance(c, tuple) for n in c if isinstance(n, str)}


def _class_params(cls: type) -> ParamInfo:
    params: dict[str, Any] = {}
    owners: dict[str, str] = {}
    supplied: set[str] = set()  # base arguments a subclass fills in itself
    first = True
    for base in cls.__mro__:
        if base is object:
            # kwargs that reach object.__init__ raise TypeError: the walk is closed.
            return ParamInfo(params, False, owners)
        init = base.__dict__.get("__init__")
        if init is None:
            continue
        sig = _signature(init)
        if sig is None:
            return ParamInfo(params, True, owners)
        qual = qualified_name(base)
        has_var_kw = False
        for i, p in enumerate(sig.parameters.values()):
            if i == 0 or p.kind is p.POSITIONAL_ONLY or p.kind is p.VAR_POSITIONAL:
                continue  # self, and what cannot be given by keyword
            if p.kind is p.VAR_KEYWORD:
                has_var_kw = True
                continue
            if not first and p.name not in params and (
                    p.name in supplied or p.default is REQUIRED):
                # Conv2D calls BaseConv.__init__(rank=2, ...), LSTM passes its own
                # cell to RNN: a base's required or explicitly passed argument is
                # the subclass's business, not the user's.
                continue
            # The subclass's default wins: it is the one the user gets.
            params.setdefault(p.name, p.default)
            owners.setdefault(p.name, qual)
        supplied |= _passed_keywords(init)
        first = False
        for extra in POPPED_KWARGS.get(qual, ()):
            params.setdefault(extra, None)
            owners.setdefault(extra, qual)
        if qual in VALIDATING_BASES:
            for extra in VALIDATING_BASES[qual]:
                params.setdefault(extra, None)
                owners.setdefault(extra, qual)
            return ParamInfo(params, False, owners)
        if not has_var_kw:
            return ParamInfo(params, False, owners)
        if not _forwards_to_base(init):
            return ParamInfo(params, True, owners)
    return ParamInfo(params, True, owners)
