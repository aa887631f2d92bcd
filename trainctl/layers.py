"""trainctl's own layers: what Keras 2 code did with ``add_metric`` / ``model.add_loss``.

Keras 3 removed ``Layer.add_metric`` and ``Model.add_metric``, and
``model.add_loss(tensor)`` on a Functional model raises NotImplementedError
(KERAS3_NOTES). These pass-through layers give the same behaviour from YAML:

- :class:`LogMetric` logs ``fn(inputs)`` (std, mean, ...) as a metric: it owns a
  ``keras.metrics.Mean`` updated in ``call()``, so the value shows in history
  (``std_of_activation``, ``val_std_of_activation``) and in ``evaluate``.
- :class:`AddLoss` adds ``factor * fn(inputs)`` to the training loss with
  ``self.add_loss`` (activity regularisation, seed S7).

Both are registered with ``keras.saving.register_keras_serializable(package="trainctl")``
so a run's ``model.keras`` loads back once this module is imported; the layer
registry lists them next to the Keras built-ins (and ``catalog.json`` carries
their arguments, so ``trainctl validate`` checks them without TensorFlow).
Importing this module imports Keras: only the registry and reload do.

Example (YAML):
    layers:
      - {type: Dense, units: 64, activation: relu, name: dense_1}
      - {type: LogMetric, fn: std, name: std_of_activation}
      - {type: AddLoss, fn: sum, factor: 0.1}
"""

from __future__ import annotations

from typing import Any, Callable

import keras
from keras import ops

#: Reductions a config can name in ``fn:``: each maps a tensor to a scalar.
REDUCTIONS: dict[str, Callable[[Any], Any]] = {
    "std": ops.std,
    "mean": ops.mean,
    "sum": ops.sum,
    "max": ops.max,
    "min": ops.min,
    "abs_sum": lambda x: ops.sum(ops.abs(x)),     # L1 activity regularisation
    "square_sum": lambda x: ops.sum(ops.square(x)),  # L2 activity regularisation
    "abs_mean": lambda x: ops.mean(ops.abs(x)),
    "square_mean": lambda x: ops.mean(ops.square(x)),
}
_FN_TYPE = "enum:" + ",".join(REDUCTIONS)


def _reduction(fn: str, layer: str) -> Callable[[Any], Any]:
    """The reduction named ``fn``; ValueError (reported at the layer's key) otherwise."""
    if fn not in REDUCTIONS:
        raise ValueError(f"{layer}: unknown fn {fn!r}; expected one of {', '.join(REDUCTIONS)}")
    return REDUCTIONS[fn]


@keras.saving.register_keras_serializable(package="trainctl")
class LogMetric(keras.layers.Layer):
    """Pass the input through and log ``fn(input)`` as a metric (Keras 3's ``add_metric``).

    The value is averaged over the batches of an epoch (``aggregation='mean'``
    in Keras 2), reset by Keras at every epoch, and logged for training,
    validation (``val_`` prefix) and ``evaluate``.

    Args:
        fn: the reduction: std, mean, sum, max, min, abs_sum, square_sum,
            abs_mean or square_mean.
        metric: the history key (default: the layer's name, so
            ``{type: LogMetric, name: std_of_activation}`` logs ``std_of_activation``).
        **kwargs: Keras layer arguments (``name``, ``dtype``, ...).

    Example:
        >>> x = LogMetric(fn="std", name="std_of_activation")(keras.Input((4,)))
    """

    #: catalog types the signature cannot tell (read by trainctl.registry.catalog)
    trainctl_arg_types = {"fn": _FN_TYPE, "metric": "str?"}

    def __init__(self, fn: str = "std", metric: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.fn = fn
        self.metric = metric
        self._reduce = _reduction(fn, "LogMetric")
        # A tracked Metric attribute is collected into model.metrics (history, evaluate).
        # Name passed positionally: a `name=` keyword here would make the catalog's
        # signature walk think this __init__ fills the Layer's own `name` itself.
        self.tracker = keras.metrics.Mean(metric or self.name)

    def call(self, inputs: Any) -> Any:
        # float32: the statistic of a float16 activation under mixed precision overflows
        self.tracker.update_state(self._reduce(ops.cast(inputs, "float32")))
        return inputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fn": self.fn, "metric": self.metric}


@keras.saving.register_keras_serializable(package="trainctl")
class AddLoss(keras.layers.Layer):
    """Pass the input through and add ``factor * fn(input)`` to the model's loss.

    The Keras 3 form of ``model.add_loss(tf.reduce_sum(h) * 0.1)`` (which raises
    NotImplementedError on a Functional model): the term is added with
    ``self.add_loss`` in ``call()``, so ``fit``, ``evaluate`` and trainctl's
    custom loop include it in ``loss``.

    Args:
        fn: the reduction over the whole batch: sum, mean, std, max, min, abs_sum,
            square_sum, abs_mean or square_mean.
        factor: multiplies the term (``0.1`` in the seed; ``0`` turns it off).
        **kwargs: Keras layer arguments (``name``, ``dtype``, ...).

    Example:
        >>> x = AddLoss(fn="sum", factor=0.1)(keras.Input((4,)))
    """

    trainctl_arg_types = {"fn": _FN_TYPE, "factor": "float"}

    def __init__(self, fn: str = "sum", factor: float = 1.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.fn = fn
        self.factor = float(factor)
        self._reduce = _reduction(fn, "AddLoss")

    def call(self, inputs: Any) -> Any:
        self.add_loss(self.factor * self._reduce(ops.cast(inputs, "float32")))
        return inputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fn": self.fn, "factor": self.factor}


#: Every layer this module provides, by the name configs use.
LAYERS: dict[str, type] = {"LogMetric": LogMetric, "AddLoss": AddLoss}
