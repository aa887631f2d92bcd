"""Plug-ins written for tf.keras 2, under Keras 3: adapted where that is safe, reported
where it is not.

A Metric's ``reset_states()`` (Keras 3 calls ``reset_state()`` only) is made to run;
a ``result()`` returning its variable gets a copy; ``add_metric`` and other removed
APIs are reported with what to use instead (:func:`keras3_problem`).

Example:
    >>> cls = adapt_keras3("metric", MyMetric)   # the registry does this for plug-ins
    >>> keras3_problem("layer", MyLayer)          # None, or what Keras 3 lacks
"""

from __future__ import annotations

import sys
from typing import Any

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
